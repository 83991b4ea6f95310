"""items, users and events

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

row_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "items",
        sa.Column("item_id", sa.String(128), primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("category", sa.Text),
        sa.Column("brand", sa.String(256)),
        sa.Column("price", sa.Float),
        sa.Column("currency", sa.String(3)),
        sa.Column("image", sa.Text),
        sa.Column("attributes", sa.JSON(none_as_null=True)),
        sa.Column("in_stock", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.BigInteger),
        sa.Column("updated_at", sa.BigInteger),
    )
    op.create_table(
        "users",
        sa.Column("user_id", sa.String(128), primary_key=True),
        sa.Column("attributes", sa.JSON(none_as_null=True)),
        sa.Column("created_at", sa.BigInteger),
    )
    op.create_table(
        "events",
        sa.Column("id", row_id, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(128), unique=True),
        sa.Column("user_id", sa.String(128)),
        sa.Column("session_id", sa.String(128)),
        sa.Column("item_id", sa.String(128)),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("query", sa.Text),
        sa.Column("position", sa.Integer),
        sa.Column("sponsored", sa.Boolean, nullable=False),
    )
    op.create_index("ix_events_user_ts", "events", ["user_id", "ts"])
    op.create_index("ix_events_session_ts", "events", ["session_id", "ts"])
    op.create_index("ix_events_item", "events", ["item_id"])


def downgrade() -> None:
    op.drop_table("events")
    op.drop_table("users")
    op.drop_table("items")
