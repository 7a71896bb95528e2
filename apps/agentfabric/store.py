"""AgentFabric's persistent store: agents, their config versions, files and conversations.

SQLAlchemy 2 (typed ORM) over SQLite (the default: ``fabric.db`` in the data folder) or
PostgreSQL (``postgresql://...``, through psycopg 3, so several app processes share one
store); the schema is made and upgraded by Alembic (``agentfabric/migrations``) every time
a :class:`Store` opens. Every write is one transaction. Owners are opaque strings: an agent
of another owner is :class:`NotFound`, never revealed. File bytes live in the database;
:meth:`Store.materialize` writes them out under generated names for the tools to read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import secrets
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import DateTime, delete, func, insert, literal, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from qwen_agent.config import AgentConfig
from qwen_agent.errors import ConfigError

from .checks import (
    check_key,
    check_owner,
    file_ext,
    image_ext,
    parse_import,
    problems,
    sanitize_filename,
    untrusted_config,
)
from .models import (
    AgentRow,
    AgentVersionRow,
    Base,  # noqa: F401 - re-exported: migrations/env.py and tests import it here
    ConversationRow,
    FileRow,
    make_engine,
)

__all__ = [
    "AgentRecord",
    "Conflict",
    "FileInfo",
    "ImportRefused",
    "NotFound",
    "Store",
    "StoreError",
    "sanitize_filename",
]

MiB = 1024 * 1024
EXPORT_FORMAT = "qwen-agent-fabric"
EXPORT_VERSION = 1
#: the key of the PostgreSQL advisory lock held while the schema is upgraded
_MIGRATION_LOCK = 0x5157_4146  # "QWAF"
_ID = re.compile(r"[0-9a-f]{32}")
_GENERATED = re.compile(r"[0-9a-f]{32}(\.[a-z0-9]{1,10})?")


# -- errors -------------------------------------------------------------------------------


class StoreError(ConfigError):
    """The store cannot do what was asked; the message says what to do instead."""


class NotFound(StoreError):
    """No such agent or file (or it belongs to another owner)."""


class Conflict(StoreError):
    """The agent changed since it was read (a stale version), or a published name is taken."""


class ImportRefused(StoreError):
    """An import file is malformed, too large, or carries what an import may not."""


# -- records ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileInfo:
    """A stored file: its id, kind, sanitized display name, size and SHA-256."""

    id: str
    kind: Literal["knowledge", "avatar"]
    filename: str
    size: int
    sha256: str
    created: datetime


@dataclass(frozen=True)
class AgentRecord:
    """An agent as stored: its latest config (``config.version == version``) and files."""

    id: str
    owner: str
    config: AgentConfig
    version: int
    published: bool
    created: datetime
    updated: datetime
    files: tuple[FileInfo, ...]


# -- the store ----------------------------------------------------------------------------


class Store:
    """Agents by owner in a database. ``url``: ``sqlite:///path`` or ``postgresql://...``;
    None: SQLite at ``data_dir/fabric.db`` (``data_dir`` defaults to ``$QWEN_FABRIC_DATA``
    or ``~/.local/share/qwen-agent/fabric``). Opening upgrades the schema to the newest."""

    MAX_KNOWLEDGE_BYTES = 20 * MiB
    MAX_AVATAR_BYTES = 2 * MiB
    MAX_FILES = 50
    MAX_IMPORT_BYTES = 60 * MiB
    MAX_CONVERSATION_BYTES = 5 * MiB
    #: a config's JSON (instructions included)
    MAX_CONFIG_BYTES = 1 * MiB
    KNOWLEDGE_EXTENSIONS = frozenset(
        {".txt", ".md", ".html", ".htm", ".pdf", ".docx", ".csv", ".json"}
    )

    def __init__(self, url: str | None = None, data_dir: str | Path | None = None) -> None:
        if url is None:
            folder = Path(
                data_dir or os.environ.get("QWEN_FABRIC_DATA") or "~/.local/share/qwen-agent/fabric"
            ).expanduser()
            try:
                folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the data folder {folder}: {exc.strerror}"
                ) from None
            url = f"sqlite:///{folder / 'fabric.db'}"
        self._engine = make_engine(url)
        # writers on SQLite take the write lock up front (BEGIN IMMEDIATE), so two
        # transactions never both read and then both fail to upgrade to writing
        self._writer = self._engine.execution_options(qwen_write=True)
        try:
            self._upgrade()
        except BaseException:
            self._engine.dispose()
            raise

    def close(self) -> None:
        """Close the database connections."""
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- agents ---------------------------------------------------------------------------

    def create_agent(self, owner: str, config: AgentConfig) -> AgentRecord:
        """A new agent of ``owner`` with ``config`` as its version 1."""
        check_owner(owner)
        stored = self._storable(config, 1)
        with self._tx(write=True) as s:
            row = self._insert_agent(s, owner, stored)
            return self._record(s, row)

    def list_agents(self, owner: str) -> list[AgentRecord]:
        """``owner``'s agents, the most recently changed first."""
        check_owner(owner)
        with self._tx() as s:
            rows = s.scalars(
                select(AgentRow)
                .where(AgentRow.owner == owner)
                .order_by(AgentRow.updated.desc(), AgentRow.created.desc(), AgentRow.id)
            ).all()
            return self._records(s, list(rows))

    def get_agent(self, owner: str, agent_id: str) -> AgentRecord:
        with self._tx() as s:
            return self._record(s, self._owned(s, owner, agent_id))

    def save_config(
        self,
        owner: str,
        agent_id: str,
        config: AgentConfig,
        expected_version: int | None = None,
    ) -> AgentRecord:
        """Store ``config`` as the agent's next version. ``expected_version``: the version
        the caller edited; another writer's newer version makes this a :class:`Conflict`."""
        check_owner(owner)
        for _attempt in range(5):
            try:
                with self._tx(write=True) as s:
                    # the row lock (FOR UPDATE; BEGIN IMMEDIATE on SQLite) makes a second
                    # writer wait and then see the first one's version
                    row = self._owned(s, owner, agent_id, lock=True)
                    if expected_version is not None and expected_version != row.current_version:
                        raise Conflict(
                            f"agent {agent_id} is at version {row.current_version}, not "
                            f"{expected_version}: someone saved it meanwhile; reload and "
                            "apply your change again"
                        )
                    new, now = row.current_version + 1, _now()
                    stored = self._storable(config, new)
                    if row.published and stored.name != row.name:
                        self._check_name_free(s, stored.name, row.id)
                    s.add(
                        AgentVersionRow(
                            agent_id=row.id, version=new, config=_dump(stored), created=now
                        )
                    )
                    row.current_version, row.name, row.updated = new, stored.name, now
                    s.flush()  # (agent_id, version) is unique: a racing writer fails here
                    return self._record(s, row)
            except IntegrityError:
                if expected_version is not None:
                    raise Conflict(
                        f"agent {agent_id} was saved by someone else at the same time; "
                        "reload and apply your change again"
                    ) from None
        raise Conflict(f"agent {agent_id} is being saved by many writers at once; try again")

    def versions(
        self, owner: str, agent_id: str, latest: int | None = None
    ) -> list[tuple[int, datetime, AgentConfig]]:
        """The stored versions of the agent's config, oldest first: every one, or the
        ``latest`` few."""
        with self._tx() as s:
            row = self._owned(s, owner, agent_id)
            query = (
                select(AgentVersionRow.version, AgentVersionRow.created, AgentVersionRow.config)
                .where(AgentVersionRow.agent_id == row.id)
                .order_by(AgentVersionRow.version.desc())
            )
            if latest is not None:
                query = query.limit(latest)
            found = s.execute(query).all()
            return [(v, _utc(c), _load(cfg, v)) for v, c, cfg in reversed(found)]

    def duplicate(self, owner: str, agent_id: str) -> AgentRecord:
        """A new, unpublished agent with a copy of the latest config (named ``...-copy``)
        and of the files."""
        with self._tx(write=True) as s:
            src = self._owned(s, owner, agent_id)
            config = self._latest(s, src)
            name = config.name[: 64 - len("-copy")] + "-copy"
            row = self._insert_agent(s, owner, config.model_copy(update={"name": name}))
            cols = [FileRow.kind, FileRow.filename, FileRow.ext, FileRow.size, FileRow.sha256]
            file_ids = s.scalars(
                select(FileRow.id).where(FileRow.agent_id == src.id).order_by(FileRow.created)
            ).all()
            base = _now()
            for i, file_id in enumerate(file_ids):  # the bytes are copied inside the database
                s.execute(
                    insert(FileRow).from_select(
                        ["id", "agent_id", "kind", "filename", "ext", "size", "sha256"]
                        + ["data", "created"],
                        select(
                            literal(uuid.uuid4().hex),
                            literal(row.id),
                            *cols,
                            FileRow.data,
                            literal(base + timedelta(microseconds=i), DateTime(timezone=True)),
                        ).where(FileRow.id == file_id),
                    )
                )
            return self._record(s, row)

    def delete_agent(self, owner: str, agent_id: str) -> None:
        """Delete the agent with its versions, files and conversations."""
        with self._tx(write=True) as s:
            row = self._owned(s, owner, agent_id, lock=True)
            s.execute(delete(AgentRow).where(AgentRow.id == row.id))

    def set_published(self, owner: str, agent_id: str, published: bool) -> AgentRecord:
        """Publish (or withdraw) the agent; a name another published agent has is a
        :class:`Conflict`."""
        try:
            with self._tx(write=True) as s:
                row = self._owned(s, owner, agent_id, lock=True)
                if published and not row.published:
                    self._check_name_free(s, row.name, row.id)
                row.published = bool(published)
                row.updated = _now()
                s.flush()
                return self._record(s, row)
        except IntegrityError:
            raise Conflict(_name_taken(None)) from None

    def published(self) -> list[AgentRecord]:
        """Every owner's published agents, by name."""
        with self._tx() as s:
            rows = s.scalars(
                select(AgentRow).where(AgentRow.published).order_by(AgentRow.name)
            ).all()
            return self._records(s, list(rows))

    # -- files ----------------------------------------------------------------------------

    def add_file(
        self,
        owner: str,
        agent_id: str,
        kind: Literal["knowledge", "avatar"],
        filename: str,
        data: bytes,
    ) -> FileInfo:
        """Store a knowledge file or the agent's avatar (a new avatar replaces the old).
        ``filename`` is only a display name: it is sanitized and never used as a path."""
        name, ext = self._check_file(kind, filename, data)
        with self._tx(write=True) as s:
            row = self._owned(s, owner, agent_id, lock=True)
            info = self._insert_file(s, row.id, kind, name, ext, data)
            row.updated = _now()
            return info

    def read_file(self, owner: str, agent_id: str, file_id: str) -> bytes:
        with self._tx() as s:
            row = self._owned(s, owner, agent_id)
            data = None
            if isinstance(file_id, str) and _ID.fullmatch(file_id):
                data = s.scalar(
                    select(FileRow.data).where(FileRow.agent_id == row.id, FileRow.id == file_id)
                )
            if data is None:
                raise NotFound(f"agent {agent_id} has no file {file_id!r}")
            return bytes(data)

    def remove_file(self, owner: str, agent_id: str, file_id: str) -> None:
        with self._tx(write=True) as s:
            row = self._owned(s, owner, agent_id, lock=True)
            gone = 0
            if isinstance(file_id, str) and _ID.fullmatch(file_id):
                gone = s.execute(
                    delete(FileRow).where(FileRow.agent_id == row.id, FileRow.id == file_id)
                ).rowcount
            if gone != 1:
                raise NotFound(f"agent {agent_id} has no file {file_id!r}")
            row.updated = _now()

    def materialize(self, record: AgentRecord, root: Path) -> AgentConfig:
        """Write the agent's files to ``root/<agent id>/`` under generated names (file id
        and extension), atomically, skipping those already there intact and removing ones
        the agent no longer has; the config with ``knowledge`` and ``avatar`` pointing
        there (whatever paths the stored config named are not used)."""
        if not _ID.fullmatch(record.id):
            raise NotFound(f"no agent {record.id!r}")
        folder = Path(root).expanduser().resolve() / record.id
        if folder.is_symlink():
            raise StoreError(f"{folder} is a symbolic link; materialize writes real folders only")
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self._tx() as s:
            files = s.execute(
                select(FileRow.id, FileRow.kind, FileRow.ext, FileRow.sha256)
                .where(FileRow.agent_id == record.id)
                .order_by(FileRow.created, FileRow.id)
            ).all()
            knowledge: list[str] = []
            avatar: str | None = None
            wanted: set[str] = set()
            for file_id, kind, ext, sha in files:
                path = folder / f"{file_id}{ext}"
                wanted.add(path.name)
                if not (path.is_file() and not path.is_symlink() and _sha256_of(path) == sha):
                    data = s.scalar(select(FileRow.data).where(FileRow.id == file_id))
                    if data is None:  # removed meanwhile
                        continue
                    _write_atomic(path, bytes(data))
                if kind == "avatar":
                    avatar = str(path)
                else:
                    knowledge.append(str(path))
        for entry in folder.iterdir():  # files removed from the agent; crashed writes
            if entry.is_dir() and not entry.is_symlink():
                continue
            gone = _GENERATED.fullmatch(entry.name) and entry.name not in wanted
            if gone or (entry.name.endswith(".tmp") and _older_than(entry, 600)):
                entry.unlink(missing_ok=True)
        return record.config.model_copy(update={"knowledge": knowledge, "avatar": avatar})

    # -- conversations --------------------------------------------------------------------

    def save_conversation(
        self, owner: str, agent_id: str, session: str, messages: list[dict[str, Any]]
    ) -> None:
        """Keep ``owner``'s conversation ``session`` with the agent (replacing what was
        kept). The agent is ``owner``'s own or a published one."""
        check_key(session, "session")
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise StoreError("messages must be a list of objects (dicts)")
        try:
            encoded = json.dumps(messages, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise StoreError(f"messages must be plain JSON data: {exc}") from None
        if len(encoded.encode()) > self.MAX_CONVERSATION_BYTES:
            raise StoreError(
                f"the conversation is over {self.MAX_CONVERSATION_BYTES // MiB} MiB as JSON; "
                "start a new session or drop old messages"
            )
        with self._tx(write=True) as s:
            row = self._visible(s, owner, agent_id)
            values = {
                "agent_id": row.id,
                "owner": owner,
                "session": session,
                "messages": json.loads(encoded),
                "updated": _now(),
            }
            if s.bind.dialect.name == "postgresql":
                from sqlalchemy.dialects.postgresql import insert as upsert
            else:
                from sqlalchemy.dialects.sqlite import insert as upsert
            stmt = upsert(ConversationRow).values(**values)
            s.execute(
                stmt.on_conflict_do_update(
                    index_elements=["agent_id", "owner", "session"],
                    set_={"messages": stmt.excluded.messages, "updated": stmt.excluded.updated},
                )
            )

    def load_conversation(self, owner: str, agent_id: str, session: str) -> list[dict[str, Any]]:
        """The kept conversation, or [] when there is none."""
        check_key(session, "session")
        with self._tx() as s:
            row = self._visible(s, owner, agent_id)
            messages = s.scalar(
                select(ConversationRow.messages).where(
                    ConversationRow.agent_id == row.id,
                    ConversationRow.owner == owner,
                    ConversationRow.session == session,
                )
            )
            return list(messages or [])

    # -- export / import ------------------------------------------------------------------

    def export_agent(self, owner: str, agent_id: str) -> bytes:
        """One JSON document with the latest config and the files (base64). The config's
        ``llm`` is left out (it may hold an API key; the importing app picks the model),
        as are ``knowledge``/``avatar`` paths (the files travel in ``files``)."""
        with self._tx() as s:
            row = self._owned(s, owner, agent_id)
            config = self._latest(s, row).model_dump(
                mode="json", exclude={"llm", "knowledge", "avatar", "version"}
            )
            files = [
                {"kind": kind, "filename": name, "data": base64.b64encode(data).decode()}
                for kind, name, data in s.execute(
                    select(FileRow.kind, FileRow.filename, FileRow.data)
                    .where(FileRow.agent_id == row.id)
                    .order_by(FileRow.created, FileRow.id)
                )
            ]
        document = {
            "format": EXPORT_FORMAT,
            "version": EXPORT_VERSION,
            "config": config,
            "files": files,
        }
        return json.dumps(document, ensure_ascii=False, indent=1).encode()

    def import_agent(self, owner: str, data: bytes) -> AgentRecord:
        """A new, unpublished agent of ``owner`` from an :meth:`export_agent` document.
        The document is untrusted: it may only use registered tools, start no MCP
        servers, name no model server and no host paths (:class:`ImportRefused`)."""
        check_owner(owner)
        document = self._parse_import(data)
        config = untrusted_config(document["config"])
        try:
            stored = self._storable(config, 1)
        except StoreError as exc:
            raise ImportRefused(f"the import's config: {exc}") from None
        files = self._import_files(document.get("files", []))
        with self._tx(write=True) as s:
            row = self._insert_agent(s, owner, stored)
            base = _now()
            for i, (kind, name, ext, blob) in enumerate(files):  # in order, even at one tick
                when = base + timedelta(microseconds=i)
                self._insert_file(s, row.id, kind, name, ext, blob, when)
            return self._record(s, row)

    def _parse_import(self, data: bytes) -> dict[str, Any]:
        return parse_import(data, self.MAX_IMPORT_BYTES)

    def _import_files(self, entries: Any) -> list[tuple[str, str, str, bytes]]:
        if not isinstance(entries, list):
            raise ImportRefused("the import file's 'files' must be a list")
        if len(entries) > self.MAX_FILES:
            raise ImportRefused(f"the import has {len(entries)} files; at most {self.MAX_FILES}")
        files = []
        for i, entry in enumerate(entries):
            keys = {"kind", "filename", "data"}
            if not isinstance(entry, dict) or set(entry) != keys:
                raise ImportRefused(f"files[{i}] must be an object with exactly {sorted(keys)}")
            kind, filename, encoded = entry["kind"], entry["filename"], entry["data"]
            if not isinstance(filename, str) or not isinstance(encoded, str):
                raise ImportRefused(f"files[{i}]: 'filename' and 'data' must be strings")
            try:
                blob = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise ImportRefused(
                    f"files[{i}] ({filename!r:.80}): 'data' is not base64"
                ) from None
            try:
                name, ext = self._check_file(kind, filename, blob)
            except StoreError as exc:
                raise ImportRefused(f"files[{i}]: {exc}") from None
            files.append((kind, name, ext, blob))
        if sum(kind == "avatar" for kind, *_ in files) > 1:
            raise ImportRefused("the import has more than one avatar")
        return files

    # -- internals ------------------------------------------------------------------------

    @contextmanager
    def _tx(self, write: bool = False) -> Iterator[Session]:
        """One transaction; database trouble becomes a StoreError that says what to do."""
        try:
            with Session(self._writer if write else self._engine) as s, s.begin():
                yield s
        except OperationalError as exc:
            raise StoreError(
                f"the database failed: {str(exc.orig or exc).strip():.300}; check that it is "
                "reachable and not locked by a stuck process, then try again"
            ) from None

    def _upgrade(self) -> None:
        from alembic import command
        from alembic.config import Config
        from alembic.util import CommandError

        config = Config()
        config.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
        try:
            with self._tx(write=True) as s:
                conn = s.connection()
                if conn.dialect.name == "postgresql":  # one process upgrades; others wait
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
        except CommandError as exc:
            raise StoreError(
                f"the database's schema is not one this version knows ({exc}); it was "
                "made by a newer qwen-agent-kit: upgrade qwen-agent-kit"
            ) from None

    def _owned(self, s: Session, owner: str, agent_id: str, lock: bool = False) -> AgentRow:
        check_owner(owner)
        query = select(AgentRow).where(AgentRow.id == agent_id, AgentRow.owner == owner)
        row = None
        if isinstance(agent_id, str) and _ID.fullmatch(agent_id):
            row = s.scalar(query.with_for_update() if lock else query)
        if row is None:
            raise NotFound(f"no agent {agent_id!r:.80}; list your agents to see their ids")
        return row

    def _visible(self, s: Session, owner: str, agent_id: str) -> AgentRow:
        """``owner``'s agent, or any published one (others may chat with it)."""
        check_owner(owner)
        row = None
        if isinstance(agent_id, str) and _ID.fullmatch(agent_id):
            row = s.scalar(select(AgentRow).where(AgentRow.id == agent_id))
        if row is None or not (row.owner == owner or row.published):
            raise NotFound(f"no agent {agent_id!r:.80}; list your agents to see their ids")
        return row

    def _check_name_free(self, s: Session, name: str, agent_id: str) -> None:
        taken = s.scalar(
            select(AgentRow.id).where(
                AgentRow.name == name, AgentRow.published, AgentRow.id != agent_id
            )
        )
        if taken is not None:
            raise Conflict(_name_taken(name))

    def _storable(self, config: AgentConfig, version: int) -> AgentConfig:
        if not isinstance(config, AgentConfig):
            raise StoreError(f"config must be an AgentConfig, not {type(config).__name__}")
        stored = config.model_copy(update={"version": version})
        size = len(json.dumps(_dump(stored)).encode())
        if size > self.MAX_CONFIG_BYTES:
            raise StoreError(
                f"the config is {size / MiB:.1f} MiB as JSON; at most "
                f"{self.MAX_CONFIG_BYTES // MiB} MiB (shorten the instructions)"
            )
        return stored

    def _insert_agent(self, s: Session, owner: str, config: AgentConfig) -> AgentRow:
        now = _now()
        row = AgentRow(
            id=uuid.uuid4().hex,
            owner=owner,
            name=config.name,
            published=False,
            current_version=1,
            created=now,
            updated=now,
        )
        s.add(row)
        s.flush()
        config = config.model_copy(update={"version": 1})
        s.add(AgentVersionRow(agent_id=row.id, version=1, config=_dump(config), created=now))
        s.flush()
        return row

    def _check_file(self, kind: Any, filename: Any, data: Any) -> tuple[str, str]:
        """The sanitized name and the extension to store ``data`` under; StoreError if the
        file breaks a limit."""
        if kind not in ("knowledge", "avatar"):
            raise StoreError(f"a file's kind is 'knowledge' or 'avatar', not {kind!r:.40}")
        if not isinstance(filename, str):
            raise StoreError("a file's name must be a string")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise StoreError("a file's data must be bytes")
        name, size = sanitize_filename(filename), len(data)
        if kind == "avatar":
            ext = image_ext(bytes(data[:16]))
            if ext is None:
                raise StoreError(
                    f"avatar {name!r} is not a PNG, JPEG, GIF or WebP image (by its content)"
                )
            limit = self.MAX_AVATAR_BYTES
        else:
            ext = file_ext(name)
            if ext not in self.KNOWLEDGE_EXTENSIONS:
                allowed = " ".join(sorted(self.KNOWLEDGE_EXTENSIONS))
                raise StoreError(f"knowledge file {name!r} must be one of: {allowed}")
            limit = self.MAX_KNOWLEDGE_BYTES
        if size > limit:
            raise StoreError(
                f"{kind} file {name!r} is {size / MiB:.1f} MiB; the limit is {limit / MiB:g} MiB"
            )
        return name, ext

    def _insert_file(
        self,
        s: Session,
        agent_id: str,
        kind: str,
        name: str,
        ext: str,
        data: bytes,
        created: datetime | None = None,
    ) -> FileInfo:
        if kind == "avatar":  # one avatar per agent: the new one replaces the old
            s.execute(delete(FileRow).where(FileRow.agent_id == agent_id, FileRow.kind == kind))
        count = s.scalar(select(func.count()).where(FileRow.agent_id == agent_id)) or 0
        if count >= self.MAX_FILES:
            raise StoreError(
                f"an agent holds at most {self.MAX_FILES} files; remove one before adding more"
            )
        row = FileRow(
            id=uuid.uuid4().hex,
            agent_id=agent_id,
            kind=kind,
            filename=name,
            ext=ext,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            data=bytes(data),
            created=created or _now(),
        )
        s.add(row)
        s.flush()
        return _file_info(row)

    def _latest(self, s: Session, row: AgentRow) -> AgentConfig:
        config = s.scalar(
            select(AgentVersionRow.config).where(
                AgentVersionRow.agent_id == row.id, AgentVersionRow.version == row.current_version
            )
        )
        return _load(config, row.current_version)

    def _record(self, s: Session, row: AgentRow) -> AgentRecord:
        return self._records(s, [row])[0]

    def _records(self, s: Session, rows: list[AgentRow]) -> list[AgentRecord]:
        if not rows:
            return []
        ids = [r.id for r in rows]
        configs = dict(
            s.execute(
                select(AgentVersionRow.agent_id, AgentVersionRow.config)
                .join(AgentRow, AgentRow.id == AgentVersionRow.agent_id)
                .where(
                    AgentVersionRow.agent_id.in_(ids),
                    AgentVersionRow.version == AgentRow.current_version,
                )
            ).all()
        )
        files: dict[str, list[FileInfo]] = {i: [] for i in ids}
        for f in s.scalars(
            select(FileRow).where(FileRow.agent_id.in_(ids)).order_by(FileRow.created, FileRow.id)
        ):
            files[f.agent_id].append(_file_info(f))
        return [
            AgentRecord(
                id=r.id,
                owner=r.owner,
                config=_load(configs[r.id], r.current_version),
                version=r.current_version,
                published=r.published,
                created=_utc(r.created),
                updated=_utc(r.updated),
                files=tuple(files[r.id]),
            )
            for r in rows
        ]


# -- helpers ------------------------------------------------------------------------------


def _name_taken(name: str | None) -> str:
    what = f"the name {name!r}" if name else "this agent's name"
    return f"{what} is already published by another agent; rename this agent to publish it"


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes (stored as UTC); PostgreSQL aware ones."""
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _dump(config: AgentConfig) -> dict[str, Any]:
    return config.model_dump(mode="json", exclude_defaults=False)


def _load(data: Any, version: int) -> AgentConfig:
    try:
        config = AgentConfig.model_validate(data)
    except ValidationError as exc:
        raise StoreError(
            f"a stored config no longer validates ({problems(exc)}); it was written by "
            "another version of qwen-agent-kit"
        ) from None
    return config.model_copy(update={"version": version})


def _file_info(row: FileRow) -> FileInfo:
    return FileInfo(
        id=row.id,
        kind=row.kind,  # type: ignore[arg-type]
        filename=row.filename,
        size=row.size,
        sha256=row.sha256,
        created=_utc(row.created),
    )


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _older_than(path: Path, seconds: float) -> bool:
    """Whether ``path`` was last written over ``seconds`` ago (another process's write in
    progress is left alone)."""
    try:
        return time.time() - path.lstat().st_mtime > seconds
    except OSError:
        return False


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
