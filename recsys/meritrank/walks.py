"""Random walks from one ego: vectorised sampling, a per-node walk index, and incremental tail resampling.

A walk is the list of node indices it visits, starting with the ego. At every node (the ego included) the
walk stops with probability alpha; otherwise it moves along a positive out-edge chosen with probability
proportional to its weight, and it stops at a node without one.

Storage: the walks of the last full build live in flat numpy arrays (``base``) with a CSR index
node -> walks that visit it. Walks resampled since then live in a dict (``paths``) with a set-based index,
and shadow their base copy. Hit and visit counts are maintained on every change; when enough walks are
overridden (or an update touches many walks) everything is folded back into numpy arrays.
"""

from __future__ import annotations

import numpy as np

from recsys.meritrank.arrays import group_starts, unique_sorted
from recsys.meritrank.decay import connectivity
from recsys.meritrank.graph import Csr, TrustGraph

UNIFORM_CHUNK = 512
"""Uniform draws fetched from the Generator at once for scalar (per-walk) sampling."""

BATCH_FRACTION = 0.1
"""An update touching more than this share of the walks is resampled vectorised (and the arrays rebuilt)."""

COMPACT_FRACTION = 0.25
"""When this share of the walks is held as overrides, fold them back into the numpy arrays."""


class Uniforms:
    """Buffered scalar uniform draws in [0, 1) from a numpy Generator (single draws are slow)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._buf: list[float] = []

    def __call__(self) -> float:
        if not self._buf:
            self._buf = self._rng.random(UNIFORM_CHUNK).tolist()
            self._buf.reverse()
        return self._buf.pop()


def sample_walks(csr: Csr, starts: np.ndarray, alpha: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Walk from every start at once; return (walk ids, nodes) grouped by walk id, in visiting order."""
    count = len(starts)
    active = np.arange(count, dtype=np.int64)
    cur = np.asarray(starts, dtype=np.int64)
    ids, nodes = [active], [cur]
    while active.size:
        go = (rng.random(active.size) >= alpha) & (csr.row_total[cur] > 0.0)
        active, cur = active[go], cur[go]
        if not active.size:
            break
        target = csr.row_base[cur] + rng.random(active.size) * csr.row_total[cur]
        pos = np.searchsorted(csr.cum, target, side="right")
        cur = csr.indices[np.minimum(pos, csr.indptr[cur + 1] - 1)]
        ids.append(active)
        nodes.append(cur)
    all_ids = np.concatenate(ids)
    order = np.argsort(all_ids, kind="stable")
    return all_ids[order], np.concatenate(nodes)[order]


def sample_tail(graph: TrustGraph, start: int, alpha: float, draw: Uniforms) -> list[int]:
    """Continue one walk that stands at start; return the nodes visited after start."""
    tail: list[int] = []
    u: int | None = start
    while draw() >= alpha:
        u = graph.step(u, draw())
        if u is None:
            break
        tail.append(u)
    return tail


class _CountDelta:
    """Hit and visit count changes collected over one update, applied with a few numpy calls."""

    def __init__(self) -> None:
        self.hits_plus: list[int] = []
        self.hits_minus: list[int] = []
        self.visits_plus: list[int] = []
        self.visits_minus: list[int] = []

    def apply(self, ws: WalkSet) -> None:
        np.add.at(ws.hits, self.hits_plus, 1)
        np.subtract.at(ws.hits, self.hits_minus, 1)
        np.add.at(ws.visits, self.visits_plus, 1)
        np.subtract.at(ws.visits, self.visits_minus, 1)


