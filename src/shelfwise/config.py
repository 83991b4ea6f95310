"""One settings object: where the shelfwise home is and which database to use.

Every value comes from an argument, else from the environment (``SHELFWISE_*``), else a default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    home: Path = field(default_factory=lambda: Path(os.environ.get("SHELFWISE_HOME", "shelfwise-home")))
    db_url: str | None = field(default_factory=lambda: os.environ.get("SHELFWISE_DB") or None)
    quiet: bool = False
    # Serving (see docs/serving.md). Redis, when set, holds the rate-limit counters so every
    # API replica shares them; without it each process counts on its own.
    redis_url: str | None = field(default_factory=lambda: os.environ.get("SHELFWISE_REDIS") or None)
    rate_limit: float = field(default_factory=lambda: float(os.environ.get("SHELFWISE_RATE_LIMIT", "1000")))  # requests/s per key
    rate_burst: int = field(default_factory=lambda: int(os.environ.get("SHELFWISE_RATE_BURST", "2000")))
    max_body_bytes: int = field(default_factory=lambda: int(os.environ.get("SHELFWISE_MAX_BODY_BYTES", str(2 * 1024 * 1024))))
    max_batch: int = field(default_factory=lambda: int(os.environ.get("SHELFWISE_MAX_BATCH", "5000")))  # records per POST
    model: str | None = field(default_factory=lambda: os.environ.get("SHELFWISE_MODEL") or None)  # artifact name to serve
    pii_salt: str = field(default_factory=lambda: os.environ.get("SHELFWISE_PII_SALT", "shelfwise"))

    @property
    def database_url(self) -> str:
        """The store's SQLAlchemy URL: SHELFWISE_DB if given, else a SQLite file in the home."""
        return self.db_url or f"sqlite:///{(self.home / 'shelfwise.db').resolve()}"

    @property
    def artifacts(self) -> Path:
        """Trained weights and generated artifacts, versioned per model name."""
        return self.home / "artifacts"

    def ensure_home(self) -> Path:
        self.home.mkdir(parents=True, exist_ok=True)
        return self.home


def settings(home: str | Path | None = None, db: str | None = None, quiet: bool = False) -> Settings:
    """Settings from explicit values, falling back to the environment."""
    base = Settings()
    return Settings(
        home=Path(home) if home else base.home,
        db_url=db or base.db_url,
        quiet=quiet,
    )
