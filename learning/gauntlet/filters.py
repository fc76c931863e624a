"""Stage 1, the fast filter: reliability, sync and duplicate/replay screening of one round's updates.

No forward pass happens here. The protocol layer tells the core whether a record was authenticated
(GossipSub strict signing, author == record.peer) and whether it arrived inside the round window;
everything else is checked from the record itself.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from learning.gauntlet.settings import GauntletSettings

FLAG_UNSIGNED = "unsigned"
"""The record was not authenticated as coming from its claimed peer."""
FLAG_MALFORMED = "malformed"
"""Wrong run, empty or wrong-length payload, or fields of the wrong type."""
FLAG_LATE = "late"
"""Arrived outside the round window."""
FLAG_WRONG_ROUND = "wrong_round"
"""Claims a round other than the one being scored."""
FLAG_DUPLICATE = "duplicate"
"""Payload equals another peer's (or an earlier record's of the same peer) in this round."""
FLAG_REPLAY = "replay"
"""Payload equals one seen in an earlier round."""
FLAG_BEHIND = "behind"
"""Built on an older parameter checksum (accepted, but its sync score is reduced)."""

REJECTING_FLAGS = frozenset({FLAG_UNSIGNED, FLAG_MALFORMED, FLAG_LATE, FLAG_WRONG_ROUND,
                             FLAG_DUPLICATE, FLAG_REPLAY})
"""Flags that reject a record and slash its peer's reliability."""


class UpdateLike(Protocol):
    """The fields of `learning.spsa.UpdateRecord` the filter reads."""

    run: str
    round: int
    peer: bytes
    grads: bytes
    base_checksum: bytes


@dataclass(frozen=True)
class Submission:
    """One received update as the protocol layer hands it to the core."""

    record: Any
    """The `UpdateRecord` (anything with run, round, peer, grads, base_checksum)."""
    authenticated: bool = True
    """True when the transport verified the author's signature and author == record.peer."""
    on_time: bool = True
    """True when it arrived inside the round window."""


@dataclass(frozen=True)
class RoundContext:
    """What the scoring node knows about the round being screened."""

    run: str
    """The fine-tuning run id; records of another run are malformed."""
    round: int
    """The round being scored."""
    checksum: bytes
    """Parameter checksum the round's updates must be built on."""
    recent_checksums: Mapping[bytes, int] = field(default_factory=dict)
    """Checksums of earlier rounds (checksum → round) to tell how far behind a record is."""
    expected_grads_len: int | None = None
    """Bytes per update (samples per round); None accepts any non-empty payload."""
    codec: Any = None
    """A `ByteCodec`; when given, a payload with an undecodable byte is malformed."""


@dataclass(frozen=True)
class Screening:
    """Stage-1 verdict on one peer's update this round."""

    peer: bytes
    """The claimed author."""
    flags: tuple[str, ...]
    """Everything raised, in a fixed order."""
    rounds_behind: int
    """How many rounds old the base checksum is (sync_max_behind when unknown)."""
    sync: float
    """Sync score from rounds_behind."""

    @property
    def accepted(self) -> bool:
        """True when no rejecting flag was raised."""
        return not REJECTING_FLAGS.intersection(self.flags)


def sync_score(rounds_behind: int, settings: GauntletSettings) -> float:
    """templar's sync score `(1 - min(x, m)/m) ** p` for x rounds behind (1 when current)."""
    if rounds_behind < 0:
        raise ValueError(f"rounds_behind must be >= 0, got {rounds_behind}")
    m = settings.sync_max_behind
    return (1.0 - min(rounds_behind, m) / m) ** settings.sync_power


def rounds_behind(base_checksum: bytes, ctx: RoundContext, settings: GauntletSettings) -> int:
    """Rounds between the record's base checksum and the current one; unknown counts as the maximum."""
    if base_checksum == ctx.checksum:
        return 0
    built_at = ctx.recent_checksums.get(base_checksum)
    if built_at is None or built_at >= ctx.round:
        return settings.sync_max_behind
    return ctx.round - built_at


def _well_formed(record: Any, ctx: RoundContext) -> bool:
    try:
        ok = (record.run == ctx.run and isinstance(record.peer, bytes) and len(record.peer) > 0
              and isinstance(record.grads, bytes) and len(record.grads) > 0
              and isinstance(record.base_checksum, bytes) and isinstance(record.round, int))
    except AttributeError:
        return False
    if not ok or (ctx.expected_grads_len is not None and len(record.grads) != ctx.expected_grads_len):
        return False
    if ctx.codec is not None:
        try:
            ctx.codec.check(record.grads)
        except ValueError:
            return False
    return True


