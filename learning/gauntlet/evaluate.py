"""Stage 2: loss before and after applying ONE peer's update, on its assigned and on random data.

The update is applied alone (as `apply_round` would apply it with weight 1), both losses are
measured, and the parameters are restored from a copy and verified against the checksum taken
before, so evaluating a peer never changes the evaluator's replica.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from learning.spsa import SpsaSettings, UpdateRecord, apply_round, param_checksum

LossFn = Callable[[torch.nn.Module], torch.Tensor]
"""A closure computing a scalar loss of the model on one fixed batch."""

_PASSES_BEFORE_RANDOM = 1
"""Forward passes for the shared 'before' loss on the round's random batch."""
_PASSES_PER_PEER = 3
"""Forward passes per peer: before on own data, after on own data, after on random data."""


class RestoreError(RuntimeError):
    """The replica's parameters did not come back bit for bit after a stage-2 evaluation."""


@dataclass(frozen=True)
class PeerEval:
    """Stage-2 measurements of one peer's update in one round."""

    peer: bytes
    """The evaluated peer."""
    loss_before_random: float
    """Loss on the evaluator's random batch before the update."""
    loss_after_random: float
    """Loss on the random batch with only this peer's update applied."""
    loss_before_own: float
    """Loss on the evaluator's secret draw from the peer's assigned pool, before."""
    loss_after_own: float
    """Same batch, after."""
    forward_passes: int
    """Forward passes spent on this peer (the shared 'before random' pass counted once per round)."""

    @property
    def random_gain(self) -> float:
        """Relative improvement on random data: (before − after) / before."""
        return _relative_gain(self.loss_before_random, self.loss_after_random)

    @property
    def own_gain(self) -> float:
        """Relative improvement on the peer's assigned data."""
        return _relative_gain(self.loss_before_own, self.loss_after_own)

    @property
    def indicator(self) -> int:
        """+1 when the own-data gain beats the random-data gain (the peer trained on its pool), else −1."""
        return 1 if self.own_gain > self.random_gain else -1


def _relative_gain(before: float, after: float) -> float:
    if not before > 0:
        raise ValueError(f"loss before must be > 0 to compute a relative gain, got {before}")
    return (before - after) / before


def _loss(model: torch.nn.Module, loss_fn: LossFn) -> float:
    with torch.no_grad():
        value = float(loss_fn(model))
    if value != value or value in (float("inf"), float("-inf")):
        return float("inf")
    return value


class Stage2Evaluator:
    """Evaluates peers of one round against one replica, sharing the 'before random' pass."""

    def __init__(self, model: torch.nn.Module, spsa: SpsaSettings, random_loss: LossFn) -> None:
        self.model = model
        self.spsa = spsa
        self.random_loss = random_loss
        self.forward_passes = 0
        self._before_random: float | None = None

    def before_random(self) -> float:
        """Loss on the round's random batch before any update (computed once)."""
        if self._before_random is None:
            self._before_random = self._eval(self.random_loss)
        return self._before_random

    def evaluate(self, record: UpdateRecord, own_loss: LossFn) -> PeerEval:
        """Apply `record` alone, measure, restore exactly; raise RestoreError if it did not come back."""
        first = self._before_random is None
        before_random = self.before_random()
        before_own = self._eval(own_loss)
        checksum = param_checksum(self.model)
        backup = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        try:
            apply_round(self.model, [record], self.spsa, weights=None)
            after_random = self._eval(self.random_loss)
            after_own = self._eval(own_loss)
        finally:
            self.model.load_state_dict(backup)
        if param_checksum(self.model) != checksum:
            raise RestoreError(f"parameters changed after evaluating peer {record.peer.hex()[:16]}")
        passes = _PASSES_PER_PEER + (_PASSES_BEFORE_RANDOM if first else 0)
        return PeerEval(record.peer, before_random, after_random, before_own, after_own, passes)

    def _eval(self, loss_fn: LossFn) -> float:
        was_training = self.model.training
        self.model.eval()
        try:
            value = _loss(self.model, loss_fn)
        finally:
            self.model.train(was_training)
        self.forward_passes += 1
        return value
