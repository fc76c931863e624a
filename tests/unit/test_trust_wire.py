"""Trust edges on the wire: limits of TrustEdge, the gossip verdicts, the combine rule and the settings."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID

from node.services.trust import TrustSettings, combine
from node.settings import NodeSettings
from protocols.codec import DecodeError, EncodeError, decode, encode
from protocols.message import SignedRecord
from protocols.records import RECORD_DOMAIN, encode_signed
from protocols.trust import MAX_EDGE_FRAME, MAX_WEIGHT, TrustEdge, check_edge_frame, sign_edge
from protocols.validation import Verdict

ALICE = create_new_key_pair(b"a" * 32)
MALLORY = create_new_key_pair(b"m" * 32)
ALICE_ID = ID.from_pubkey(ALICE.public_key).to_base58()
BOB_ID = ID.from_pubkey(create_new_key_pair(b"b" * 32).public_key).to_base58()


def edge(**changes) -> TrustEdge:
    return dataclasses.replace(TrustEdge(dst=BOB_ID, weight=2.5, seq=10, kind="declared"), **changes)


def nothing_held(_src: str, _dst: str, _kind: str) -> None:
    return None


def test_an_edge_round_trips_and_a_signed_one_fits_its_frame_cap():
    # Arrange
    msg = edge(weight=-MAX_WEIGHT)
    # Act
    back = decode(encode(msg), expect=TrustEdge)
    frame = sign_edge(msg, ALICE.private_key)
    # Assert
    assert back == msg
    assert len(frame) <= MAX_EDGE_FRAME


@pytest.mark.parametrize(
    "changes",
    [
        {"weight": MAX_WEIGHT + 1},
        {"weight": -MAX_WEIGHT - 0.5},
        {"weight": math.nan},
        {"weight": math.inf},
        {"seq": -1},
        {"kind": ""},
        {"kind": "x" * 17},
        {"dst": BOB_ID + "x" * 20},
        {"dst": "Qm"},
    ],
)
def test_out_of_limit_edges_cannot_be_encoded(changes):
    with pytest.raises(EncodeError):
        encode(edge(**changes))


@pytest.mark.parametrize(
    "changes",
    [{"kind": "gift"}, {"dst": "not-a-peer-id-but-long-enough-to-pass"}, {"dst": BOB_ID[:-1] + "0"}],
)
def test_unknown_kinds_and_non_peer_ids_fail_check_and_decode(changes):
    # Arrange
    msg = edge(**changes)
    # Act / Assert
    with pytest.raises(ValueError):
        msg.check()
    with pytest.raises(DecodeError):
        decode(encode(msg), expect=TrustEdge)


def test_out_of_limit_edge_from_the_wire_is_a_decode_error():
    # Arrange: bypass encode's checks by patching the body of a valid frame
    frame = encode(edge(weight=1.0)).replace(b"\xcb\x3f\xf0" + b"\x00" * 6, b"\xcb\x40\x69\x00" + b"\x00" * 5)
    # Act / Assert (1.0 became 200.0)
    with pytest.raises(DecodeError, match="weight"):
        decode(frame, expect=TrustEdge)


def test_a_well_signed_new_edge_is_accepted_with_its_author_as_source():
    verdict, received = check_edge_frame(sign_edge(edge(), ALICE.private_key), nothing_held)
    assert verdict.verdict is Verdict.ACCEPT
    assert received.src == ALICE_ID and received.edge == edge()


def test_a_record_claiming_another_author_is_rejected():
    # Arrange: Mallory signs a body under Alice's peer id
    body = encode(edge())
    forged = SignedRecord(author=ID.from_base58(ALICE_ID).to_bytes(), body=body,
                          signature=MALLORY.private_key.sign(RECORD_DOMAIN + body))
    # Act
    verdict, received = check_edge_frame(encode_signed(forged), nothing_held)
    # Assert
    assert verdict.verdict is Verdict.REJECT and received is None


def test_a_tampered_signature_or_body_is_rejected():
    # Arrange
    good = decode(sign_edge(edge(), ALICE.private_key), expect=SignedRecord)
    bad_sig = dataclasses.replace(good, signature=bytes([good.signature[0] ^ 1]) + good.signature[1:])
    bad_body = dataclasses.replace(good, body=encode(edge(weight=99.0)))
    # Act
    verdicts = [check_edge_frame(encode_signed(r), nothing_held)[0].verdict for r in (bad_sig, bad_body)]
    # Assert
    assert verdicts == [Verdict.REJECT, Verdict.REJECT]


def test_garbage_and_oversized_frames_are_rejected():
    assert check_edge_frame(b"\x00garbage", nothing_held)[0].verdict is Verdict.REJECT
    assert check_edge_frame(b"\x00" * (MAX_EDGE_FRAME + 1), nothing_held)[0].verdict is Verdict.REJECT


def test_stale_duplicate_and_self_edges_are_ignored_not_rejected():
    # Arrange
    frame = sign_edge(edge(seq=10), ALICE.private_key)
    self_edge = sign_edge(edge(dst=ALICE_ID), ALICE.private_key)
    # Act
    stale = check_edge_frame(frame, lambda s, d, k: 11)[0]
    duplicate = check_edge_frame(frame, lambda s, d, k: 10)[0]
    newer = check_edge_frame(frame, lambda s, d, k: 9)[0]
    selfish = check_edge_frame(self_edge, nothing_held)[0]
    # Assert
    assert [v.verdict for v in (stale, duplicate, newer, selfish)] == [
        Verdict.IGNORE, Verdict.IGNORE, Verdict.ACCEPT, Verdict.IGNORE,
    ]


def test_kinds_of_one_pair_sum_and_clip():
    assert combine({"declared": 3.0, "click": 1.5}, cap=100.0) == 4.5
    assert combine({"declared": 80.0, "rating": 70.0}, cap=100.0) == 100.0
    assert combine({"declared": -2.0, "click": 2.0}, cap=100.0) == 0.0


def test_trust_settings_read_options_and_refuse_bad_ones(tmp_path: Path):
    # Arrange
    good = NodeSettings(home=tmp_path, options=(("trust.walks", "500"), ("trust.beta", "0.5"), ("other", "x")))
    unknown = NodeSettings(home=tmp_path, options=(("trust.walk", "500"),))
    out_of_range = NodeSettings(home=tmp_path, options=(("trust.alpha", "1.5"),))
    not_a_number = NodeSettings(home=tmp_path, options=(("trust.walks", "many"),))
    # Act
    settings = TrustSettings.from_options(good)
    # Assert
    assert (settings.walks, settings.beta, settings.tau) == (500, 0.5, 1.0)
    for bad, reason in ((unknown, "unknown option"), (out_of_range, "alpha"), (not_a_number, "not a int")):
        with pytest.raises(ValueError, match=reason):
            TrustSettings.from_options(bad)
    with pytest.raises(ValueError, match="recompute_interval_s"):
        TrustSettings(recompute_interval_s=0).validate()
