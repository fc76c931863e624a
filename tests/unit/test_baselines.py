"""Baselines (global mean, regularised biases) and the RMSE/MAE metrics."""

import numpy as np
import pytest

from recsys import baselines
from recsys.datasets import RatingData
from recsys.metrics import mae, rmse


def _additive_data(seed=0, n_users=80, n_items=40, per_user=15):
    rng = np.random.default_rng(seed)
    b_u, b_i = rng.normal(0, 0.5, n_users), rng.normal(0, 0.5, n_items)
    rows = []
    for u in range(n_users):
        for i in rng.choice(n_items, per_user, replace=False):
            rows.append((u, i, 3.0 + b_u[u] + b_i[i]))
    return RatingData(n_users, n_items, np.array(rows, dtype=np.float64), np.zeros((0, 3)), "additive"), b_u, b_i


def test_rmse_and_mae_on_known_values():
    assert rmse([1.0, 2.0, 3.0], [1.0, 2.0, 5.0]) == pytest.approx(np.sqrt(4 / 3))
    assert mae([1.0, 2.0, 3.0], [2.0, 2.0, 5.0]) == pytest.approx(1.0)
    assert rmse(np.ones(4), np.ones(4)) == 0.0


@pytest.mark.parametrize("pred,truth,match", [([1.0], [1.0, 2.0], "length"), ([], [], "empty"),
                                              ([np.nan], [1.0], "finite")])
def test_metrics_reject_bad_input(pred, truth, match):
    with pytest.raises(ValueError, match=match):
        rmse(pred, truth)
    with pytest.raises(ValueError, match=match):
        mae(pred, truth)


def test_global_mean_predicts_the_training_mean():
    data, _, _ = _additive_data()

    model = baselines.global_mean(data)

    np.testing.assert_allclose(model.predict(np.array([0, 1]), np.array([2, 3])), data.scores.mean())


def test_biases_recover_an_additive_model():
    data, b_u, b_i = _additive_data()

    model = baselines.biases(data, baselines.BiasSettings(reg_user=0.0, reg_item=0.0, iterations=50))
    pred = model.predict(data.users, data.items)

    assert rmse(pred, data.scores) < 1e-3
    assert rmse(pred, data.scores) < 0.1 * rmse(baselines.global_mean(data).predict(data.users, data.items), data.scores)


def test_bias_regularisation_shrinks_biases():
    data, _, _ = _additive_data(1)

    loose = baselines.biases(data, baselines.BiasSettings(reg_user=0.0, reg_item=0.0))
    tight = baselines.biases(data, baselines.BiasSettings(reg_user=50.0, reg_item=50.0))

    assert np.abs(tight.user_bias).sum() < np.abs(loose.user_bias).sum()


def test_baselines_reject_bad_input():
    data, _, _ = _additive_data()
    empty = RatingData(2, 2, np.zeros((0, 3)), np.zeros((0, 3)), "empty")

    with pytest.raises(ValueError, match="zero ratings"):
        baselines.global_mean(empty)
    with pytest.raises(ValueError, match="out of range"):
        baselines.biases(data).predict(np.array([999]), np.array([0]))
    with pytest.raises(ValueError, match="iterations"):
        baselines.BiasSettings(iterations=0).validate()
