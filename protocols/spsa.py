"""Shared-seed SPSA on the wire: the one-byte update, the run announcement and catch-up sync.

* Topic ``plexus/<network>/spsa`` carries two messages: :class:`SpsaUpdate` (one per peer and round:
  run, round, one byte per sample, the checksum it was built on) and :class:`RunAnnouncement` (what a
  run is, so that peers join the same one). The update has no peer id and no signature of its own:
  GossipSub's strict signing signs the whole message and carries the author (``from``), which is
  what :func:`record_of` puts back into the record. Field names are one letter on purpose: a
  one-sample update message stays under 256 bytes on the wire.
* Stream protocol ``/plexus/spsa/1.0.0`` serves late joiners and re-syncing peers: one
  :class:`SyncRequest` frame; the answer is one :class:`SyncHeader` frame, then the checkpoint bytes
  and the update log bytes in chunks of at most :data:`SYNC_CHUNK_BYTES`, every size capped by the
  asker before a byte of it is read. Each logged entry keeps the signed GossipSub message it
  arrived in; :func:`record_from_raw` re-checks that signature so a joiner trusts no relay.

This module never imports torch at import time (the daemon starts without it): the learning core is
imported inside the functions that build or check records.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from protocols.codec import DecodeError, decode, encode
from protocols.framing import ByteStream, read_frame, write_frame
from protocols.message import ErrorReply, limits, wire_message
from protocols.validation import Validation, accept, reject

if TYPE_CHECKING:  # pragma: no cover - typing only; importing learning.spsa loads torch
    from learning.spsa import SpsaSettings, UpdateRecord

PROTOCOL_ID = "/plexus/spsa/1.0.0"
TOPIC_SERVICE = "spsa"

# Mirrors of learning.spsa's record limits (that package imports torch; a unit test keeps them equal).
MAX_RUN_NAME_BYTES = 16
"""Longest run name in UTF-8 bytes (learning.spsa.MAX_RUN_NAME_BYTES)."""
CHECKSUM_BYTES = 8
"""Length of a parameter checksum (learning.spsa.CHECKSUM_BYTES)."""
MAX_SAMPLES = 64
"""Most bytes one update carries (learning.spsa.MAX_SAMPLES_PER_ROUND)."""
MAX_ROUND = 2**32
"""Rounds are below this (learning.spsa.MAX_ROUND)."""
PERTURBATIONS = ("gaussian", "rademacher")
"""Perturbation kinds (learning.spsa.settings.PERTURBATION_KINDS)."""
RESERVED_BYTE = 0x80
"""The codec's "negative zero": never a valid gradient byte."""

UPDATE_MAX_BYTES = 160
"""Cap on one encoded update envelope (the longest legal one is ~100 bytes)."""
ANNOUNCE_MAX_BYTES = 2048
"""Cap on one encoded run announcement."""
MAX_MODEL_CHARS = 512
"""Longest model name or path in an announcement."""
MAX_ROUNDS = 1_000_000
"""Most rounds one run may announce."""
MAX_ROUND_S = 3600.0
"""Longest round one run may announce (seconds)."""
MAX_BATCH = 1024
"""Largest batch size or sequence length an announcement may ask for."""
SYNC_REQUEST_MAX_BYTES = 256
"""Cap on a sync request frame."""
SYNC_CHUNK_BYTES = 64 * 1024
"""Largest data chunk frame of a sync answer."""
MAX_SYNC_BYTES = 2**40
"""Ceiling on sizes a sync header may announce (the asker applies its own, smaller cap)."""
NO_CHECKPOINT = -2
"""``checkpoint_round`` of a sync answer that carries only the log."""
SYNC_REFUSED = 1
"""ErrorReply code: the server does not serve this run (or has nothing yet)."""
SYNC_MALFORMED = 0
"""ErrorReply code: the request did not decode."""


def topic(network: str) -> str:
    """The SPSA gossip topic of ``network``."""
    return f"plexus/{network}/{TOPIC_SERVICE}"


# ----------------------------------------------------------------------------- the update


