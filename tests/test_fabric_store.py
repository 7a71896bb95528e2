"""AgentFabric's store (agentfabric.store) on SQLite and on a real PostgreSQL server.

Every test that takes ``db_url`` or ``store`` runs on both: SQLite in a temporary folder
and a fresh database of a private PostgreSQL server (tests/postgres.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sqlalchemy")
pytest.importorskip("alembic")

import sqlalchemy as sa  # noqa: E402
from alembic.autogenerate import compare_metadata  # noqa: E402
from alembic.migration import MigrationContext  # noqa: E402

from agentfabric.store import (  # noqa: E402
    AgentRecord,
    Base,
    Conflict,
    ImportRefused,
    NotFound,
    Store,
    StoreError,
    sanitize_filename,
)
from qwen_agent.config import AgentConfig  # noqa: E402
from qwen_agent.errors import ConfigError  # noqa: E402
from tests.postgres import postgres_server, postgres_url  # noqa: E402, F401 - fixtures

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 40
GIF = b"GIF89a" + b"\x00" * 40
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 40
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.network)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fabric.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with Store(db_url) as s:
        yield s


def _count(store: Store, table: str) -> int:
    with store._engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


def _full_config(name: str = "helper") -> AgentConfig:
    return AgentConfig(
        name=name,
        tools=["retrieval", {"name": "code_interpreter"}],
        tool_options={"retrieval": {"top_k": 3}},
        format="react",
        instructions="Answer briefly. <script>alert(1)</script>",
        max_steps=5,
        thinking=True,
        description="Finds things in the handbook",
        conversation_starters=["What is the leave policy?", "Who approves expenses?"],
        welcome_message="Hello! <b>Ask me</b>",
    )


# -- schema and migrations ----------------------------------------------------------------


def test_migrations_make_exactly_the_models_schema(db_url: str) -> None:
    with Store(db_url) as store:
        engine = store._engine
        tables = set(sa.inspect(engine).get_table_names())
        assert tables == {"agents", "agent_versions", "files", "conversations", "alembic_version"}
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).all() == [
                ("0001",)
            ]
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
            # the comparison sees a difference when there is one
            changed = sa.MetaData()
            for table in Base.metadata.tables.values():
                table.to_metadata(changed)
            changed.tables["files"].append_column(sa.Column("extra", sa.Integer()))
            diffs = compare_metadata(context, changed)
            assert [d[0] for d in diffs] == ["add_column"], diffs
        # alembic does not compare a partial index's condition: check it here
        dialect = engine.dialect.name
        (index,) = [
            i
            for i in sa.inspect(engine).get_indexes("agents")
            if i["name"] == "uq_agents_published_name"
        ]
        where = index["dialect_options"].get(f"{dialect}_where")
        assert index["unique"] and index["column_names"] == ["name"]
        assert str(where).strip("() ") == "published", where
        (model_index,) = [i for i in Base.metadata.tables["agents"].indexes if i.unique]
        assert str(model_index.dialect_kwargs[f"{dialect}_where"]) == "published"
        # (agent_id, version) is unique in the database itself, not only in the code
        record = store.create_agent("alice", AgentConfig(name="a"))
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO agent_versions (agent_id, version, config, created) "
                    "VALUES (:a, 1, '{}', :t)"
                ),
                {"a": record.id, "t": record.created},
            )
    # opening again finds the schema current and changes nothing
    with Store(db_url) as store:
        assert store.get_agent("alice", record.id).config.name == "a"


def test_default_location_and_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "deep" / "fabric"
    monkeypatch.setenv("QWEN_FABRIC_DATA", str(data))
    with Store() as store:
        store.create_agent("alice", AgentConfig(name="a"))
        with store._engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    assert (data / "fabric.db").is_file()
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    other = tmp_path / "given"
    with Store(data_dir=other) as store:
        assert store.list_agents("alice") == []  # data_dir beats the environment
    assert (other / "fabric.db").is_file()
    for bad in ("mysql://u@h/db", "not a url"):
        with pytest.raises(StoreError, match="SQLite|sqlite"):
            Store(bad)
    with pytest.raises(StoreError, match="reachable"):  # nothing listens on port 1
        Store("postgresql://u:p@127.0.0.1:1/db")
    assert issubclass(StoreError, ConfigError)
    assert all(issubclass(e, StoreError) for e in (NotFound, Conflict, ImportRefused))


@pytest.mark.network
def test_postgresql_urls_use_psycopg3(postgres_url: str) -> None:  # noqa: F811
    assert postgres_url.startswith("postgresql://")
    with Store(postgres_url) as store:
        assert store._engine.dialect.driver == "psycopg"
        assert store._engine.url.host == "127.0.0.1"


_OPEN_IN_CHILD = """
import sys
from agentfabric.store import Store
print("ready", flush=True)
sys.stdin.readline()
with Store(sys.argv[1]) as store:
    store.create_agent("p", __import__("qwen_agent.config").config.AgentConfig(name="x"))
