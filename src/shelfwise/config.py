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
