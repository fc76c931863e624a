"""Append-only update log: records per round (with the signed wire bytes they came in),
the checksum reached after each round, and replay onto a checkpoint.

The node stores the signed GossipSub message of every record as ``raw`` so that a late
joiner who receives the log can check the same signatures; this module keeps the bytes
opaque and never interprets them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import msgpack
import torch

from .records import UpdateRecord
from .rounds import apply_round, param_checksum
from .settings import SpsaSettings

LOG_FORMAT_VERSION = 1
"""Version tag of :meth:`UpdateLog.to_bytes`."""


@dataclass(frozen=True)
class LogEntry:
    """One record as logged, with the signed bytes it arrived in."""

    record: UpdateRecord
    """The decoded update."""

    raw: bytes = b""
    """Opaque signed wire message (kept for late joiners to re-verify)."""


@dataclass
class _Round:
    entries: dict[bytes, LogEntry] = field(default_factory=dict)
    checksum: bytes | None = None
    weights: dict[bytes, float] | None = None


class UpdateLog:
    """Append-only log of one run. Rounds are appended to, then closed with a checksum."""

    def __init__(self, run: str) -> None:
        self.run = run
        self._rounds: dict[int, _Round] = {}

    def append(self, record: UpdateRecord, raw: bytes = b"") -> None:
        """Log ``record``; refuse another run, a closed round or a second record of a peer."""
        if record.run != self.run:
            raise ValueError(f"record of run {record.run!r} in the log of {self.run!r}")
        slot = self._rounds.setdefault(record.round, _Round())
        if slot.checksum is not None:
            raise ValueError(f"round {record.round} is closed")
        if record.peer in slot.entries:
            raise ValueError("second update from the same peer in this round")
        slot.entries[record.peer] = LogEntry(record, bytes(raw))

    def close_round(self, round_: int, checksum: bytes, weights: Mapping[bytes, float] | None = None) -> None:
        """Mark ``round_`` applied, remembering the checksum reached and the weights used."""
        slot = self._rounds.setdefault(round_, _Round())
        if slot.checksum is not None:
            raise ValueError(f"round {round_} is already closed")
        slot.checksum = bytes(checksum)
        slot.weights = None if weights is None else {bytes(k): float(v) for k, v in weights.items()}

    def rounds(self) -> list[int]:
        """Round numbers present, ascending."""
        return sorted(self._rounds)

    def closed_rounds(self) -> list[int]:
        """Rounds that carry a checksum, ascending."""
        return [r for r in self.rounds() if self._rounds[r].checksum is not None]

    def entries(self, round_: int) -> list[LogEntry]:
        """The logged entries of ``round_`` in application order (by peer id)."""
        slot = self._rounds.get(round_)
        return [] if slot is None else [slot.entries[p] for p in sorted(slot.entries)]

    def records(self, round_: int) -> list[UpdateRecord]:
        """The records of ``round_`` in application order."""
        return [e.record for e in self.entries(round_)]

    def checksum(self, round_: int) -> bytes | None:
        """Checksum after ``round_``, or None if the round is not closed."""
        slot = self._rounds.get(round_)
        return None if slot is None else slot.checksum

    def weights(self, round_: int) -> dict[bytes, float] | None:
        """Weights ``round_`` was applied with (None: all 1.0)."""
        slot = self._rounds.get(round_)
        return None if slot is None else slot.weights

    def replay(self, model: torch.nn.Module, settings: SpsaSettings, after_round: int) -> int:
        """Apply every closed round after ``after_round`` in order, checking each checksum.

        Returns the last round applied (``after_round`` if none). Raises ``ValueError`` on
        the first checksum mismatch (the model is then at that mismatching round).
        """
        last = after_round
        for r in self.closed_rounds():
            if r <= after_round:
                continue
            apply_round(model, self.records(r), settings, self._rounds[r].weights)
            got = param_checksum(model)
            if got != self._rounds[r].checksum:
                raise ValueError(f"replay diverged at round {r}: {got.hex()} != {self._rounds[r].checksum.hex()}")
            last = r
        return last

    def iter_after(self, after_round: int) -> Iterator[tuple[int, list[LogEntry], bytes | None]]:
        """Yield (round, entries, checksum) for rounds after ``after_round`` (what a joiner needs)."""
        for r in self.rounds():
            if r > after_round:
                yield r, self.entries(r), self._rounds[r].checksum

    def to_bytes(self, after_round: int = -1) -> bytes:
        """Serialise rounds after ``after_round`` (msgpack)."""
        rounds = []
        for r, entries, checksum in self.iter_after(after_round):
            weights = self._rounds[r].weights
            rounds.append([
                r,
                [[e.record.peer, e.record.grads, e.record.base_checksum, e.raw] for e in entries],
                checksum,
                None if weights is None else [[k, v] for k, v in sorted(weights.items())],
            ])
        return msgpack.packb([LOG_FORMAT_VERSION, self.run, rounds], use_bin_type=True)

    @classmethod
    def from_bytes(cls, data: bytes, max_bytes: int = 64 * 1024 * 1024) -> "UpdateLog":
        """Inverse of :meth:`to_bytes`; raises ``ValueError`` on malformed input."""
        if len(data) > max_bytes:
            raise ValueError(f"log of {len(data)} bytes exceeds {max_bytes}")
        try:
            version, run, rounds = msgpack.unpackb(data, raw=False)
            if version != LOG_FORMAT_VERSION:
                raise ValueError(f"unknown log format version {version!r}")
            log = cls(run)
            for r, entries, checksum, weights in rounds:
                for peer, grads, base, raw in entries:
                    log.append(UpdateRecord(run, r, peer, grads, base), raw)
                if checksum is not None:
                    log.close_round(r, checksum, None if weights is None else dict(map(tuple, weights)))
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            raise ValueError(f"malformed update log: {exc}") from exc
        return log
