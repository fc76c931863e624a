"""Sybil attack graph builders and MeritRank's behaviour on them (small honest graph)."""

import networkx as nx
import pytest

from recsys.attacks import SHAPES, AttackSettings, attack_graph, sybil_region
from recsys.meritrank import MeritRank, MeritRankSettings

SMALL = AttackSettings(honest=200, sybils=20)


def digraph(edges) -> nx.DiGraph:
    g = nx.DiGraph()
    g.add_weighted_edges_from(edges)
    return g


@pytest.mark.parametrize("shape", SHAPES)
def test_sybils_are_reachable_only_through_the_attacker(shape):
    ag = attack_graph(shape, seed=1, settings=SMALL)
    g = digraph(ag.edges)

    assert nx.shortest_path_length(g, ag.ego, ag.attacker) == SMALL.attacker_distance
    assert all(nx.has_path(g, ag.ego, s) for s in ag.sybils)
    g.remove_node(ag.attacker)
    assert not any(nx.has_path(g, ag.ego, s) for s in ag.sybils)


def test_honest_edges_are_reciprocal_with_weights_in_range():
    ag = attack_graph("serial", seed=2, settings=SMALL)
    honest = {(u, v): w for u, v, w in ag.edges if u in ag.honest and v in ag.honest}

    assert all((v, u) in honest for u, v in honest)
    assert all(SMALL.weight_low <= w <= SMALL.weight_high for w in honest.values())


def test_shapes_have_the_documented_edges():
    serial = sybil_region("serial", attacker=0, first_id=10, count=3, weight=20.0)
    parallel = sybil_region("parallel", attacker=0, first_id=10, count=2, weight=20.0)
    cycle = sybil_region("serial_cycle", attacker=0, first_id=10, count=3, weight=20.0)

    assert serial == [(0, 10, 20.0), (10, 11, 20.0), (11, 12, 20.0)]
    assert parallel == [(0, 10, 20.0), (10, 0, 20.0), (0, 11, 20.0), (11, 0, 20.0)]
    assert cycle == serial + [(12, 0, 20.0)]
    with pytest.raises(ValueError, match="shape"):
        sybil_region("star", 0, 10, 3, 20.0)


def test_same_seed_same_graph():
    assert attack_graph("parallel", seed=3, settings=SMALL) == attack_graph("parallel", seed=3, settings=SMALL)


@pytest.mark.parametrize("shape", SHAPES)
def test_sybil_gain_shrinks_as_one_minus_beta(shape):
    ag = attack_graph(shape, seed=0, settings=SMALL)
    mr = MeritRank(MeritRankSettings(walks=4000), seed=0)
    for u, v, w in ag.edges:
        mr.add_edge(u, v, w)

    def gain(beta):
        s = mr.scores(ag.ego, beta=beta, tau=1.0)
        return sum(s.get(x, 0.0) for x in ag.sybils) / s[ag.attacker]

    assert mr.walks_reaching(ag.ego, ag.attacker) > 0
    assert gain(0.0) > 0
    assert gain(0.9) == pytest.approx(0.1 * gain(0.0))
    assert gain(1.0) == 0.0
