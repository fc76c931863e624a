"""A true one-byte codec for projected gradients: sign bit + 7-bit log-magnitude index.

Byte layout ``s kkkkkkk``:

* ``k = 0``, ``s = 0`` (byte 0x00): zero (|g| below ``g_min``).
* ``k = 1..127``: magnitude bin ``[g_min·r^(k-1), g_min·r^k)`` with ``r = (g_max/g_min)^(1/127)``,
  decoded to the bin's harmonic midpoint ``2ab/(a+b)`` (equal worst relative error at both ends); ``s = 1`` makes it negative.
* byte 0x80 ("negative zero") is never produced and is refused on decode, so a peer
  cannot send two encodings of one value.

Error bound: for ``g_min <= |g| <= g_max`` the relative error of ``decode(encode(g))`` is at
most ``(r-1)/(r+1)`` (6.3% for the default 1e-3..1e4 range). Below ``g_min`` the absolute
error is below ``g_min``; above ``g_max`` the value is clipped to the top bin.
"""

from __future__ import annotations

import math

SIGN_BIT = 0x80
"""Set for negative values."""

MAGNITUDE_MASK = 0x7F
"""Low seven bits: the log-magnitude bin index."""

LEVELS = 127
"""Non-zero magnitude bins (indices 1..127)."""

RESERVED_BYTE = SIGN_BIT
"""Negative zero: never encoded, refused on decode."""


class ByteCodec:
    """Encode a projected gradient as one byte (an int in 0..255) and decode it back."""

    def __init__(self, g_min: float = 1e-3, g_max: float = 1e4) -> None:
        if not (math.isfinite(g_min) and math.isfinite(g_max) and 0 < g_min < g_max):
            raise ValueError(f"ByteCodec needs finite 0 < g_min < g_max, got {g_min!r}, {g_max!r}")
        self.g_min = float(g_min)
        self.g_max = float(g_max)
        self._log_r = math.log(self.g_max / self.g_min) / LEVELS
        self.ratio = math.exp(self._log_r)
        self._table = [0.0] + [self._midpoint(k) for k in range(1, LEVELS + 1)]

    @classmethod
    def from_settings(cls, settings) -> "ByteCodec":
        """The codec a :class:`SpsaSettings` describes."""
        return cls(settings.codec_min, settings.codec_max)

    @property
    def relative_error_bound(self) -> float:
        """Largest relative error inside ``[g_min, g_max]``: (r − 1)/(r + 1)."""
        return (self.ratio - 1.0) / (self.ratio + 1.0)

    def _midpoint(self, k: int) -> float:
        low = self.g_min * math.exp((k - 1) * self._log_r)
        high = self.g_min * math.exp(k * self._log_r)
        return 2.0 * low * high / (low + high)

    def encode(self, g: float) -> int:
        """Return the byte (0..255) for ``g``; raise ``ValueError`` if ``g`` is not finite."""
        g = float(g)
        if not math.isfinite(g):
            raise ValueError(f"cannot encode a non-finite projected gradient: {g!r}")
        magnitude = abs(g)
        if magnitude < self.g_min:
            return 0
        k = int(math.floor(math.log(magnitude / self.g_min) / self._log_r)) + 1
        k = max(1, min(LEVELS, k))
        return k | (SIGN_BIT if g < 0 else 0)

    def decode(self, b: int) -> float:
        """Return the value of byte ``b``; raise ``ValueError`` for anything but a valid byte."""
        if not isinstance(b, int) or isinstance(b, bool) or not 0 <= b <= 0xFF:
            raise ValueError(f"not a byte: {b!r}")
        if b == RESERVED_BYTE:
            raise ValueError("byte 0x80 (negative zero) is reserved and never valid")
        value = self._table[b & MAGNITUDE_MASK]
        return -value if b & SIGN_BIT else value

    def check(self, data: bytes) -> None:
        """Raise ``ValueError`` if any byte of ``data`` does not decode."""
        for b in data:
            self.decode(b)
