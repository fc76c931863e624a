"""MeritRank walk scores against exact hitting probabilities; incremental updates against fresh builds."""

import numpy as np

from recsys.meritrank import MeritRank, MeritRankSettings
from recsys.meritrank.walks import WalkSet

ALPHA = 0.15
SIGMAS = 3.0


def random_graph(n: int, out_degree: int, dead_ends: int, seed: int) -> list[tuple[int, int, float]]:
    rng = np.random.default_rng(seed)
    edges = []
    for u in range(n - dead_ends):
        targets = rng.choice([v for v in range(n) if v != u], size=out_degree, replace=False)
        edges += [(u, int(v), float(rng.uniform(0.5, 3.0))) for v in targets]
    return edges


def transition(edges, n) -> np.ndarray:
    p = np.zeros((n, n))
    for u, v, w in edges:
        if w > 0:
            p[u, v] += w
    rows = p.sum(axis=1, keepdims=True)
    return np.divide(p, rows, out=np.zeros_like(p), where=rows > 0)


def exact_hits(edges, n, ego, alpha=ALPHA) -> np.ndarray:
    """P(a walk from ego ever reaches j) by solving the absorbing chain for each target j."""
    p = transition(edges, n)
    out = np.zeros(n)
    for j in range(n):
        a = np.eye(n) - (1 - alpha) * p
        a[j] = 0.0
        a[j, j] = 1.0
        b = np.zeros(n)
        b[j] = 1.0
        out[j] = np.linalg.solve(a, b)[ego]
    out[ego] = 0.0
    return out


def exact_visits(edges, n, ego, alpha=ALPHA) -> np.ndarray:
    """Expected visits of j per walk, normalised over all visits (personalised PageRank)."""
    m = np.linalg.inv(np.eye(n) - (1 - alpha) * transition(edges, n))[ego]
    share = m / m.sum()
    share[ego] = 0.0
    return share


def build(edges, walks, seed=0, **kw) -> MeritRank:
    mr = MeritRank(MeritRankSettings(walks=walks, alpha=ALPHA, **kw), seed=seed)
    for u, v, w in edges:
        mr.add_edge(u, v, w)
    return mr


def assert_within_sigmas(mr: MeritRank, exact: np.ndarray, ego: int, walks: int) -> None:
    scores = mr.scores(ego)
    est = np.array([scores.get(j, 0.0) for j in range(exact.size)])
    se = np.sqrt(exact * (1 - exact) / walks)
    bad = np.flatnonzero(np.abs(est - exact) > SIGMAS * se + 1e-12)
    assert bad.size == 0, [(int(j), est[j], exact[j], se[j]) for j in bad]


def test_hit_scores_match_exact_hitting_probabilities():
    edges = random_graph(n=30, out_degree=3, dead_ends=3, seed=1)
    mr = build(edges, walks=20_000)

    exact = exact_hits(edges, 30, ego=0)

    assert_within_sigmas(mr, exact, ego=0, walks=20_000)


def test_visit_scores_match_personalised_pagerank():
    edges = random_graph(n=30, out_degree=3, dead_ends=3, seed=2)
    mr = build(edges, walks=20_000, counting="visit")

    scores = mr.scores(0)
    est = np.array([scores.get(j, 0.0) for j in range(30)])

    assert np.max(np.abs(est - exact_visits(edges, 30, ego=0))) < 0.01


def test_same_seed_same_scores_and_other_seed_differs():
    edges = random_graph(n=40, out_degree=4, dead_ends=0, seed=3)

    a, b, c = build(edges, 2000, seed=7), build(edges, 2000, seed=7), build(edges, 2000, seed=8)
    for mr in (a, b, c):
        mr.scores(0)
        mr.add_edge(5, 6, 4.0)

    assert a.scores(0, beta=0.5, tau=0.5) == b.scores(0, beta=0.5, tau=0.5)
    assert a.walks(0) == b.walks(0)
    assert a.scores(0) != c.scores(0)


def apply_updates(mr: MeritRank, edges, n, rounds, seed) -> list[tuple[int, int, float]]:
    """Random add/update/remove operations (ego edges included); returns the final edge list."""
    rng = np.random.default_rng(seed)
    current = {(u, v): w for u, v, w in edges}
    for _ in range(rounds):
        u, v = (int(x) for x in rng.choice(n, size=2, replace=False))
        op = rng.random()
        if (u, v) in current and op < 0.3:
            mr.remove_edge(u, v)
            del current[(u, v)]
        elif (u, v) in current:
            current[(u, v)] = float(rng.uniform(0.5, 3.0))
            mr.update_edge(u, v, current[(u, v)])
        else:
            current[(u, v)] = float(rng.uniform(0.5, 3.0))
            mr.add_edge(u, v, current[(u, v)])
    return [(u, v, w) for (u, v), w in current.items()]


def test_incremental_updates_keep_exact_distribution():
    edges = random_graph(n=30, out_degree=3, dead_ends=2, seed=4)
    mr = build(edges, walks=10_000)
    mr.scores(0)

    final = apply_updates(mr, edges, 30, rounds=30, seed=5)

    assert_within_sigmas(mr, exact_hits(final, 30, ego=0), ego=0, walks=10_000)


def test_incremental_counts_equal_a_fresh_build_on_the_same_walks():
    edges = random_graph(n=30, out_degree=3, dead_ends=2, seed=6)
    mr = build(edges, walks=3000)
    mr.scores(0)
    apply_updates(mr, edges, 30, rounds=40, seed=7)
    ws = mr._walksets[mr._graph.lookup(0)]

    ids, nodes = ws.flat()
    rebuilt = WalkSet(ws.ego, ws.count, ids, nodes, len(mr._graph))

    n = len(mr._graph)
    assert np.array_equal(ws.hits[:n], rebuilt.hits[:n])
    assert np.array_equal(ws.visits[:n], rebuilt.visits[:n])
    assert ws.total_visits == rebuilt.total_visits
    assert np.allclose(ws.rho()[:n], rebuilt.rho()[:n])
    for u in range(n):
        assert ws.walks_through(u) == rebuilt.walks_through(u)


def test_walks_follow_current_positive_edges_after_updates():
    edges = random_graph(n=25, out_degree=3, dead_ends=2, seed=8)
    mr = build(edges, walks=2000)
    mr.scores(0)

    final = apply_updates(mr, edges, 25, rounds=50, seed=9)

    positive = {(u, v) for u, v, w in final if w > 0}
    walks = mr.walks(0)
    assert len(walks) == 2000
    assert all(w[0] == 0 for w in walks)
    assert all((a, b) in positive for w in walks for a, b in zip(w, w[1:]))
    for j in range(1, 25):
        assert mr.walks_reaching(0, j) == sum(j in w for w in walks)


def test_update_from_ego_resamples_every_walk_and_stays_exact():
    edges = random_graph(n=20, out_degree=3, dead_ends=0, seed=10)
    mr = build(edges, walks=20_000)
    mr.scores(0)

    mr.add_edge(0, 19, 6.0)

    final = [(u, v, w) for u, v, w in edges if (u, v) != (0, 19)] + [(0, 19, 6.0)]
    assert_within_sigmas(mr, exact_hits(final, 20, ego=0), ego=0, walks=20_000)
