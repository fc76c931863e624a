"""Settings for MeritRank (personalised random walks with transitivity, connectivity and epoch decay)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

COUNTING_MODES = ("hit", "visit")


@dataclass(frozen=True)
class MeritRankSettings:
    """How MeritRank samples walks and turns them into reputation."""

    walks: int = 10_000
    """Random walks sampled per ego (the Monte-Carlo budget; standard error ~ sqrt(p(1-p)/walks))."""

    alpha: float = 0.15
    """Stop probability per step (transitivity decay); a walk also stops at a node with no positive out-edge."""

    beta: float = 0.0
    """Connectivity decay strength: a node j with rho(j) >= tau has its score multiplied by 1 - beta*rho(j)."""

    tau: float = 1.0
    """Threshold on rho(j) (share of j's walks that all passed one single intermediary); 0.95-1.0."""

    epoch_decay: float = 0.9
    """theta: every edge weight is multiplied by this at each `advance_epoch()`."""

    prune_below: float = 0.05
    """After epoch decay, edges whose |weight| falls below this floor are removed."""

    counting: Literal["hit", "visit"] = "hit"
    """"hit": walks that reach j / walks; "visit": visits of j / all visits (personalised-PageRank counting)."""

    def validate(self) -> None:
        """Raise ValueError naming the first field that is out of range."""
        if not isinstance(self.walks, int) or self.walks < 1:
            raise ValueError(f"walks must be a positive int, got {self.walks!r}")
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if not 0.0 <= self.beta <= 1.0:
            raise ValueError(f"beta must be in [0, 1], got {self.beta}")
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"tau must be in (0, 1], got {self.tau}")
        if not 0.0 < self.epoch_decay <= 1.0:
            raise ValueError(f"epoch_decay must be in (0, 1], got {self.epoch_decay}")
        if self.prune_below < 0.0:
            raise ValueError(f"prune_below must be >= 0, got {self.prune_below}")
        if self.counting not in COUNTING_MODES:
            raise ValueError(f"counting must be one of {COUNTING_MODES}, got {self.counting!r}")
