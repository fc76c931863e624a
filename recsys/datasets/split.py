"""Seeded train/test splits of the ratings (the trust graph goes to both sides unchanged)."""

from __future__ import annotations

import numpy as np

from recsys.datasets import RatingData


def train_test_split(data: RatingData, test_fraction: float = 0.1, seed: int = 0) -> tuple[RatingData, RatingData]:
    """Hold out ``round(test_fraction·N)`` ratings chosen uniformly with ``default_rng(seed)``.

    Rows keep their original order inside each side; the two sides are disjoint and cover all ratings.
    """
    if not (0.0 < test_fraction < 1.0):
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    n = len(data.ratings)
    n_test = int(round(test_fraction * n))
    if n_test == 0 or n_test == n:
        raise ValueError(f"a {test_fraction} split of {n} ratings leaves one side empty")
    rng = np.random.default_rng(seed)
    is_test = np.zeros(n, dtype=bool)
    is_test[rng.choice(n, n_test, replace=False)] = True
    train = data.with_ratings(data.ratings[~is_test].copy(), f"{data.name}/train")
    test = data.with_ratings(data.ratings[is_test].copy(), f"{data.name}/test")
    return train, test
