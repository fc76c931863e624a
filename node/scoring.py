"""The application-specific peer score fed to GossipSub (its P6 term).

A peer loses score for every message our validators REJECT (forged, malformed, rule-breaking) and
the penalty decays over time; a reputation source (MeritRank, later) adds to it. A Sybil that never
earned trust and keeps sending garbage cannot hold a mesh slot.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable

REJECT_PENALTY = 1.0
PENALTY_HALF_LIFE_S = 60.0


class PeerScores:
    """Decaying reject penalties plus an optional reputation term, per peer id (base58)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._penalty: dict[str, float] = defaultdict(float)
        self._stamp: dict[str, float] = {}
        self.rejects: dict[str, int] = defaultdict(int)
        self.reputation: Callable[[str], float] | None = None

    def _decayed(self, peer: str) -> float:
        stamp = self._stamp.get(peer)
        if stamp is None:
            return 0.0
        age = self._clock() - stamp
        return self._penalty[peer] * math.pow(0.5, age / PENALTY_HALF_LIFE_S)

    def penalise(self, peer: str, weight: float = REJECT_PENALTY) -> None:
        """Count one rejected message forwarded by ``peer``."""
        self._penalty[peer] = self._decayed(peer) + weight
        self._stamp[peer] = self._clock()
        self.rejects[peer] += 1

    def score(self, peer: str) -> float:
        """Reputation (if any) minus the decayed penalty."""
        base = self.reputation(peer) if self.reputation is not None else 0.0
        return base - self._decayed(peer)
