"""SoReg reference: gradients against finite differences, MF as β = 0, the iteration schedule."""

from dataclasses import replace

import numpy as np
import pytest

from recsys import soreg
from recsys.datasets import RatingData
from recsys.datasets.synthetic import SyntheticSettings, generate

EPS = 1e-6
SMALL = SyntheticSettings(n_users=60, n_items=40, n_communities=3, ratings_per_user=5, min_degree=2, max_degree=8)


def _instance(rng, k=5, f=4, d=6):
    return (rng.standard_normal(d), rng.standard_normal((k, d)), rng.standard_normal(k),
            rng.standard_normal((f, d)), rng.random(f) + 0.5)


def _numeric_grad(fn, x):
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[idx] = EPS
        grad[idx] = (fn(x + step) - fn(x - step)) / (2 * EPS)
    return grad


def test_user_gradient_matches_finite_differences():
    u, V, r, Uf, s = _instance(np.random.default_rng(0))
    beta, lu, lv = 0.7, 2.0, 0.5

    numeric = _numeric_grad(lambda x: soreg.user_loss(x, V, r, Uf, s, beta, lu, lv), u)

    np.testing.assert_allclose(soreg.user_gradient(u, V, r, Uf, s, beta, lu), numeric, atol=1e-6)


def test_item_gradient_plus_regulariser_matches_finite_differences():
    u, V, r, Uf, s = _instance(np.random.default_rng(1))
    lv = 0.5

    numeric = _numeric_grad(lambda x: soreg.user_loss(u, x, r, Uf, s, 0.5, 2.0, lv), V)

    np.testing.assert_allclose(soreg.item_gradients(u, V, r) + lv * V, numeric, atol=1e-6)


def test_prediction_errors_and_apply_item_gradients_follow_the_formulas():
    u, V, r, _, _ = _instance(np.random.default_rng(2))
    grad = np.ones_like(V)

    np.testing.assert_allclose(soreg.prediction_errors(u, V, r), V @ u - r)
    np.testing.assert_allclose(soreg.apply_item_gradients(V, grad, 0.1, 0.5), V - 0.1 * (grad + 0.5 * V))


def test_user_gradient_without_friends_has_no_social_term():
    u, V, r, _, _ = _instance(np.random.default_rng(3))

    grad = soreg.user_gradient(u, V, r, np.zeros((0, len(u))), np.zeros(0), 0.5, 2.0)

    np.testing.assert_allclose(grad, V.T @ (V @ u - r) + 2.0 * u)


def test_full_batch_gradients_match_finite_differences_of_total_loss():
    data = generate(replace(SMALL, n_users=12, n_items=8, n_communities=2, ratings_per_user=3, max_degree=4), 0)
    model = soreg.SoRegModel.init(data, soreg.SoRegSettings(dim=3, init_scale=0.5), 0)
    grad_U, grad_V = model.full_batch_gradients()

    def loss_at(attr):
        def fn(x):
            saved = getattr(model, attr).copy()
            getattr(model, attr)[...] = x
            value = model.total_loss()
            getattr(model, attr)[...] = saved
            return value
        return fn

    np.testing.assert_allclose(grad_U, _numeric_grad(loss_at("U"), model.U.copy()), atol=1e-5)
    np.testing.assert_allclose(grad_V, _numeric_grad(loss_at("V"), model.V.copy()), atol=1e-5)


def test_full_batch_step_lowers_the_loss():
    data = generate(SMALL, 1)
    model = soreg.SoRegModel.init(data, soreg.SoRegSettings(dim=4, lr=0.01), 0)
    before = model.total_loss()

    model.full_batch_step()

    assert model.total_loss() < before


def test_mf_equals_soreg_at_beta_zero_whatever_the_trust_graph():
    data = generate(SMALL, 2)
    no_trust = RatingData(data.n_users, data.n_items, data.ratings, np.zeros((0, 3)), "no-trust")
    settings = soreg.mf_settings(soreg.SoRegSettings(dim=4, lr=0.05))
    with_graph = soreg.SoRegModel.init(data, settings, 7)
    without_graph = soreg.SoRegModel.init(no_trust, settings, 7)

    for model in (with_graph, without_graph):
        rng = np.random.default_rng(3)
        order = model.active_users
        for _ in range(2):
            model.epoch(rng, order=order)

    assert settings.beta == 0.0
    np.testing.assert_array_equal(with_graph.U, without_graph.U)
    np.testing.assert_array_equal(with_graph.V, without_graph.V)


