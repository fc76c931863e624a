"""The two-party steps of PADER's secure addition (masked reveal) and secure multiplication.

Party A (the user) holds ciphertexts under B's key (the seller) and no secret key; B holds the key.

- Masked reveal (secure addition): A adds random masks ``m`` to ``[x]`` and rerandomises
  (:func:`mask`); B decrypts ``x + m`` (:func:`reveal`, range-checked); A subtracts ``m`` (:func:`unmask`).
  B sees ``x + m`` only, statistically hiding ``x`` (``m`` has ``mask_bits`` more bits than ``x``).
- Secure multiplication ``Σ_j e_j v_j`` with ``[e_j]`` at A and ``v_j`` at B: A sends ``[e_j + M_j]`` with
  ``M_j = m'_j·2^s + ρ_j`` (:func:`error_masks`); B decrypts, drops the ``s`` low bits (the ``ρ`` part
  rounds ``e_j`` stochastically) and returns ``[Σ_j (ê_j + m'_j) v_j]`` (:func:`masked_products`); A removes
  ``Σ_j m'_j [v_j]`` with one multi-exponentiation (:func:`remove_product_mask`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from crypto import packing
from crypto.packing import Packed, PackingSettings
from crypto.paillier import PublicKey, SecretKey


@dataclass(frozen=True)
class ErrorMask:
    """A's mask for one error slot: ``M = high·2^s + low``."""

    high: int
    """``m'``: removed later through ``Σ m'_j [v_j]``."""
    low: int
    """``ρ`` in ``[0, 2^s)``: only rounds the error, never removed."""

    def value(self, scale_bits: int) -> int:
        """``M`` itself."""
        return (self.high << scale_bits) + self.low


def draw_masks(count: int, bits: int) -> list[int]:
    """``count`` uniform masks in ``[0, 2^bits)`` (cryptographic randomness)."""
    return [secrets.randbits(bits) for _ in range(count)]


def error_masks(count: int, settings: PackingSettings) -> list[ErrorMask]:
    """Masks hiding ``count`` errors (``error_bits`` each) by ``mask_bits``."""
    return [ErrorMask(secrets.randbits(settings.reduced_mask_bits), secrets.randbits(settings.scale_bits))
            for _ in range(count)]


def mask(public: PublicKey, take_rn: Callable[[], object], p: Packed, masks: Sequence[int]) -> Packed:
    """``[x + m]`` rerandomised: what A sends for a masked decryption."""
    return packing.rerandomize(public, packing.add_plain(public, p, masks), take_rn())


def reveal(secret: SecretKey, p: Packed, max_abs: int) -> list[int]:
    """B's masked decryption; refuses slots beyond ``max_abs`` (malformed or oversized)."""
    return packing.decrypt(secret, p, max_abs)


def unmask(values: Sequence[int], masks: Sequence[int]) -> list[int]:
    """A's ``(x + m) − m``."""
    if len(values) < len(masks):
        raise ValueError("fewer revealed values than masks")
    return [int(v) - int(m) for v, m in zip(values, masks)]


def masked_products(masked_errors: Sequence[int], vectors: Sequence[Sequence[int]], scale_bits: int) -> list[int]:
    """B: ``T_l = Σ_j ((e_j + M_j) >> s)·v_jl`` over the rated items (plain ints, scale of ``v`` + s)."""
    if len(masked_errors) != len(vectors):
        raise ValueError("one masked error per item vector expected")
    dim = len(vectors[0]) if vectors else 0
    totals = [0] * dim
    for x, v in zip(masked_errors, vectors):
        y = int(x) >> scale_bits
        for l in range(dim):
            totals[l] += y * v[l]
    return totals


def remove_product_mask(public: PublicKey, products: Sequence[Packed], item_vectors: Sequence[Sequence[Packed]],
                        masks: Sequence[ErrorMask], mapper: Callable[..., Iterable] = map,
                        split: int = 1) -> list[Packed]:
    """A: ``[T] − Σ_j m'_j [v_j]`` per chunk of the vector: ``[Σ_j ê_j v_j]``."""
    if len(item_vectors) != len(masks):
        raise ValueError("one mask per item vector expected")
    out = []
    for chunk, product in enumerate(products):
        column = [vec[chunk] for vec in item_vectors]
        correction = packing.weighted_sum(public, column, [-m.high for m in masks], product.scale_bits
                                          - column[0].scale_bits, mapper, split)
        bound = product.bound + correction.bound
        out.append(Packed(public.add(product.c, correction.c), product.layout, product.count,
                          product.scale_bits, bound, max(product.level, correction.level), public.fingerprint))
    return out