print("done", flush=True)
"""


def test_processes_migrate_an_empty_database_at_once(db_url: str) -> None:
    """Several app processes starting together on an empty database: one makes the schema,
    the others wait for it (PostgreSQL: an advisory lock) and all of them work."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN_IN_CHILD, db_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(3)
    ]
    try:
        for p in procs:  # all imported; then all open the store at once
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        results = [p.communicate(timeout=60) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err[-2000:]
        assert out.strip() == "done"
    with Store(db_url) as store:
        assert len(store.list_agents("p")) == 3
        with store._engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
        assert rows == [("0001",)]


# -- agents and versions ------------------------------------------------------------------


def test_create_save_versions_and_list(store: Store) -> None:
    first = store.create_agent("alice", _full_config("one"))
    assert first.version == first.config.version == 1
    assert first.owner == "alice" and not first.published and first.files == ()
    assert first.created.tzinfo is not None and first.created.utcoffset().total_seconds() == 0
    assert len(first.id) == 32 and int(first.id, 16) >= 0
    assert first.config.model_dump() == _full_config("one").model_dump()
    second = store.create_agent("alice", AgentConfig(name="two"))
    time.sleep(0.01)
    saved = store.save_config(
        "alice", first.id, _full_config("one-renamed").model_copy(update={"version": 77}), 1
    )
    assert saved.version == saved.config.version == 2 and saved.config.name == "one-renamed"
    assert saved.updated > first.updated and saved.created == first.created
    # newest-updated first
    assert [r.id for r in store.list_agents("alice")] == [first.id, second.id]
    with pytest.raises(Conflict, match="version 2, not 1"):
        store.save_config("alice", first.id, AgentConfig(name="stale"), expected_version=1)
    third = store.save_config("alice", first.id, AgentConfig(name="three"))  # no check
    assert third.version == 3
    history = store.versions("alice", first.id)
    assert [(v, c.name, c.version) for v, _, c in history] == [
        (1, "one", 1),
        (2, "one-renamed", 2),
        (3, "three", 3),
    ]
    assert history[0][1] <= history[1][1] <= history[2][1]
    assert store.get_agent("alice", first.id).config.name == "three"
    assert store.get_agent("alice", second.id).version == 1
    with pytest.raises(StoreError, match="AgentConfig"):
        store.save_config("alice", first.id, {"name": "x"})  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="instructions"):
        store.create_agent("alice", AgentConfig(instructions="x" * (Store.MAX_CONFIG_BYTES + 1)))


def test_restart_keeps_everything(db_url: str, tmp_path: Path) -> None:
    with Store(db_url) as store:
        record = store.create_agent("alice", _full_config())
        store.save_config("alice", record.id, _full_config("helper2"), expected_version=1)
        store.add_file("alice", record.id, "knowledge", "guide.md", b"# Guide\n")
        store.add_file("alice", record.id, "avatar", "me.png", PNG)
        store.set_published("alice", record.id, True)
        store.save_conversation("alice", record.id, "s1", [{"role": "user", "content": "hi"}])
        before = store.get_agent("alice", record.id)
        history = store.versions("alice", record.id)
    with Store(db_url) as store:
        assert store.get_agent("alice", record.id) == before
        assert store.versions("alice", record.id) == history
        assert store.published() == [before]
        assert store.load_conversation("alice", record.id, "s1") == [
            {"role": "user", "content": "hi"}
        ]
        guide = next(f for f in before.files if f.kind == "knowledge")
        assert store.read_file("alice", record.id, guide.id) == b"# Guide\n"


def _race(stores: list[Store], work: Callable[[int, Store], Any]) -> list[Any]:
    """``work(i, store)`` in one thread per store, started together; results or errors."""
    barrier = threading.Barrier(len(stores))
    results: list[Any] = [None] * len(stores)

    def run(i: int) -> None:
        barrier.wait(timeout=30)
        try:
            results[i] = work(i, stores[i])
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive(), "a writer hung"
    return results


