"""Rating datasets for the recommender: one container type and its loaders.

``RatingData`` is the one shape every loader returns and every model consumes: dense integer user and
item indices (stored as float64 columns, as the arrays are shared with numpy maths), the scores, and the
directed trust edges with their weight ``s_if``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RATING_COLUMNS = 3
"""Columns of ``RatingData.ratings``: user index, item index, score."""
TRUST_COLUMNS = 3
"""Columns of ``RatingData.trust``: truster index, trustee index, weight."""


@dataclass(frozen=True)
class RatingData:
    """Ratings and a trust graph over densely indexed users and items."""

    n_users: int
    """Number of users; user indices are ``0 .. n_users-1``."""
    n_items: int
    """Number of items; item indices are ``0 .. n_items-1``."""
    ratings: np.ndarray
    """float64 (N, 3): user index, item index, score."""
    trust: np.ndarray
    """float64 (M, 3): truster, trustee, weight ``s_if`` (FilmTrust: 1.0)."""
    name: str
    """Human-readable name of the data set (and split), for reports."""

    def __post_init__(self) -> None:
        _check_table(self.ratings, "ratings", self.n_users, self.n_items)
        _check_table(self.trust, "trust", self.n_users, self.n_users)

    @property
    def users(self) -> np.ndarray:
        """User index of every rating, as int64."""
        return self.ratings[:, 0].astype(np.int64)

    @property
    def items(self) -> np.ndarray:
        """Item index of every rating, as int64."""
        return self.ratings[:, 1].astype(np.int64)

    @property
    def scores(self) -> np.ndarray:
        """Score of every rating."""
        return self.ratings[:, 2]

    def with_ratings(self, ratings: np.ndarray, name: str) -> "RatingData":
        """The same users, items and trust graph with another set of ratings (used by splits)."""
        return RatingData(self.n_users, self.n_items, ratings, self.trust, name)


def _check_table(table: np.ndarray, what: str, first_bound: int, second_bound: int) -> None:
    if not isinstance(table, np.ndarray) or table.dtype != np.float64:
        raise ValueError(f"{what} must be a float64 numpy array")
    if table.ndim != 2 or table.shape[1] != RATING_COLUMNS:
        raise ValueError(f"{what} must have shape (n, {RATING_COLUMNS}), got {table.shape}")
    if not np.all(np.isfinite(table)):
        raise ValueError(f"{what} contains non-finite values")
    if table.shape[0] == 0:
        return
    for column, bound in ((0, first_bound), (1, second_bound)):
        ids = table[:, column]
        if np.any(ids != np.floor(ids)) or ids.min() < 0 or ids.max() >= bound:
            raise ValueError(f"{what} column {column} must hold integer indices in [0, {bound})")


__all__ = ["RatingData", "RATING_COLUMNS", "TRUST_COLUMNS"]
