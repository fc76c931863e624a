"""A replica of a run: the small state machine a node drives round by round.

Per round the node (1) calls :meth:`Replica.own_update` and publishes the record,
(2) feeds every received record to :meth:`Replica.admit` (with the signed message bytes),
(3) at the round deadline calls :meth:`Replica.close_round`, which applies every admitted
record in peer order, logs the round with its checksum and moves to the next round.
All methods are synchronous; run them in a worker thread.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

import torch

from .checkpoint import load_checkpoint, save_checkpoint
from .codec import ByteCodec
from .log import UpdateLog
from .records import RoundValidator, UpdateRecord
from .rounds import apply_round, local_update, param_checksum
from .settings import SpsaSettings

DEFAULT_LOOKAHEAD = 1
"""Rounds beyond the current one whose early records are held until their turn."""


class Replica:
    """One node's copy of the model of ``run`` with its update log."""

    def __init__(
        self,
        model: torch.nn.Module,
        settings: SpsaSettings,
        run: str,
        round_: int = 0,
        log: UpdateLog | None = None,
        lookahead: int = DEFAULT_LOOKAHEAD,
    ) -> None:
        settings.validate()
        if lookahead < 0:
            raise ValueError(f"lookahead must be >= 0, got {lookahead}")
        self.model = model
        self.settings = settings
        self.run = run
        self.round = round_
        self.log = log if log is not None else UpdateLog(run)
        self.lookahead = lookahead
        self.codec = ByteCodec.from_settings(settings)
        self.checksum = param_checksum(model)
        self._pending: dict[int, RoundValidator] = {}

    def _validator(self, round_: int) -> RoundValidator:
        if round_ not in self._pending:
            self._pending[round_] = RoundValidator(self.run, round_, self.codec, self.settings.samples_per_round)
        return self._pending[round_]

    def own_update(self, peer: bytes, losses: Sequence[Callable[[torch.nn.Module], torch.Tensor]]) -> UpdateRecord:
        """This peer's record for the current round (the model is left unchanged)."""
        return local_update(
            self.model, losses, run=self.run, round_=self.round, peer=peer,
            settings=self.settings, base_checksum=self.checksum,
        )

    def admit(self, record: UpdateRecord, raw: bytes = b"") -> None:
        """Accept a record of the current round (or up to ``lookahead`` rounds ahead).

        Raises ``ValueError(reason)`` for a wrong run, a past or too distant round, a
        second record of a peer in a round, a wrong sample count or a bad byte; the
        replica is untouched then.
        """
        if record.run != self.run:
            raise ValueError(f"wrong run: {record.run!r} (expected {self.run!r})")
        if not self.round <= record.round <= self.round + self.lookahead:
            raise ValueError(f"wrong round: {record.round} (current {self.round})")
        self._validator(record.round).admit(record)
        self.log.append(record, raw)

    def peers_this_round(self) -> int:
        """Records admitted so far for the current round."""
        validator = self._pending.get(self.round)
        return 0 if validator is None else len(validator)

    def close_round(self, weights: Mapping[bytes, float] | None = None) -> bytes:
        """Apply the current round's records in peer order, log its checksum, advance; return the checksum."""
        validator = self._pending.pop(self.round, None)
        records = validator.records() if validator is not None else ()
        if records:
            apply_round(self.model, records, self.settings, weights)
        self.checksum = param_checksum(self.model)
        self.log.close_round(self.round, self.checksum, weights)
        self.round += 1
        return self.checksum

    def save(self, path: str | os.PathLike) -> None:
        """Checkpoint the model as of the end of the last closed round."""
        save_checkpoint(self.model, path, self.round - 1, self.checksum)

    @classmethod
    def join(
        cls,
        model: torch.nn.Module,
        settings: SpsaSettings,
        checkpoint: str | os.PathLike,
        log: UpdateLog,
    ) -> "Replica":
        """A late joiner: load a checkpoint, replay ``log``'s closed rounds after it (checksums checked)."""
        round_loaded, _ = load_checkpoint(model, checkpoint)
        last = log.replay(model, settings, after_round=round_loaded)
        replica = cls(model, settings, log.run, round_=last + 1, log=log)
        for r in log.rounds():
            if r > last:
                for entry in log.entries(r):
                    replica._validator(r).admit(entry.record)
        return replica
