"""One settings object: where the store lives, which device to use, how often progress updates."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

HOME_ENV = "AIMODEL_HOME"
TRACKING_ENV = "MLFLOW_TRACKING_URI"


@dataclass
class Settings:
    """Settings read at use time, so a notebook that changes directory gets its own store.

    ``home`` defaults to ``.aimodel/`` in the current directory (``$AIMODEL_HOME`` overrides);
    ``tracking_uri`` defaults to the SQLite file inside it (``$MLFLOW_TRACKING_URI`` overrides).
    """

    home: Path | None = None
    tracking_uri: str | None = None
    device: str = "auto"
    progress_interval: float = 0.2
    experiment: str = "aimodel"
    extra: dict[str, str] = field(default_factory=dict)

    def resolved_home(self) -> Path:
        if self.home is not None:
            return Path(self.home).expanduser().resolve()
        env = os.environ.get(HOME_ENV)
        return Path(env).expanduser().resolve() if env else Path.cwd().resolve() / ".aimodel"

    def resolved_tracking_uri(self) -> str:
        if self.tracking_uri:
            return self.tracking_uri
        env = os.environ.get(TRACKING_ENV)
        if env:
            return env
        return f"sqlite:///{self.resolved_home() / 'mlflow.db'}"

    def uses_embedded_store(self) -> bool:
        """True when tracking goes to the SQLite file inside ``home`` (the default)."""
        return not self.tracking_uri and not os.environ.get(TRACKING_ENV)


settings = Settings()
