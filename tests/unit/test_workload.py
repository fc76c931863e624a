"""Workload generator and ranking metrics."""

import numpy as np
import pytest

from recsys.workload import (
    WorkloadSettings,
    generate_workload,
    mrr,
    recall_at_k,
    reciprocal_rank,
    sessions_to_entries,
)

SMALL = WorkloadSettings(n_users=40, n_items=60, n_tags=10, n_communities=4, sessions_per_user=5, heldout_per_user=2)


def test_same_seed_same_workload_other_seed_differs():
    a, b, c = generate_workload(SMALL, seed=1), generate_workload(SMALL, seed=1), generate_workload(SMALL, seed=2)

    assert a == b
    assert a.train != c.train


def test_sessions_are_consistent_with_the_catalogue():
    w = generate_workload(SMALL, seed=0)
    tags = {it.item_id: set(it.tags) for it in w.items}

    assert len(w.train) == SMALL.n_users * SMALL.sessions_per_user
    assert len(w.heldout) == SMALL.n_users * SMALL.heldout_per_user
    for s in w.train + w.heldout:
        assert s.clicked in s.shown
        assert len(s.shown) <= SMALL.shown_k
        assert all(s.query[0] in tags[i] for i in s.shown)


def test_every_tag_has_items_and_trust_is_reciprocal():
    w = generate_workload(SMALL, seed=0)
    edges = {(s, d) for s, d, _ in w.trust_edges}

    assert len(w.tag_items()) == SMALL.n_tags
    assert all((d, s) in edges for s, d in edges)
    assert all(SMALL.trust_weight_min <= wt <= SMALL.trust_weight_max for _, _, wt in w.trust_edges)


def test_position_bias_pulls_clicks_to_the_top():
    def mean_click_position(bias):
        w = generate_workload(WorkloadSettings(**{**SMALL.__dict__, "position_bias": bias}), seed=0)
        return np.mean([s.shown.index(s.clicked) for s in w.train])

    assert mean_click_position(3.0) < mean_click_position(0.0) - 1.0


def test_sessions_to_entries_numbers_per_user():
    w = generate_workload(SMALL, seed=0)

    entries = sessions_to_entries(w.train)

    first_user = [e for e in entries if e.author == w.users[0]]
    assert [e.seq for e in first_user] == list(range(SMALL.sessions_per_user))
    assert len({e.entry_id for e in entries}) == len(entries)


def test_metrics_on_hand_values():
    rankings = [["a", "b", "c"], ["b", "c", "a"], ["c", "b"]]
    truths = ["a", "a", "a"]

    assert reciprocal_rank(["x", "y"], "y") == 0.5
    assert mrr(rankings, truths) == pytest.approx((1 + 1 / 3 + 0) / 3)
    assert recall_at_k(rankings, truths, 1) == pytest.approx(1 / 3)
    assert recall_at_k(rankings, truths, 3) == pytest.approx(2 / 3)


def test_bad_settings_and_inputs_raise():
    with pytest.raises(ValueError):
        WorkloadSettings(n_items=5, n_tags=10).validate()
    with pytest.raises(ValueError):
        mrr([["a"]], [])
    with pytest.raises(ValueError):
        recall_at_k([["a"]], ["a"], 0)
