"""Search-under-attack experiment: G-Rank MRR with and without a Sybil clicklog flood."""

from __future__ import annotations


def flood_experiment(seed: int = 0, quick: bool = False) -> dict:
    """Return MRR figures for honest, vanilla-under-attack and reputation-weighted-under-attack G-Rank.

    Keys (at least): ``mrr_honest``, ``mrr_attack_vanilla``, ``mrr_attack_weighted``.
    """
    raise NotImplementedError("flood_experiment is being written (issue 4)")
