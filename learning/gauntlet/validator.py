"""A node's validator role for one round: stage 1 on everything, stage 2 on a budgeted sample.

Call `Validator.score_round` once per round after the round's deadline, with the submissions in
arrival order, the replica the round's updates were built on (it is left bit-for-bit unchanged)
and a `make_loss(indices)` that turns dataset indices into a loss closure. The returned report
carries the `ScoreRecord` to publish.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from learning.gauntlet.combine import ScoreRecord
from learning.gauntlet.evaluate import LossFn, PeerEval, Stage2Evaluator
from learning.gauntlet.filters import RoundContext, Screening, Submission, screen_round
from learning.gauntlet.sampling import assigned_pool, own_eval_indices, random_eval_indices, select_peers
from learning.gauntlet.settings import GauntletSettings
from learning.gauntlet.state import GauntletState
from learning.spsa import SpsaSettings

MakeLoss = Callable[[np.ndarray], LossFn]
"""Dataset indices → loss closure on that batch."""


@dataclass(frozen=True)
class RoundReport:
    """What one validator concluded about one round."""

    round: int
    """The scored round."""
    screenings: dict[bytes, Screening]
    """Stage-1 verdicts by peer."""
    evaluations: dict[bytes, PeerEval]
    """Stage-2 measurements of the sampled peers."""
    forward_passes: int
    """Forward passes spent in stage 2 (budget: 4 per evaluated peer)."""
    record: ScoreRecord
    """This validator's final scores after the round, to publish."""

    @property
    def accepted(self) -> list[bytes]:
        """Peers whose records passed stage 1."""
        return sorted(p for p, v in self.screenings.items() if v.accepted)


class Validator:
    """One node's scoring state machine (sans-IO)."""

    def __init__(self, node_id: bytes, secret: bytes, settings: GauntletSettings, spsa: SpsaSettings,
                 state: GauntletState | None = None) -> None:
        settings.validate()
        spsa.validate()
        if not secret:
            raise ValueError("the evaluator secret must be non-empty (peers must not predict its draws)")
        self.node_id = node_id
        self.secret = secret
        self.settings = settings
        self.spsa = spsa
        self.state = state if state is not None else GauntletState(settings)

    def score_round(self, model: torch.nn.Module, ctx: RoundContext, submissions: Sequence[Submission],
                    make_loss: MakeLoss, dataset_size: int,
                    known_peers: Iterable[bytes] = ()) -> RoundReport:
        """Screen, evaluate a staleness-weighted sample, update ratings; return what to publish."""
        s = self.settings
        screenings = screen_round(submissions, ctx, self.state.guard, s)
        self.state.apply_screenings(ctx.round, screenings, known_peers)
        records = {sub.record.peer: sub.record for sub in submissions
                   if getattr(sub.record, "peer", None) in screenings
                   and screenings[sub.record.peer].accepted}
        candidates = [p for p in sorted(records) if p != self.node_id]
        last = {p: self.state.peer(p).last_evaluated for p in candidates}
        chosen = select_peers(candidates, last, ctx.round, s.eval_budget, self.secret, s.staleness_power)
        evaluator = Stage2Evaluator(model, self.spsa,
                                    make_loss(random_eval_indices(self.secret, ctx.round, dataset_size,
                                                                  s.random_batch_size)))
        evaluations = {}
        for peer in chosen:
            pool = assigned_pool(ctx.run, peer, ctx.round, s.assigned_pool_size, dataset_size)
            own = own_eval_indices(pool, self.secret, ctx.round, peer, s.eval_batch_size)
            evaluations[peer] = evaluator.evaluate(records[peer], make_loss(own))
        rejected = [p for p, v in screenings.items() if not v.accepted and p != self.node_id]
        self.state.apply_evaluations(ctx.round, evaluations, rejected)
        record = ScoreRecord.from_scores(self.node_id, ctx.round, self.state.final_scores())
        return RoundReport(ctx.round, screenings, evaluations, evaluator.forward_passes, record)
