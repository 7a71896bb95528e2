"""AgentFabric's database schema (the SQLAlchemy ORM) and the engines the store runs on.

``Base.metadata`` is what ``migrations/versions`` make (tests/test_fabric_store.py compares
the two); :func:`make_engine` opens SQLite or PostgreSQL with the settings the store needs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    String,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "AgentRow",
    "AgentVersionRow",
    "Base",
    "ConversationRow",
    "FileRow",
    "make_engine",
]

# -- schema (migrations/versions/0001_initial.py makes exactly this) ----------------------


class Base(DeclarativeBase):
    """The ORM base; ``Base.metadata`` is what the migrations are compared with."""

    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map = {datetime: DateTime(timezone=True)}


class AgentRow(Base):
    __tablename__ = "agents"
    __table_args__ = (
        # a published name is unique across all owners (``serve --store`` serves by name)
        Index(
            "uq_agents_published_name",
            "name",
            unique=True,
            sqlite_where=text("published"),
            postgresql_where=text("published"),
        ),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(255), index=True)
    #: the latest config's name
    name: Mapped[str] = mapped_column(String(64), index=True)
    published: Mapped[bool]
    current_version: Mapped[int]
    created: Mapped[datetime]
    updated: Mapped[datetime]


class AgentVersionRow(Base):
    __tablename__ = "agent_versions"
    agent_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(primary_key=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    created: Mapped[datetime]


class FileRow(Base):
    __tablename__ = "files"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    agent_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("agents.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    filename: Mapped[str] = mapped_column(String(200))
    ext: Mapped[str] = mapped_column(String(16))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    created: Mapped[datetime]


class ConversationRow(Base):
    __tablename__ = "conversations"
    agent_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    owner: Mapped[str] = mapped_column(String(255), primary_key=True)
    session: Mapped[str] = mapped_column(String(200), primary_key=True)
    messages: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    updated: Mapped[datetime]


# -- engines ------------------------------------------------------------------------------


def make_engine(url: str) -> Engine:
    """An engine for ``url`` (SQLite or PostgreSQL through psycopg 3); StoreError for any
    other URL or a missing driver. SQLite connections run in WAL mode with foreign keys
    on, and a ``qwen_write`` execution option makes a transaction ``BEGIN IMMEDIATE``."""
    from .store import StoreError  # store imports this module

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(
            "the store URL must look like sqlite:///path/fabric.db or "
            "postgresql://user:password@host/db"
        ) from None
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif parsed.drivername not in ("sqlite", "sqlite+pysqlite"):
        raise StoreError(
            f"the store supports SQLite and PostgreSQL, not {parsed.drivername!r}: "
            "give sqlite:///path or postgresql://..."
        )
    try:
        if parsed.drivername.startswith("sqlite"):
            engine = create_engine(parsed, connect_args={"timeout": 30})
            event.listen(engine, "connect", _sqlite_connect)
            event.listen(engine, "begin", _sqlite_begin)
        else:
            engine = create_engine(parsed, pool_pre_ping=True)
    except (ImportError, NoSuchModuleError) as exc:
        raise StoreError(
            f"the database driver is missing ({exc}); install qwen-agent-kit[fabric]"
        ) from None
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's own transaction handling is off; _sqlite_begin opens each transaction
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in (
        "journal_mode=WAL",
        "foreign_keys=ON",
        "busy_timeout=30000",
        "synchronous=NORMAL",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    write = conn.get_execution_options().get("qwen_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
