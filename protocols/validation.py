"""Gossip validation answers: accept, ignore or reject (DESIGN.md §3).

A topic validator decodes the message and answers with a :class:`Validation`. ``REJECT`` means the
message is invalid (malformed, bad signature, rule broken): drop it and lower the forwarding peer's
score. ``IGNORE`` means drop it without blame (a duplicate, a stale round, not for us). ``ACCEPT``
delivers and forwards it. py-libp2p 0.8.1 validators return a plain bool: use :attr:`Validation.passes`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Callable

from protocols.codec import DecodeError, decode
from protocols.records import decode_signed


class Verdict(enum.Enum):
    """What a gossip validator decides about one message."""

    ACCEPT = "accept"
    IGNORE = "ignore"
    REJECT = "reject"


@dataclass(frozen=True)
class Validation:
    """A validator's answer with a reason (empty for ACCEPT)."""

    verdict: Verdict
    """The decision."""
    reason: str = ""
    """Why the message was ignored or rejected, for the log."""

    @property
    def passes(self) -> bool:
        """True only for ACCEPT (what a boolean libp2p validator returns)."""
        return self.verdict is Verdict.ACCEPT

    @property
    def penalises(self) -> bool:
        """True for REJECT: the forwarding peer's score should drop."""
        return self.verdict is Verdict.REJECT


_ACCEPT = Validation(Verdict.ACCEPT)


def accept() -> Validation:
    """The message is valid: deliver and forward it."""
    return _ACCEPT


def ignore(reason: str) -> Validation:
    """Drop the message without blaming the forwarder."""
    return Validation(Verdict.IGNORE, reason)


def reject(reason: str) -> Validation:
    """Drop the message and lower the forwarder's score."""
    return Validation(Verdict.REJECT, reason)


def validate_frame(
    data: bytes,
    *,
    expect: type | tuple[type, ...] | None = None,
    rule: Callable[[Any], Validation] | None = None,
) -> tuple[Validation, Any]:
    """Decode ``data``; a DecodeError becomes REJECT; then apply ``rule`` to the message.

    Returns ``(validation, message)``; ``message`` is None when the frame did not decode.
    """
    try:
        msg = decode(data, expect=expect)
    except DecodeError as err:
        return reject(err.reason), None
    return (rule(msg) if rule is not None else accept()), msg


def validate_signed_frame(
    data: bytes,
    *,
    expect: type | tuple[type, ...] | None = None,
    rule: Callable[[bytes, Any], Validation] | None = None,
) -> tuple[Validation, bytes | None, Any]:
    """Like :func:`validate_frame` for signed records; ``rule`` gets ``(author, message)``.

    Returns ``(validation, author peer id bytes or None, message or None)``.
    """
    try:
        author, msg = decode_signed(data, expect=expect)
    except DecodeError as err:
        return reject(err.reason), None, None
    return (rule(author, msg) if rule is not None else accept()), author, msg
