"""Gossip notes: the text messages users publish on named topics (``plexus gossip publish``).

Topic names: ``plexus/<network>/<name>`` (DESIGN.md §3); the user-facing ``name`` is validated by
:func:`topic_name`. The publisher's wall-clock ``sent_at`` lets the devnet measure latency.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from protocols.codec import encode
from protocols.message import limits, wire_message
from protocols.validation import Validation, accept, validate_frame

MAX_NOTE_CHARS = 4096
TOPIC_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


@wire_message(type_id=0x0101, version=1, max_size=16 * 1024)
@dataclass(frozen=True)
class GossipNote:
    """One text message on a user topic."""

    text: str = field(metadata=limits(max_len=MAX_NOTE_CHARS))
    """The text."""
    sent_at: float = field(metadata=limits(min=0.0))
    """Publisher's wall clock (Unix seconds) when it published."""

    def check(self) -> None:
        if not math.isfinite(self.sent_at):
            raise ValueError("sent_at must be finite")

    @classmethod
    def sample(cls) -> "GossipNote":
        return cls(text="hello", sent_at=1.0)


def topic_name(network: str, name: str) -> str:
    """The full gossip topic of a user topic name; ValueError if the name is not allowed."""
    if not TOPIC_NAME_PATTERN.match(name):
        raise ValueError(f"topic {name!r} must match {TOPIC_NAME_PATTERN.pattern}")
    return f"plexus/{network}/{name}"


def encode_note(text: str, sent_at: float) -> bytes:
    """The payload of a gossip note."""
    return encode(GossipNote(text=text, sent_at=sent_at))


def validate_note(data: bytes) -> tuple[Validation, GossipNote | None]:
    """Gossip validator for user topics: the payload must be a well-formed GossipNote."""
    return validate_frame(data, expect=GossipNote, rule=lambda _msg: accept())

