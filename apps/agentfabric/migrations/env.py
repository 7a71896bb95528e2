"""Alembic's environment for the AgentFabric store.

:class:`agentfabric.store.Store` runs ``upgrade head`` itself, passing its open connection
(and transaction) in ``config.attributes["connection"]``. For a new revision, run from the
repository root, e.g.::

    python -c "from alembic.config import Config; from alembic import command; \\
        c = Config(); c.set_main_option('script_location', 'apps/agentfabric/migrations'); \\
        c.set_main_option('sqlalchemy.url', 'sqlite:///fabric.db'); \\
        command.revision(c, 'what changed', autogenerate=True)"

and write the revision by hand from what it proposes (keep it in sync with the models:
tests/test_fabric_store.py compares the two).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from agentfabric.store import Base

config = context.config
connection = config.attributes.get("connection")


def _run(conn: object) -> None:
    context.configure(
        connection=conn,
        target_metadata=Base.metadata,
        compare_type=True,
        render_as_batch=conn.dialect.name == "sqlite",  # type: ignore[attr-defined]
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=Base.metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
elif connection is not None:
    _run(connection)
else:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url, or pass a connection in config.attributes")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()
