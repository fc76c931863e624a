"""Score records on the wire: round trip, forgery, replay, stale and malformed frames."""

from __future__ import annotations

import pytest
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID

from learning.gauntlet import GauntletSettings, ScoreBook, ScoreRecord
from protocols import gauntlet as wire
from protocols.codec import DecodeError, decode, encode
from protocols.validation import Verdict

RUN = "g"


def peer_id(keys) -> bytes:
    return ID.from_pubkey(keys.public_key).to_bytes()


def frame(keys, round_: int, validator: bytes | None = None, run: str = RUN) -> bytes:
    scores = {b"\x05" * 38: 0.25, b"\x07" * 38: 0.0}
    record = ScoreRecord.from_scores(validator or peer_id(keys), round_, scores)
    return wire.sign_scores(wire.score_message(run, record), keys.private_key)


def test_a_signed_score_record_round_trips_into_the_core_record():
    keys = create_new_key_pair()
    received = wire.decode_score_frame(frame(keys, 4))
    record = received.msg.to_record()
    assert received.author == peer_id(keys)
    assert record.round == 4
    assert record.as_dict() == {b"\x05" * 38: 0.25, b"\x07" * 38: 0.0}


def test_a_record_signed_by_someone_else_than_its_validator_is_rejected_as_forged():
    victim, attacker = create_new_key_pair(), create_new_key_pair()
    book = ScoreBook(GauntletSettings())
    verdict, received = wire.check_score_frame(frame(attacker, 3, validator=peer_id(victim)), RUN, 3, book)
    assert verdict.verdict is Verdict.REJECT and "forged" in verdict.reason
    assert received is None and not book.latest


def test_a_replayed_or_stale_record_is_ignored_and_not_admitted_twice():
    keys = create_new_key_pair()
    book = ScoreBook(GauntletSettings(score_record_window=2))
    first, _ = wire.check_score_frame(frame(keys, 5), RUN, 5, book)
    replay, _ = wire.check_score_frame(frame(keys, 5), RUN, 6, book)
    stale, _ = wire.check_score_frame(frame(create_new_key_pair(), 1), RUN, 6, book)
    assert first.verdict is Verdict.ACCEPT
    assert replay.verdict is Verdict.IGNORE and "replay" in replay.reason
    assert stale.verdict is Verdict.IGNORE and "stale" in stale.reason
    assert len(book.latest) == 1


def test_another_runs_record_is_ignored():
    verdict, _ = wire.check_score_frame(frame(create_new_key_pair(), 1, run="other"), RUN, 1,
                                        ScoreBook(GauntletSettings()))
    assert verdict.verdict is Verdict.IGNORE


def test_a_tampered_frame_is_rejected():
    data = bytearray(frame(create_new_key_pair(), 2))
    data[-70] ^= 0x01
    verdict, _ = wire.check_score_frame(bytes(data), RUN, 2, ScoreBook(GauntletSettings()))
    assert verdict.verdict is Verdict.REJECT


def test_unsorted_peers_or_mismatched_scores_do_not_decode():
    unsorted = wire.ScoreMessage(RUN, 1, b"\x01" * 38, (b"\x03" * 38, b"\x02" * 38), (0.1, 0.2))
    short = wire.ScoreMessage(RUN, 1, b"\x01" * 38, (b"\x02" * 38,), (0.1, 0.2))
    for bad in (unsorted, short):
        with pytest.raises(DecodeError):
            decode(encode(bad), expect=wire.ScoreMessage)
