"""MeritRank: Sybil-tolerant personalised reputation over a weighted directed trust graph.

Scores, for an ego and a node j != ego:

* "hit" counting: R(j) = H(j) / walks, H(j) = walks that reach j (an unbiased estimate of the probability
  that a walk from the ego ever hits j before it stops).
* "visit" counting: R(j) = V(j) / V, V(j) = visits of j, V = all visits of all walks (ego included): the
  Monte-Carlo estimate of personalised PageRank, as in the authors' notebook.
* Connectivity decay: where rho(j) >= tau, R(j) <- R(j) * (1 - beta * rho(j)) (see ``decay``); rho is
  computed from the hits on the same walks for both countings, so any beta/tau reuse one set of walks.
* Negative edges (distrust). Walks follow positive edges only. A distrust edge k -> j with weight w < 0
  subtracts from j the reputation mass that k holds times k's share |w| / sum|w_k*| of its out-weight:
  penalty(j) = sum_k m(k) * share(k, j), with m(k) = H(k)/walks (hit; m(ego) = 1) or V(k)/V (visit).
  In other words a walk that reaches k is "pushed back" from j by the share k distrusts j.
  The penalty is applied after connectivity decay; scores may be negative.
* Epoch decay: ``advance_epoch`` multiplies all weights by theta and prunes edges whose |w| falls under
  ``prune_below``. Uniform scaling leaves walks valid; only pruned edges trigger resampling.

Edge changes resample, for every ego with walks, only the walks that visit the edge's source, from their
first visit of it. Deterministic under a seed for a given sequence of calls.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from dataclasses import replace

import numpy as np

from recsys.meritrank.decay import decay_factor
from recsys.meritrank.graph import TrustGraph, check_weight
from recsys.meritrank.settings import MeritRankSettings
from recsys.meritrank.walks import Uniforms, WalkSet


class MeritRank:
    """Trust graph plus the walks of every ego asked about so far."""

    def __init__(self, settings: MeritRankSettings | None = None, seed: int = 0) -> None:
        self.settings = settings if settings is not None else MeritRankSettings()
        self.settings.validate()
        self._rng = np.random.default_rng(seed)
        self._draw = Uniforms(self._rng)
        self._graph = TrustGraph()
        self._walksets: dict[int, WalkSet] = {}

    # ---- graph ----------------------------------------------------------------------------------

    def add_edge(self, src: Hashable, dst: Hashable, weight: float) -> None:
        """Set src -> dst to weight (insert or replace); weight < 0 is distrust."""
        w = check_weight(weight)
        if src == dst:
            raise ValueError(f"self-trust edges are not allowed ({src!r})")
        s, d = self._graph.index(src), self._graph.index(dst)
        self._graph.set(s, d, w)
        self._resample(s)

    def update_edge(self, src: Hashable, dst: Hashable, weight: float) -> None:
        """Change the weight of an existing edge src -> dst."""
        w = check_weight(weight)
        s, d = self._existing(src, dst)
        self._graph.set(s, d, w)
        self._resample(s)

    def remove_edge(self, src: Hashable, dst: Hashable) -> None:
        """Delete an existing edge src -> dst."""
        s, d = self._existing(src, dst)
        self._graph.remove(s, d)
        self._resample(s)

    def weight(self, src: Hashable, dst: Hashable) -> float | None:
        """Weight of src -> dst, or None when there is no such edge."""
        s, d = self._graph.lookup(src), self._graph.lookup(dst)
        return None if s is None or d is None else self._graph.weight(s, d)

    def edges(self) -> Iterator[tuple[Hashable, Hashable, float]]:
        """Every edge as (src, dst, weight)."""
        nodes = self._graph.nodes
        for s, d, w in self._graph.edges():
            yield nodes[s], nodes[d], w

    def advance_epoch(self) -> None:
        """Multiply every weight by theta (epoch_decay) and remove edges whose |weight| < prune_below."""
        self._graph.scale(self.settings.epoch_decay)
        floor = self.settings.prune_below
        doomed = [(s, d) for s, d, w in self._graph.edges() if abs(w) < floor]
        for s, d in doomed:
            self._graph.remove(s, d)
            self._resample(s)

    def prepare(self) -> None:
        """Build the vectorised sampling arrays now (otherwise done lazily by the first fresh walk set)."""
        self._graph.csr()

    def _existing(self, src: Hashable, dst: Hashable) -> tuple[int, int]:
        s, d = self._graph.lookup(src), self._graph.lookup(dst)
        if s is None or d is None or self._graph.weight(s, d) is None:
            raise ValueError(f"no edge {src!r} -> {dst!r}")
        return s, d

    def _resample(self, src: int) -> None:
        for ws in self._walksets.values():
            ws.resample_from(src, self._graph, self.settings.alpha, self._rng, self._draw)

    # ---- reputation -------------------------------------------------------------------------------

    def scores(
        self,
        ego: Hashable,
        *,
        beta: float | None = None,
        tau: float | None = None,
        counting: str | None = None,
    ) -> dict[Hashable, float]:
        """Reputation of every node with a non-zero score from ego's view (ego excluded)."""
        arr = self.score_array(ego, beta=beta, tau=tau, counting=counting)
        if arr is None:
            return {}
        nodes = self._graph.nodes
        return {nodes[i]: float(arr[i]) for i in np.flatnonzero(arr).tolist()}

    def score_array(
        self,
        ego: Hashable,
        *,
        beta: float | None = None,
        tau: float | None = None,
        counting: str | None = None,
    ) -> np.ndarray | None:
        """Scores as an array indexed like ``node_ids()`` (ego's entry is 0), or None for an unknown ego."""
        opts = replace(
            self.settings,
            beta=self.settings.beta if beta is None else beta,
            tau=self.settings.tau if tau is None else tau,
            counting=self.settings.counting if counting is None else counting,
        )
        opts.validate()
        ws = self._walkset(ego)
        if ws is None:
            return None
        n = len(self._graph)
        ws.ensure(n)
        if opts.counting == "hit":
            mass = ws.hits[:n] / ws.count
        else:
            mass = ws.visits[:n] / ws.total_visits
        score = mass.copy()
        if opts.beta > 0.0:
            score *= decay_factor(ws.rho()[:n], opts.beta, opts.tau)
        score -= self._penalty(mass, ws.ego, opts.counting, n)
        score[ws.ego] = 0.0
        return score

    def _penalty(self, mass: np.ndarray, ego: int, counting: str, n: int) -> np.ndarray:
        neg = self._graph.negative()
        penalty = np.zeros(n, dtype=np.float64)
        if neg.src.size:
            m = mass[neg.src]
            if counting == "hit":
                m = np.where(neg.src == ego, 1.0, m)
            np.add.at(penalty, neg.dst, m * neg.share)
        return penalty

    def node_ids(self) -> list[Hashable]:
        """All nodes in index order (the order of ``score_array``)."""
        return list(self._graph.nodes)

    def top_k(self, ego: Hashable, k: int) -> list[tuple[Hashable, float]]:
        """The k best-scored nodes from ego's view, best first (ties broken by node index)."""
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        arr = self.score_array(ego)
        if arr is None or k == 0:
            return []
        order = np.lexsort((np.arange(arr.size), -arr))
        nodes = self._graph.nodes
        return [(nodes[i], float(arr[i])) for i in order[:k].tolist() if arr[i] != 0.0]

    def walks_reaching(self, ego: Hashable, node: Hashable) -> int:
        """How many of ego's walks reach node (0 for unknown nodes)."""
        ws = self._walkset(ego)
        j = self._graph.lookup(node)
        if ws is None or j is None or j >= ws.hits.size:
            return 0
        return int(ws.hits[j])

    def walks(self, ego: Hashable) -> list[list[Hashable]]:
        """ego's current walks as node lists (for inspection and tests)."""
        ws = self._walkset(ego)
        if ws is None:
            return []
        nodes = self._graph.nodes
        return [[nodes[u] for u in ws.path(w)] for w in range(ws.count)]

    def forget(self, ego: Hashable) -> None:
        """Drop ego's walks (they are resampled on the next query)."""
        e = self._graph.lookup(ego)
        if e is not None:
            self._walksets.pop(e, None)

    def _walkset(self, ego: Hashable) -> WalkSet | None:
        e = self._graph.lookup(ego)
        if e is None:
            return None
        ws = self._walksets.get(e)
        if ws is None:
            ws = WalkSet.fresh(self._graph, e, self.settings.walks, self.settings.alpha, self._rng)
            self._walksets[e] = ws
        return ws
