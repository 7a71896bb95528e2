"""The first schema: agents, their config versions, files and conversations.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("created", _WHEN, nullable=False),
        sa.Column("updated", _WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_agents"),
    )
    op.create_index("ix_agents_owner", "agents", ["owner"])
    op.create_index("ix_agents_name", "agents", ["name"])
    op.create_index(
        "uq_agents_published_name",
        "agents",
        ["name"],
        unique=True,
        sqlite_where=sa.text("published"),
        postgresql_where=sa.text("published"),
    )
    op.create_table(
        "agent_versions",
        sa.Column("agent_id", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("created", _WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            ondelete="CASCADE",
            name="fk_agent_versions_agent_id_agents",
        ),
        sa.PrimaryKeyConstraint("agent_id", "version", name="pk_agent_versions"),
    )
    op.create_table(
        "files",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("agent_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("filename", sa.String(200), nullable=False),
        sa.Column("ext", sa.String(16), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created", _WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], ondelete="CASCADE", name="fk_files_agent_id_agents"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_files"),
    )
    op.create_index("ix_files_agent_id", "files", ["agent_id"])
    op.create_table(
        "conversations",
        sa.Column("agent_id", sa.String(32), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("session", sa.String(200), nullable=False),
        sa.Column("messages", sa.JSON(), nullable=False),
        sa.Column("updated", _WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            ondelete="CASCADE",
            name="fk_conversations_agent_id_agents",
        ),
        sa.PrimaryKeyConstraint("agent_id", "owner", "session", name="pk_conversations"),
    )


def downgrade() -> None:
    op.drop_table("conversations")
    op.drop_index("ix_files_agent_id", table_name="files")
    op.drop_table("files")
    op.drop_table("agent_versions")
    op.drop_index("uq_agents_published_name", table_name="agents")
    op.drop_index("ix_agents_name", table_name="agents")
    op.drop_index("ix_agents_owner", table_name="agents")
    op.drop_table("agents")
