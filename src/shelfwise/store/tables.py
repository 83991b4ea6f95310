"""The store's tables (SQLAlchemy Core). Migrations in ``migrations/versions`` build them;
a test checks that the two agree. Timestamps are integer milliseconds since the epoch (UTC),
which keeps whole-column work in numpy and SQL simple on every backend."""

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
RowId = BigInteger().with_variant(Integer(), "sqlite")

items = Table(
    "items",
    metadata,
    Column("item_id", String(128), primary_key=True),
    Column("title", Text, nullable=False),
    Column("description", Text),
    Column("category", Text),
    Column("brand", String(256)),
    Column("price", Float),
    Column("currency", String(3)),
    Column("image", Text),
    Column("attributes", JSON(none_as_null=True)),
    Column("in_stock", Boolean, nullable=False),
    Column("created_at", BigInteger),
    Column("updated_at", BigInteger),
)

users = Table(
    "users",
    metadata,
    Column("user_id", String(128), primary_key=True),
    Column("attributes", JSON(none_as_null=True)),
    Column("created_at", BigInteger),
)

events = Table(
    "events",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("event_id", String(128), unique=True),
    Column("user_id", String(128)),
    Column("session_id", String(128)),
    Column("item_id", String(128)),
    Column("type", String(16), nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("query", Text),
    Column("position", Integer),
    Column("sponsored", Boolean, nullable=False),
    Index("ix_events_user_ts", "user_id", "ts"),
    Index("ix_events_session_ts", "session_id", "ts"),
    Index("ix_events_item", "item_id"),
)

# API keys for the HTTP API. Only a SHA-256 hash of each key is stored: keys are 256-bit random
# tokens, so a fast hash is safe and keeps the per-request lookup cheap. ``scopes`` is a
# comma-separated subset of read, events, admin.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("key_id", String(32), nullable=False, unique=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("name", Text),
    Column("scopes", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger),
)
