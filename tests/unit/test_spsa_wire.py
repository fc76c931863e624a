"""The SPSA wire: limits mirror the learning core, one update fits 256 bytes, logged messages re-verify."""

from __future__ import annotations

import os

import pytest
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.validators import PUBSUB_SIGNING_PREFIX
from libp2p.utils.varint import encode_uvarint

import learning.spsa as core
from learning.spsa.settings import PERTURBATION_KINDS
from protocols import spsa as wire
from protocols.codec import DecodeError, decode, encode
from protocols.validation import Verdict

TOPIC = wire.topic("devnet")
WIRE_LIMIT = 256


def signed_message(data: bytes, keys=None) -> rpc_pb2.Message:
    """A GossipSub message signed the way py-libp2p's Pubsub.publish signs it."""
    keys = keys or create_new_key_pair(bytes(range(32)))
    peer = ID.from_pubkey(keys.public_key)
    msg = rpc_pb2.Message(data=data, topicIDs=[TOPIC], from_id=peer.to_bytes(), seqno=(2**40).to_bytes(8, "big"))
    msg.signature = keys.private_key.sign(PUBSUB_SIGNING_PREFIX.encode() + msg.SerializeToString())
    msg.key = keys.public_key.serialize()
    return msg


def framed_rpc_bytes(msg: rpc_pb2.Message) -> int:
    rpc = rpc_pb2.RPC(publish=[msg]).SerializeToString()
    return len(encode_uvarint(len(rpc))) + len(rpc)


def longest_record(peer: bytes, samples: int) -> core.UpdateRecord:
    return core.UpdateRecord("r" * core.MAX_RUN_NAME_BYTES, core.MAX_ROUND - 1, peer, bytes([0x85] * samples), b"\x11" * 8)


def test_wire_limits_mirror_the_learning_core():
    # Arrange / Act / Assert
    assert wire.MAX_RUN_NAME_BYTES == core.MAX_RUN_NAME_BYTES
    assert wire.CHECKSUM_BYTES == core.CHECKSUM_BYTES
    assert wire.MAX_SAMPLES == core.MAX_SAMPLES_PER_ROUND
    assert wire.MAX_ROUND == core.MAX_ROUND
    assert wire.PERTURBATIONS == PERTURBATION_KINDS


def test_update_round_trips_to_the_same_record():
    # Arrange
    record = core.UpdateRecord("run", 7, b"\x00\x24" + b"p" * 36, b"\x05\x91", b"\x01" * 8)
    # Act
    back = wire.record_of(decode(encode(wire.update_message(record)), expect=wire.SpsaUpdate), record.peer)
    # Assert
    assert back == record


@pytest.mark.parametrize("samples", [1, 2, 8])
def test_longest_update_fits_256_bytes_on_the_wire_plus_one_byte_per_extra_sample(samples):
    # Arrange
    keys = create_new_key_pair(bytes(range(32)))
    record = longest_record(ID.from_pubkey(keys.public_key).to_bytes(), samples)
    # Act
    size = framed_rpc_bytes(signed_message(encode(wire.update_message(record)), keys))
    # Assert
    assert size <= WIRE_LIMIT + (samples - 1)


def test_reserved_byte_is_rejected_and_garbage_is_rejected():
    # Arrange
    bad = encode(wire.SpsaUpdate(r="run", n=1, g=b"\x80", c=b"\x00" * 8))
    # Act
    verdict_bad, _ = wire.validate_gossip(bad)
    verdict_junk, _ = wire.validate_gossip(os.urandom(40))
    verdict_ok, msg = wire.validate_gossip(encode(wire.SpsaUpdate.sample()))
    # Assert
    assert verdict_bad.verdict is Verdict.REJECT
    assert verdict_junk.verdict is Verdict.REJECT
    assert verdict_ok.passes and msg == wire.SpsaUpdate.sample()


def test_logged_message_reverifies_and_a_tampered_one_is_refused():
    # Arrange
    keys = create_new_key_pair(bytes(range(32)))
    record = longest_record(ID.from_pubkey(keys.public_key).to_bytes(), 1)
    msg = signed_message(encode(wire.update_message(record)), keys)
    tampered = rpc_pb2.Message()
    tampered.CopyFrom(msg)
    tampered.data = encode(wire.update_message(longest_record(record.peer, 2)))
    # Act
    back = wire.record_from_raw(msg.SerializeToString())
    # Assert
    assert back == record
    with pytest.raises(ValueError, match="signature"):
        wire.record_from_raw(tampered.SerializeToString())
    with pytest.raises(ValueError):
        wire.record_from_raw(b"\xff" * 30)


def test_announcement_refuses_settings_no_run_can_use():
    # Arrange
    good = wire.RunAnnouncement.sample()
    bad = encode(good).replace(b"gaussian", b"uniform!")
    # Act / Assert
    assert decode(encode(good), expect=wire.RunAnnouncement) == good
    with pytest.raises(DecodeError):
        decode(bad, expect=wire.RunAnnouncement)
    assert good.round_at(good.start_time + 2.5 * good.round_s) == 2
