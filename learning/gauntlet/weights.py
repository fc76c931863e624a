"""Final scores → aggregation weights (for `apply_round`) and → MeritRank trust edges.

Scheme chosen by default: final² / Σ final² (DESIGN: "earlier simply final²/Σ final²"). It needs no
k to tune, gives zero to every zero-score peer and squares away the small scores adversaries keep
before separation. The current templar scheme (top-k on a linear ramp) is available as 'topk_ramp'.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from learning.gauntlet.settings import WEIGHTING_SQUARED, GauntletSettings
from learning.gauntlet.state import GauntletState


def _check_scores(scores: Mapping[bytes, float]) -> None:
    for peer, value in scores.items():
        if not (value >= 0 and value != float("inf")):
            raise ValueError(f"final score of {peer.hex()[:16]} must be finite and >= 0, got {value}")


def aggregation_weights(scores: Mapping[bytes, float], settings: GauntletSettings) -> dict[bytes, float]:
    """Weights over every peer in `scores` that sum to 1; zero-score peers get exactly 0.

    All scores zero → every weight 0 (nothing has earned trust yet).
    """
    _check_scores(scores)
    weights = dict.fromkeys(scores, 0.0)
    positive = sorted((p for p, v in scores.items() if v > 0), key=lambda p: (-scores[p], p))
    if not positive:
        return weights
    if settings.weighting == WEIGHTING_SQUARED:
        raw = {p: scores[p] ** 2 for p in positive}
    else:
        top = positive[: settings.topk]
        raw = {p: float(len(top) - rank) for rank, p in enumerate(top)}
    total = sum(raw.values())
    for peer, value in raw.items():
        weights[peer] = value / total
    return weights


def round_weights(weights: Mapping[bytes, float], peers: Iterable[bytes]) -> dict[bytes, float]:
    """The `apply_round(weights=...)` mapping for a round whose records come from `peers`.

    `apply_round` treats a missing peer as weight 1.0, so every peer gets an explicit entry
    (0.0 if unweighted). The weights are rescaled so that their sum is the effective number of
    contributors 1/Σŵ² (ŵ: weights renormalised over `peers`): k equally trusted peers move the
    parameters as far as k unweighted updates, and a few barely trusted ones add almost nothing.
    """
    peers = sorted(set(peers))
    total = sum(max(0.0, weights.get(p, 0.0)) for p in peers)
    if total <= 0:
        return dict.fromkeys(peers, 0.0)
    shares = {p: max(0.0, weights.get(p, 0.0)) / total for p in peers}
    effective = 1.0 / sum(w * w for w in shares.values())
    return {p: w * effective for p, w in shares.items()}


def trust_edges(state: GauntletState, scores: Mapping[bytes, float] | None = None) -> list[tuple[bytes, float]]:
    """(peer, weight in [−1, 1]) trust edges from this node's view, for MeritRank.

    Positive: final / max final. Negative: −max(1 − reliability, −binary EMA) for peers with no
    positive score that were slashed or whose updates did not help their own data. Peers with
    neither evidence get no edge.
    """
    scores = state.final_scores() if scores is None else scores
    _check_scores(scores)
    best = max(scores.values(), default=0.0)
    edges: list[tuple[bytes, float]] = []
    for peer in sorted(scores):
        if scores[peer] > 0:
            edges.append((peer, scores[peer] / best))
            continue
        peer_state = state.peers.get(peer)
        if peer_state is None:
            continue
        distrust = max(1.0 - peer_state.reliability, -peer_state.binary_ema)
        if distrust > 0:
            edges.append((peer, -min(1.0, distrust)))
    return edges
