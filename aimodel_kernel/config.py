"""One settings object: where the store lives, which device to use, how often progress updates,
and what loading a stored model trusts (signing keys, required signatures, extra skops types)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

HOME_ENV = "AIMODEL_HOME"
TRACKING_ENV = "MLFLOW_TRACKING_URI"
SIGNING_KEY_ENV = "AIMODEL_SIGNING_KEY"
TRUSTED_KEYS_ENV = "AIMODEL_TRUSTED_KEYS"
REQUIRE_SIGNED_ENV = "AIMODEL_REQUIRE_SIGNED"
TRUSTED_TYPES_ENV = "AIMODEL_TRUSTED_TYPES"


@dataclass
class Settings:
    """Settings read at use time, so a notebook that changes directory gets its own store.

    ``home`` defaults to ``.aimodel/`` in the current directory (``$AIMODEL_HOME`` overrides);
    ``tracking_uri`` defaults to the SQLite file inside it (``$MLFLOW_TRACKING_URI`` overrides).

    What loading trusts (see ``engine/store/trust.py`` and ``engine/store/signing.py``):
    ``signing_key`` is an elliptic-curve private key (PEM) that signs every version recorded
    (``$AIMODEL_SIGNING_KEY``); ``trusted_keys`` are public keys (PEM files) whose signatures
    are accepted (``$AIMODEL_TRUSTED_KEYS``, paths joined by ``os.pathsep``; the signing key's
    own public key is always trusted); ``require_signed`` refuses versions without a trusted
    signature (``$AIMODEL_REQUIRE_SIGNED=1``); ``trusted_types`` are extra classes a skops file
    may name, beyond scikit-learn and aimodel's own (``$AIMODEL_TRUSTED_TYPES``, comma
    separated, e.g. ``xgboost.sklearn.XGBClassifier``).
    """

    home: Path | None = None
    tracking_uri: str | None = None
    device: str = "auto"
    progress_interval: float = 0.2
    experiment: str = "aimodel"
    extra: dict[str, str] = field(default_factory=dict)
    signing_key: Path | str | None = None
    trusted_keys: tuple[Path | str, ...] | None = None
    require_signed: bool | None = None
    trusted_types: tuple[str, ...] = ()

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

    def resolved_signing_key(self) -> Path | None:
        """The private key that signs new versions, or ``None`` (no signing)."""
        key = self.signing_key or os.environ.get(SIGNING_KEY_ENV)
        return Path(key).expanduser() if key else None

    def resolved_trusted_keys(self) -> tuple[Path, ...]:
        """The public key files whose signatures loading accepts."""
        if self.trusted_keys is not None:
            keys = [str(k) for k in self.trusted_keys]
        else:
            keys = os.environ.get(TRUSTED_KEYS_ENV, "").split(os.pathsep)
        return tuple(Path(k).expanduser() for k in keys if k.strip())

    def requires_signed(self) -> bool:
        """Whether loading refuses a version without a trusted signature."""
        if self.require_signed is not None:
            return bool(self.require_signed)
        return os.environ.get(REQUIRE_SIGNED_ENV, "").strip().lower() in ("1", "true", "yes", "on")

    def resolved_trusted_types(self) -> tuple[str, ...]:
        """Extra fully qualified type names a skops file may name (setting and environment)."""
        env = [t.strip() for t in os.environ.get(TRUSTED_TYPES_ENV, "").split(",")]
        return tuple(dict.fromkeys([*self.trusted_types, *(t for t in env if t)]))


settings = Settings()