class DuplicateGuard:
    """Remembers payload digests of the current and recent rounds to catch copies and replays.

    Records must be observed in arrival order: a copier must have seen the original before it can
    copy it, so the first author of a payload keeps it and later ones are flagged.
    """

    def __init__(self, settings: GauntletSettings) -> None:
        self._settings = settings
        self._history: OrderedDict[int, set[bytes]] = OrderedDict()
        self._current: set[bytes] = set()
        self._current_round: int | None = None

    def check(self, record: UpdateLike, round_: int) -> str | None:
        """Flag for `record` screened in `round_` (FLAG_DUPLICATE / FLAG_REPLAY) or None.

        The payload is remembered under `round_` (the round being screened, whatever the record
        claims), so a later copy in this round is a duplicate and one in a later round a replay.
        """
        if self._current_round != round_:
            self._start_round(round_)
        if len(record.grads) < self._settings.dedup_min_bytes:
            return None
        digest = hashlib.sha256(record.grads).digest()
        if any(digest in seen for seen in self._history.values()):
            return FLAG_REPLAY
        if digest in self._current:
            return FLAG_DUPLICATE
        self._current.add(digest)
        return None

    def _start_round(self, round_: int) -> None:
        if self._current_round is not None:
            self._history[self._current_round] = self._current
        self._current = self._history.pop(round_, set())
        self._current_round = round_
        while len(self._history) > self._settings.dedup_history_rounds:
            self._history.popitem(last=False)

    def to_dict(self) -> dict:
        """Plain-dict state (hex digests) for storage."""
        history = {str(r): sorted(d.hex() for d in seen) for r, seen in self._history.items()}
        if self._current_round is not None:
            history[str(self._current_round)] = sorted(d.hex() for d in self._current)
        return {"history": history, "current_round": self._current_round}

    @classmethod
    def from_dict(cls, data: Mapping, settings: GauntletSettings) -> DuplicateGuard:
        """Inverse of to_dict."""
        guard = cls(settings)
        current = data.get("current_round")
        for r_text, digests in data.get("history", {}).items():
            seen = {bytes.fromhex(d) for d in digests}
            if current is not None and int(r_text) == current:
                guard._current = seen
            else:
                guard._history[int(r_text)] = seen
        guard._current_round = current
        return guard


def screen(submission: Submission, ctx: RoundContext, guard: DuplicateGuard,
           settings: GauntletSettings) -> Screening:
    """Stage-1 verdict for one submission (call in arrival order; updates `guard`)."""
    record = submission.record
    flags: list[str] = []
    if not submission.authenticated:
        peer = getattr(record, "peer", b"")
        return Screening(peer if isinstance(peer, bytes) else b"", (FLAG_UNSIGNED,),
                         settings.sync_max_behind, 0.0)
    if not _well_formed(record, ctx):
        flags.append(FLAG_MALFORMED)
        peer = getattr(record, "peer", b"")
        return Screening(peer if isinstance(peer, bytes) else b"", tuple(flags),
                         settings.sync_max_behind, 0.0)
    if not submission.on_time:
        flags.append(FLAG_LATE)
    if record.round != ctx.round:
        flags.append(FLAG_WRONG_ROUND)
    copy_flag = guard.check(record, ctx.round)
    if copy_flag is not None:
        flags.append(copy_flag)
    behind = rounds_behind(record.base_checksum, ctx, settings)
    if behind > 0:
        flags.append(FLAG_BEHIND)
    return Screening(record.peer, tuple(flags), behind, sync_score(behind, settings))


def screen_round(submissions: Iterable[Submission], ctx: RoundContext, guard: DuplicateGuard,
                 settings: GauntletSettings) -> dict[bytes, Screening]:
    """Screen one round's submissions in arrival order; a peer's second record is a duplicate.

    Unauthenticated or anonymous records are dropped here: they cannot be attributed, so slashing
    their claimed author would let anyone get an honest peer slashed.
    """
    verdicts: dict[bytes, Screening] = {}
    for submission in submissions:
        verdict = screen(submission, ctx, guard, settings)
        if FLAG_UNSIGNED in verdict.flags or not verdict.peer:
            continue
        if verdict.peer in verdicts:
            first = verdicts[verdict.peer]
            verdicts[verdict.peer] = Screening(first.peer, tuple(dict.fromkeys(
                first.flags + (FLAG_DUPLICATE,))), first.rounds_behind, first.sync)
            continue
        verdicts[verdict.peer] = verdict
    return verdicts
