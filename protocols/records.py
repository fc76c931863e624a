"""Records signed by their author's libp2p key (DESIGN.md §3).

A :class:`SignedRecord` carries the author's peer id, the canonical encoding of a wire message and an
Ed25519 signature over ``RECORD_DOMAIN + body``. The author's public key is recovered from the peer
id itself (Ed25519 peer ids inline the key as an identity multihash), so no key travels separately
and nobody can write a record under another peer's id. Peer ids that hash their key (RSA) are refused.

On the wire a signed record is an ordinary message (type id 0x0001) in the usual envelope:
``encode_signed(sign_record(msg, key))`` on one side, ``decode_signed(frame, expect=Msg)`` on the other.
"""

from __future__ import annotations

import functools
from typing import Any

from libp2p.crypto.keys import KeyType, PrivateKey, PublicKey
from libp2p.peer.id import ID

from protocols.codec import DecodeError, decode, encode
from protocols.message import SIGNATURE_LEN, SignedRecord

__all__ = [
    "RECORD_DOMAIN",
    "SignedRecord",
    "author_public_key",
    "decode_signed",
    "encode_signed",
    "sign_record",
    "verify_record",
]

#: Domain-separation prefix: a record signature can never be replayed as another libp2p signature.
RECORD_DOMAIN = b"plexus-record:"
#: Author ids whose parsed public key is kept (parsing costs a multihash and a protobuf decode).
AUTHOR_KEY_CACHE = 4096


def _signed_bytes(body: bytes) -> bytes:
    return RECORD_DOMAIN + body


@functools.lru_cache(maxsize=AUTHOR_KEY_CACHE)
def author_public_key(author: bytes) -> PublicKey:
    """The Ed25519 public key inlined in a peer id; raises DecodeError if there is none.

    The peer id must be the canonical one for that key (re-deriving it gives the same bytes), so one
    key has exactly one author id.
    """
    key = ID(author).extract_public_key()
    if key is None:
        raise DecodeError("author peer id does not inline a public key")
    if key.get_type() is not KeyType.Ed25519:
        raise DecodeError(f"author key type {key.get_type().name} is not Ed25519")
    if ID.from_pubkey(key).to_bytes() != author:
        raise DecodeError("author peer id is not the canonical id of its key")
    return key


def sign_record(msg: Any, private_key: PrivateKey) -> SignedRecord:
    """Encode ``msg`` canonically and sign it with ``private_key`` (must be Ed25519).

    Raises :class:`protocols.codec.EncodeError` if ``msg`` is invalid, ValueError for another key type.
    """
    if private_key.get_type() is not KeyType.Ed25519:
        raise ValueError(f"records are signed with Ed25519 keys, got {private_key.get_type().name}")
    if isinstance(msg, SignedRecord):
        raise ValueError("a SignedRecord cannot be signed again")
    body = encode(msg)
    author = ID.from_pubkey(private_key.get_public_key()).to_bytes()
    return SignedRecord(author=author, body=body, signature=private_key.sign(_signed_bytes(body)))


def verify_record(rec: SignedRecord, *, expect: type | tuple[type, ...] | None = None) -> Any:
    """Verify ``rec`` and return its decoded body; raises DecodeError on any problem.

    Refused: an author id without an inlined Ed25519 key, a signature that does not verify under that
    key, a body that does not decode (or is not of an ``expect``-ed class), a body that is not the
    canonical encoding of its message (so a record has exactly one byte form), a nested SignedRecord.
    """
    try:
        if type(rec) is not SignedRecord:
            raise DecodeError(f"expected SignedRecord, got {type(rec).__name__}")
        if len(rec.signature) != SIGNATURE_LEN:
            raise DecodeError(f"signature must be {SIGNATURE_LEN} bytes, got {len(rec.signature)}")
        key = author_public_key(rec.author)
        if not key.verify(_signed_bytes(rec.body), rec.signature):
            raise DecodeError("bad signature")
        msg = decode(rec.body, expect=expect)
        if isinstance(msg, SignedRecord):
            raise DecodeError("a signed record may not contain another signed record")
        if encode(msg) != rec.body:
            raise DecodeError("record body is not canonically encoded")
        return msg
    except DecodeError:
        raise
    except Exception as err:  # noqa: BLE001 - hostile records give DecodeError, never a crash
        raise DecodeError(f"cannot verify record: {type(err).__name__}: {err}") from err


def encode_signed(rec: SignedRecord) -> bytes:
    """The frame of a signed record (the ordinary envelope, type id 0x0001)."""
    return encode(rec)


def decode_signed(data: bytes, *, expect: type | tuple[type, ...] | None = None) -> tuple[bytes, Any]:
    """Decode a signed-record frame, verify it, and return ``(author peer id bytes, message)``.

    ``expect`` constrains the *inner* message's class. Raises DecodeError (only) on any problem.
    """
    rec = decode(data, expect=SignedRecord)
    return rec.author, verify_record(rec, expect=expect)