@wire_message(type_id=0x0601, version=1, max_size=UPDATE_MAX_BYTES)
@dataclass(frozen=True)
class SpsaUpdate:
    """One peer's update of one round (the author is GossipSub's signed ``from``)."""

    r: str = field(metadata=limits(min_len=1, max_len=MAX_RUN_NAME_BYTES))
    """Run name."""
    n: int = field(metadata=limits(min=0, max=MAX_ROUND - 1))
    """Round number."""
    g: bytes = field(metadata=limits(min_len=1, max_len=MAX_SAMPLES))
    """One codec byte per sample."""
    c: bytes = field(metadata=limits(min_len=CHECKSUM_BYTES, max_len=CHECKSUM_BYTES))
    """Parameter checksum the update was measured on."""

    def check(self) -> None:
        if len(self.r.encode("utf-8")) > MAX_RUN_NAME_BYTES:
            raise ValueError(f"run name longer than {MAX_RUN_NAME_BYTES} bytes")

    @classmethod
    def sample(cls) -> "SpsaUpdate":
        return cls(r="run", n=3, g=b"\x05", c=b"\x01" * CHECKSUM_BYTES)


def update_message(record: "UpdateRecord") -> SpsaUpdate:
    """The wire message of ``record`` (its peer id travels as the signed GossipSub sender)."""
    from learning.spsa import record_fields

    run, round_, grads, checksum = record_fields(record)
    return SpsaUpdate(r=run, n=round_, g=grads, c=checksum)


def record_of(msg: SpsaUpdate, peer: bytes) -> "UpdateRecord":
    """The learning core's record for ``msg`` authored by ``peer``; ValueError if it is not one."""
    from learning.spsa import record_from_fields

    return record_from_fields([msg.r, msg.n, msg.g, msg.c], peer)


def bad_byte(msg: SpsaUpdate) -> bool:
    """True if the update carries the reserved byte (it decodes to no value)."""
    return RESERVED_BYTE in msg.g


def record_from_raw(raw: bytes) -> "UpdateRecord":
    """Re-check a logged signed GossipSub message and return its record.

    Raises ``ValueError(reason)`` if ``raw`` is not a protobuf pubsub message, its signature does
    not verify against its ``from`` id, or its data is not a valid :class:`SpsaUpdate`.
    """
    from google.protobuf.message import DecodeError as ProtobufError
    from libp2p.pubsub.pb import rpc_pb2
    from libp2p.pubsub.validators import signature_validator

    try:
        msg = rpc_pb2.Message.FromString(raw)
    except ProtobufError as exc:
        raise ValueError(f"logged message does not parse: {exc}") from exc
    try:
        signed = bool(msg.signature) and signature_validator(msg)
    except Exception as exc:  # noqa: BLE001 - libp2p raises several types on bad keys
        raise ValueError(f"logged message signature check failed: {type(exc).__name__}") from exc
    if not signed:
        raise ValueError("logged message has a bad signature")
    try:
        update = decode(msg.data, expect=SpsaUpdate)
    except DecodeError as exc:
        raise ValueError(f"logged message body: {exc.reason}") from exc
    return record_of(update, msg.from_id)


# ----------------------------------------------------------------------------- the run


