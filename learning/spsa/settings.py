"""Settings of a shared-seed SPSA (MeZO) run."""

from __future__ import annotations

import math
from dataclasses import dataclass

PERTURBATION_KINDS = ("gaussian", "rademacher")
"""Distributions of the perturbation z (see :mod:`learning.spsa.mezo`)."""

MAX_SAMPLES_PER_ROUND = 64
"""Most samples one peer may carry in one update record (one byte each)."""


@dataclass(frozen=True)
class SpsaSettings:
    """Hyper-parameters every replica of a run must share exactly."""

    eps: float = 1e-3
    """MeZO perturbation scale ε: θ ± ε z."""

    lr: float = 1e-4
    """Learning rate η applied to every decoded projected gradient."""

    weight_decay: float = 0.0
    """Decoupled L2 term: θ ← θ − η (g z + wd θ)."""

    samples_per_round: int = 1
    """Projected gradients (bytes) each peer contributes per round."""

    codec_min: float = 1e-3
    """Smallest non-zero |g| the one-byte codec represents; smaller magnitudes encode as 0."""

    codec_max: float = 1e4
    """Largest |g| the codec represents; larger magnitudes are clipped to it."""

    perturbation: str = "gaussian"
    """Distribution of z: "gaussian" (MeZO) or "rademacher" (±1, drawn without floating-point math)."""

    def validate(self) -> None:
        """Raise ``ValueError`` on a setting no run can use."""
        for name in ("eps", "lr", "codec_min", "codec_max"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"SpsaSettings.{name} must be a finite number > 0, got {value!r}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"SpsaSettings.weight_decay must be finite and >= 0, got {self.weight_decay!r}")
        if not (isinstance(self.samples_per_round, int) and 1 <= self.samples_per_round <= MAX_SAMPLES_PER_ROUND):
            raise ValueError(
                f"SpsaSettings.samples_per_round must be an int in 1..{MAX_SAMPLES_PER_ROUND}, "
                f"got {self.samples_per_round!r}"
            )
        if self.perturbation not in PERTURBATION_KINDS:
            raise ValueError(
                f"SpsaSettings.perturbation must be one of {PERTURBATION_KINDS}, got {self.perturbation!r}"
            )
        if self.codec_min >= self.codec_max:
            raise ValueError(
                f"SpsaSettings.codec_min ({self.codec_min}) must be below codec_max ({self.codec_max})"
            )
