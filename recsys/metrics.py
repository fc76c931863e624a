"""Prediction-error metrics: RMSE and MAE over matching prediction and truth vectors."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def _pair(pred: ArrayLike, truth: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred, dtype=np.float64).ravel()
    t = np.asarray(truth, dtype=np.float64).ravel()
    if p.shape != t.shape:
        raise ValueError(f"pred and truth differ in length: {p.size} vs {t.size}")
    if p.size == 0:
        raise ValueError("cannot score an empty prediction")
    if not (np.all(np.isfinite(p)) and np.all(np.isfinite(t))):
        raise ValueError("pred and truth must be finite")
    return p, t


def rmse(pred: ArrayLike, truth: ArrayLike) -> float:
    """Root mean squared error between ``pred`` and ``truth`` (same length, non-empty, finite)."""
    p, t = _pair(pred, truth)
    return float(np.sqrt(np.mean((p - t) ** 2)))


def mae(pred: ArrayLike, truth: ArrayLike) -> float:
    """Mean absolute error between ``pred`` and ``truth`` (same length, non-empty, finite)."""
    p, t = _pair(pred, truth)
    return float(np.mean(np.abs(p - t)))
