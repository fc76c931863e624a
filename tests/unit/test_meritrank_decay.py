"""MeritRank connectivity decay, negative edges, epoch decay, settings and API errors."""

import numpy as np
import pytest

from recsys.meritrank import MeritRank, MeritRankSettings
from recsys.meritrank.decay import connectivity


def flat(walks):
    ids = np.concatenate([np.full(len(w), i) for i, w in enumerate(walks)])
    nodes = np.concatenate([np.asarray(w) for w in walks])
    return ids, nodes


def test_rho_is_the_largest_share_of_walks_through_one_intermediary():
    ids, nodes = flat([[0, 1, 2], [0, 1, 3, 2], [0, 3, 2], [0, 2, 0, 1]])

    rho = connectivity(ids, nodes, ego=0, n_nodes=4)

    # node 2: hit by 4 walks, 2 of them passed 1 first, 2 passed 3 first -> 2/4; the ego never counts.
    assert rho[2] == pytest.approx(0.5)
    # node 3: hit by 2 walks, one passed 1 first -> 1/2
    assert rho[3] == pytest.approx(0.5)
    # node 1: reached from 0 directly, or after 2 in the last walk -> 1/3
    assert rho[1] == pytest.approx(1 / 3)
    assert rho[0] == 0.0


def bridge_graph() -> MeritRank:
    """Ego 'e' with friends a, b; a is the only way to bridge x, which leads to a region r1, r2."""
    mr = MeritRank(MeritRankSettings(walks=5000), seed=1)
    for u, v in [("e", "a"), ("a", "e"), ("e", "b"), ("b", "e"), ("a", "b"), ("b", "a")]:
        mr.add_edge(u, v, 1.0)
    for u, v in [("a", "x"), ("x", "r1"), ("r1", "r2"), ("r2", "x")]:
        mr.add_edge(u, v, 1.0)
    return mr


def test_beta_one_cuts_a_region_reachable_only_through_a_bridge():
    mr = bridge_graph()

    plain = mr.scores("e")
    cut = mr.scores("e", beta=1.0, tau=1.0)

    assert plain["r1"] > 0 and plain["r2"] > 0
    assert "r1" not in cut and "r2" not in cut
    assert cut["a"] == pytest.approx(plain["a"])
    assert cut["b"] == pytest.approx(plain["b"])


def test_partial_beta_scales_the_cut_region_by_one_minus_beta():
    mr = bridge_graph()

    plain = mr.scores("e")
    half = mr.scores("e", beta=0.5, tau=1.0)

    assert half["r2"] == pytest.approx(0.5 * plain["r2"])


def test_ego_distrust_subtracts_its_share_of_out_weight():
    mr = MeritRank(MeritRankSettings(walks=4000), seed=2)
    mr.add_edge("e", "a", 1.0)
    mr.add_edge("e", "b", 1.0)
    mr.add_edge("a", "c", 1.0)
    mr.add_edge("e", "c", -2.0)

    scores = mr.scores("e")
    hit_c = mr.walks_reaching("e", "c") / 4000

    assert scores["c"] == pytest.approx(hit_c - 2.0 / 4.0)
    assert all(step != ("e", "c") for w in mr.walks("e") for step in zip(w, w[1:]))


def test_distrust_by_another_node_is_weighted_by_its_reputation():
    mr = MeritRank(MeritRankSettings(walks=4000), seed=3)
    mr.add_edge("e", "a", 1.0)
    mr.add_edge("a", "b", 3.0)
    mr.add_edge("e", "b", 1.0)
    mr.add_edge("a", "c", -1.0)

    scores = mr.scores("e")
    share = 1.0 / 4.0

    assert scores["c"] == pytest.approx(-share * mr.walks_reaching("e", "a") / 4000)


def test_epoch_decay_scales_weights_and_prunes_below_the_floor():
    mr = MeritRank(MeritRankSettings(walks=2000, epoch_decay=0.5, prune_below=0.3), seed=4)
    mr.add_edge("e", "a", 1.0)
    mr.add_edge("e", "b", 0.5)
    mr.add_edge("b", "c", 0.5)
    before = mr.scores("e")

    mr.advance_epoch()

    assert before["c"] > 0
    assert mr.weight("e", "a") == pytest.approx(0.5)
    assert mr.weight("e", "b") is None
    assert mr.weight("b", "c") is None
    assert set(mr.scores("e")) == {"a"}


def test_scores_for_an_unknown_ego_are_empty():
    mr = MeritRank(MeritRankSettings(walks=100))

    assert mr.scores("nobody") == {}
    assert mr.top_k("nobody", 5) == []
    assert mr.walks_reaching("nobody", "x") == 0


def test_top_k_is_sorted_and_excludes_the_ego():
    mr = MeritRank(MeritRankSettings(walks=3000), seed=5)
    for v, w in [("a", 5.0), ("b", 1.0), ("c", 3.0)]:
        mr.add_edge("e", v, w)
    mr.add_edge("a", "e", 1.0)

    top = mr.top_k("e", 2)

    assert [n for n, _ in top] == ["a", "c"]
    assert top[0][1] >= top[1][1]


@pytest.mark.parametrize(
    "field, value",
    [("walks", 0), ("alpha", 0.0), ("alpha", 1.0), ("beta", 1.5), ("tau", 0.0), ("epoch_decay", 0.0),
     ("prune_below", -1.0), ("counting", "pagerank")],
)
def test_settings_reject_out_of_range_values(field, value):
    with pytest.raises(ValueError, match=field):
        MeritRankSettings(**{field: value}).validate()


def test_bad_edges_raise_clear_errors():
    mr = MeritRank(MeritRankSettings(walks=10))

    with pytest.raises(ValueError, match="non-zero"):
        mr.add_edge("a", "b", 0.0)
    with pytest.raises(ValueError, match="finite"):
        mr.add_edge("a", "b", float("nan"))
    with pytest.raises(ValueError, match="self-trust"):
        mr.add_edge("a", "a", 1.0)
    with pytest.raises(ValueError, match="no edge"):
        mr.update_edge("a", "b", 1.0)
    with pytest.raises(ValueError, match="no edge"):
        mr.remove_edge("a", "b")
    with pytest.raises(ValueError, match="beta"):
        mr.scores("a", beta=2.0)


def test_beta_scores_still_work_after_many_unreached_nodes_join():
    # Arrange: score once (rho cached), then the graph grows far away from every walk
    from recsys.meritrank import MeritRank, MeritRankSettings

    rank = MeritRank(MeritRankSettings(walks=500, beta=0.9, tau=1.0), seed=3)
    rank.add_edge("ego", "a", 1.0)
    rank.add_edge("a", "b", 1.0)
    rank.scores("ego")
    # Act
    for i in range(64):
        rank.add_edge(f"x{i}", f"y{i}", 1.0)
    scores = rank.scores("ego")
    # Assert
    assert scores["a"] > 0 and scores["b"] > 0
