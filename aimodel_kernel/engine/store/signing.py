"""Signed versions: a local elliptic-curve key signs a version's ``model/`` folder, and loading
checks the signature against the public keys the user trusts.

Signing uses the OpenSSF ``model-signing`` library in its key mode (offline: no Sigstore, no
network): the signature (``model.sig``, a Sigstore bundle holding a DSSE envelope over the
SHA-256 of every file of the folder, ``manifest.json`` included) is written beside the model
files, and its own digest is recorded like theirs (``aimodel.sha256.model.sig``), with the
signing key's fingerprint (``aimodel.signed_by``).

What a signature adds to the digests: the digests live in the same store as the files, so
anyone who can write the store can change both; a signature can only be made with the private
key, which never enters the store. A version signed by a trusted key therefore holds exactly
the files its signer saved (and, through the signed ``manifest.json``, the framework and run
they were saved for).

Settings (:class:`~aimodel_kernel.config.Settings`): ``signing_key`` / ``$AIMODEL_SIGNING_KEY``
signs new versions; ``trusted_keys`` / ``$AIMODEL_TRUSTED_KEYS`` are the public keys accepted
(the signing key's own is always accepted); ``require_signed`` / ``$AIMODEL_REQUIRE_SIGNED=1``
refuses a version that is unsigned. A signed version is checked whenever a trusted key is
configured; a signature that does not verify is always refused.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from pathlib import Path
from typing import Any

from ...config import Settings
from ...config import settings as default_settings
from ..core.errors import InputError, require
from .trust import TrustError

SIGNATURE_FILE = "model.sig"
EXTRA = "sign"


def _model_signing() -> Any:
    require("OpenSSL", package="pyopenssl", extra=EXTRA, purpose="signing model versions")
    return require("model_signing", package="model-signing", extra=EXTRA,
                   purpose="signing model versions")


def _hashing(ms: Any) -> Any:
    return ms.hashing.Config().use_file_serialization(hashing_algorithm="sha256").\
        set_ignored_paths(paths=[SIGNATURE_FILE], ignore_git_paths=False)


def generate_key(private_path: str | Path, public_path: str | Path | None = None) -> Path:
    """Write a new NIST P-256 key pair: the private key (PEM, unencrypted, mode 0600) and its
    public key (PEM, ``<private>.pub`` unless given). Returns the public key's path.

    Keep the private key out of the store and out of shared folders; give colleagues the
    public key to put in their ``$AIMODEL_TRUSTED_KEYS``.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    private_path = Path(private_path).expanduser()
    public = Path(public_path).expanduser() if public_path else private_path.with_suffix(".pub")
    if private_path.exists():
        raise InputError(f"{private_path} exists; choose another path (a key is never "
                         "overwritten)")
    key = ec.generate_private_key(ec.SECP256R1())
    private_path.parent.mkdir(parents=True, exist_ok=True)
    private_path.touch(mode=0o600)
    private_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    public.write_bytes(_public_pem(key.public_key()))
    return public


