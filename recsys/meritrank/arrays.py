"""Sort-based set helpers (numpy 2.x's hash-based ``np.unique`` is far slower on our integer keys)."""

from __future__ import annotations

import numpy as np


def group_starts(sorted_keys: np.ndarray) -> np.ndarray:
    """Positions where a run of equal values begins in a sorted array."""
    if sorted_keys.size == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.concatenate(([True], sorted_keys[1:] != sorted_keys[:-1])))


def unique_sorted(keys: np.ndarray) -> np.ndarray:
    """Distinct values of keys, ascending."""
    s = np.sort(keys)
    return s[group_starts(s)]


def unique_counts(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct values ascending, how often each occurs)."""
    s = np.sort(keys)
    starts = group_starts(s)
    return s[starts], np.diff(np.append(starts, s.size))


def first_occurrences(keys: np.ndarray) -> np.ndarray:
    """Index of the first occurrence of every distinct value, in ascending value order."""
    order = np.argsort(keys, kind="stable")
    return order[group_starts(keys[order])]
