"""A private PostgreSQL server for tests, started from Debian's binaries.

``postgres_server`` (session scope) runs ``initdb`` into a temporary folder and starts
``postgres`` on 127.0.0.1 (a free port; its socket in that folder; password login only),
stopping it at the end. ``postgres_url`` (each test) is the URL of a fresh database of its
own. Without PostgreSQL's binaries the tests skip, or fail where $QWEN_REQUIRE_POSTGRES=1
(CI). As root, the server runs as the ``postgres`` user (PostgreSQL refuses root).

Use in a test module: ``from tests.postgres import postgres_server, postgres_url``.
"""

from __future__ import annotations

import glob
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

__all__ = ["PostgresServer", "postgres_server", "postgres_url", "postgres_bindir"]

START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


def postgres_bindir() -> Path | None:
    """The folder of ``initdb`` and ``postgres``: $QWEN_POSTGRES_BIN, the newest
    /usr/lib/postgresql/*/bin, or PATH's."""
    candidates: list[Path] = []
    if os.environ.get("QWEN_POSTGRES_BIN"):
        candidates.append(Path(os.environ["QWEN_POSTGRES_BIN"]))

    def major(path: str) -> int:
        found = re.search(r"postgresql/(\d+)/", path)
        return int(found.group(1)) if found else 0

    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=major)[::-1]]
    if shutil.which("initdb"):
        candidates.append(Path(shutil.which("initdb") or "").parent)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder
    return None


def _unavailable(reason: str) -> None:
    if os.environ.get("QWEN_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL is required here ($QWEN_REQUIRE_POSTGRES=1): {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One ``postgres`` process of our own; :meth:`new_database` gives each test a
    database; :meth:`stop` ends it (SIGINT: a fast shutdown) and removes its files."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.password = secrets.token_hex(16)
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        base = tempfile.gettempdir()
        if os.geteuid() == 0 and not os.stat(base).st_mode & 0o001:
            base = "/tmp"  # the postgres user must be able to reach its folder
        self.dir = Path(tempfile.mkdtemp(prefix="qwen-pg-", dir=base))
        self._as: dict[str, Any] = {}
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            import pwd

            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(self.dir, ignore_errors=True)
                _unavailable("running as root and there is no 'postgres' user to run the server")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            self._as = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"

    def _env(self) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.dir),
            "LC_ALL": "C",
        }

    def start(self) -> None:
        pwfile = self.dir / "pw"
        pwfile.write_text(self.password + "\n")
        if self._as:
            os.chown(pwfile, self._as["user"], self._as["group"])
        done = subprocess.run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            capture_output=True,
            env=self._env(),
            timeout=120,
            **self._as,
        )
        pwfile.unlink()
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr.decode(errors='replace')[-2000:]}")
        for _attempt in range(3):  # another process may take the free port first
            self.port = _free_port()
            if self._launch():
                return
        raise RuntimeError(f"postgres did not start: {self._log_tail()}")

    def _launch(self) -> bool:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    str(self.bindir / "postgres"),
                    "-D",
                    str(self.data),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "-k",
                    str(self.dir),
                    # a throwaway server: durability off, room for the concurrency tests
                    "-c",
                    "fsync=off",
                    "-c",
                    "synchronous_commit=off",
                    "-c",
                    "full_page_writes=off",
                    "-c",
                    "max_connections=200",
                    "-c",
                    "shared_buffers=32MB",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self._env(),
                start_new_session=True,  # a Ctrl-C of pytest does not reach it
                **self._as,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                self._admin().close()
                return True
            except Exception:
                time.sleep(0.1)
        self._terminate()
        raise RuntimeError(f"postgres did not accept connections in {START_TIMEOUT:.0f} s")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/{database}"

    def _admin(self) -> Any:
        import psycopg

        return psycopg.connect(self.url(), connect_timeout=2, autocommit=True)

    def new_database(self) -> str:
        name = f"t_{secrets.token_hex(6)}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    def _terminate(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)  # fast shutdown: ends sessions, then exits
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT)

    def stop(self) -> None:
        try:
            self._terminate()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bindir = postgres_bindir()
    if bindir is None:
        _unavailable("PostgreSQL's initdb/postgres are not installed (apt-get install postgresql)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("psycopg is not installed (pip install 'qwen-agent-kit[fabric]')")
    server = PostgresServer(bindir)  # type: ignore[arg-type]
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database of this test's own."""
    url = postgres_server.new_database()
    yield url
    postgres_server.drop_database(url)
