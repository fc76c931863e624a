"""The weighted directed trust graph: node indexing, per-node samplers and CSR arrays for vectorised walks."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from itertools import chain

import numpy as np


@dataclass(frozen=True)
class Csr:
    """Positive out-edges in compressed sparse rows with one global cumulative weight array."""

    indptr: np.ndarray
    """Row u's edges are positions indptr[u]:indptr[u+1]."""
    indices: np.ndarray
    """Edge target per position."""
    cum: np.ndarray
    """Inclusive cumulative sum of all positive weights, in position order."""
    row_base: np.ndarray
    """cum value just before row u starts (0 for the first row)."""
    row_total: np.ndarray
    """Total positive out-weight of row u (0 means a dead end)."""


@dataclass(frozen=True)
class NegativeEdges:
    """Distrust edges as arrays: source, target, and |w| / (sum of |w| over the source's out-edges)."""

    src: np.ndarray
    """Distrusting node index."""
    dst: np.ndarray
    """Distrusted node index."""
    share: np.ndarray
    """Fraction of the source's total out-weight that is this distrust edge."""


def check_weight(weight: float) -> float:
    """Return weight as float; raise ValueError unless finite and non-zero."""
    w = float(weight)
    if not math.isfinite(w) or w == 0.0:
        raise ValueError(f"edge weight must be finite and non-zero (remove the edge instead), got {weight!r}")
    return w


class TrustGraph:
    """Directed weighted graph over hashable node ids, stored as one dict of out-edges per integer index."""

    def __init__(self) -> None:
        self._index: dict[Hashable, int] = {}
        self.nodes: list[Hashable] = []
        self.out: list[dict[int, float]] = []
        self._samplers: dict[int, tuple[list[int], list[float]] | None] = {}
        self._csr: Csr | None = None
        self._negative: NegativeEdges | None = None

    def __len__(self) -> int:
        return len(self.nodes)

    def index(self, node: Hashable) -> int:
        """Integer index of node, creating it when new."""
        i = self._index.get(node)
        if i is None:
            i = len(self.nodes)
            self._index[node] = i
            self.nodes.append(node)
            self.out.append({})
            self._csr = None
        return i

    def lookup(self, node: Hashable) -> int | None:
        """Integer index of node, or None if the graph has never seen it."""
        return self._index.get(node)

    def weight(self, src: int, dst: int) -> float | None:
        """Weight of src -> dst, or None when absent."""
        return self.out[src].get(dst)

    def set(self, src: int, dst: int, weight: float) -> None:
        """Insert or replace src -> dst."""
        self.out[src][dst] = weight
        self._changed(src)

    def remove(self, src: int, dst: int) -> None:
        """Delete src -> dst (must exist)."""
        del self.out[src][dst]
        self._changed(src)

    def scale(self, factor: float) -> None:
        """Multiply every weight by factor (walk distributions are unchanged: each row scales uniformly)."""
        for row in self.out:
            for dst in row:
                row[dst] *= factor
        self._samplers.clear()
        self._csr = None
        self._negative = None

    def edges(self) -> Iterator[tuple[int, int, float]]:
        """Every edge as (src index, dst index, weight)."""
        for src, row in enumerate(self.out):
            for dst, w in row.items():
                yield src, dst, w

    def _changed(self, src: int) -> None:
        self._samplers.pop(src, None)
        self._csr = None
        self._negative = None

    def sampler(self, u: int) -> tuple[list[int], list[float]] | None:
        """(targets, inclusive cumulative positive weights) of u, or None if u is a dead end."""
        if u in self._samplers:
            return self._samplers[u]
        targets = [d for d, w in self.out[u].items() if w > 0.0]
        result = None
        if targets:
            acc = 0.0
            cum = []
            for d in targets:
                acc += self.out[u][d]
                cum.append(acc)
            result = (targets, cum)
        self._samplers[u] = result
        return result

    def step(self, u: int, draw: float) -> int | None:
        """The successor of u chosen by uniform draw in [0, 1), or None at a dead end."""
        s = self.sampler(u)
        if s is None:
            return None
        targets, cum = s
        pos = bisect_right(cum, draw * cum[-1])
        return targets[min(pos, len(targets) - 1)]

    def csr(self) -> Csr:
        """CSR arrays of the positive edges (built once, rebuilt after any change)."""
        if self._csr is None:
            self._csr = self._build_csr()
        return self._csr

    def _build_csr(self) -> Csr:
        n = len(self.out)
        rows = [[(d, w) for d, w in row.items() if w > 0.0] for row in self.out]
        counts = np.fromiter((len(r) for r in rows), dtype=np.int64, count=n)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        m = int(indptr[-1])
        flat = list(chain.from_iterable(rows))
        indices = np.fromiter((d for d, _ in flat), dtype=np.int64, count=m)
        weights = np.fromiter((w for _, w in flat), dtype=np.float64, count=m)
        cum = np.cumsum(weights)
        padded = np.concatenate(([0.0], cum))
        row_base = padded[indptr[:-1]]
        row_total = padded[indptr[1:]] - row_base
        return Csr(indptr, indices, cum, row_base, row_total)

    def negative(self) -> NegativeEdges:
        """All distrust edges with their share of the source's total |out-weight|."""
        if self._negative is None:
            src, dst, share = [], [], []
            for s, row in enumerate(self.out):
                if not row:
                    continue
                total = None
                for d, w in row.items():
                    if w < 0.0:
                        if total is None:
                            total = sum(abs(x) for x in row.values())
                        src.append(s)
                        dst.append(d)
                        share.append(-w / total)
            self._negative = NegativeEdges(
                np.asarray(src, dtype=np.int64), np.asarray(dst, dtype=np.int64), np.asarray(share, dtype=np.float64)
            )
        return self._negative
