"""The MeZO step: perturb, two forward passes, restore; updates regenerate z from the seed.

z is drawn from one ``torch.Generator`` seeded with the seed, parameter by parameter in
``named_parameters()`` order (tied parameters appear once), so it is never stored whole.

Bit-exact replicas: θ + εz − 2εz + εz is not θ in floating point, so
:func:`projected_gradient` restores the parameters from a copy. Memory is therefore two
copies of the parameters (no gradients, optimizer state or stored activations).
Updates use separate multiply and subtract kernels (no fused multiply-add), so every
replica that runs the same code on the same records computes the same bits.

Two perturbation kinds: ``"gaussian"`` (MeZO's default, ``torch.randn``) and
``"rademacher"`` (±1 from ``torch.randint``). torch's CPU ``randn`` takes a vectorised
path on AVX2 machines and a scalar one elsewhere, which may differ in the last bits (not
checked here: one machine type); the Rademacher draw is integer arithmetic on the same
Mersenne Twister stream and does not depend on the vector unit. Choose it for runs that
span different machine types.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch

from .settings import PERTURBATION_KINDS


def _params(model: torch.nn.Module) -> Iterator[torch.nn.Parameter]:
    for _, p in model.named_parameters():
        yield p


def _check_finite(name: str, value: float) -> None:
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")


GAUSSIAN = "gaussian"
"""z ~ N(0, I) (MeZO)."""

RADEMACHER = "rademacher"
"""z uniform in {−1, +1}^d (classic SPSA); integer draws, independent of the CPU's vector unit."""

PERTURBATIONS = PERTURBATION_KINDS
"""Accepted perturbation kinds."""


def _draw(shape: torch.Size, gen: torch.Generator, dtype: torch.dtype, kind: str) -> torch.Tensor:
    if kind == GAUSSIAN:
        return torch.randn(shape, generator=gen, dtype=dtype, device="cpu")
    if kind == RADEMACHER:
        z = torch.randint(0, 2, shape, generator=gen, dtype=dtype, device="cpu")
        return z.mul_(2).sub_(1)
    raise ValueError(f"perturbation must be one of {PERTURBATIONS}, got {kind!r}")


def _z_stream(
    model: torch.nn.Module, seed: int, kind: str = GAUSSIAN
) -> Iterator[tuple[torch.nn.Parameter, torch.Tensor]]:
    """Yield (parameter, z slice) pairs; each z slice is generated just in time."""
    if kind not in PERTURBATIONS:
        raise ValueError(f"perturbation must be one of {PERTURBATIONS}, got {kind!r}")
    gen = torch.Generator(device="cpu")
    gen.manual_seed(seed)
    for p in _params(model):
        z = _draw(p.shape, gen, p.dtype, kind)
        yield p, z.to(p.device) if p.device.type != "cpu" else z


@torch.no_grad()
def perturb(model: torch.nn.Module, seed: int, scale: float, kind: str = GAUSSIAN) -> None:
    """θ ← θ + scale · z(seed), regenerating z parameter by parameter."""
    _check_finite("scale", scale)
    for p, z in _z_stream(model, seed, kind):
        z.mul_(scale)
        p.add_(z)


@torch.no_grad()
def projected_gradient(
    model: torch.nn.Module,
    loss_fn: Callable[[torch.nn.Module], torch.Tensor],
    seed: int,
    eps: float,
    kind: str = GAUSSIAN,
) -> float:
    """MeZO projected gradient g = (ℓ(θ+εz) − ℓ(θ−εz)) / 2ε; θ is restored bit for bit.

    The model is evaluated in eval mode (dropout off), without autograd.
    """
    if not (math.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be finite and > 0, got {eps!r}")
    was_training = model.training
    model.eval()
    backup = [p.detach().clone() for p in _params(model)]
    try:
        perturb(model, seed, eps, kind)
        loss_plus = float(loss_fn(model))
        for p, b in zip(_params(model), backup):
            p.copy_(b)
        perturb(model, seed, -eps, kind)
        loss_minus = float(loss_fn(model))
    finally:
        for p, b in zip(_params(model), backup):
            p.copy_(b)
        model.train(was_training)
    _check_finite("loss", loss_plus)
    _check_finite("loss", loss_minus)
    return (loss_plus - loss_minus) / (2.0 * eps)


@torch.no_grad()
def apply_update(
    model: torch.nn.Module,
    seed: int,
    grad: float,
    lr: float,
    weight_decay: float = 0.0,
    weight: float = 1.0,
    kind: str = GAUSSIAN,
) -> None:
    """θ ← θ − lr·weight·(grad · z(seed) + weight_decay · θ)."""
    for name, value in (("grad", grad), ("lr", lr), ("weight_decay", weight_decay), ("weight", weight)):
        _check_finite(name, value)
    step = lr * weight
    coef = step * grad
    decay = step * weight_decay
    for p, z in _z_stream(model, seed, kind):
        if decay != 0.0:
            p.sub_(p * decay)
        z.mul_(coef)
        p.sub_(z)