def _public_pem(public_key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def _load_private(path: Path) -> Any:
    from cryptography.hazmat.primitives import serialization

    try:
        return serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise InputError(f"signing key {path} cannot be read ({exc}); set "
                         "$AIMODEL_SIGNING_KEY to an unencrypted elliptic-curve PEM key") from None


def fingerprint(public_pem: bytes) -> str:
    """A public key's fingerprint: the SHA-256 of its DER encoding, first 16 hex digits."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_public_key(public_pem)
    der = key.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()[:16]


def sign_directory(directory: str | Path, key_path: str | Path) -> str:
    """Sign every file of ``directory`` into ``directory/model.sig``; return the key's
    fingerprint."""
    ms = _model_signing()
    key_path = Path(key_path).expanduser()
    private = _load_private(key_path)
    try:
        ms.signing.Config().use_elliptic_key_signer(private_key=key_path).set_hashing_config(
            _hashing(ms)).sign(Path(directory), Path(directory) / SIGNATURE_FILE)
    except ValueError as exc:  # an unsupported curve
        raise InputError(f"signing key {key_path} cannot sign: {exc}") from None
    return fingerprint(_public_pem(private.public_key()))


def trusted_public_keys(settings: Settings | None = None) -> list[tuple[str, bytes]]:
    """``(name, PEM)`` of every trusted public key: the settings' files and the signing key's
    own public key."""
    s = settings or default_settings
    keys: list[tuple[str, bytes]] = []
    for path in s.resolved_trusted_keys():
        try:
            keys.append((str(path), path.read_bytes()))
        except OSError as exc:
            raise InputError(f"trusted key {path} cannot be read ({exc.strerror}); fix "
                             "$AIMODEL_TRUSTED_KEYS") from None
    own = s.resolved_signing_key()
    if own is not None and own.exists():
        keys.append((str(own), _public_pem(_load_private(own).public_key())))
    return keys


def verify_directory(directory: str | Path, keys: list[tuple[str, bytes]]) -> str:
    """Check ``directory/model.sig`` against the trusted ``keys``; return the fingerprint of
    the key that signed it.

    Raises
    ------
    TrustError
        No trusted key signed it, or a file differs from what was signed.
    """
    ms = _model_signing()
    directory = Path(directory)
    signature = directory / SIGNATURE_FILE
    mismatch = None
    with tempfile.TemporaryDirectory(prefix="aimodel-keys-") as tmp:
        for i, (_name, pem) in enumerate(keys):
            key_file = Path(tmp) / f"key{i}.pub"
            key_file.write_bytes(pem)
            try:
                verifier = ms.verifying.Config().use_elliptic_key_verifier(public_key=key_file)
                verifier.set_hashing_config(_hashing(ms)).verify(directory, signature)
                return fingerprint(pem)
            except ValueError as exc:
                text = str(exc)
                if text.startswith("Key mismatch") or "Unsupported key" in text:
                    continue  # another key signed it
                mismatch = _mismatch(text)
                break
            except Exception as exc:  # a bundle that does not parse, a bad signature
                mismatch = f"the signature is invalid ({type(exc).__name__})"
                break
    if mismatch:
        raise TrustError(f"{mismatch}; refusing to load it")
    raise TrustError("the version is signed by a key that is not trusted (add its public key to "
                     "$AIMODEL_TRUSTED_KEYS); refusing to load it")


def _mismatch(text: str) -> str:
    """One line from model-signing's message (a list repr whose quotes may be escaped)."""
    text = text.replace("\\'", "'")
    changed = re.findall(r"Hash mismatch for '([^']+)'", text)
    extra = re.search(r"Extra files found in model '[^']*': ([^\"'\]]+)", text)
    missing = re.search(r"Missing files in model '[^']*': ([^\"'\]]+)", text)
    if changed:
        return f"{', '.join(changed)} differs from what was signed"
    if extra:
        return f"{extra.group(1).strip()} was added after signing"
    if missing:
        return f"{missing.group(1).strip()} is missing since signing"
    return "the signature does not match its files"


def check_signature(directory: str | Path, expected: dict[str, str],
                    settings: Settings | None = None) -> str | None:
    """Apply the signature policy to a verified model folder; the signer's fingerprint or
    ``None`` when unsigned (and allowed).

    Raises
    ------
    TrustError
        Signatures are required and the version is unsigned, or its signature does not verify
        against a trusted key.
    """
    s = settings or default_settings
    signed = SIGNATURE_FILE in expected
    required = s.requires_signed()
    keys = trusted_public_keys(s) if (signed or required) else []
    if not signed:
        if required:
            raise TrustError("the version is not signed and $AIMODEL_REQUIRE_SIGNED is set; "
                             "refusing to load it")
        return None
    if not keys:
        if required:
            raise TrustError("no trusted public keys are configured ($AIMODEL_TRUSTED_KEYS) "
                             "to check the version's signature; refusing to load it")
        return None  # signed, but nobody to check it against: the digests still apply
    return verify_directory(directory, keys)
