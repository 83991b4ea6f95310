"""A shopper's recent history, read from the store at request time: this is what makes
recommendations real time. An event committed by POST /events shapes the very next request,
without retraining. Both queries use the (user_id, ts) / (session_id, ts) indexes."""

from __future__ import annotations

from dataclasses import dataclass, field

from shelfwise.datasets.store_data import ITEM_EVENTS
from shelfwise.serving.pii import pseudonymize
from shelfwise.store import Store

HISTORY_LENGTH = 50  # the newest item events scored; sequence models look at ~50 steps
MAX_PURCHASES = 1000
_TYPES = ", ".join(f"'{t}'" for t in ITEM_EVENTS)  # constants of our own, not input

# Plain SQL on a pooled DB-API connection: these two queries run on every recommendation
# request, and SQLAlchemy's per-statement overhead was 4x the queries themselves. {p} is the
# driver's placeholder; {key} a column name from the fixed set below.
RECENT = ("SELECT item_id FROM events WHERE {key} = {p} AND item_id IS NOT NULL AND type IN (" + _TYPES + ") "
          "ORDER BY ts DESC, id DESC LIMIT " + str(HISTORY_LENGTH))
BOUGHT = ("SELECT DISTINCT item_id FROM events WHERE {key} = {p} AND type = 'purchase' AND item_id IS NOT NULL "
          "LIMIT " + str(MAX_PURCHASES))
KEYS = ("user_id", "session_id")


@dataclass
class History:
    items: list[str] = field(default_factory=list)  # oldest first, repeats in a row collapsed
    purchased: set[str] = field(default_factory=set)


class HistoryReader:
    """``pii_salt``: shopper ids are stored pseudonymised (serving.pii), so they are looked up so."""

    def __init__(self, store: Store, pii_salt: str):
        self.store = store
        self.pii_salt = pii_salt
        placeholder = "?" if store.engine.dialect.paramstyle == "qmark" else "%s"
        self.sql = {key: (RECENT.format(key=key, p=placeholder), BOUGHT.format(key=key, p=placeholder)) for key in KEYS}

    def read(self, column: str, shopper_id: str) -> History:
        """The newest item events of a user (``column="user_id"``) or a session, and everything
        that user or session ever bought."""
        key = pseudonymize(shopper_id, self.pii_salt)
        recent, bought = self.sql[column]
        conn = self.store.engine.raw_connection()
        try:
            cur = conn.cursor()
            cur.execute(recent, (key,))
            newest_first = [row[0] for row in cur.fetchall()]
            cur.execute(bought, (key,))
            purchased = {row[0] for row in cur.fetchall()}
            cur.close()
        finally:
            conn.close()  # back to the pool (which rolls back the read transaction)
        items: list[str] = []
        for item in reversed(newest_first):
            if not items or items[-1] != item:
                items.append(item)
        return History(items, purchased)
