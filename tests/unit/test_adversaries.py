"""Adversary behaviours: each produces the record it would publish from an honest peer's inputs."""

import numpy as np
import pytest
import torch

from learning import adversaries as adv
from learning.models import TinyConfig, build_tiny, loss
from learning.spsa import ByteCodec, SpsaSettings, param_checksum

CFG = TinyConfig(d_model=16, n_layers=1, n_heads=2, context=16, seed=5)
SPSA = SpsaSettings(lr=1e-3, samples_per_round=6)
DATA = torch.from_numpy(np.random.default_rng(1).integers(0, 256, size=(12, 9)))


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models run fastest on one thread (and do not fight other processes for the cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def inputs(model, **extra):
    base = dict(model=model, run="r", round=2, peer=b"me", spsa=SPSA,
                assigned_loss=lambda m: loss(m, DATA[:4]), random_loss=lambda m: loss(m, DATA[8:]),
                rng=np.random.default_rng(3))
    base.update(extra)
    return adv.PeerInputs(**base)


def test_honest_record_is_bound_to_current_checksum_and_leaves_model_unchanged():
    model = build_tiny(CFG)
    before = param_checksum(model)

    record = adv.honest(inputs(model))

    assert record.base_checksum == before == param_checksum(model)
    assert record.peer == b"me" and len(record.grads) == SPSA.samples_per_round


def test_freerider_publishes_nothing_or_zeros():
    model = build_tiny(CFG)

    assert adv.make_update(adv.FREERIDER, inputs(model)) is None
    assert adv.make_update(adv.FREERIDER_ZEROS, inputs(model)).grads == bytes(SPSA.samples_per_round)


def test_noise_is_valid_random_bytes():
    model = build_tiny(CFG)

    record = adv.noise(inputs(model))

    ByteCodec.from_settings(SPSA).check(record.grads)
    assert record.grads != adv.honest(inputs(model)).grads


def test_copycat_replays_a_seen_record_under_its_own_id():
    model = build_tiny(CFG)
    victim = adv.honest(inputs(model, peer=b"victim"))

    record = adv.copycat(inputs(model, seen=(victim,)))

    assert record.peer == b"me" and record.grads == victim.grads
    assert adv.copycat(inputs(model)) is None


def test_stale_builds_on_the_lagging_replica():
    old = build_tiny(CFG)
    model = build_tiny(CFG)
    with torch.no_grad():
        next(model.parameters()).add_(0.01)

    record = adv.stale(inputs(model, stale_model=old))

    assert record.base_checksum == param_checksum(old) != param_checksum(model)


def test_lazy_trains_on_its_own_choice_of_data():
    model = build_tiny(CFG)

    lazy, honest = adv.lazy(inputs(model)), adv.honest(inputs(model))

    assert lazy.base_checksum == honest.base_checksum and lazy.grads != honest.grads


def test_unknown_kind_and_missing_inputs_raise():
    model = build_tiny(CFG)
    with pytest.raises(ValueError, match="unknown behaviour"):
        adv.make_update("saboteur", inputs(model))
    with pytest.raises(ValueError, match="stale_model"):
        adv.stale(inputs(model))
