"""Non-personalised and bias baselines: the global mean and regularised user + item biases.

``predict(users, items)`` answers on the rating scale, clipped to the training range, like SoReg.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsys.datasets import RatingData


@dataclass(frozen=True)
class BiasSettings:
    """Regularised user + item bias model ``r ≈ μ + b_u + b_i`` fitted by alternating least squares."""

    reg_user: float = 5.0
    """L2 penalty on each user bias (acts as that many pseudo-ratings at the mean)."""
    reg_item: float = 5.0
    """L2 penalty on each item bias."""
    iterations: int = 10
    """Alternating passes (user biases, then item biases); converges in a handful."""

    def validate(self) -> "BiasSettings":
        """Raise ``ValueError`` on a setting out of range; return self."""
        if not (self.reg_user >= 0 and self.reg_item >= 0):
            raise ValueError("BiasSettings.reg_user and reg_item must be >= 0")
        if not isinstance(self.iterations, int) or self.iterations < 1:
            raise ValueError("BiasSettings.iterations must be a positive integer")
        return self


def _check_fit_data(data: RatingData) -> None:
    if len(data.ratings) == 0:
        raise ValueError("cannot fit a baseline on zero ratings")


def _indices(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    users, items = np.asarray(users, np.int64), np.asarray(items, np.int64)
    if users.shape != items.shape:
        raise ValueError("users and items must have the same shape")
    if users.size and (users.min() < 0 or users.max() >= n_users or items.min() < 0 or items.max() >= n_items):
        raise ValueError("user or item index out of range")
    return users, items


@dataclass(frozen=True)
class GlobalMean:
    """Predicts the training mean for everything."""

    mean: float
    """Mean training score."""
    n_users: int
    """Users known at fit time."""
    n_items: int
    """Items known at fit time."""

    @classmethod
    def fit(cls, data: RatingData) -> "GlobalMean":
        """Fit on training ratings."""
        _check_fit_data(data)
        return cls(float(data.scores.mean()), data.n_users, data.n_items)

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """The mean, shaped like ``users``."""
        users, _ = _indices(users, items, self.n_users, self.n_items)
        return np.full(users.shape, self.mean)


@dataclass(frozen=True)
class Biases:
    """``μ + b_u + b_i`` with L2-regularised biases, clipped to the training score range."""

    mean: float
    """Mean training score μ."""
    user_bias: np.ndarray
    """(n_users,) b_u (0 for users without ratings)."""
    item_bias: np.ndarray
    """(n_items,) b_i (0 for items without ratings)."""
    score_range: tuple[float, float]
    """(min, max) training score, for clipping."""

    @classmethod
    def fit(cls, data: RatingData, settings: BiasSettings = BiasSettings()) -> "Biases":
        """Alternate closed-form ridge updates of user and item biases."""
        settings.validate()
        _check_fit_data(data)
        users, items, scores = data.users, data.items, data.scores
        mean = float(scores.mean())
        b_u = np.zeros(data.n_users)
        b_i = np.zeros(data.n_items)
        n_u = np.bincount(users, minlength=data.n_users)
        n_i = np.bincount(items, minlength=data.n_items)
        for _ in range(settings.iterations):
            b_u = np.bincount(users, scores - mean - b_i[items], data.n_users) / (n_u + settings.reg_user + (n_u == 0))
            b_i = np.bincount(items, scores - mean - b_u[users], data.n_items) / (n_i + settings.reg_item + (n_i == 0))
        return cls(mean, b_u, b_i, (float(scores.min()), float(scores.max())))

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Clipped ``μ + b_u + b_i``."""
        users, items = _indices(users, items, len(self.user_bias), len(self.item_bias))
        return np.clip(self.mean + self.user_bias[users] + self.item_bias[items], *self.score_range)


def global_mean(data: RatingData) -> GlobalMean:
    """Fit the global-mean baseline."""
    return GlobalMean.fit(data)


def biases(data: RatingData, settings: BiasSettings = BiasSettings()) -> Biases:
    """Fit the user + item bias baseline."""
    return Biases.fit(data, settings)
