"""Stage 1: sync formula, screening flags, copycat / duplicate / replay detection."""

import pytest

from learning.gauntlet import (
    FLAG_BEHIND,
    FLAG_DUPLICATE,
    FLAG_LATE,
    FLAG_MALFORMED,
    FLAG_REPLAY,
    FLAG_WRONG_ROUND,
    DuplicateGuard,
    GauntletSettings,
    RoundContext,
    Submission,
    screen_round,
    sync_score,
)
from learning.spsa import ByteCodec, UpdateRecord

S = GauntletSettings()
CHECK = b"c" * 8
OLD = b"o" * 8


def rec(peer: bytes, grads: bytes, round_: int = 5, base: bytes = CHECK, run: str = "r") -> UpdateRecord:
    return UpdateRecord(run, round_, peer, grads, base)


def ctx(round_: int = 5) -> RoundContext:
    return RoundContext("r", round_, CHECK, {OLD: round_ - 2}, expected_grads_len=4, codec=ByteCodec())


@pytest.mark.parametrize("behind,expected", [(0, 1.0), (1, 0.8 ** 2.5), (3, 0.4 ** 2.5), (5, 0.0), (9, 0.0)])
def test_sync_score_matches_templar_formula(behind, expected):
    assert sync_score(behind, S) == pytest.approx(expected)


def test_sync_score_refuses_negative():
    with pytest.raises(ValueError):
        sync_score(-1, S)


def test_clean_record_is_accepted_with_full_sync():
    verdicts = screen_round([Submission(rec(b"a", b"\x01\x02\x03\x04"))], ctx(), DuplicateGuard(S), S)

    assert verdicts[b"a"].accepted and verdicts[b"a"].sync == 1.0 and verdicts[b"a"].flags == ()


def test_old_checksum_is_behind_but_accepted():
    verdicts = screen_round([Submission(rec(b"a", b"\x01\x02\x03\x04", base=OLD))], ctx(), DuplicateGuard(S), S)

    v = verdicts[b"a"]
    assert v.accepted and FLAG_BEHIND in v.flags and v.rounds_behind == 2 and v.sync == pytest.approx(0.6 ** 2.5)


def test_unknown_checksum_counts_as_maximally_behind():
    verdicts = screen_round([Submission(rec(b"a", b"\x01\x02\x03\x04", base=b"?" * 8))], ctx(), DuplicateGuard(S), S)

    assert verdicts[b"a"].sync == 0.0


@pytest.mark.parametrize("submission,flag", [
    (Submission(rec(b"a", b"\x01\x02\x03\x04"), on_time=False), FLAG_LATE),
    (Submission(rec(b"a", b"\x01\x02\x03\x04", round_=4)), FLAG_WRONG_ROUND),
    (Submission(rec(b"a", b"\x01\x02\x03")), FLAG_MALFORMED),
    (Submission(rec(b"a", b"\x01\x80\x03\x04")), FLAG_MALFORMED),
    (Submission(rec(b"a", b"\x01\x02\x03\x04", run="other")), FLAG_MALFORMED),
])
def test_unreliable_records_are_rejected(submission, flag):
    verdicts = screen_round([submission], ctx(), DuplicateGuard(S), S)

    assert flag in verdicts[b"a"].flags and not verdicts[b"a"].accepted


def test_unauthenticated_record_is_dropped_without_blaming_its_claimed_author():
    verdicts = screen_round([Submission(rec(b"a", b"\x01\x02\x03\x04"), authenticated=False)], ctx(),
                            DuplicateGuard(S), S)

    assert verdicts == {}


def test_copycat_of_same_round_is_flagged_and_original_kept():
    original = rec(b"honest", b"\x11\x22\x33\x44")
    copy = rec(b"copier", original.grads)

    verdicts = screen_round([Submission(original), Submission(copy)], ctx(), DuplicateGuard(S), S)

    assert verdicts[b"honest"].accepted
    assert FLAG_DUPLICATE in verdicts[b"copier"].flags and not verdicts[b"copier"].accepted


def test_replay_of_an_earlier_round_is_flagged():
    guard = DuplicateGuard(S)
    screen_round([Submission(rec(b"honest", b"\x11\x22\x33\x44", round_=4))], ctx(4), guard, S)

    verdicts = screen_round([Submission(rec(b"replayer", b"\x11\x22\x33\x44", round_=5))], ctx(5), guard, S)

    assert FLAG_REPLAY in verdicts[b"replayer"].flags


def test_second_record_from_one_peer_is_a_duplicate():
    verdicts = screen_round([Submission(rec(b"a", b"\x01\x02\x03\x04")),
                             Submission(rec(b"a", b"\x05\x06\x07\x08"))], ctx(), DuplicateGuard(S), S)

    assert FLAG_DUPLICATE in verdicts[b"a"].flags


def test_short_payloads_are_not_deduplicated():
    settings = GauntletSettings(dedup_min_bytes=8)
    verdicts = screen_round([Submission(rec(b"a", b"\x01\x02\x03\x04")), Submission(rec(b"b", b"\x01\x02\x03\x04"))],
                            ctx(), DuplicateGuard(settings), settings)

    assert verdicts[b"b"].accepted


def test_guard_round_trips_through_a_dict():
    guard = DuplicateGuard(S)
    screen_round([Submission(rec(b"a", b"\x11\x22\x33\x44", round_=4))], ctx(4), guard, S)
    restored = DuplicateGuard.from_dict(guard.to_dict(), S)

    verdicts = screen_round([Submission(rec(b"b", b"\x11\x22\x33\x44", round_=5))], ctx(5), restored, S)

    assert FLAG_REPLAY in verdicts[b"b"].flags


def test_settings_validate_rejects_bad_values():
    with pytest.raises(ValueError, match="slash_factor"):
        GauntletSettings(slash_factor=1.5).validate()
    with pytest.raises(ValueError, match="eval_batch_size"):
        GauntletSettings(eval_batch_size=9, assigned_pool_size=8).validate()


def test_a_wrong_round_record_does_not_reset_the_round_being_screened():
    guard = DuplicateGuard(S)
    original = rec(b"honest", b"\x11\x22\x33\x44")

    verdicts = screen_round([Submission(original), Submission(rec(b"old", b"\x01\x02\x03\x04", round_=2)),
                             Submission(rec(b"copier", original.grads))], ctx(), guard, S)

    assert FLAG_DUPLICATE in verdicts[b"copier"].flags
