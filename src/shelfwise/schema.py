"""The records every input is validated into.

Field types and constraints are declared once, here. HTTP bodies are parsed by these pydantic
models; files are checked column by column against the same declarations (see
``shelfwise.ingest.validate``), so both edges accept exactly the same data.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class EventType(str, Enum):
    view = "view"
    click = "click"
    add_to_cart = "add_to_cart"
    purchase = "purchase"
    search = "search"
    impression = "impression"


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Item(Record):
    item_id: str = Field(min_length=1, max_length=128)
    title: str = Field(min_length=1)
    description: str | None = None
    category: str | None = Field(default=None, description="category path, levels joined by ' > '")
    brand: str | None = None
    price: float | None = Field(default=None, ge=0)
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    image: str | None = Field(default=None, description="path or URL of the product photo")
    attributes: dict[str, Any] | None = None
    in_stock: bool = True
    created_at: datetime | None = None
    updated_at: datetime | None = None


class User(Record):
    user_id: str = Field(min_length=1, max_length=128)
    attributes: dict[str, Any] | None = None
    created_at: datetime | None = None


class Event(Record):
    """One behaviour event. Needs a user or a session; needs an item unless it is a search,
    and a query if it is one (checked for whole batches in ``shelfwise.ingest.validate``)."""

    event_id: str | None = Field(default=None, max_length=128)
    user_id: str | None = Field(default=None, max_length=128)
    session_id: str | None = Field(default=None, max_length=128)
    item_id: str | None = Field(default=None, max_length=128)
    type: EventType
    ts: datetime
    query: str | None = None
    position: int | None = Field(default=None, ge=0)
    sponsored: bool = False


RECORDS: dict[str, type[Record]] = {"items": Item, "users": User, "events": Event}
