"""The node's Ed25519 identity: created on first start, reused after, stored owner-only (0600)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from libp2p.crypto.ed25519 import Ed25519PrivateKey
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.serialization import deserialize_private_key
from libp2p.peer.id import ID

from node.home import SECRET_FILE_MODE, write_atomic


class IdentityError(RuntimeError):
    """The identity file exists but cannot be used."""


def load_or_create_identity(path: Path) -> KeyPair:
    """Load the key pair stored at ``path``, or create and store a new Ed25519 one."""
    if path.exists():
        return _load(path)
    private = Ed25519PrivateKey.new()
    write_atomic(path, private.serialize(), SECRET_FILE_MODE)
    return KeyPair(private, private.get_public_key())


def _load(path: Path) -> KeyPair:
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & 0o077:
        raise IdentityError(f"{path} is readable by others (mode {mode:o}); run: chmod 600 {path}")
    try:
        private = deserialize_private_key(path.read_bytes())
    except Exception as exc:  # the libp2p deserialiser raises several types
        raise IdentityError(f"{path} is not a valid libp2p private key: {exc}") from exc
    return KeyPair(private, private.get_public_key())


def peer_id_of(key_pair: KeyPair) -> ID:
    """The libp2p peer id of a key pair."""
    return ID.from_pubkey(key_pair.public_key)
