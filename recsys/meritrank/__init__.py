"""MeritRank: Sybil-tolerant personalised reputation (random walks with alpha, beta/tau and epoch decay)."""

from recsys.meritrank.rank import MeritRank
from recsys.meritrank.settings import COUNTING_MODES, MeritRankSettings

__all__ = ["COUNTING_MODES", "MeritRank", "MeritRankSettings"]
