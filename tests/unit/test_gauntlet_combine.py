"""Validators' score records: admission (forgery, replay) and reputation-weighted combination."""

import pytest

from learning.gauntlet import GauntletSettings, ScoreBook, ScoreRecord, ScoreRejected, combine_scores

S = GauntletSettings()
HONEST_PEERS = [b"h1", b"h2", b"h3"]
ADVERSARY = b"adv"


def honest_view(validator: bytes) -> ScoreRecord:
    return ScoreRecord.from_scores(validator, 10, {**{p: 1.0 for p in HONEST_PEERS}, ADVERSARY: 0.0})


def praise(validator: bytes) -> ScoreRecord:
    return ScoreRecord.from_scores(validator, 10, {**{p: 0.0 for p in HONEST_PEERS}, ADVERSARY: 1.0})


def test_forged_record_is_rejected():
    book = ScoreBook(S)

    with pytest.raises(ScoreRejected, match="forged"):
        book.admit(honest_view(b"v1"), author=b"mallory", current_round=10)


def test_replayed_record_is_rejected():
    book = ScoreBook(S)
    book.admit(honest_view(b"v1"), author=b"v1", current_round=10)

    with pytest.raises(ScoreRejected, match="replay"):
        book.admit(honest_view(b"v1"), author=b"v1", current_round=10)


def test_stale_and_future_records_are_rejected():
    book = ScoreBook(S)

    with pytest.raises(ScoreRejected, match="stale"):
        book.admit(honest_view(b"v1"), author=b"v1", current_round=20)
    with pytest.raises(ScoreRejected, match="future"):
        book.admit(honest_view(b"v1"), author=b"v1", current_round=9)


def test_score_record_refuses_bad_scores():
    with pytest.raises(ValueError):
        ScoreRecord(b"v", 1, ((b"a", -1.0),))
    with pytest.raises(ValueError):
        ScoreRecord(b"v", 1, ((b"b", 1.0), (b"a", 1.0)))


def test_book_round_trips_through_a_dict():
    book = ScoreBook(S)
    book.admit(honest_view(b"v1"), author=b"v1", current_round=10)

    restored = ScoreBook.from_dict(book.to_dict(), S)

    assert restored.records() == book.records()


def test_sybil_validator_swarm_moves_an_adversary_less_than_one_honest_validator():
    honest_validators = [b"v1", b"v2", b"v3"]
    reputation = {v: 0.2 for v in honest_validators + [b"v4"]}
    sybils = [f"sybil-{i}".encode() for i in range(50)]
    reputation.update({s: 0.001 for s in sybils})
    baseline = combine_scores([honest_view(v) for v in honest_validators], reputation, S)[ADVERSARY]

    with_honest = combine_scores([honest_view(v) for v in honest_validators] + [praise(b"v4")], reputation, S)
    with_swarm = combine_scores([honest_view(v) for v in honest_validators] + [praise(s) for s in sybils],
                                reputation, S)

    moved_by_honest = with_honest[ADVERSARY] - baseline
    moved_by_swarm = with_swarm[ADVERSARY] - baseline
    assert 0 <= moved_by_swarm < moved_by_honest
    assert with_swarm[ADVERSARY] < min(with_swarm[p] for p in HONEST_PEERS)


def test_swarm_alone_cannot_lift_a_peer_far():
    sybils = [f"sybil-{i}".encode() for i in range(50)]
    reputation = {s: 0.0001 for s in sybils}

    combined = combine_scores([praise(s) for s in sybils], reputation, S)

    assert combined[ADVERSARY] < 0.1


def test_unknown_validators_and_self_scores_are_ignored():
    record = ScoreRecord.from_scores(b"v1", 3, {b"v1": 5.0, b"a": 1.0})

    assert combine_scores([record], {}, S) == {}
    assert combine_scores([record], {b"v1": 1.0}, S) == {b"a": pytest.approx(1.0 / 1.05)}
