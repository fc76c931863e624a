"""Records signed by their author's libp2p key: round trip and every way to forge or break one."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field

import msgpack
import multihash
import pytest
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.rsa import create_new_key_pair as create_rsa_key_pair
from libp2p.peer.id import ID

from protocols.codec import DecodeError, decode, encode
from protocols.message import ErrorReply, limits, wire_message
from protocols.records import (
    RECORD_DOMAIN,
    SignedRecord,
    decode_signed,
    encode_signed,
    sign_record,
    verify_record,
)
from protocols.validation import Verdict, validate_signed_frame


@wire_message(type_id=0xFF30, version=1)
@dataclass(frozen=True)
class TrustEdge:
    """A test-only signed record body."""

    target: bytes = field(metadata=limits(max_len=64))
    weight: float = field(metadata=limits(min=-1.0, max=1.0))


ALICE = create_new_key_pair(b"a" * 32)
MALLORY = create_new_key_pair(b"m" * 32)
EDGE = TrustEdge(target=b"bob", weight=0.75)


def alice_id() -> bytes:
    return ID.from_pubkey(ALICE.public_key).to_bytes()


def assert_refused(rec: SignedRecord, fragment: str, **kwargs: object) -> None:
    with pytest.raises(DecodeError) as info:
        verify_record(rec, **kwargs)
    assert fragment in info.value.reason, info.value.reason
    with pytest.raises(DecodeError):
        decode_signed(encode_signed(rec), **kwargs)


def test_signed_round_trip() -> None:
    # Arrange
    rec = sign_record(EDGE, ALICE.private_key)
    # Act
    author, msg = decode_signed(encode_signed(rec), expect=TrustEdge)
    # Assert
    assert author == alice_id() == rec.author
    assert msg == EDGE
    assert verify_record(rec) == EDGE
    assert ALICE.public_key.verify(RECORD_DOMAIN + encode(EDGE), rec.signature)


def test_signing_is_deterministic() -> None:
    assert encode_signed(sign_record(EDGE, ALICE.private_key)) == encode_signed(sign_record(EDGE, ALICE.private_key))


def test_random_key_pair_round_trip() -> None:
    kp = create_new_key_pair()
    author, msg = decode_signed(encode_signed(sign_record(EDGE, kp.private_key)))
    assert (author, msg) == (ID.from_pubkey(kp.public_key).to_bytes(), EDGE)


def test_tampered_body_is_refused() -> None:
    rec = sign_record(EDGE, ALICE.private_key)
    forged = dataclasses.replace(rec, body=encode(TrustEdge(target=b"bob", weight=-1.0)))
    assert_refused(forged, "bad signature")


def test_flipped_body_bit_is_refused() -> None:
    rec = sign_record(EDGE, ALICE.private_key)
    body = bytearray(rec.body)
    body[-1] ^= 1
    assert_refused(dataclasses.replace(rec, body=bytes(body)), "bad signature")


def test_wrong_author_is_refused() -> None:
    # Mallory claims Alice's signed edge as her own
    rec = sign_record(EDGE, ALICE.private_key)
    mallory = ID.from_pubkey(MALLORY.public_key).to_bytes()
    assert_refused(dataclasses.replace(rec, author=mallory), "bad signature")


def test_signature_from_another_key_is_refused() -> None:
    # Mallory signs an edge and puts Alice's name on it
    rec = sign_record(EDGE, MALLORY.private_key)
    assert_refused(dataclasses.replace(rec, author=alice_id()), "bad signature")


def test_signature_without_domain_prefix_is_refused() -> None:
    body = encode(EDGE)
    rec = SignedRecord(author=alice_id(), body=body, signature=ALICE.private_key.sign(body))
    assert_refused(rec, "bad signature")


def test_author_without_inlined_key_is_refused() -> None:
    # An RSA peer id is a sha256 multihash: no key can be recovered from it
    rsa = create_rsa_key_pair(bits=1024)
    author = ID.from_pubkey(rsa.public_key).to_bytes()
    rec = dataclasses.replace(sign_record(EDGE, ALICE.private_key), author=author)
    assert_refused(rec, "does not inline")
    with pytest.raises(ValueError, match="Ed25519"):
        sign_record(EDGE, rsa.private_key)


def test_garbage_author_is_refused() -> None:
    rec = sign_record(EDGE, ALICE.private_key)
    assert_refused(dataclasses.replace(rec, author=b"\x00\x05hello"), "does not inline")
    assert_refused(dataclasses.replace(rec, author=hashlib.sha256(b"x").digest()), "does not inline")


def test_non_canonical_author_id_is_refused() -> None:
    # Same key, but the protobuf carries an extra (unknown) field: a second id for one key
    key_pb = ALICE.public_key.serialize() + b"\x18\x01"
    author = multihash.encode(key_pb, 0x00)
    rec = dataclasses.replace(sign_record(EDGE, ALICE.private_key), author=author)
    assert_refused(rec, "not the canonical id")


def test_non_canonical_body_is_refused() -> None:
    # The same message with a non-canonical envelope (int as uint16), correctly signed
    env = msgpack.unpackb(encode(EDGE), raw=False)
    body = b"\x83\xa1v\xcd\x00\x01" + msgpack.packb("t") + msgpack.packb(env["t"])
    body += msgpack.packb("b") + msgpack.packb(env["b"], use_bin_type=True)
    assert decode(body) == EDGE
    rec = SignedRecord(alice_id(), body, ALICE.private_key.sign(RECORD_DOMAIN + body))
    assert_refused(rec, "not canonically encoded")


def test_malformed_signed_body_is_refused() -> None:
    body = b"\x83\xa1v\x01\xa1t\xcd\xff\x30\xa1b\x80"  # TrustEdge with no fields
    rec = SignedRecord(alice_id(), body, ALICE.private_key.sign(RECORD_DOMAIN + body))
    assert_refused(rec, "missing field")


def test_nested_signed_record_is_refused() -> None:
    inner = sign_record(EDGE, ALICE.private_key)
    body = encode(inner)
    rec = SignedRecord(alice_id(), body, ALICE.private_key.sign(RECORD_DOMAIN + body))
    assert_refused(rec, "another signed record")
    with pytest.raises(ValueError):
        sign_record(inner, ALICE.private_key)


def test_inner_type_is_checked() -> None:
    rec = sign_record(ErrorReply(1, "x"), ALICE.private_key)
    assert_refused(rec, "unexpected message ErrorReply", expect=TrustEdge)


def test_truncated_frames_are_refused() -> None:
    data = encode_signed(sign_record(EDGE, ALICE.private_key))
    for cut in range(len(data)):
        with pytest.raises(DecodeError):
            decode_signed(data[:cut])


def test_bad_signature_length_is_refused_on_decode() -> None:
    rec = sign_record(EDGE, ALICE.private_key)
    data = msgpack.packb(
        {"v": 1, "t": 1, "b": {"author": rec.author, "body": rec.body, "signature": rec.signature[:-1]}},
        use_bin_type=True,
    )
    with pytest.raises(DecodeError, match="min_len"):
        decode_signed(data)


def test_plain_message_is_not_a_signed_frame() -> None:
    with pytest.raises(DecodeError, match="unexpected message"):
        decode_signed(encode(EDGE))


def test_signed_validation_answers() -> None:
    good = encode_signed(sign_record(EDGE, ALICE.private_key))
    forged = encode_signed(dataclasses.replace(sign_record(EDGE, MALLORY.private_key), author=alice_id()))
    ok, author, msg = validate_signed_frame(good, expect=TrustEdge)
    bad, no_author, no_msg = validate_signed_frame(forged, expect=TrustEdge)
    assert ok.passes and author == alice_id() and msg == EDGE
    assert bad.verdict is Verdict.REJECT and "bad signature" in bad.reason and no_author is None and no_msg is None
