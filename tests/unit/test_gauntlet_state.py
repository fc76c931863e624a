"""Scoring state: decay, slashing, binary EMA, OpenSkill ordering, final score, round-trip."""

import json

import pytest

from learning.gauntlet import GauntletSettings, GauntletState, PeerEval, Screening
from learning.gauntlet.filters import FLAG_DUPLICATE

S = GauntletSettings()


def ok(peer: bytes, sync: float = 1.0) -> Screening:
    return Screening(peer, (), 0, sync)


def ev(peer: bytes, random_after: float, own_after: float) -> PeerEval:
    return PeerEval(peer, 10.0, random_after, 10.0, own_after, 3)


def test_silent_peer_decays_by_inactive_factor_each_round():
    state = GauntletState(S)
    state.apply_screenings(0, {b"a": ok(b"a")}, known_peers=[b"a"])

    state.apply_screenings(1, {}, known_peers=[b"a"])
    state.apply_screenings(2, {}, known_peers=[b"a"])

    assert state.peer(b"a").activity == pytest.approx(0.75 ** 2)


def test_rejected_record_slashes_reliability():
    state = GauntletState(S)

    state.apply_screenings(0, {b"a": Screening(b"a", (FLAG_DUPLICATE,), 0, 1.0)})

    assert state.peer(b"a").reliability == pytest.approx(0.75) and state.peer(b"a").slashes == 1


def test_clean_rounds_recover_standing():
    state = GauntletState(S)
    state.apply_screenings(0, {b"a": Screening(b"a", (FLAG_DUPLICATE,), 0, 1.0)})

    state.apply_screenings(1, {b"a": ok(b"a")})

    assert state.peer(b"a").reliability == pytest.approx(0.75 + 0.1 * 0.25)


def test_uptime_counts_recent_accepted_rounds():
    state = GauntletState(GauntletSettings(uptime_window=4))
    for r in range(4):
        state.apply_screenings(r, {b"a": ok(b"a")} if r % 2 else {}, known_peers=[b"a"])

    assert state.uptime(b"a") == pytest.approx(0.5)


def test_binary_ema_follows_indicator():
    state = GauntletState(S)
    state.apply_screenings(0, {b"a": ok(b"a"), b"b": ok(b"b")})

    state.apply_evaluations(0, {b"a": ev(b"a", 9.9, 9.0), b"b": ev(b"b", 9.0, 9.9)})

    assert state.peer(b"a").binary_ema == pytest.approx(0.05)
    assert state.peer(b"b").binary_ema == pytest.approx(-0.05)


def test_ema_after_many_positive_rounds():
    state = GauntletState(S)
    for r in range(10):
        state.apply_evaluations(r, {b"a": ev(b"a", 9.9, 9.0), b"b": ev(b"b", 9.9, 9.0)})

    assert state.peer(b"a").binary_ema == pytest.approx(1 - 0.95 ** 10)


def test_openskill_orders_peers_by_their_gains_after_matches():
    state = GauntletState(S)
    for r in range(15):
        state.apply_evaluations(r, {b"good": ev(b"good", 9.0, 8.0), b"mid": ev(b"mid", 9.5, 9.0),
                                    b"bad": ev(b"bad", 11.0, 11.0)})

    assert state.ordinal(b"good") > state.ordinal(b"mid") > state.ordinal(b"bad")


def test_rejected_peers_lose_the_match():
    state = GauntletState(S)
    for r in range(5):
        state.apply_evaluations(r, {b"a": ev(b"a", 9.99, 9.98), b"b": ev(b"b", 9.99, 9.98)}, rejected=[b"c"])

    assert state.ordinal(b"c") < state.ordinal(b"a") and state.peer(b"c").binary_ema < 0


def test_final_score_is_zero_for_negative_ema_and_scales_with_sync():
    state = GauntletState(S)
    state.apply_screenings(0, {b"a": ok(b"a"), b"b": ok(b"b", sync=0.5), b"c": ok(b"c")})
    for r in range(30):
        state.apply_evaluations(r, {b"a": ev(b"a", 9.0, 8.0), b"b": ev(b"b", 9.0, 8.0), b"c": ev(b"c", 9.5, 9.9)})

    assert state.final_score(b"c") == 0.0
    assert state.final_score(b"a") > 0
    assert state.final_score(b"b") == pytest.approx(0.5 * state.final_score(b"a"), rel=0.05)


def test_wrecked_model_loss_is_clipped_into_a_finite_match_score():
    state = GauntletState(S)

    state.apply_evaluations(0, {b"a": ev(b"a", float("inf"), float("inf")), b"b": ev(b"b", 9.0, 8.0)})

    assert state.ordinal(b"a") < state.ordinal(b"b")


def test_state_round_trips_through_json():
    state = GauntletState(S)
    for r in range(3):
        state.apply_screenings(r, {b"a": ok(b"a"), b"b": Screening(b"b", (FLAG_DUPLICATE,), 0, 1.0)},
                               known_peers=[b"a", b"b", b"c"])
        state.apply_evaluations(r, {b"a": ev(b"a", 9.0, 8.0)}, rejected=[b"b"])

    restored = GauntletState.from_dict(json.loads(json.dumps(state.to_dict())), S)

    assert restored.to_dict() == state.to_dict()
    assert restored.final_scores() == state.final_scores()
    assert restored.guard.to_dict() == state.guard.to_dict()


def test_from_dict_refuses_unknown_version():
    with pytest.raises(ValueError, match="version"):
        GauntletState.from_dict({"version": 99}, S)


def test_rounds_must_not_go_backwards():
    state = GauntletState(S)
    state.apply_screenings(5, {})

    with pytest.raises(ValueError):
        state.apply_screenings(4, {})