class WalkSet:
    """All walks of one ego with hit/visit counts, kept consistent under edge changes."""

    def __init__(self, ego: int, count: int, ids: np.ndarray, nodes: np.ndarray, n_nodes: int) -> None:
        self.ego = ego
        self.count = count
        self._load(ids, nodes, n_nodes)

    @classmethod
    def fresh(cls, graph: TrustGraph, ego: int, count: int, alpha: float, rng: np.random.Generator) -> WalkSet:
        """Sample count walks from ego on the current graph."""
        ids, nodes = sample_walks(graph.csr(), np.full(count, ego, dtype=np.int64), alpha, rng)
        return cls(ego, count, ids, nodes, len(graph))

    def _load(self, ids: np.ndarray, nodes: np.ndarray, n_nodes: int) -> None:
        count = self.count
        self._base_ids = ids
        self._base_nodes = nodes
        self._base_start = np.searchsorted(ids, np.arange(count + 1))
        pairs = unique_sorted(nodes * count + ids)
        hit_nodes = pairs // count
        per_node = np.bincount(hit_nodes, minlength=n_nodes)
        self.hits = per_node.astype(np.int64)
        self.visits = np.bincount(nodes, minlength=n_nodes).astype(np.int64)
        self.total_visits = int(nodes.size)
        self._idx_ptr = np.zeros(n_nodes + 1, dtype=np.int64)
        np.cumsum(per_node, out=self._idx_ptr[1:])
        self._idx_walks = pairs % count
        self._paths: dict[int, list[int]] = {}
        self._over: dict[int, set[int]] = {}
        self._rho: np.ndarray | None = None

    def ensure(self, n_nodes: int) -> None:
        """Grow the count arrays to cover n_nodes nodes."""
        if n_nodes > self.hits.size:
            grow = max(n_nodes, 2 * self.hits.size) - self.hits.size
            self.hits = np.concatenate((self.hits, np.zeros(grow, dtype=np.int64)))
            self.visits = np.concatenate((self.visits, np.zeros(grow, dtype=np.int64)))
            self._rho = None  # cached per node index: stale once the arrays cover new nodes

    def path(self, w: int) -> list[int]:
        """The nodes of walk w, ego first."""
        p = self._paths.get(w)
        if p is not None:
            return p
        return self._base_nodes[self._base_start[w] : self._base_start[w + 1]].tolist()

    def walks_through(self, u: int) -> list[int]:
        """Ids of the walks that visit u, ascending."""
        found: list[int] = []
        if u < self._idx_ptr.size - 1:
            base = self._idx_walks[self._idx_ptr[u] : self._idx_ptr[u + 1]].tolist()
            found = [w for w in base if w not in self._paths] if self._paths else base
        over = self._over.get(u)
        if over:
            found = sorted(found + list(over))
        return found

    def flat(self) -> tuple[np.ndarray, np.ndarray]:
        """All current walks as (walk ids, nodes), grouped by walk id in visiting order."""
        if not self._paths:
            return self._base_ids, self._base_nodes
        stale = np.fromiter(self._paths, dtype=np.int64, count=len(self._paths))
        keep = ~np.isin(self._base_ids, stale)
        ids = [self._base_ids[keep]]
        nodes = [self._base_nodes[keep]]
        for w, p in self._paths.items():
            ids.append(np.full(len(p), w, dtype=np.int64))
            nodes.append(np.asarray(p, dtype=np.int64))
        all_ids = np.concatenate(ids)
        order = np.argsort(all_ids, kind="stable")
        return all_ids[order], np.concatenate(nodes)[order]

    def rho(self) -> np.ndarray:
        """rho(j) per node index on the current walks (cached until the next change)."""
        if self._rho is None:
            ids, nodes = self.flat()
            self._rho = connectivity(ids, nodes, self.ego, self.hits.size)
        return self._rho

    def resample_from(self, src: int, graph: TrustGraph, alpha: float, rng: np.random.Generator, draw: Uniforms) -> int:
        """Resample, from their first visit of src, the tails of all walks that visit src; return how many."""
        affected = self.walks_through(src)
        if not affected:
            return 0
        self._rho = None
        self.ensure(len(graph))
        if len(affected) > BATCH_FRACTION * self.count:
            self._batch_resample(src, affected, graph, alpha, rng)
            return len(affected)
        delta = _CountDelta()
        for w in affected:
            old = self.path(w)
            cut = old.index(src)
            self._replace(w, old, cut, sample_tail(graph, src, alpha, draw), delta)
        delta.apply(self)
        if len(self._paths) > COMPACT_FRACTION * self.count:
            self._load(*self.flat(), len(graph))
        return len(affected)

    def _replace(self, w: int, old: list[int], cut: int, tail: list[int], delta: _CountDelta) -> None:
        new = old[: cut + 1] + tail
        old_tail = old[cut + 1 :]
        kept = set(old[: cut + 1])
        gone = set(old_tail) - kept
        came = set(tail) - kept
        delta.hits_minus += gone - came
        delta.hits_plus += came - gone
        delta.visits_minus += old_tail
        delta.visits_plus += tail
        self.total_visits += len(tail) - len(old_tail)
        over = self._over
        if w in self._paths:
            for u in gone - came:
                over[u].discard(w)
        for u in new:
            over.setdefault(u, set()).add(w)
        self._paths[w] = new

    def _batch_resample(self, src: int, affected: list[int], graph: TrustGraph, alpha: float, rng: np.random.Generator) -> None:
        ids, nodes = self.flat()
        aff = np.asarray(affected, dtype=np.int64)
        is_aff = np.zeros(self.count, dtype=bool)
        is_aff[aff] = True
        entry_aff = is_aff[ids]
        positions = np.arange(ids.size)
        at_src = np.flatnonzero(entry_aff & (nodes == src))
        first = group_starts(ids[at_src])
        walk_of = ids[at_src][first]
        cut_at = np.full(self.count, ids.size, dtype=np.int64)
        cut_at[walk_of] = positions[at_src[first]]
        keep = ~entry_aff | (positions <= cut_at[ids])
        t_ids, t_nodes = sample_walks(graph.csr(), np.full(aff.size, src, dtype=np.int64), alpha, rng)
        not_start = np.ones(t_ids.size, dtype=bool)
        not_start[np.searchsorted(t_ids, np.arange(aff.size))] = False
        all_ids = np.concatenate((ids[keep], aff[t_ids[not_start]]))
        all_nodes = np.concatenate((nodes[keep], t_nodes[not_start]))
        order = np.argsort(all_ids, kind="stable")
        self._load(all_ids[order], all_nodes[order], len(graph))
