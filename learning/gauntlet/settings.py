"""Settings of Gauntlet-style contribution scoring (one frozen dataclass, validated)."""

from __future__ import annotations

from dataclasses import dataclass

WEIGHTING_SQUARED = "squared"
"""Weights ∝ final² (the earlier templar scheme): smooth, favours the clearly good."""
WEIGHTING_TOPK_RAMP = "topk_ramp"
"""Weights on a linear ramp over the top-k peers by final score (current templar)."""
WEIGHTING_SCHEMES = (WEIGHTING_SQUARED, WEIGHTING_TOPK_RAMP)


@dataclass(frozen=True)
class GauntletSettings:
    """Every knob of the scorer; defaults follow DESIGN.md §4 and templar."""

    uptime_window: int = 10
    """Recent rounds over which uptime (fraction of rounds with an accepted update) is measured."""
    inactive_decay: float = 0.75
    """Multiplier on a peer's standing for each round it published nothing."""
    slash_factor: float = 0.75
    """Multiplier on a peer's standing for each unreliable record (unsigned, malformed, late, duplicate)."""
    standing_recovery: float = 0.1
    """Fraction of the gap to full standing (1.0) recovered on each clean round."""
    sync_max_behind: int = 5
    """Rounds behind at which the sync score reaches 0 (templar: 5)."""
    sync_power: float = 2.5
    """Exponent of the sync score `(1 - min(x, max)/max) ** power` (templar: 2.5)."""
    binary_ema_alpha: float = 0.05
    """EMA rate of the own-versus-random binary indicator (templar: 0.05)."""
    openskill_beta: float = 7.0
    """PlackettLuce beta (performance noise; templar: 7)."""
    openskill_tau: float = 0.1
    """PlackettLuce tau (additive dynamics keeping sigma from collapsing; templar: 0.1)."""
    ordinal_z: float = 3.0
    """Ordinal = mu - z * sigma (conservative skill estimate)."""
    rejected_match_score: float = -1.0
    """Match score of an evaluated peer whose record failed stage 1 (below any real relative gain)."""
    gain_floor: float = -0.99
    """Lowest relative gain a match score takes (a wrecked model's −inf is clipped to it)."""
    eval_budget: int = 8
    """Peers this node evaluates per round in stage 2 (each costs at most 4 forward passes)."""
    staleness_power: float = 1.0
    """Selection probability ∝ (1 + rounds since last evaluated) ** power."""
    assigned_pool_size: int = 8
    """Sequences in a peer's assigned pool for one round (derived from peer id and round)."""
    eval_batch_size: int = 4
    """Sequences the evaluator draws (secretly) from a peer's assigned pool."""
    random_batch_size: int = 8
    """Sequences in the evaluator's secret random batch of the round (shared by all evaluated peers)."""
    dedup_min_bytes: int = 4
    """Shortest gradient payload checked for exact duplicates (shorter ones collide by chance)."""
    dedup_history_rounds: int = 8
    """Earlier rounds whose payloads are remembered to catch replays."""
    weighting: str = WEIGHTING_SQUARED
    """How final scores become aggregation weights: 'squared' (final²/Σfinal²) or 'topk_ramp'."""
    topk: int = 8
    """Peers weighted by the 'topk_ramp' scheme."""
    reputation_prior: float = 0.05
    """Reputation mass of an implicit validator scoring every peer 0 when combining validators'
    records: peers vouched for only by low-reputation validators stay near 0."""
    score_record_window: int = 2
    """A validator's score record is accepted only for this many rounds back from the current one."""
    restore_tolerance: float = 0.0
    """Allowed parameter difference after the stage-2 restore (0: bit-exact, checksum-verified)."""

    def validate(self) -> None:
        """Raise ValueError naming the first setting out of range."""
        _positive_int(self, "uptime_window", "eval_budget", "assigned_pool_size", "eval_batch_size",
                      "random_batch_size",
                      "dedup_min_bytes", "dedup_history_rounds", "topk", "sync_max_behind",
                      "score_record_window")
        for name in ("inactive_decay", "slash_factor"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        for name in ("standing_recovery", "binary_ema_alpha"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {value}")
        for name in ("sync_power", "openskill_beta", "ordinal_z", "reputation_prior"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("openskill_tau", "staleness_power", "restore_tolerance"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.eval_batch_size > self.assigned_pool_size:
            raise ValueError(
                f"eval_batch_size ({self.eval_batch_size}) must not exceed "
                f"assigned_pool_size ({self.assigned_pool_size})")
        if not self.rejected_match_score < self.gain_floor < 0:
            raise ValueError(f"need rejected_match_score ({self.rejected_match_score}) < gain_floor "
                             f"({self.gain_floor}) < 0")
        if self.weighting not in WEIGHTING_SCHEMES:
            raise ValueError(f"weighting must be one of {WEIGHTING_SCHEMES}, got {self.weighting!r}")


def _positive_int(settings: GauntletSettings, *names: str) -> None:
    for name in names:
        value = getattr(settings, name)
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
