"""Seeded samplers: a peer's assigned pool, the evaluator's secret draws, staleness-weighted selection.

Every seed is a hash of labelled fields (never concatenated digits), so two different inputs never
share a seed by construction. The assigned pool is public (anyone can derive it from peer id and
round); the evaluator's draws mix in its own secret, so a peer cannot predict which part of its pool
will be checked, and must train on all of it.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping, Sequence

import numpy as np

_ASSIGN_LABEL = b"plexus/gauntlet/assign/v1"
_EVAL_LABEL = b"plexus/gauntlet/eval/v1"
_SELECT_LABEL = b"plexus/gauntlet/select/v1"
_NEVER_EVALUATED = -1
"""Marker round of a peer that this evaluator has never evaluated."""


def _seed(label: bytes, *fields: bytes | str | int) -> int:
    """Hash length-prefixed fields under a label into a 64-bit seed."""
    digest = hashlib.sha256(label)
    for field in fields:
        if isinstance(field, int):
            raw = struct.pack(">q", field)
        elif isinstance(field, str):
            raw = field.encode()
        elif isinstance(field, bytes):
            raw = field
        else:
            raise TypeError(f"seed field must be bytes, str or int, got {type(field).__name__}")
        digest.update(struct.pack(">I", len(raw)) + raw)
    return int.from_bytes(digest.digest()[:8], "big")


def _check_sizes(count: int, population: int) -> None:
    if population < 1:
        raise ValueError(f"population must be positive, got {population}")
    if not 1 <= count <= population:
        raise ValueError(f"cannot draw {count} distinct items from {population}")


def assigned_pool(run: str, peer: bytes, round_: int, pool_size: int, dataset_size: int) -> np.ndarray:
    """Indices (sorted, distinct) of the sequences `peer` must train on in `round_` of `run`."""
    _check_sizes(pool_size, dataset_size)
    rng = np.random.default_rng(_seed(_ASSIGN_LABEL, run, round_, peer))
    return np.sort(rng.choice(dataset_size, size=pool_size, replace=False))


def own_eval_indices(pool: np.ndarray, secret: bytes, round_: int, peer: bytes, count: int) -> np.ndarray:
    """The evaluator's secret draw of `count` indices out of `peer`'s assigned pool."""
    _check_sizes(count, len(pool))
    rng = np.random.default_rng(_seed(_EVAL_LABEL, secret, round_, peer))
    return np.sort(rng.choice(np.asarray(pool), size=count, replace=False))


def random_eval_indices(secret: bytes, round_: int, dataset_size: int, count: int) -> np.ndarray:
    """The evaluator's secret random batch for `round_` (shared by all peers it evaluates then)."""
    _check_sizes(count, dataset_size)
    rng = np.random.default_rng(_seed(_EVAL_LABEL, secret, round_, b"random"))
    return np.sort(rng.choice(dataset_size, size=count, replace=False))


def select_peers(candidates: Sequence[bytes], last_evaluated: Mapping[bytes, int], round_: int,
                 budget: int, secret: bytes, staleness_power: float) -> list[bytes]:
    """Pick up to `budget` candidates, likelier the longer since this evaluator last evaluated them.

    Probability ∝ (1 + rounds since last evaluation) ** staleness_power; a never-evaluated peer counts
    as evaluated before round 0. Returned in canonical (sorted) order; deterministic given the secret.
    """
    if budget < 0:
        raise ValueError(f"budget must be >= 0, got {budget}")
    unique = sorted(set(candidates))
    if len(unique) <= budget:
        return unique
    staleness = np.array([
        1 + round_ - last_evaluated.get(peer, _NEVER_EVALUATED) for peer in unique], dtype=float)
    weights = np.maximum(staleness, 1.0) ** staleness_power
    rng = np.random.default_rng(_seed(_SELECT_LABEL, secret, round_))
    chosen = rng.choice(len(unique), size=budget, replace=False, p=weights / weights.sum())
    return [unique[i] for i in sorted(chosen)]
