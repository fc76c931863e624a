"""Fixed-point codec: reals as integers at scale ``2^scale_bits``; negatives as slot complements.

A value ``x`` becomes ``round(x·2^s)``. Inside a packed plaintext a negative slot value ``v`` is stored as
its complement ``v mod 2^slot_bits`` with a borrow from the next slot — which is exactly what plain
integer arithmetic on ``Σ v_i 2^(i·B)`` gives; ``crypto.packing`` decodes it back to signed values.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

SCALE_BITS = 23
"""Default scale: 2^23 (DESIGN.md §4)."""


INT64_SAFE = 2.0 ** 62
"""Below this magnitude the vectorised (numpy) encoder is exact."""


class FixedPointOverflowError(ValueError):
    """A value does not fit the fixed-point range (or is not finite)."""


def encode(x: float, scale_bits: int = SCALE_BITS, value_bits: int | None = None) -> int:
    """``round(x·2^scale_bits)``; refuses non-finite values and ``|x| ≥ 2^value_bits`` when given."""
    x = float(x)
    if not math.isfinite(x):
        raise FixedPointOverflowError(f"cannot encode non-finite value {x!r}")
    if value_bits is not None and abs(x) >= 2.0 ** value_bits:
        raise FixedPointOverflowError(f"|{x}| exceeds the fixed-point range 2^{value_bits}")
    return int(round(x * (1 << scale_bits)))


def encode_all(values: Iterable[float] | np.ndarray, scale_bits: int = SCALE_BITS,
               value_bits: int | None = None) -> list[int]:
    """``encode`` of every value (a flat list of Python ints); vectorised while the result fits int64."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(arr)):
        raise FixedPointOverflowError("cannot encode non-finite values")
    if value_bits is not None and arr.size and np.max(np.abs(arr)) >= 2.0 ** value_bits:
        raise FixedPointOverflowError(f"a value exceeds the fixed-point range 2^{value_bits}")
    if arr.size and np.max(np.abs(arr)) * 2.0 ** scale_bits < INT64_SAFE:
        return np.rint(arr * float(1 << scale_bits)).astype(np.int64).tolist()
    return [encode(v, scale_bits, value_bits) for v in arr]


def decode(v: int, scale_bits: int = SCALE_BITS) -> float:
    """The real number ``v / 2^scale_bits``."""
    return int(v) / float(1 << scale_bits) if scale_bits < 1000 else float(int(v) >> scale_bits)


def to_slot(v: int, slot_bits: int) -> int:
    """The complement form ``v mod 2^slot_bits``; refuses ``|v| ≥ 2^(slot_bits−1)``."""
    if abs(v) >= 1 << (slot_bits - 1):
        raise FixedPointOverflowError(f"value of {int(v).bit_length()} bits does not fit a {slot_bits}-bit slot")
    return v % (1 << slot_bits)


def from_slot(u: int, slot_bits: int) -> int:
    """The signed value of a complement-form slot ``u`` in ``[0, 2^slot_bits)``."""
    if not 0 <= u < 1 << slot_bits:
        raise FixedPointOverflowError("slot value out of range")
    return u - (1 << slot_bits) if u >> (slot_bits - 1) else u
