"""The store's Alembic migrations; :class:`agentfabric.store.Store` runs them on open."""
