"""Rows for `plexus scores [--json]`: per peer μ, σ, ordinal, binary EMA, sync, final, weight, flags."""

from __future__ import annotations

from collections.abc import Mapping

from learning.gauntlet.state import GauntletState


def score_rows(state: GauntletState, finals: Mapping[bytes, float] | None = None,
               weights: Mapping[bytes, float] | None = None) -> list[dict]:
    """JSON-ready rows, best final first. `finals` defaults to this node's own view (pass the
    combined scores to show what aggregation uses); `weights` defaults to none shown (0.0)."""
    finals = state.final_scores() if finals is None else finals
    weights = weights or {}
    rows = []
    for peer in sorted(set(state.peers) | set(finals)):
        ps = state.peer(peer) if peer in state.peers else None
        rows.append({
            "peer": peer.hex(),
            "mu": ps.mu if ps else state.model.mu,
            "sigma": ps.sigma if ps else state.model.sigma,
            "ordinal": state.ordinal(peer),
            "binary_ema": ps.binary_ema if ps else 0.0,
            "sync": ps.sync if ps else 0.0,
            "uptime": state.uptime(peer),
            "activity": ps.activity if ps else 1.0,
            "reliability": ps.reliability if ps else 1.0,
            "slashes": ps.slashes if ps else 0,
            "final": float(finals.get(peer, 0.0)),
            "weight": float(weights.get(peer, 0.0)),
            "flags": list(ps.flags) if ps else [],
        })
    rows.sort(key=lambda row: (-row["final"], row["peer"]))
    return rows
