"""Gauntlet scores on the wire: one signed :class:`ScoreMessage` per validator and round.

Topic ``plexus/<network>/scores``. A validator publishes its final scores of every peer after it
has scored a round. The message travels inside a :class:`protocols.message.SignedRecord` signed by
the validator's own key (a score record is relied upon beyond the gossip hop that delivered it: it
is stored, and it sets aggregation weights), and it names its validator: a record whose signer is
not its validator is a forgery.

Admission (:func:`check_score_frame`, fast enough for a sync gossip validator) hands the record to
the core's :class:`learning.gauntlet.ScoreBook`, which refuses forged, replayed, stale and future
records:

* REJECT: the frame does not decode, the signature does not verify, the signer is not the record's
  validator (forgery), or the scores break the record's rules.
* IGNORE: another run, or a record the book refuses as stale, replayed or from the future
  (harmless: a late relay, nobody is blamed).
* ACCEPT otherwise (the record is then in the book).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from protocols.codec import DecodeError
from protocols.message import limits, wire_message
from protocols.records import decode_signed, encode_signed, sign_record
from protocols.validation import Validation, accept, ignore, reject

TOPIC_SERVICE = "scores"
"""Service part of the gossip topic ``plexus/<network>/scores``."""
MAX_SCORED_PEERS = 256
"""Most peers one score message rates (a run this size fits one ~16 KiB message)."""
MAX_PEER_ID_BYTES = 64
"""Longest binary peer id (Ed25519 ids are 38 bytes)."""
MAX_RUN_NAME_BYTES = 16
"""Longest run name (mirrors protocols.spsa.MAX_RUN_NAME_BYTES)."""
MAX_ROUND = 2**32
"""Rounds are below this (mirrors protocols.spsa.MAX_ROUND)."""
MAX_SCORE_FRAME = 24 * 1024
"""Cap on one signed score frame (the largest legal one is ~13 KiB)."""
FORGED = "forged"
"""Reason prefix of a record whose signer is not its validator."""


def topic(network: str) -> str:
    """The score gossip topic of ``network``."""
    return f"plexus/{network}/{TOPIC_SERVICE}"


@wire_message(type_id=0x0701, version=1, max_size=MAX_SCORE_FRAME)
@dataclass(frozen=True)
class ScoreMessage:
    """One validator's final scores of one round of one run (inside a SignedRecord by the validator)."""

    run: str = field(metadata=limits(min_len=1, max_len=MAX_RUN_NAME_BYTES))
    """Run the scores are for."""
    round: int = field(metadata=limits(min=0, max=MAX_ROUND - 1))
    """Round after which the scores were computed."""
    validator: bytes = field(metadata=limits(min_len=1, max_len=MAX_PEER_ID_BYTES))
    """The validator's peer id (must be the record's signer)."""
    peers: tuple[bytes, ...] = field(metadata=limits(max_len=MAX_SCORED_PEERS,
                                                     items=limits(min_len=1, max_len=MAX_PEER_ID_BYTES)))
    """Scored peers, sorted ascending, each once."""
    scores: tuple[float, ...] = field(metadata=limits(max_len=MAX_SCORED_PEERS, min=0.0))
    """Final score of each peer (finite, >= 0), in the order of ``peers``."""

    def check(self) -> None:
        if len(self.run.encode("utf-8")) > MAX_RUN_NAME_BYTES:
            raise ValueError(f"run name longer than {MAX_RUN_NAME_BYTES} bytes")
        if len(self.peers) != len(self.scores):
            raise ValueError(f"{len(self.peers)} peers but {len(self.scores)} scores")
        if list(self.peers) != sorted(set(self.peers)):
            raise ValueError("peers must be sorted ascending, each once")

    @classmethod
    def sample(cls) -> "ScoreMessage":
        return cls(run="run", round=3, validator=b"\x00\x24" + b"\x01" * 36, peers=(b"\x02" * 38, b"\x03" * 38),
                   scores=(0.5, 0.0))

    def to_record(self):
        """The core's :class:`learning.gauntlet.ScoreRecord` (imported lazily: it pulls in torch)."""
        from learning.gauntlet import ScoreRecord

        return ScoreRecord(self.validator, self.round, tuple(zip(self.peers, (float(s) for s in self.scores))))


def score_message(run: str, record) -> ScoreMessage:
    """The wire message of a core ``ScoreRecord`` of ``run``."""
    return ScoreMessage(run=run, round=record.round, validator=record.validator,
                        peers=tuple(p for p, _ in record.scores), scores=tuple(float(s) for _, s in record.scores))


def sign_scores(msg: ScoreMessage, private_key) -> bytes:
    """The signed-record frame of ``msg`` (signed by the validator's libp2p key)."""
    return encode_signed(sign_record(msg, private_key))


@dataclass(frozen=True)
class ReceivedScores:
    """A verified score message with its signer and the frame as received."""

    author: bytes
    """The signer's peer id."""
    msg: ScoreMessage
    """The verified message."""
    frame: bytes = field(repr=False)
    """The signed frame (kept to re-serve or store)."""


def decode_score_frame(data: bytes) -> ReceivedScores:
    """Decode and verify a signed score frame; DecodeError on anything wrong, forgery included."""
    if len(data) > MAX_SCORE_FRAME:
        raise DecodeError(f"{len(data)} bytes over the {MAX_SCORE_FRAME}-byte score cap")
    author, msg = decode_signed(data, expect=ScoreMessage)
    if author != msg.validator:
        raise DecodeError(f"{FORGED}: the signer is not the record's validator")
    return ReceivedScores(author, msg, data)


def check_score_frame(data: bytes, run: str | None, current_round: int, book) -> tuple[Validation, ReceivedScores | None]:
    """Validate a gossiped score frame and admit it into ``book`` (a ScoreBook) if it passes.

    ``run``: the run this node scores (None: none, everything is ignored). Returns the verdict and,
    when accepted, the verified message.
    """
    try:
        received = decode_score_frame(data)
    except DecodeError as exc:
        return reject(exc.reason), None
    if run is None or received.msg.run != run:
        return ignore("not the run we score"), None
    from learning.gauntlet import ScoreRejected

    try:
        record = received.msg.to_record()
    except ValueError as exc:
        return reject(f"bad scores: {exc}"), None
    try:
        book.admit(record, author=received.author, current_round=current_round)
    except ScoreRejected as exc:
        if str(exc).startswith(FORGED):
            return reject(str(exc)), None
        return ignore(str(exc)), None
    return accept(), received
