"""PADER roles: one encrypted iteration equals the plaintext SoReg update; bad input is refused."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from crypto.fixedpoint import FixedPointOverflowError
from crypto.packing import PackingOverflowError
from crypto.paillier import WrongKeyError, generate_keypair
from recsys.datasets import RatingData
from recsys.pader import PaderError, PaderSettings, ReplayError
from recsys.pader.simulate import EncryptedSoReg, user_id
from recsys.soreg import IterationPlan, SoRegModel, SoRegSettings

KEYS = [generate_keypair(1024, insecure_test_only=True) for _ in range(3)]
TOL = 1e-5


def instance(seed: int, n_users: int = 6, n_items: int = 14, dim: int = 4, sellers: int = 2):
    rng = np.random.default_rng(seed)
    rows = [(u, j, float(rng.integers(1, 6))) for u in range(n_users) for j in range(n_items) if rng.random() < 0.6]
    rows += [(u, u % n_items, 5.0) for u in range(n_users)]
    rows += [(u, (u + 1) % n_items, 1.0) for u in range(n_users)]  # every user has a negative z-score
    ratings = np.array(sorted({(u, j): (u, j, s) for u, j, s in rows}.values()), dtype=np.float64)
    trust = np.array([(u, (u + k) % n_users, float(rng.uniform(0.2, 1.5))) for u in range(n_users) for k in (1, 2)],
                     dtype=np.float64)
    data = RatingData(n_users, n_items, ratings, trust, "tiny")
    soreg = SoRegSettings(dim=dim, lr=0.05, items_per_iter=n_items, friends_per_iter=5, init_scale=0.5)
    model = SoRegModel.init(data, soreg, seed, item_owner=rng.integers(0, sellers, n_items))
    model.U[:, 0] = -np.abs(model.U[:, 0])  # every instance has negative vector entries
    model.V[:, 0] = -np.abs(model.V[:, 0])
    return model, soreg


def full_plan(model: SoRegModel, user: int) -> IterationPlan:
    return model.plan_iteration(user, np.random.default_rng(0))


@settings(max_examples=4, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 3), st.integers(2, 6))
def test_encrypted_iteration_equals_plaintext(seed, sellers, dim):
    model, soreg = instance(seed, dim=dim, sellers=sellers)
    enc = EncryptedSoReg(model, PaderSettings(soreg=soreg, flush_policy="per_owner"), KEYS,
                         insecure_test_keys=True)
    for user in (0, 1):  # two users: the second iteration sees the first's flushed items
        plan = full_plan(model, user)
        step = model.step(plan)
        assert np.any(step.r < 0) and np.any(step.u < 0)  # negative values covered
        new_u = enc.run_plan(plan)
        model.apply_step(step, n_agg=2)
        assert np.max(np.abs(new_u - step.new_u)) < TOL
    assert np.max(np.abs(enc.V() - model.V)) < TOL


def test_one_iteration_per_seller_equals_plaintext_per_seller():
    model, soreg = instance(7, sellers=2)
    enc = EncryptedSoReg(model, PaderSettings(soreg=soreg), KEYS, combined=False, insecure_test_keys=True)
    plan = full_plan(model, 3)
    u0 = model.U[3].copy()
    u = u0.copy()
    items = model.data.items[plan.rating_rows]
    for o in (0, 1):
        sel = model.item_owner[items] == o
        sub = IterationPlan(3, plan.rating_rows[sel], plan.trust_rows)
        model.U[3] = u
        u = model.step(sub).new_u
    model.U[3] = u0
    assert np.max(np.abs(enc.run_plan(plan) - u)) < TOL


@pytest.mark.slow
def test_encrypted_iteration_equals_plaintext_2048():
    model, soreg = instance(11, n_items=30, dim=10, sellers=1)
    key = generate_keypair(2048)
    enc = EncryptedSoReg(model, PaderSettings(soreg=soreg, flush_policy="per_owner"), [key])
    plan = full_plan(model, 2)
    step = model.step(plan)
    assert np.max(np.abs(enc.run_plan(plan) - step.new_u)) < TOL


def test_encrypted_scores_match_plaintext():
    model, soreg = instance(3)
    enc = EncryptedSoReg(model, PaderSettings(soreg=soreg), KEYS, insecure_test_keys=True)
    scores = enc.score(1, list(range(10)))
    expected = model.V[:10] @ model.U[1]
    assert max(abs(scores[j] - expected[j]) for j in range(10)) < TOL


def _open_session(enc, model, user=0):
    role, seller = enc.user(user), enc.sellers[0]
    items = [j for j in seller.items[:4]]
    req = role.start_training(seller.public.fingerprint, items, [0.5, -0.5, 1.0, 0.0])
    return role, seller, req


def test_bad_input_refused_and_training_goes_on():
    model, soreg = instance(5, sellers=2)
    enc = EncryptedSoReg(model, PaderSettings(soreg=soreg), KEYS, insecure_test_keys=True)
    role, seller, req = _open_session(enc, model)
    other = enc.sellers[1]
    with pytest.raises(WrongKeyError):
        other.on_request(req)  # request for another seller's key
    items = seller.on_request(req)
    with pytest.raises(ReplayError):
        seller.on_request(req)  # replayed request
    errors = role.on_items(items)
    with pytest.raises(ReplayError):
        role.on_items(items)  # replayed reply
    wrong = dataclasses.replace(errors, key_fp=other.public.fingerprint)
    with pytest.raises(WrongKeyError):
        seller.on_masked_errors(wrong)
    with pytest.raises(PaderError):
        seller.on_masked_errors(dataclasses.replace(errors, cts=errors.cts[:-1] + (b"\x01" * 7,)))
    pub, size = seller.public, len(errors.cts[0])
    for bad in ((1 << 102) + 5, 1 << 1000):  # a slot beyond the masked range; data beyond the slots
        huge = int(pub.encrypt_with(bad, seller.pool.take())).to_bytes(size, "big")
        with pytest.raises(PackingOverflowError):
            seller.on_masked_errors(dataclasses.replace(errors, cts=(huge,) + errors.cts[1:]))
    product = seller.on_masked_errors(errors)  # the genuine message still goes through
    with pytest.raises(ReplayError):
        seller.on_masked_errors(errors)
    grad = role.on_product(product)
    revealed = seller.on_masked_gradient(grad)
    with pytest.raises(ReplayError):
        seller.on_masked_gradient(grad)
    g = role.on_revealed(revealed)
    assert np.all(np.isfinite(g))
    with pytest.raises(ReplayError):
        role.on_revealed(revealed)
    enc.run_plan(full_plan(model, 1))  # and training goes on


def test_request_validation():
    model, soreg = instance(6)
    enc = EncryptedSoReg(model, PaderSettings(soreg=soreg), KEYS, insecure_test_keys=True)
    role, seller, req = _open_session(enc, model)
    with pytest.raises(PaderError):
        seller.on_request(dataclasses.replace(req, items=(10 ** 9,)))
    with pytest.raises(PaderError):
        seller.on_request(dataclasses.replace(req, session=b"short"))
    with pytest.raises(PaderError):
        seller.on_request(dataclasses.replace(req, purpose=7, iteration=99))
    with pytest.raises(PaderError):
        role.start_training(seller.public.fingerprint, [seller.items[0]], [0.1], [(user_id(9), 1.0)])
    with pytest.raises(FixedPointOverflowError):
        role.start_training(seller.public.fingerprint, [seller.items[0]], [99.0])  # beyond fixed point


def test_settings_refuse_single_user_aggregation():
    with pytest.raises(ValueError, match="n_agg"):
        PaderSettings(n_agg=1).validate()


def test_poisoned_item_gradient_is_dropped_and_flush_goes_on():
    model, soreg = instance(8, sellers=1)
    enc = EncryptedSoReg(model, PaderSettings(soreg=soreg, flush_policy="per_owner"), KEYS, insecure_test_keys=True)
    role, seller, req = _open_session(enc, model, user=0)
    grad = role.on_product(seller.on_masked_errors(role.on_items(seller.on_request(req))))
    size = len(grad.item_gradients[0])
    bad = int(seller.public.encrypt_with(1 << 1000, seller.pool.take())).to_bytes(size, "big")
    seller.on_masked_gradient(dataclasses.replace(grad, item_gradients=(bad,) + grad.item_gradients[1:]))
    enc.run_plan(full_plan(model, 1))  # a second user triggers the flush
    assert seller.stats.get("discarded_blocks", 0) >= 1
    enc.run_plan(full_plan(model, 2))  # and training goes on


def test_abandoned_sessions_are_capped_and_refused_later():
    model, soreg = instance(9, sellers=1)
    enc = EncryptedSoReg(model, PaderSettings(soreg=soreg, max_open_sessions=1), KEYS, insecure_test_keys=True)
    role, seller, req = _open_session(enc, model, user=0)
    items = seller.on_request(req)
    other, _, req2 = _open_session(enc, model, user=1)
    seller.on_request(req2)  # pushes the first session out
    assert seller.open_sessions() == 1
    with pytest.raises(ReplayError):
        seller.on_masked_errors(role.on_items(items))
