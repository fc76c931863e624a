"""The weighted directed trust graph: node indexing, per-node samplers and CSR arrays for vectorised walks."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from itertools import accumulate, chain

import numpy as np

SPLICE_FRACTION = 0.05
"""Rebuild the edge arrays from scratch when more than this share of rows changed; else splice the rows."""


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
        self._arrays: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self._dirty: set[int] = set()

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
        self._arrays = None

    def edges(self) -> Iterator[tuple[int, int, float]]:
        """Every edge as (src index, dst index, weight)."""
        for src, row in enumerate(self.out):
            for dst, w in row.items():
                yield src, dst, w

    def _changed(self, src: int) -> None:
        self._dirty.add(src)
        self._samplers.pop(src, None)
        self._csr = None
        self._negative = None

    def sampler(self, u: int) -> tuple[list[int], list[float]] | None:
        """(targets, inclusive cumulative positive weights) of u, or None if u is a dead end."""
        if u in self._samplers:
            return self._samplers[u]
        row = self.out[u]
        if row and min(row.values()) > 0.0:
            result: tuple[list[int], list[float]] | None = (list(row), list(accumulate(row.values())))
        else:
            positive = [(d, w) for d, w in row.items() if w > 0.0]
            result = ([d for d, _ in positive], list(accumulate(w for _, w in positive))) if positive else None
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
        """CSR arrays of the positive edges (kept up to date by splicing only the rows that changed)."""
        if self._csr is None:
            src, dst, w, indptr = self._all_edges()
            n = indptr.size - 1
            pos = w > 0.0
            pindptr = np.zeros(n + 1, dtype=np.int64)
            np.cumsum(np.bincount(src[pos], minlength=n), out=pindptr[1:])
            cum = np.cumsum(w[pos])
            padded = np.concatenate(([0.0], cum))
            row_base = padded[pindptr[:-1]]
            self._csr = Csr(pindptr, dst[pos], cum, row_base, padded[pindptr[1:]] - row_base)
        return self._csr

    def negative(self) -> NegativeEdges:
        """All distrust edges with their share of the source's total |out-weight|."""
        if self._negative is None:
            src, dst, w, _ = self._all_edges()
            neg = w < 0.0
            row_abs = np.bincount(src, weights=np.abs(w), minlength=len(self.out))
            self._negative = NegativeEdges(src[neg], dst[neg], -w[neg] / row_abs[src[neg]])
        return self._negative

    def _all_edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(src, dst, weight, indptr) of every edge, rows in index order."""
        if self._arrays is None or len(self._dirty) > SPLICE_FRACTION * len(self.out):
            self._arrays = self._build_arrays()
        elif self._dirty or self._arrays[3].size - 1 < len(self.out):
            self._arrays = self._splice_arrays()
        self._dirty.clear()
        return self._arrays

    def _build_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        n = len(self.out)
        counts = np.fromiter((len(r) for r in self.out), dtype=np.int64, count=n)
        m = int(counts.sum())
        dst = np.fromiter(chain.from_iterable(self.out), dtype=np.int64, count=m)
        w = np.fromiter(chain.from_iterable(r.values() for r in self.out), dtype=np.float64, count=m)
        return self._with_rows(counts, dst, w)

    def _splice_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        _, old_dst, old_w, old_ptr = self._arrays
        old_n = old_ptr.size - 1
        counts = np.zeros(len(self.out), dtype=np.int64)
        counts[:old_n] = np.diff(old_ptr)
        dst_parts, w_parts, cursor = [], [], 0
        for r in sorted(self._dirty):
            start = int(old_ptr[r]) if r < old_n else int(old_ptr[-1])
            end = int(old_ptr[r + 1]) if r < old_n else start
            row = self.out[r]
            dst_parts += [old_dst[cursor:start], np.fromiter(row.keys(), dtype=np.int64, count=len(row))]
            w_parts += [old_w[cursor:start], np.fromiter(row.values(), dtype=np.float64, count=len(row))]
            counts[r] = len(row)
            cursor = end
        dst_parts.append(old_dst[cursor:])
        w_parts.append(old_w[cursor:])
        return self._with_rows(counts, np.concatenate(dst_parts), np.concatenate(w_parts))

    @staticmethod
    def _with_rows(counts: np.ndarray, dst: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        indptr = np.zeros(counts.size + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        src = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
        return src, dst, w, indptr
