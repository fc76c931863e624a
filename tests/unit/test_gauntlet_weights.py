"""Final scores → aggregation weights and trust edges."""

import pytest

from learning.gauntlet import (
    GauntletSettings,
    GauntletState,
    PeerEval,
    Screening,
    aggregation_weights,
    round_weights,
    trust_edges,
)
from learning.gauntlet.filters import FLAG_DUPLICATE

S = GauntletSettings()


def test_squared_weights_sum_to_one_and_ignore_zero_scores():
    weights = aggregation_weights({b"a": 3.0, b"b": 1.0, b"c": 0.0}, S)

    assert sum(weights.values()) == pytest.approx(1.0)
    assert weights[b"c"] == 0.0
    assert weights[b"a"] == pytest.approx(0.9) and weights[b"b"] == pytest.approx(0.1)


def test_topk_ramp_weights_only_the_top_k():
    settings = GauntletSettings(weighting="topk_ramp", topk=2)

    weights = aggregation_weights({b"a": 3.0, b"b": 2.0, b"c": 1.0, b"d": 0.0}, settings)

    assert weights == {b"a": pytest.approx(2 / 3), b"b": pytest.approx(1 / 3), b"c": 0.0, b"d": 0.0}


def test_all_zero_scores_give_all_zero_weights():
    assert aggregation_weights({b"a": 0.0, b"b": 0.0}, S) == {b"a": 0.0, b"b": 0.0}


def test_negative_or_nan_scores_are_refused():
    with pytest.raises(ValueError):
        aggregation_weights({b"a": -1.0}, S)
    with pytest.raises(ValueError):
        aggregation_weights({b"a": float("nan")}, S)


def test_round_weights_name_every_peer_and_sum_to_the_effective_contributors():
    weights = round_weights({b"a": 0.75, b"b": 0.25}, [b"a", b"b", b"x"])

    assert weights == {b"a": pytest.approx(1.2), b"b": pytest.approx(0.4), b"x": 0.0}


def test_round_weights_of_k_equal_peers_are_all_one():
    weights = round_weights({b"a": 0.5, b"b": 0.5, b"c": 0.0}, [b"a", b"b", b"c"])

    assert weights == {b"a": pytest.approx(1.0), b"b": pytest.approx(1.0), b"c": 0.0}


def test_trust_edges_positive_for_scored_and_negative_for_slashed():
    state = GauntletState(S)
    state.apply_screenings(0, {b"good": Screening(b"good", (), 0, 1.0),
                               b"cheat": Screening(b"cheat", (FLAG_DUPLICATE,), 0, 1.0)})
    for r in range(40):
        state.apply_evaluations(r, {b"good": PeerEval(b"good", 10, 9, 10, 8, 3),
                                    b"meh": PeerEval(b"meh", 10, 9.5, 10, 9.6, 3)}, rejected=[b"cheat"])

    edges = dict(trust_edges(state))

    assert edges[b"good"] == pytest.approx(1.0)
    assert edges[b"cheat"] < 0 and edges[b"meh"] < 0
    assert all(-1.0 <= w <= 1.0 for w in edges.values())


def test_score_rows_are_json_ready_and_sorted_by_final():
    import json

    from learning.gauntlet import score_rows

    state = GauntletState(S)
    state.apply_screenings(0, {b"a": Screening(b"a", (), 0, 1.0), b"b": Screening(b"b", (), 0, 1.0)})
    for r in range(20):
        state.apply_evaluations(r, {b"a": PeerEval(b"a", 10, 9, 10, 8, 3), b"b": PeerEval(b"b", 10, 9.5, 10, 9.6, 3)})

    rows = score_rows(state, weights=aggregation_weights(state.final_scores(), S))

    assert [row["peer"] for row in rows] == [b"a".hex(), b"b".hex()]
    assert rows[0]["weight"] == pytest.approx(1.0)
    json.dumps(rows)
