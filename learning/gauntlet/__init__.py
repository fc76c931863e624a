"""Gauntlet-style contribution scoring (sans-IO): stage-1 filter, stage-2 evaluation, OpenSkill
ratings, final scores and weights, validators' score records and their reputation-weighted combination.

Typical round on a node (see `Validator.score_round`):
    report = validator.score_round(model, ctx, submissions, make_loss, dataset_size, known_peers)
    publish(report.record)                                  # signed by the transport
    book.admit(report.record, author=node_id, current_round=r)   # and every received record
    combined = combine_scores(book.records(), reputation, settings)   # reputation: MeritRank view
    weights = aggregation_weights(combined, settings)
    apply_round(model, accepted_records, spsa, weights=round_weights(weights, peers_of_records))
    store(validator.state.to_dict(), book.to_dict())       # plain dicts; from_dict on restart
"""

from learning.gauntlet.combine import ScoreBook, ScoreRecord, ScoreRejected, combine_scores
from learning.gauntlet.evaluate import PeerEval, RestoreError, Stage2Evaluator
from learning.gauntlet.filters import (
    FLAG_BEHIND,
    FLAG_DUPLICATE,
    FLAG_LATE,
    FLAG_MALFORMED,
    FLAG_REPLAY,
    FLAG_UNSIGNED,
    FLAG_WRONG_ROUND,
    REJECTING_FLAGS,
    DuplicateGuard,
    RoundContext,
    Screening,
    Submission,
    screen,
    screen_round,
    sync_score,
)
from learning.gauntlet.report import score_rows
from learning.gauntlet.sampling import assigned_pool, own_eval_indices, random_eval_indices, select_peers
from learning.gauntlet.settings import GauntletSettings
from learning.gauntlet.state import FLAG_INACTIVE, GauntletState, PeerState
from learning.gauntlet.validator import RoundReport, Validator
from learning.gauntlet.weights import aggregation_weights, round_weights, trust_edges

__all__ = [
    "FLAG_BEHIND", "FLAG_DUPLICATE", "FLAG_INACTIVE", "FLAG_LATE", "FLAG_MALFORMED", "FLAG_REPLAY",
    "FLAG_UNSIGNED", "FLAG_WRONG_ROUND", "REJECTING_FLAGS",
    "DuplicateGuard", "GauntletSettings", "GauntletState", "PeerEval", "PeerState", "RestoreError",
    "RoundContext", "RoundReport", "ScoreBook", "ScoreRecord", "ScoreRejected", "Screening",
    "Stage2Evaluator", "Submission", "Validator",
    "aggregation_weights", "assigned_pool", "combine_scores", "own_eval_indices", "random_eval_indices",
    "round_weights", "score_rows", "screen", "screen_round", "select_peers", "sync_score", "trust_edges",
]
