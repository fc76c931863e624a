"""The update record one peer publishes per round, its wire fields and its validation.

The record is lean on purpose: GossipSub strict signing already signs the message and
carries the author's peer id (``from``), so the wire body omits ``peer`` and there is
no second signature. :func:`record_fields` / :func:`record_from_fields` give the body
the protocol layer puts in its envelope; the peer id comes from the signed message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .codec import ByteCodec
from .settings import MAX_SAMPLES_PER_ROUND

CHECKSUM_BYTES = 8
"""Length of a parameter checksum (BLAKE2b-64 of the exact parameter bytes)."""

MAX_RUN_NAME_BYTES = 16
"""Longest run name (UTF-8 bytes): keeps one update message under 256 B on the wire."""

MAX_PEER_ID_BYTES = 64
"""Longest peer id (an Ed25519 libp2p peer id is 38 bytes)."""

MAX_ROUND = 2**32
"""Rounds fit msgpack's uint32 (5 bytes at most on the wire)."""


@dataclass(frozen=True)
class UpdateRecord:
    """One peer's contribution to one round: a byte per sample and the base it was built on."""

    run: str
    """Name of the training run."""

    round: int
    """Round number the update belongs to."""

    peer: bytes
    """Author's peer id (bytes); on the wire it is GossipSub's signed ``from`` field."""

    grads: bytes
    """One codec byte per sample; the sample count is ``len(grads)``."""

    base_checksum: bytes
    """:func:`param_checksum` of the replica the projected gradients were measured on."""

    def __post_init__(self) -> None:
        if not isinstance(self.run, str) or not self.run or len(self.run.encode()) > MAX_RUN_NAME_BYTES:
            raise ValueError(f"run must be a non-empty string of at most {MAX_RUN_NAME_BYTES} bytes")
        if not isinstance(self.round, int) or isinstance(self.round, bool) or not 0 <= self.round < MAX_ROUND:
            raise ValueError(f"round must be an int in 0..{MAX_ROUND - 1}, got {self.round!r}")
        for name in ("peer", "grads", "base_checksum"):
            if not isinstance(getattr(self, name), bytes):
                raise ValueError(f"{name} must be bytes")
        if not 0 < len(self.peer) <= MAX_PEER_ID_BYTES:
            raise ValueError(f"peer id must be 1..{MAX_PEER_ID_BYTES} bytes")
        if not 0 < len(self.grads) <= MAX_SAMPLES_PER_ROUND:
            raise ValueError(f"grads must carry 1..{MAX_SAMPLES_PER_ROUND} bytes, got {len(self.grads)}")
        if len(self.base_checksum) != CHECKSUM_BYTES:
            raise ValueError(f"base_checksum must be {CHECKSUM_BYTES} bytes, got {len(self.base_checksum)}")

    @property
    def samples(self) -> int:
        """Number of samples (bytes) carried."""
        return len(self.grads)


def record_fields(record: UpdateRecord) -> list:
    """The wire body (a msgpack-ready list) without the peer id: [run, round, grads, checksum]."""
    return [record.run, record.round, record.grads, record.base_checksum]


def record_from_fields(fields: Sequence, peer: bytes) -> UpdateRecord:
    """Rebuild a record from :func:`record_fields` output and the signed sender id."""
    if not isinstance(fields, (list, tuple)) or len(fields) != 4:
        raise ValueError("update body must be a list of 4 fields [run, round, grads, checksum]")
    run, round_, grads, checksum = fields
    return UpdateRecord(run=run, round=round_, peer=bytes(peer), grads=grads, base_checksum=checksum)


def validate_update(
    record: UpdateRecord,
    *,
    run: str,
    round_: int,
    seen_peers: set[bytes] | frozenset[bytes],
    codec: ByteCodec,
    samples: int | None = None,
) -> None:
    """Raise ``ValueError(reason)`` unless ``record`` may be applied in ``round_`` of ``run``."""
    if record.run != run:
        raise ValueError(f"wrong run: {record.run!r} (expected {run!r})")
    if record.round != round_:
        raise ValueError(f"wrong round: {record.round} (expected {round_})")
    if record.peer in seen_peers:
        raise ValueError("second update from the same peer in this round")
    if samples is not None and record.samples != samples:
        raise ValueError(f"wrong sample count: {record.samples} (expected {samples})")
    try:
        codec.check(record.grads)
    except ValueError as exc:
        raise ValueError(f"bad gradient byte: {exc}") from exc


class RoundValidator:
    """Collects the valid records of one round; refuses everything else with a reason."""

    def __init__(self, run: str, round_: int, codec: ByteCodec, samples: int | None = None) -> None:
        self.run = run
        self.round = round_
        self.codec = codec
        self.samples = samples
        self._records: dict[bytes, UpdateRecord] = {}

    def admit(self, record: UpdateRecord) -> None:
        """Validate and keep ``record``; raise ``ValueError(reason)`` when it is refused."""
        validate_update(
            record,
            run=self.run,
            round_=self.round,
            seen_peers=self._records.keys(),
            codec=self.codec,
            samples=self.samples,
        )
        self._records[record.peer] = record

    def __contains__(self, peer: bytes) -> bool:
        return peer in self._records

    def __len__(self) -> int:
        return len(self._records)

    def records(self) -> tuple[UpdateRecord, ...]:
        """The admitted records in application order (by peer id)."""
        return tuple(self._records[p] for p in sorted(self._records))
