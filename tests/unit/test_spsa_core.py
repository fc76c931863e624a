"""Seeds, codec and the MeZO step of learning.spsa."""

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from learning.models import TinyConfig, build_tiny, loss
from learning.spsa import (
    ByteCodec,
    SpsaSettings,
    apply_update,
    derive_seed,
    param_checksum,
    perturb,
    projected_gradient,
)
from learning.spsa.codec import RESERVED_BYTE

SMALL = TinyConfig(d_model=16, n_layers=1, n_heads=2, context=16)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny models run fastest on one thread (and the test machine is shared)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _batch(seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (2, 9), generator=torch.Generator().manual_seed(seed))


# --- seeds -----------------------------------------------------------------------------


def test_seeds_differ_for_every_field_and_never_collide():
    # Arrange: tuples that digit concatenation would confuse, plus a large grid
    runs, peers = ["r", "r1", "1"], [b"\x01", b"\x01\x01", b"\x11", b"A" * 38]
    tuples = list(itertools.product(runs, range(40), peers, range(8)))

    # Act
    seeds = {derive_seed(*t) for t in tuples}

    # Assert
    assert len(seeds) == len(tuples)
    assert all(0 <= s < 2**63 for s in seeds)


def test_seed_is_stable_across_calls():
    assert derive_seed("run", 3, b"peer", 1) == derive_seed("run", 3, b"peer", 1)


def test_concatenation_ambiguity_is_absent():
    # (round 1, sample 23) vs (round 12, sample 3) would collide under digit concatenation
    assert derive_seed("r", 1, b"p", 23) != derive_seed("r", 12, b"p", 3)


@pytest.mark.parametrize(
    "args", [("", 0, b"p", 0), ("r", -1, b"p", 0), ("r", 0, b"", 0), ("r", 0, b"p", -1), ("r", True, b"p", 0)]
)
def test_seed_rejects_bad_fields(args):
    with pytest.raises(ValueError):
        derive_seed(*args)


# --- codec -----------------------------------------------------------------------------


def test_codec_error_bound_over_whole_range():
    # Arrange
    codec = ByteCodec(1e-3, 1e4)
    values = [10 ** (x / 1000) for x in range(-3000, 4001)]

    # Act
    worst = max(abs(codec.decode(codec.encode(s * v)) - s * v) / v for v in values for s in (1, -1))

    # Assert
    assert codec.relative_error_bound <= 0.065
    assert worst <= codec.relative_error_bound * (1 + 1e-9)


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=1e-3, max_value=1e4), st.booleans())
def test_codec_error_bound_property(v, negative):
    codec = ByteCodec(1e-3, 1e4)
    g = -v if negative else v
    decoded = codec.decode(codec.encode(g))
    assert abs(decoded - g) <= codec.relative_error_bound * abs(g) * (1 + 1e-9)
    assert math.copysign(1, decoded) == math.copysign(1, g)


def test_every_byte_decodes_except_the_reserved_one():
    codec = ByteCodec(1e-3, 1e4)
    for b in range(256):
        if b == RESERVED_BYTE:
            with pytest.raises(ValueError, match="reserved"):
                codec.decode(b)
        else:
            value = codec.decode(b)
            assert math.isfinite(value) and abs(value) <= codec.g_max
            assert codec.encode(value) == b  # every valid byte round-trips


def test_codec_zero_clip_and_bad_input():
    codec = ByteCodec(1e-3, 1e4)
    assert codec.encode(0.0) == 0 and codec.encode(-1e-6) == 0
    assert codec.decode(codec.encode(1e9)) == codec.decode(codec.encode(1e4))
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError):
            codec.encode(bad)
    for bad in (-1, 256, 1.5, True):
        with pytest.raises(ValueError):
            codec.decode(bad)
    with pytest.raises(ValueError):
        ByteCodec(1.0, 0.5)


def test_settings_validate():
    SpsaSettings().validate()
    for kwargs in (
        {"eps": 0}, {"lr": float("nan")}, {"samples_per_round": 0},
        {"codec_min": 10, "codec_max": 1}, {"perturbation": "uniform"},
    ):
        with pytest.raises(ValueError):
            SpsaSettings(**kwargs).validate()


# --- MeZO step -------------------------------------------------------------------------


def test_projected_gradient_restores_parameters_bit_for_bit():
    # Arrange
    model, batch = build_tiny(SMALL), _batch()
    before = param_checksum(model)

    # Act
    g = projected_gradient(model, lambda m: loss(m, batch), seed=7, eps=1e-3)

    # Assert
    assert math.isfinite(g) and g != 0.0
    assert param_checksum(model) == before


def test_projected_gradient_matches_directional_derivative():
    # Arrange: the true directional derivative ∇ℓ·z from autograd
    model, batch = build_tiny(SMALL), _batch()
    model.zero_grad()
    loss(model, batch).backward()
    z_model = build_tiny(SMALL)
    for p in z_model.parameters():
        p.data.zero_()
    perturb(z_model, 11, 1.0)
    exact = sum(float((p.grad * z).sum().detach()) for p, z in zip(model.parameters(), z_model.parameters()))

    # Act
    g = projected_gradient(model, lambda m: loss(m, batch).double(), seed=11, eps=1e-3)

    # Assert
    assert g == pytest.approx(exact, rel=0.05)


def test_apply_update_moves_along_minus_z_and_weight_scales():
    # Arrange
    a, b, ref = build_tiny(SMALL), build_tiny(SMALL), build_tiny(SMALL)
    z = build_tiny(SMALL)
    for p in z.parameters():
        p.data.zero_()
    perturb(z, 5, 1.0)

    # Act
    apply_update(a, 5, grad=2.0, lr=0.01)
    apply_update(b, 5, grad=2.0, lr=0.01, weight=0.5)

    # Assert
    for pa, pb, pr, pz in zip(a.parameters(), b.parameters(), ref.parameters(), z.parameters()):
        assert torch.allclose(pa - pr, -0.02 * pz, atol=1e-6)
        assert torch.allclose(pb - pr, -0.01 * pz, atol=1e-6)


def test_apply_update_weight_decay_and_bad_numbers():
    model, ref = build_tiny(SMALL), build_tiny(SMALL)
    apply_update(model, 5, grad=0.0, lr=0.1, weight_decay=0.5)
    for p, r in zip(model.parameters(), ref.parameters()):
        assert torch.allclose(p, r * 0.95, atol=1e-7)
    with pytest.raises(ValueError):
        apply_update(model, 5, grad=float("nan"), lr=0.1)


def test_rademacher_perturbation_is_plus_minus_one_and_gradient_is_directional():
    # Arrange
    model, batch = build_tiny(SMALL).double(), _batch()  # float64: the difference quotient is exact enough
    z_model = build_tiny(SMALL).double()
    for p in z_model.parameters():
        p.data.zero_()
    perturb(z_model, 11, 1.0, kind="rademacher")
    model.zero_grad()
    loss(model, batch).backward()
    exact = sum(float((p.grad * z).sum().detach()) for p, z in zip(model.parameters(), z_model.parameters()))

    # Act
    g = projected_gradient(model, lambda m: loss(m, batch), seed=11, eps=1e-4, kind="rademacher")

    # Assert
    values = torch.cat([p.detach().flatten() for p in z_model.parameters()])
    assert set(values.unique().tolist()) == {-1.0, 1.0}
    assert g == pytest.approx(exact, rel=0.02)
    with pytest.raises(ValueError):
        perturb(z_model, 11, 1.0, kind="uniform")
