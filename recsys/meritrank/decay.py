"""Connectivity decay: rho(j) = max_k C_k(j) / H(j) over an ego's walks, computed with numpy.

H(j) counts the walks that reach j; C_k(j) counts the walks that visit k (k != ego, k != j) before
their first visit of j. A region reachable only through one bridge k has rho = 1 for all its nodes.
"""

from __future__ import annotations

import numpy as np

from recsys.meritrank.arrays import first_occurrences, group_starts, unique_counts


def first_visits(ids: np.ndarray, nodes: np.ndarray, n_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """(walk id, node) of each node's first visit per walk, grouped by walk in visiting order."""
    keys = ids * n_nodes + nodes
    first = np.sort(first_occurrences(keys))
    return ids[first], nodes[first]


def connectivity(ids: np.ndarray, nodes: np.ndarray, ego: int, n_nodes: int) -> np.ndarray:
    """rho per node index (0 where no walk reaches the node) for walks grouped by walk id."""
    walk, node = first_visits(ids, nodes, n_nodes)
    keep = node != ego
    walk, node = walk[keep], node[keep]
    rho = np.zeros(n_nodes, dtype=np.float64)
    if node.size == 0:
        return rho
    group_start = group_starts(walk)
    sizes = np.diff(np.append(group_start, node.size))
    start_of = np.repeat(group_start, sizes)
    earlier = np.arange(node.size) - start_of
    total = int(earlier.sum())
    hits = np.bincount(node, minlength=n_nodes)
    if total == 0:
        return rho
    j = np.repeat(node, earlier)
    offset = np.arange(total) - np.repeat(np.cumsum(earlier) - earlier, earlier)
    k = node[np.repeat(start_of, earlier) + offset]
    pairs, counts = unique_counts(j * n_nodes + k)
    pair_j = pairs // n_nodes
    j_start = group_starts(pair_j)
    best = np.maximum.reduceat(counts, j_start)
    rho[pair_j[j_start]] = best / hits[pair_j[j_start]]
    return rho


def decay_factor(rho: np.ndarray, beta: float, tau: float) -> np.ndarray:
    """Per-node multiplier 1 - beta*rho where rho >= tau, else 1."""
    return np.where(rho >= tau, 1.0 - beta * rho, 1.0)
