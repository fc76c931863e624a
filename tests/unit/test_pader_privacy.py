"""Privacy: every value a seller decrypts is masked or an aggregate of >= 2 users; no secret in messages."""

import dataclasses

import msgpack
import numpy as np

from crypto.paillier import generate_keypair
from crypto.packing import PackingSettings
from recsys.pader import PaderSettings
from recsys.pader.simulate import EncryptedSoReg
from tests.unit.test_pader_roles import instance

KEYS = [generate_keypair(1024, insecure_test_only=True) for _ in range(2)]
MASK_FLOOR = 1 << 32
"""A masked value differs from the true one by more than this (masks span >= 2^40: a false alarm has
probability ~2^-8 per value... per *pair*, so the check is made against the closest true value)."""


def _wire(msg) -> bytes:
    def enc(v):
        if isinstance(v, int) and not -(1 << 63) <= v < 1 << 64:
            return str(v).encode()
        return v
    fields = [enc(v) if not isinstance(v, tuple) else [enc(x) for x in v] for v in dataclasses.astuple(msg)]
    return msgpack.packb(fields, use_bin_type=True)


def _secret_patterns(key) -> list[bytes]:
    out = []
    for v in key.secret_integers():
        out.append(v.to_bytes((v.bit_length() + 7) // 8, "big"))
        out.append(str(v).encode())
        out.append(format(v, "x").encode())
    return out


def test_seller_only_decrypts_masked_or_aggregated_values():
    model, soreg = instance(21, n_users=6, n_items=8, sellers=2)
    settings = PaderSettings(soreg=soreg, n_agg=2, flush_policy="per_item")
    received: list = []
    enc = EncryptedSoReg(model, settings, KEYS, audit=True, insecure_test_keys=True,
                         on_message=lambda kind, msg: received.append((kind, msg)))
    truth_errors, truth_grads, truth_items = [], [], {}
    ps = PackingSettings()
    for user in range(model.data.n_users):
        plan = model.plan_iteration(user, np.random.default_rng(user))
        step = model.step(plan)
        truth_errors.extend(step.errors * 2.0 ** (2 * ps.scale_bits))
        truth_grads.append(step.user_gradient)
        for j, g in zip(step.items, step.item_gradients):
            truth_items.setdefault(int(j), []).append((user, g))
        enc.run_plan(plan)
        model.apply_step(step, n_agg=10 ** 6)  # keep V fixed on the plaintext side too: compare to the start
    decrypted = [rec for s in enc.sellers for rec in s.audit]
    kinds = {rec.kind for rec in decrypted}
    assert {"masked_errors", "masked_gradient", "item_gradients"} <= kinds
    for rec in decrypted:
        if rec.kind == "masked_errors":
            # each value is e_j·2^46 + mask: never close to any true error
            for v in rec.values:
                assert min(abs(v - t) for t in truth_errors) > MASK_FLOOR
        elif rec.kind == "masked_gradient":
            for v in rec.values:
                assert all(abs(v - g * 2.0 ** (2 * ps.scale_bits)) > MASK_FLOOR for tg in truth_grads for g in tg)
        else:
            assert rec.kind == "item_gradients"
            for users in rec.users:
                assert len(users) >= 2  # aggregated over >= n_agg distinct users
    assert any(s.stats["flushes"] for s in enc.sellers)
    # no message the seller received (or sent) carries p, q or λ of any key
    blobs = [_wire(m) for _, m in received]
    assert len(blobs) >= 6 * model.data.n_users
    for key in KEYS:
        for pattern in _secret_patterns(key):
            assert not any(pattern in b for b in blobs)


def test_flush_waits_for_enough_users():
    model, soreg = instance(4, n_users=3, n_items=6, sellers=1)
    enc = EncryptedSoReg(model, PaderSettings(soreg=soreg, n_agg=3), KEYS, insecure_test_keys=True, audit=True)
    seller = enc.sellers[0]
    enc.run_plan(model.plan_iteration(0, np.random.default_rng(0)))
    assert seller.stats["flushes"] == 0 and seller.pending_items()
    enc.run_plan(model.plan_iteration(1, np.random.default_rng(0)))
    assert not any(r.kind == "item_gradients" and any(len(u) < 3 for u in r.users) for r in seller.audit)
