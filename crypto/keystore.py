"""A seller's Paillier secret key at rest: one file in the node home, mode 0600, optionally sealed.

Plain form: JSON ``{"format": "plexus-paillier-v1", "sealed": false, "p": hex, "q": hex}``.
Sealed form (a passphrase was given): ``{"sealed": true, "kdf": {scrypt n, r, p, salt}, "nonce", "ct"}``
where ``ct`` is AES-256-GCM over the plain JSON with the key derived by scrypt. A wrong passphrase or
any change to the file raises ``KeystoreError``.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import gmpy2
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from crypto.paillier import SecretKey

FORMAT = "plexus-paillier-v1"
"""File format tag."""
FILE_MODE = 0o600
"""Owner read/write only."""
SALT_BYTES = 16
"""scrypt salt length."""
NONCE_BYTES = 12
"""AES-GCM nonce length."""
KEY_BYTES = 32
"""AES-256 key length."""


class KeystoreError(ValueError):
    """The key file is missing, corrupted, or the passphrase is wrong."""


@dataclass(frozen=True)
class KeystoreSettings:
    """scrypt cost of sealing."""

    scrypt_n: int = 1 << 15
    """CPU/memory cost (power of two)."""
    scrypt_r: int = 8
    """Block size."""
    scrypt_p: int = 1
    """Parallelism."""

    def validate(self) -> "KeystoreSettings":
        """Raise ``ValueError`` on a setting out of range; return self."""
        if self.scrypt_n < 2 or self.scrypt_n & (self.scrypt_n - 1):
            raise ValueError("KeystoreSettings.scrypt_n must be a power of two >= 2")
        if self.scrypt_r < 1 or self.scrypt_p < 1:
            raise ValueError("KeystoreSettings.scrypt_r and scrypt_p must be >= 1")
        return self


def _derive(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=KEY_BYTES, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, FILE_MODE)
    os.replace(tmp, path)


def save(path: Path, key: SecretKey, passphrase: str | None = None,
         settings: KeystoreSettings = KeystoreSettings()) -> None:
    """Write ``key`` to ``path`` (0600), sealed under ``passphrase`` when given."""
    settings.validate()
    p, q = key.primes
    plain = json.dumps({"format": FORMAT, "sealed": False, "p": format(p, "x"), "q": format(q, "x")}).encode()
    if passphrase is None:
        _write_private(Path(path), plain)
        return
    if not passphrase:
        raise KeystoreError("empty passphrase")
    salt, nonce = secrets.token_bytes(SALT_BYTES), secrets.token_bytes(NONCE_BYTES)
    kdf = {"n": settings.scrypt_n, "r": settings.scrypt_r, "p": settings.scrypt_p, "salt": salt.hex()}
    sealed = AESGCM(_derive(passphrase, salt, settings.scrypt_n, settings.scrypt_r, settings.scrypt_p)).encrypt(
        nonce, plain, FORMAT.encode())
    _write_private(Path(path), json.dumps({"format": FORMAT, "sealed": True, "kdf": kdf, "nonce": nonce.hex(),
                                           "ct": sealed.hex()}).encode())


def is_sealed(path: Path) -> bool:
    """True when the file needs a passphrase."""
    return bool(_read_json(Path(path).read_bytes()).get("sealed"))


def _read_json(data: bytes) -> dict:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise KeystoreError("key file is corrupted (not JSON)") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise KeystoreError("key file is corrupted or of an unknown format")
    return doc


def load(path: Path, passphrase: str | None = None, *, insecure_test_only: bool = False) -> SecretKey:
    """Read a key written by :func:`save`; ``KeystoreError`` on a wrong passphrase or a corrupted file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise KeystoreError(f"no key file at {path}") from exc
    if os.stat(path).st_mode & 0o077:
        raise KeystoreError(f"{path} is readable by others; expected mode 0600")
    doc = _read_json(data)
    if doc.get("sealed"):
        if passphrase is None:
            raise KeystoreError("key file is sealed; a passphrase is needed")
        try:
            kdf = doc["kdf"]
            key = _derive(passphrase, bytes.fromhex(kdf["salt"]), int(kdf["n"]), int(kdf["r"]), int(kdf["p"]))
            plain = AESGCM(key).decrypt(bytes.fromhex(doc["nonce"]), bytes.fromhex(doc["ct"]), FORMAT.encode())
        except InvalidTag as exc:
            raise KeystoreError("wrong passphrase or corrupted key file") from exc
        except (KeyError, TypeError, ValueError) as exc:
            raise KeystoreError("key file is corrupted (sealed fields)") from exc
        doc = _read_json(plain)
    try:
        p, q = int(doc["p"], 16), int(doc["q"], 16)
        if not (gmpy2.is_prime(p) and gmpy2.is_prime(q)):
            raise ValueError("p or q is not prime")
        return SecretKey(p, q, insecure_test_only=insecure_test_only)
    except (KeyError, TypeError, ValueError) as exc:
        raise KeystoreError(f"key file is corrupted: {exc}") from exc


def load_or_create(path: Path, bits: int = 2048, passphrase: str | None = None) -> SecretKey:
    """The node's seller key: loaded if present, else generated and saved."""
    from crypto.paillier import generate_keypair

    if Path(path).exists():
        return load(path, passphrase)
    key = generate_keypair(bits)
    save(path, key, passphrase)
    return key