def test_user_iteration_applies_the_documented_updates():
    data = generate(SMALL, 3)
    settings = soreg.SoRegSettings(dim=4, lr=0.1, items_per_iter=3, friends_per_iter=2)
    model = soreg.SoRegModel.init(data, settings, 0)
    V_before = model.V.copy()

    step = model.user_iteration(5, np.random.default_rng(0))

    assert len(step.items) == 3 and len(step.friends) <= 2
    np.testing.assert_allclose(model.U[5], step.u - 0.1 * step.user_gradient)
    np.testing.assert_allclose(model.V[step.items],
                               soreg.apply_item_gradients(V_before[step.items], step.item_gradients, 0.1, 0.5))
    untouched = np.setdiff1d(np.arange(data.n_items), step.items)
    np.testing.assert_array_equal(model.V[untouched], V_before[untouched])


def test_item_gradients_wait_for_n_agg_users_per_owner():
    data = generate(SMALL, 4)
    owner = np.arange(data.n_items) % 2
    model = soreg.SoRegModel.init(data, soreg.SoRegSettings(dim=4, lr=0.1), 0, item_owner=owner)
    plans = model.plan_epoch(np.random.default_rng(0))[:2]
    V_before = model.V.copy()
    steps = [model.step(plan) for plan in plans]

    model.run_plans(plans[:1], n_agg=2)
    after_one = model.V.copy()
    model.run_plans(plans[1:2], n_agg=2)

    np.testing.assert_array_equal(after_one, V_before)
    expected = V_before.copy()
    grad = np.zeros_like(expected)
    for st in steps:
        np.add.at(grad, st.items, st.item_gradients)
    for o in (0, 1):
        touched = [set(st.items[owner[st.items] == o]) for st in steps]
        if all(touched):
            rows = np.array(sorted(set.union(*touched)))
            expected[rows] = soreg.apply_item_gradients(V_before[rows], grad[rows], 0.1, 0.5)
    np.testing.assert_allclose(model.V, expected)


def test_flush_applies_pending_gradients():
    data = generate(SMALL, 5)
    model = soreg.SoRegModel.init(data, soreg.SoRegSettings(dim=4, lr=0.1), 0)
    plan = model.plan_iteration(0, np.random.default_rng(0))
    model.run_plans([plan], n_agg=3)
    V_pending = model.V.copy()

    model.flush_item_gradients()

    assert not np.array_equal(model.V, V_pending)


def test_epochs_are_deterministic_under_a_seed():
    data = generate(SMALL, 6)
    runs = []
    for _ in range(2):
        model = soreg.SoRegModel.init(data, soreg.SoRegSettings(dim=4, lr=0.05), 11)
        model.epoch(np.random.default_rng(5), n_agg=2, stale_friends=True)
        runs.append(model.U.copy())

    np.testing.assert_array_equal(runs[0], runs[1])


def test_training_lowers_training_rmse():
    data = generate(SMALL, 7)
    model = soreg.SoRegModel.init(data, soreg.SoRegSettings(dim=4, lr=0.05, lambda_u=0.1, lambda_v=0.1), 0)
    rng = np.random.default_rng(0)
    rmse = lambda: float(np.sqrt(np.mean((model.predict(data.users, data.items) - data.scores) ** 2)))
    before = rmse()

    for _ in range(30):
        model.epoch(rng)

    assert rmse() < 0.8 * before


def test_predict_is_clipped_to_the_training_range_and_checks_indices():
    data = generate(SMALL, 8)
    model = soreg.SoRegModel.init(data, soreg.SoRegSettings(dim=4, init_scale=10.0), 0)

    pred = model.predict(data.users, data.items)

    assert pred.min() >= data.scores.min() and pred.max() <= data.scores.max()
    with pytest.raises(ValueError, match="out of range"):
        model.predict(np.array([data.n_users]), np.array([0]))


@pytest.mark.parametrize("field,value", [("dim", 0), ("lr", 0.0), ("lambda_u", -1.0), ("beta", float("nan")),
                                         ("items_per_iter", 0), ("friends_per_iter", -1), ("init_scale", 0.0)])
def test_settings_validate_rejects_bad_values(field, value):
    with pytest.raises(ValueError, match=field):
        replace(soreg.SoRegSettings(), **{field: value}).validate()


def test_run_plans_rejects_bad_n_agg():
    model = soreg.SoRegModel.init(generate(SMALL, 9), soreg.SoRegSettings(dim=4), 0)

    with pytest.raises(ValueError, match="n_agg"):
        model.epoch(np.random.default_rng(0), n_agg=0)


def test_divergence_raises_instead_of_returning_nan():
    data = generate(SMALL, 10)
    model = soreg.SoRegModel.init(data, soreg.SoRegSettings(dim=4, lr=5.0, beta=50.0), 0)

    with np.errstate(all="ignore"), pytest.raises(FloatingPointError, match="diverged"):
        for _ in range(50):
            model.epoch(np.random.default_rng(0))