@wire_message(type_id=0x0602, version=1, max_size=ANNOUNCE_MAX_BYTES)
@dataclass(frozen=True)
class RunAnnouncement:
    """What a run is: every replica of it must use exactly these values."""

    run: str = field(metadata=limits(min_len=1, max_len=MAX_RUN_NAME_BYTES))
    """Run name."""
    model: str = field(metadata=limits(min_len=1, max_len=MAX_MODEL_CHARS))
    """"tiny" or a local Hugging Face model path every peer has."""
    rounds: int = field(metadata=limits(min=1, max=MAX_ROUNDS))
    """Rounds in the run (0 .. rounds-1)."""
    round_s: float = field(metadata=limits(min=0.05, max=MAX_ROUND_S))
    """Length of one round; round r closes at start_time + (r+1)·round_s."""
    start_time: float = field(metadata=limits(min=0.0))
    """Unix time at which round 0 opens."""
    samples_per_round: int = field(metadata=limits(min=1, max=MAX_SAMPLES))
    """Bytes (samples) each peer sends per round."""
    eps: float = field(metadata=limits(min=0.0))
    """MeZO perturbation scale."""
    lr: float = field(metadata=limits(min=0.0))
    """Learning rate."""
    weight_decay: float = field(metadata=limits(min=0.0))
    """Decoupled weight decay."""
    codec_min: float = field(metadata=limits(min=0.0))
    """Codec's smallest non-zero magnitude."""
    codec_max: float = field(metadata=limits(min=0.0))
    """Codec's largest magnitude."""
    perturbation: str = field(metadata=limits(min_len=1, max_len=16))
    """"gaussian" or "rademacher"."""
    batch_size: int = field(metadata=limits(min=1, max=MAX_BATCH))
    """Sequences per training batch."""
    seq_len: int = field(metadata=limits(min=1, max=MAX_BATCH))
    """Tokens per training sequence."""
    n_shards: int = field(metadata=limits(min=1, max=MAX_BATCH))
    """Training shards the default corpus is split into."""
    data_seed: int = field(metadata=limits(min=0, max=2**31))
    """Seed of the corpus split and of the shared evaluation batches."""

    def check(self) -> None:
        if len(self.run.encode("utf-8")) > MAX_RUN_NAME_BYTES:
            raise ValueError(f"run name longer than {MAX_RUN_NAME_BYTES} bytes")
        # the rules of learning.spsa.SpsaSettings.validate(), without importing torch in a validator
        for name in ("eps", "lr", "codec_min", "codec_max"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0")
        if self.codec_min >= self.codec_max:
            raise ValueError("codec_min must be below codec_max")
        if self.perturbation not in PERTURBATIONS:
            raise ValueError(f"perturbation must be one of {PERTURBATIONS}")

    def spsa_settings(self) -> "SpsaSettings":
        """The learning core's settings of this run."""
        from learning.spsa import SpsaSettings

        return SpsaSettings(
            eps=self.eps, lr=self.lr, weight_decay=self.weight_decay, samples_per_round=self.samples_per_round,
            codec_min=self.codec_min, codec_max=self.codec_max, perturbation=self.perturbation,
        )

    def round_at(self, now: float) -> int:
        """The round open at Unix time ``now`` (negative before the start)."""
        return int((now - self.start_time) // self.round_s)

    def opens(self, round_: int) -> float:
        """Unix time at which ``round_`` opens (and ``round_ - 1`` closes)."""
        return self.start_time + round_ * self.round_s

    @classmethod
    def sample(cls) -> "RunAnnouncement":
        return cls("run", "tiny", 10, 2.0, 1.0, 1, 1e-3, 1e-3, 0.0, 1e-3, 1e4, "gaussian", 8, 64, 4, 0)


def validate_gossip(data: bytes) -> tuple[Validation, SpsaUpdate | RunAnnouncement | None]:
    """Decode a message of the SPSA topic: REJECT what does not decode or carries a reserved byte."""
    try:
        msg = decode(data, expect=(SpsaUpdate, RunAnnouncement))
    except DecodeError as exc:
        return reject(exc.reason), None
    if isinstance(msg, SpsaUpdate) and bad_byte(msg):
        return reject("gradient byte 0x80 is reserved"), msg
    return accept(), msg


# ----------------------------------------------------------------------------- catch-up sync


@wire_message(type_id=0x0603, version=1, max_size=SYNC_REQUEST_MAX_BYTES)
@dataclass(frozen=True)
class SyncRequest:
    """Ask a peer for the state of a run after the asker's last closed round."""

    run: str = field(metadata=limits(min_len=1, max_len=MAX_RUN_NAME_BYTES))
    """Run name."""
    after_round: int = field(metadata=limits(min=-1, max=MAX_ROUND))
    """The asker's last closed round; -1: the asker has nothing and needs a checkpoint."""

    @classmethod
    def sample(cls) -> "SyncRequest":
        return cls("run", 4)


@wire_message(type_id=0x0604, version=1, max_size=ANNOUNCE_MAX_BYTES + 256)
@dataclass(frozen=True)
class SyncHeader:
    """The first frame of a sync answer: the run and the sizes of what follows."""

    announcement: RunAnnouncement
    """The run served."""
    checkpoint_round: int = field(metadata=limits(min=NO_CHECKPOINT, max=MAX_ROUND))
    """Round the checkpoint is at (-1: the initial model); NO_CHECKPOINT: the answer carries the log only."""
    checkpoint_bytes: int = field(metadata=limits(min=0, max=MAX_SYNC_BYTES))
    """Bytes of checkpoint that follow (0 with NO_CHECKPOINT)."""
    log_bytes: int = field(metadata=limits(min=1, max=MAX_SYNC_BYTES))
    """Bytes of update log that follow the checkpoint."""
    closed_round: int = field(metadata=limits(min=-1, max=MAX_ROUND))
    """The server's last closed round (-1: none yet)."""
    checksum: bytes = field(metadata=limits(min_len=CHECKSUM_BYTES, max_len=CHECKSUM_BYTES))
    """The server's parameter checksum after ``closed_round``: lets an asker compare without replaying."""

    @classmethod
    def sample(cls) -> "SyncHeader":
        return cls(RunAnnouncement.sample(), 3, 10, 10, 5, b"\x02" * CHECKSUM_BYTES)


class SyncFailed(RuntimeError):
    """The peer refused the sync or answered with something out of bounds."""


@dataclass(frozen=True)
class SyncAnswer:
    """What a server hands to :func:`serve_sync` (and an asker gets from :func:`fetch_sync`)."""

    header: SyncHeader
    """Run and sizes."""
    checkpoint: bytes
    """Checkpoint file bytes (empty with NO_CHECKPOINT)."""
    log: bytes
    """``UpdateLog.to_bytes`` output."""


async def _write_chunks(stream: ByteStream, data: bytes) -> None:
    for start in range(0, len(data), SYNC_CHUNK_BYTES):
        await write_frame(stream, data[start : start + SYNC_CHUNK_BYTES])


async def _read_chunks(stream: ByteStream, size: int) -> bytes:
    parts, got = [], 0
    while got < size:
        chunk = await read_frame(stream, min(SYNC_CHUNK_BYTES, size - got))
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


async def serve_sync(stream: ByteStream, answer: Callable[[SyncRequest], Awaitable["SyncAnswer"]]) -> str:
    """Answer one sync request; ``answer`` raises :class:`SyncFailed` to refuse. Returns what happened."""
    try:
        request = decode(await read_frame(stream, SYNC_REQUEST_MAX_BYTES), expect=SyncRequest)
    except DecodeError as exc:
        await write_frame(stream, encode(ErrorReply(code=SYNC_MALFORMED, reason=exc.reason)))
        return f"malformed: {exc.reason}"
    try:
        reply = await answer(request)
    except SyncFailed as exc:
        await write_frame(stream, encode(ErrorReply(code=SYNC_REFUSED, reason=str(exc))))
        return f"refused: {exc}"
    await write_frame(stream, encode(reply.header))
    await _write_chunks(stream, reply.checkpoint)
    await _write_chunks(stream, reply.log)
    return f"served {request.run} after round {request.after_round}"


async def fetch_sync(stream: ByteStream, run: str, after_round: int, max_bytes: int) -> SyncAnswer:
    """Ask for ``run`` after ``after_round``; refuse answers over ``max_bytes`` before reading them."""
    await write_frame(stream, encode(SyncRequest(run=run, after_round=after_round)))
    header = decode(await read_frame(stream, ANNOUNCE_MAX_BYTES + 256), expect=(SyncHeader, ErrorReply))
    if isinstance(header, ErrorReply):
        raise SyncFailed(header.reason)
    if header.announcement.run != run:
        raise SyncFailed(f"asked for run {run!r}, got {header.announcement.run!r}")
    if header.checkpoint_bytes + header.log_bytes > max_bytes:
        raise SyncFailed(f"answer of {header.checkpoint_bytes + header.log_bytes} bytes exceeds {max_bytes}")
    if (header.checkpoint_round == NO_CHECKPOINT) != (header.checkpoint_bytes == 0):
        raise SyncFailed("checkpoint round and size disagree")
    checkpoint = await _read_chunks(stream, header.checkpoint_bytes)
    log = await _read_chunks(stream, header.log_bytes)
    return SyncAnswer(header, checkpoint, log)