def test_two_writers_on_one_version_one_wins(db_url: str) -> None:
    stores = [Store(db_url), Store(db_url)]
    try:
        record = stores[0].create_agent("alice", AgentConfig(name="base"))
        for round_ in range(1, 4):
            results = _race(
                stores,
                lambda i, s, v=round_: s.save_config(
                    "alice", record.id, AgentConfig(name=f"w{i}-r{v}"), expected_version=v
                ),
            )
            won = [r for r in results if isinstance(r, AgentRecord)]
            lost = [r for r in results if isinstance(r, Conflict)]
            assert len(won) == 1 and len(lost) == 1, results
            assert won[0].version == round_ + 1
            latest = stores[1].get_agent("alice", record.id)
            assert latest.version == round_ + 1 and latest.config == won[0].config
        names = [c.name for _, _, c in stores[0].versions("alice", record.id)]
        assert names[0] == "base" and len(names) == 4 and len(set(names)) == 4
    finally:
        for s in stores:
            s.close()


def test_the_database_alone_keeps_versions_unique(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the row lock (PostgreSQL's FOR UPDATE), the unique (agent_id, version) still
    lets exactly one of two racing writers win; the other gets Conflict."""
    owned = Store._owned
    monkeypatch.setattr(Store, "_owned", lambda self, s, o, a, lock=False: owned(self, s, o, a))
    stores = [Store(db_url), Store(db_url)]
    try:
        record = stores[0].create_agent("alice", AgentConfig(name="base"))
        for version in (1, 2, 3):
            results = _race(
                stores,
                lambda i, s, v=version: s.save_config(
                    "alice", record.id, AgentConfig(name=f"w{i}"), expected_version=v
                ),
            )
            assert sorted(type(r).__name__ for r in results) == ["AgentRecord", "Conflict"]
        assert [v for v, _, _ in stores[1].versions("alice", record.id)] == [1, 2, 3, 4]
    finally:
        for s in stores:
            s.close()


def test_many_concurrent_writers_lose_nothing(db_url: str) -> None:
    n, per = 4, 3
    stores = [Store(db_url) for _ in range(n)]
    try:
        shared = stores[0].create_agent("alice", AgentConfig(name="shared"))

        def work(i: int, s: Store) -> list[str]:
            made = []
            for j in range(per):
                made.append(s.create_agent("alice", AgentConfig(name=f"a{i}-{j}")).id)
                s.save_config("alice", shared.id, AgentConfig(name=f"s{i}-{j}"))
            return made

        started = time.monotonic()
        results = _race(stores, work)
        assert time.monotonic() - started < 30
        assert not [r for r in results if isinstance(r, Exception)], results
        history = stores[0].versions("alice", shared.id)
        assert [v for v, _, _ in history] == list(range(1, n * per + 2))
        assert sorted(c.name for _, _, c in history[1:]) == sorted(
            f"s{i}-{j}" for i in range(n) for j in range(per)
        )
        assert len(stores[0].list_agents("alice")) == 1 + n * per
    finally:
        for s in stores:
            s.close()


def test_duplicate_and_delete(store: Store) -> None:
    record = store.create_agent("alice", _full_config())
    store.save_config("alice", record.id, _full_config("helper"))
    guide = store.add_file("alice", record.id, "knowledge", "guide.txt", b"text")
    store.add_file("alice", record.id, "avatar", "a.gif", GIF)
    store.set_published("alice", record.id, True)
    copy = store.duplicate("alice", record.id)
    assert copy.id != record.id and copy.version == 1 and not copy.published
    assert copy.config.name == "helper-copy"
    assert copy.config.model_dump(exclude={"name"}) == _full_config().model_dump(exclude={"name"})
    assert [(f.kind, f.filename, f.sha256) for f in copy.files] == [
        ("knowledge", "guide.txt", guide.sha256),
        ("avatar", "a.gif", store.get_agent("alice", record.id).files[1].sha256),
    ]
    assert {f.id for f in copy.files}.isdisjoint(
        f.id for f in store.get_agent("alice", record.id).files
    )
    assert store.read_file("alice", copy.id, copy.files[0].id) == b"text"
    long = store.create_agent("alice", AgentConfig(name="x" * 64))
    long_copy = store.duplicate("alice", long.id)
    assert long_copy.config.name == "x" * 59 + "-copy"
    AgentConfig.model_validate(long_copy.config.model_dump())  # still a valid name

    store.save_conversation("alice", record.id, "s", [{"role": "user", "content": "x"}])
    before = {t: _count(store, t) for t in ("agent_versions", "files", "conversations")}
    store.delete_agent("alice", record.id)
    with pytest.raises(NotFound):
        store.get_agent("alice", record.id)
    after = {t: _count(store, t) for t in ("agent_versions", "files", "conversations")}
    assert after == {
        "agent_versions": before["agent_versions"] - 2,
        "files": before["files"] - 2,
        "conversations": before["conversations"] - 1,
    }
    assert store.read_file("alice", copy.id, copy.files[0].id) == b"text"  # the copy's own
    with pytest.raises(NotFound):
        store.delete_agent("alice", record.id)


# -- owners -------------------------------------------------------------------------------


def test_owners_are_isolated_in_every_method(store: Store) -> None:
    record = store.create_agent("alice", _full_config())
    file = store.add_file("alice", record.id, "knowledge", "a.md", b"alice's")
    store.save_conversation("alice", record.id, "s", [{"role": "user", "content": "secret"}])
    mine = store.create_agent("bob", AgentConfig(name="bobs"))
    calls: dict[str, Callable[[], Any]] = {
        "get_agent": lambda: store.get_agent("bob", record.id),
        "save_config": lambda: store.save_config("bob", record.id, AgentConfig(name="x")),
        "versions": lambda: store.versions("bob", record.id),
        "duplicate": lambda: store.duplicate("bob", record.id),
        "delete_agent": lambda: store.delete_agent("bob", record.id),
        "set_published": lambda: store.set_published("bob", record.id, True),
        "add_file": lambda: store.add_file("bob", record.id, "knowledge", "b.md", b"x"),
        "read_file": lambda: store.read_file("bob", record.id, file.id),
        "remove_file": lambda: store.remove_file("bob", record.id, file.id),
        "save_conversation": lambda: store.save_conversation("bob", record.id, "s", []),
        "load_conversation": lambda: store.load_conversation("bob", record.id, "s"),
        "export_agent": lambda: store.export_agent("bob", record.id),
        # alice's file through bob's own agent
        "read_file via own agent": lambda: store.read_file("bob", mine.id, file.id),
        "remove_file via own agent": lambda: store.remove_file("bob", mine.id, file.id),
    }
    for what, call in calls.items():
        with pytest.raises(NotFound) as caught:
            call()
        assert "alice" not in str(caught.value), what
    unknown = "0" * 32
    for agent_id in (unknown, "'; DROP TABLE agents; --", "", 5):
        with pytest.raises(NotFound):
            store.get_agent("alice", agent_id)  # type: ignore[arg-type]
    assert [r.id for r in store.list_agents("bob")] == [mine.id]
    assert store.get_agent("alice", record.id).version == 1
    assert store.read_file("alice", record.id, file.id) == b"alice's"
    assert store.load_conversation("alice", record.id, "s")[0]["content"] == "secret"
    for owner in ("", "x" * 256, "a\x00b", None):
        with pytest.raises(StoreError, match="owner"):
            store.list_agents(owner)  # type: ignore[arg-type]

    # published: others may chat with it (their own conversations) but change nothing
    store.set_published("alice", record.id, True)
    store.save_conversation("bob", record.id, "s", [{"role": "user", "content": "bob's"}])
    assert store.load_conversation("bob", record.id, "s") == [{"role": "user", "content": "bob's"}]
    assert store.load_conversation("alice", record.id, "s")[0]["content"] == "secret"
    for what in ("get_agent", "save_config", "delete_agent", "read_file", "export_agent"):
        with pytest.raises(NotFound):
            calls[what]()
    store.set_published("alice", record.id, False)
    with pytest.raises(NotFound):
        store.load_conversation("bob", record.id, "s")


# -- publishing ---------------------------------------------------------------------------


def test_published_names_are_unique_across_owners(store: Store) -> None:
    alice = store.create_agent("alice", AgentConfig(name="helper"))
    bob = store.create_agent("bob", AgentConfig(name="helper"))
    bob2 = store.create_agent("bob", AgentConfig(name="other"))
    assert store.published() == []
    published = store.set_published("alice", alice.id, True)
    assert published.published and published.updated >= alice.updated
    with pytest.raises(Conflict, match="'helper' is already published"):
        store.set_published("bob", bob.id, True)
    assert not store.get_agent("bob", bob.id).published
    store.set_published("bob", bob2.id, True)
    with pytest.raises(Conflict, match="already published"):  # renaming onto a taken name
        store.save_config("bob", bob2.id, AgentConfig(name="helper"))
    assert store.get_agent("bob", bob2.id).config.name == "other"
    same_owner = store.create_agent("alice", AgentConfig(name="helper"))
    with pytest.raises(Conflict):
        store.set_published("alice", same_owner.id, True)
    store.set_published("alice", alice.id, True)  # again: no conflict with itself
    assert [(r.owner, r.config.name) for r in store.published()] == [
        ("alice", "helper"),
        ("bob", "other"),
    ]
    store.set_published("alice", alice.id, False)
    store.set_published("bob", bob.id, True)
    assert [(r.owner, r.id) for r in store.published()] == [("bob", bob.id), ("bob", bob2.id)]
    # the database enforces it too, whatever the code checks
    with pytest.raises(sa.exc.IntegrityError), store._engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE agents SET name = 'helper', published = :t WHERE id = :i"),
            {"t": True, "i": bob2.id},
        )


# -- files --------------------------------------------------------------------------------


def test_filenames_are_only_data() -> None:
    assert sanitize_filename("../../etc/passwd") == "passwd"
    assert sanitize_filename("..\\x.txt") == "x.txt"
    assert sanitize_filename("C:\\Users\\me\\notes.md") == "notes.md"
    assert sanitize_filename("\x00evil.md") == "evil.md"
    assert sanitize_filename("a\u202etxt.exe.md") == "atxt.exe.md"  # no bidi override
    assert sanitize_filename(".hidden.txt") == "hidden.txt"
    assert sanitize_filename("../..") == "file"
    assert sanitize_filename("") == "file"
    assert sanitize_filename("dir/") == "file"
    long = sanitize_filename("a" * 500 + ".md")
    assert len(long) == 200 and long.endswith(".md")
    assert sanitize_filename("ok name (1).pdf") == "ok name (1).pdf"


def test_files_limits_and_avatars(store: Store) -> None:
    record = store.create_agent("alice", AgentConfig(name="a"))
    add = store.add_file
    hostile = {
        "../../etc/passwd.txt": "passwd.txt",
        "..\\x.txt": "x.txt",
        "\x00evil.md": "evil.md",
        "b" * 500 + ".md": "b" * 197 + ".md",
    }
    for given, kept in hostile.items():
        info = add("alice", record.id, "knowledge", given, b"data")
        assert info.filename == kept
    guide = add("alice", record.id, "knowledge", "Guide.HTML", b"<p>hi</p>")
    assert guide.size == 9 and guide.kind == "knowledge" and guide.filename == "Guide.HTML"
    assert guide.sha256 == hashlib.sha256(b"<p>hi</p>").hexdigest()
    assert store.read_file("alice", record.id, guide.id) == b"<p>hi</p>"
    for bad in ("tool.exe", "script.py", "noext", "x.svg"):
        with pytest.raises(StoreError, match="must be one of"):
            add("alice", record.id, "knowledge", bad, b"x")
    with pytest.raises(StoreError, match="limit is 20 MiB"):
        add("alice", record.id, "knowledge", "big.txt", b"x" * (Store.MAX_KNOWLEDGE_BYTES + 1))
    with pytest.raises(StoreError, match="kind"):
        add("alice", record.id, "script", "a.txt", b"x")  # type: ignore[arg-type]

    # avatars: by their bytes, one per agent
    for image, ext in ((PNG, ".png"), (JPEG, ".jpg"), (GIF, ".gif"), (WEBP, ".webp")):
        info = add("alice", record.id, "avatar", f"face{ext}", image)
        avatars = [f for f in store.get_agent("alice", record.id).files if f.kind == "avatar"]
        assert avatars == [info]
    for bad in (b"<svg onload=alert(1)>", b"GIF8", b"RIFF\x00\x00\x00\x00WAVE", b"", b"\x89PNG"):
        with pytest.raises(StoreError, match="not a PNG, JPEG, GIF or WebP"):
            add("alice", record.id, "avatar", "face.png", bad)
    with pytest.raises(StoreError, match="limit is 2 MiB"):
        add("alice", record.id, "avatar", "big.png", PNG + b"\x00" * Store.MAX_AVATAR_BYTES)
    assert [
        f.filename for f in store.get_agent("alice", record.id).files if f.kind == "avatar"
    ] == ["face.webp"]

    # at most MAX_FILES per agent
    have = len(store.get_agent("alice", record.id).files)
    for i in range(Store.MAX_FILES - have):
        add("alice", record.id, "knowledge", f"n{i}.txt", b"n")
    with pytest.raises(StoreError, match=f"at most {Store.MAX_FILES} files"):
        add("alice", record.id, "knowledge", "one-more.txt", b"n")
    add("alice", record.id, "avatar", "new.png", PNG)  # replacing the avatar still works
    store.remove_file("alice", record.id, guide.id)
    with pytest.raises(NotFound):
        store.read_file("alice", record.id, guide.id)
    with pytest.raises(NotFound):
        store.remove_file("alice", record.id, guide.id)
    for bad_id in ("../x", 7, "", "A" * 32):
        with pytest.raises(NotFound):
            store.read_file("alice", record.id, bad_id)  # type: ignore[arg-type]
    add("alice", record.id, "knowledge", "one-more.txt", b"n")
    assert len(store.get_agent("alice", record.id).files) == Store.MAX_FILES


def test_materialize_writes_generated_names_under_root(store: Store, tmp_path: Path) -> None:
    record = store.create_agent(
        "alice", AgentConfig(name="a", knowledge=["/etc"], avatar="/etc/shadow")
    )
    passwd = store.add_file("alice", record.id, "knowledge", "../../etc/passwd.txt", b"one")
    notes = store.add_file("alice", record.id, "knowledge", "notes.MD", b"two")
    face = store.add_file("alice", record.id, "avatar", "face.gif", PNG)  # bytes say PNG
    area = tmp_path / "area"  # (tmp_path holds the SQLite database too)
    root = area / "run"
    area.mkdir()
    outside = area / "outside.txt"
    outside.write_bytes(b"untouched")
    folder = root / record.id
    folder.mkdir(parents=True)
    (folder / f"{notes.id}.md").symlink_to(outside)  # planted: replaced, never followed
    config = store.materialize(store.get_agent("alice", record.id), root)
    expected = {f"{passwd.id}.txt": b"one", f"{notes.id}.md": b"two", f"{face.id}.png": PNG}
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == expected
    assert not (folder / f"{notes.id}.md").is_symlink() and outside.read_bytes() == b"untouched"
    files_written = sorted(p for p in area.rglob("*") if p.is_file())
    assert files_written == sorted([outside, *(folder / n for n in expected)])
    assert config.knowledge == [
        str(folder.resolve() / f"{passwd.id}.txt"),
        str(folder.resolve() / f"{notes.id}.md"),
    ]
    assert config.avatar == str(folder.resolve() / f"{face.id}.png")
    assert config.name == "a" and config.version == 1

    # again: nothing rewritten; a damaged file is restored; a removed one disappears
    stamps = {p.name: p.stat().st_ino for p in folder.iterdir()}
    assert store.materialize(store.get_agent("alice", record.id), root) == config
    assert {p.name: p.stat().st_ino for p in folder.iterdir()} == stamps
    (folder / f"{passwd.id}.txt").write_bytes(b"tampered")
    store.remove_file("alice", record.id, notes.id)
    again = store.materialize(store.get_agent("alice", record.id), root)
    assert (folder / f"{passwd.id}.txt").read_bytes() == b"one"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"{passwd.id}.txt", f"{face.id}.png"]
    )
    assert again.knowledge == [str(folder.resolve() / f"{passwd.id}.txt")]
    crashed = folder / ".x.tmp"  # a write that died long ago is cleaned up; a fresh one kept
    fresh = folder / ".y.tmp"
    crashed.write_bytes(b"partial")
    fresh.write_bytes(b"in progress")
    os.utime(crashed, (time.time() - 3600, time.time() - 3600))
    store.materialize(store.get_agent("alice", record.id), root)
    assert not crashed.exists() and fresh.exists()
    bogus = AgentRecord(**{**record.__dict__, "id": "../../x"})
    with pytest.raises(NotFound):
        store.materialize(bogus, root)


# -- conversations ------------------------------------------------------------------------


def test_conversations_round_trip_and_cap(store: Store) -> None:
    record = store.create_agent("alice", AgentConfig(name="a"))
    assert store.load_conversation("alice", record.id, "s1") == []
    messages = [
        {"role": "user", "content": "héllo <script>x</script> \x00 \u2028"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "1", "args": {"n": 1.5}}]},
    ]
    store.save_conversation("alice", record.id, "s1", messages)
    assert store.load_conversation("alice", record.id, "s1") == messages
    store.save_conversation("alice", record.id, "s1", messages[:1])  # replaces
    assert store.load_conversation("alice", record.id, "s1") == messages[:1]
    assert store.load_conversation("alice", record.id, "s2") == []
    assert _count(store, "conversations") == 1
    big = [{"role": "user", "content": "x" * (Store.MAX_CONVERSATION_BYTES + 1)}]
    with pytest.raises(StoreError, match="MiB"):
        store.save_conversation("alice", record.id, "s1", big)
    assert store.load_conversation("alice", record.id, "s1") == messages[:1]
    for bad in ([{"x": {1, 2}}], [{"x": float("nan")}], ["not a dict"], {"role": "user"}):
        with pytest.raises(StoreError):
            store.save_conversation("alice", record.id, "s1", bad)  # type: ignore[arg-type]
    for session in ("", "x" * 201):
        with pytest.raises(StoreError, match="session"):
            store.save_conversation("alice", record.id, session, [])


# -- export / import ----------------------------------------------------------------------


def test_export_import_round_trip(store: Store) -> None:
    config = AgentConfig.model_validate(
        {
            **_full_config().model_dump(),
            "llm": {"backend": "openai", "model": "m", "api_key": "sk-secret"},
        }
    )
    record = store.create_agent("alice", config)
    store.add_file("alice", record.id, "knowledge", "guide.md", "# Guide é".encode())
    store.add_file("alice", record.id, "knowledge", "data.pdf", b"%PDF-1.4 \x00\xff")
    store.add_file("alice", record.id, "avatar", "me.jpg", JPEG)
    store.set_published("alice", record.id, True)
    exported = store.export_agent("alice", record.id)
    document = json.loads(exported)
    assert document["format"] == "qwen-agent-fabric" and document["version"] == 1
    assert b"sk-secret" not in exported and "llm" not in document["config"]
    imported = store.import_agent("bob", exported)
    assert imported.owner == "bob" and imported.id != record.id
    assert not imported.published and imported.version == 1
    assert imported.config.model_dump() == _full_config().model_dump()
    assert imported.config.llm is None
    original = store.get_agent("alice", record.id).files
    assert [(f.kind, f.filename, f.size, f.sha256) for f in imported.files] == [
        (f.kind, f.filename, f.size, f.sha256) for f in original
    ]
    for mine, theirs in zip(imported.files, original, strict=True):
        assert store.read_file("bob", imported.id, mine.id) == store.read_file(
            "alice", record.id, theirs.id
        )
    # what a second export of the copy says is the same document
    assert json.loads(store.export_agent("bob", imported.id)) == document


def _document(config: dict[str, Any] | None = None, files: list[Any] | None = None) -> bytes:
    return json.dumps(
        {
            "format": "qwen-agent-fabric",
            "version": 1,
            "config": {"name": "imported", **(config or {})},
            "files": files or [],
        }
    ).encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


HOSTILE_IMPORTS: dict[str, tuple[bytes, str]] = {
    "not JSON": (b"{nope", "not JSON"),
    "a list": (b"[1, 2]", "object at the top"),
    "wrong format": (
        json.dumps({"format": "other", "version": 1, "config": {}}).encode(),
        "format",
    ),
    "wrong version": (
        json.dumps({"format": "qwen-agent-fabric", "version": 2, "config": {}}).encode(),
        "version",
    ),
    "no config": (json.dumps({"format": "qwen-agent-fabric", "version": 1}).encode(), "config"),
    "module:attr tool": (_document({"tools": ["os:system"]}), "registered tools"),
    "file.py tool": (_document({"tools": ["x.py:f"]}), "registered tools"),
    "unknown tool": (_document({"tools": ["no_such_tool"]}), "registered tools"),
    "table tool by module": (_document({"tools": [{"name": "evil.mod:Tool"}]}), "registered"),
    "mcp_servers": (
        _document({"mcp_servers": {"x": {"command": "sh", "args": ["-c", "id"]}}}),
        "mcp_servers",
    ),
    "mcpServers": (_document({"mcpServers": {"x": {"url": "http://evil"}}}), "mcp_servers"),
    "llm base_url": (_document({"llm": {"base_url": "http://evil/v1"}}), "model server"),
    "llm api_key": (_document({"llm": {"model": "m", "api_key": "k"}}), "model server"),
    "retrieval files option": (
        _document({"tool_options": {"retrieval": {"files": ["/etc/passwd"]}}}),
        "host paths",
    ),
    "retrieval root in a tool table": (
        _document({"tools": [{"name": "retrieval", "root": "/"}]}),
        "host paths",
    ),
    "retrieval index_dir": (
        _document({"tools": [{"name": "retrieval", "index_dir": "../../x"}]}),
        "'index_dir'",
    ),
    "image_gen model": (
        _document({"tool_options": {"image_gen": {"model": "/models/sd"}}}),
        "'model'",
    ),
    "image_gen output_dir": (
        _document({"tool_options": {"image_gen": {"output_dir": "~/.ssh"}}}),
        "'output_dir'",
    ),
    "a session_id option (another conversation's kernel)": (
        _document({"tools": [{"name": "code_interpreter", "session_id": "victim"}]}),
        "only this app sets",
    ),
    "a quota option": (
        _document({"tool_options": {"image_gen": {"quota": {"max_images": 10**9}}}}),
        "only this app sets",
    ),
    "bad avatar": (
        _document(files=[{"kind": "avatar", "filename": "a.png", "data": _b64(b"<svg/>")}]),
        "not a PNG",
    ),
    "two avatars": (
        _document(
            files=[{"kind": "avatar", "filename": "a.png", "data": _b64(PNG)}] * 2,
        ),
        "more than one avatar",
    ),
    "bad base64": (
        _document(files=[{"kind": "knowledge", "filename": "a.txt", "data": "%%%"}]),
        "not base64",
    ),
    "bad file kind": (
        _document(files=[{"kind": "code", "filename": "a.py", "data": _b64(b"x")}]),
        "kind",
    ),
    "file with extra keys": (
        _document(files=[{"kind": "knowledge", "filename": "a.txt", "data": "", "path": "/etc"}]),
        "exactly",
    ),
    "executable knowledge": (
        _document(files=[{"kind": "knowledge", "filename": "x.sh", "data": _b64(b"rm")}]),
        "must be one of",
    ),
    "too many files": (
        _document(files=[{"kind": "knowledge", "filename": "a.txt", "data": ""}] * 51),
        "at most 50",
    ),
    "name failing the pattern": (_document({"name": "../evil name"}), "name"),
    "unknown config key": (_document({"shell": "rm -rf /"}), "shell"),
    "too long a description": (_document({"description": "x" * 1001}), "description"),
    "unknown format": (_document({"format": "mymod:Format"}), "tool format"),
    "unknown top-level key": (
        json.dumps(
            {"format": "qwen-agent-fabric", "version": 1, "config": {}, "run": "x"}
        ).encode(),
        "unknown keys",
    ),
}


def test_hostile_imports_are_refused(store: Store) -> None:
    for what, (data, says) in HOSTILE_IMPORTS.items():
        with pytest.raises(ImportRefused) as caught:
            store.import_agent("mallory", data)
        assert says in str(caught.value), (what, str(caught.value))
    huge = b'{"format": "qwen-agent-fabric", "pad": "' + b"x" * Store.MAX_IMPORT_BYTES + b'"}'
    with pytest.raises(ImportRefused, match="at most 60 MiB"):
        store.import_agent("mallory", huge)
    with pytest.raises(ImportRefused, match="not JSON"):
        store.import_agent("mallory", b"[" * 100_000)  # nesting deeper than Python recurses
    assert store.list_agents("mallory") == []
    assert _count(store, "agents") == 0 and _count(store, "files") == 0


def test_imports_keep_data_and_drop_host_paths(store: Store) -> None:
    data = _document(
        {
            "instructions": "<script>alert('x')</script>{{ jinja }}",
            "welcome_message": "<img src=x onerror=alert(1)>",
            "starters": ["<b>hi</b>"],
            "llm": {"model": "whatever"},  # no server named: dropped, the app picks the model
            "knowledge": ["/etc", "~/.ssh"],
            "avatar": "/etc/shadow",
            "version": 99,
            "tools": ["retrieval", {"name": "code_interpreter"}],
            "tool_options": {"retrieval": {"top_k": 2, "files": []}},
        },
        files=[
            {"kind": "knowledge", "filename": "../../etc/cron.d/x.txt", "data": _b64(b"a")},
            {"kind": "knowledge", "filename": "..\\..\\win.ini.md", "data": _b64(b"b")},
            {"kind": "avatar", "filename": "/root/.face.png", "data": _b64(PNG)},
        ],
    )
    record = store.import_agent("mallory", data)
    config = record.config
    assert config.instructions == "<script>alert('x')</script>{{ jinja }}"
    assert config.welcome_message == "<img src=x onerror=alert(1)>"
    assert config.conversation_starters == ["<b>hi</b>"]
    assert config.llm is None and config.knowledge == [] and config.avatar is None
    assert config.version == record.version == 1
    assert [(f.kind, f.filename) for f in record.files] == [
        ("knowledge", "x.txt"),
        ("knowledge", "win.ini.md"),
        ("avatar", "face.png"),
    ]
    with pytest.raises(ImportRefused, match="bytes"):
        store.import_agent("mallory", "a string")  # type: ignore[arg-type]
