"""Schema revisions of the AgentFabric store, oldest first."""
