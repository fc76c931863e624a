"""Validators' published scores, their admission (forgery / replay) and their reputation-weighted combination.

Each validator publishes one `ScoreRecord` per round. A receiving node admits it into a `ScoreBook`
only if the transport authenticated its author as `record.validator`, the round is inside the
window and newer than that validator's last admitted record. `combine_scores` turns the latest record
of every validator into one score per peer, each validator counting by its reputation in the
receiving node's own view (MeritRank), plus an implicit validator of reputation `reputation_prior`
that scores everyone 0: a crowd of ~0-reputation validators cannot lift a peer that honest
validators do not vouch for.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from learning.gauntlet.settings import GauntletSettings

MAX_SCORES_PER_RECORD = 1024
"""Most peers one score record may rate."""


@dataclass(frozen=True)
class ScoreRecord:
    """One validator's published final scores for one round (signed by the transport)."""

    validator: bytes
    """Author's peer id."""
    round: int
    """Round the scores are for."""
    scores: tuple[tuple[bytes, float], ...]
    """(peer, final score ≥ 0), sorted by peer, each peer once."""

    def __post_init__(self) -> None:
        if not isinstance(self.validator, bytes) or not self.validator:
            raise ValueError("validator must be non-empty bytes")
        if not isinstance(self.round, int) or isinstance(self.round, bool) or self.round < 0:
            raise ValueError(f"round must be an int >= 0, got {self.round!r}")
        if len(self.scores) > MAX_SCORES_PER_RECORD:
            raise ValueError(f"at most {MAX_SCORES_PER_RECORD} scores per record, got {len(self.scores)}")
        peers = [p for p, _ in self.scores]
        if peers != sorted(set(peers)):
            raise ValueError("scores must be sorted by peer, each peer once")
        for peer, value in self.scores:
            if not isinstance(peer, bytes) or not peer:
                raise ValueError("score peer ids must be non-empty bytes")
            if not (isinstance(value, float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"scores must be finite floats >= 0, got {value!r}")

    @classmethod
    def from_scores(cls, validator: bytes, round_: int, scores: Mapping[bytes, float]) -> ScoreRecord:
        """Build a record from a mapping (sorted, floats)."""
        return cls(validator, round_, tuple((p, float(scores[p])) for p in sorted(scores)))

    def as_dict(self) -> dict[bytes, float]:
        """The scores as a mapping."""
        return dict(self.scores)


class ScoreRejected(ValueError):
    """A score record refused by the ScoreBook (forged, replayed, stale or from the future)."""


class ScoreBook:
    """The latest admitted score record of every validator, as one node sees them."""

    def __init__(self, settings: GauntletSettings) -> None:
        self.settings = settings
        self.latest: dict[bytes, ScoreRecord] = {}

    def admit(self, record: ScoreRecord, *, author: bytes, current_round: int) -> None:
        """Keep `record` or raise ScoreRejected with the reason.

        `author` is the peer id the transport authenticated (the signer of the message).
        """
        if author != record.validator:
            raise ScoreRejected("forged: the signer is not the record's validator")
        if record.round > current_round:
            raise ScoreRejected(f"from the future: round {record.round} > current {current_round}")
        if record.round < current_round - self.settings.score_record_window:
            raise ScoreRejected(f"stale: round {record.round} is outside the window")
        previous = self.latest.get(record.validator)
        if previous is not None and record.round <= previous.round:
            raise ScoreRejected(f"replay: already have round {previous.round} from this validator")
        self.latest[record.validator] = record

    def records(self) -> list[ScoreRecord]:
        """The admitted records, by validator id."""
        return [self.latest[v] for v in sorted(self.latest)]

    def to_dict(self) -> dict:
        """Plain-dict state for storage."""
        return {v.hex(): {"round": r.round, "scores": [[p.hex(), s] for p, s in r.scores]}
                for v, r in sorted(self.latest.items())}

    @classmethod
    def from_dict(cls, data: Mapping, settings: GauntletSettings) -> ScoreBook:
        """Inverse of to_dict."""
        book = cls(settings)
        for v_hex, body in data.items():
            scores = tuple((bytes.fromhex(p), float(s)) for p, s in body["scores"])
            book.latest[bytes.fromhex(v_hex)] = ScoreRecord(bytes.fromhex(v_hex), int(body["round"]), scores)
        return book


def combine_scores(records: Iterable[ScoreRecord], reputation: Mapping[bytes, float],
                   settings: GauntletSettings) -> dict[bytes, float]:
    """One score per peer: Σ_v rep(v)·share_v(peer) / (Σ_v rep(v) + reputation_prior).

    share_v is validator v's score of the peer divided by the sum of v's scores (each validator
    hands out one unit, so no validator inflates its scale). A validator never scores itself: its
    self-score is dropped and its reputation leaves the peer's own denominator. Validators absent
    from `reputation` or with reputation ≤ 0 are ignored.
    """
    numerators: dict[bytes, float] = {}
    counted: list[tuple[bytes, float]] = []
    for record in records:
        rep = float(reputation.get(record.validator, 0.0))
        if not math.isfinite(rep):
            raise ValueError(f"reputation of {record.validator.hex()[:16]} is not finite")
        if rep <= 0:
            continue
        own = {p: s for p, s in record.scores if p != record.validator}
        counted.append((record.validator, rep))
        mass = sum(own.values())
        for peer, value in own.items():
            share = value / mass if mass > 0 else 0.0
            numerators[peer] = numerators.get(peer, 0.0) + rep * share
    total = sum(rep for _, rep in counted)
    self_rep = dict(counted)
    return {peer: value / (total - self_rep.get(peer, 0.0) + settings.reputation_prior)
            for peer, value in sorted(numerators.items())}
