"""Which replica wins when peers' replicas split: a deterministic plurality vote over checksums (torch-free)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping

MIN_VOTES = 2
"""Records that must name a checksum before a replica re-syncs to it (one peer alone never moves us)."""


def resync_sources(bases: Mapping[bytes, bytes], mine: bytes, earlier: Collection[bytes] = (),
                   min_votes: int = MIN_VOTES) -> tuple[bytes, ...]:
    """Peers to re-sync from because our base checksum lost a round's vote; ``()`` if it did not.

    ``bases`` maps each peer whose record the round admitted to the checksum that record was built
    on; ``mine`` is our replica's checksum at the round's opening. Bases equal to one of our own
    ``earlier`` checksums come from peers that lag (or pretend to): they are no split and do not vote.
    The winner is the checksum most records name, ties broken by the larger checksum, so every
    replica that admitted the same records picks the same winner even when no checksum has a
    majority: a split into many small groups converges in one round instead of persisting.
    """
    tally = Counter(base for base in bases.values() if base == mine or base not in earlier)
    if not tally:
        return ()
    top, count = max(tally.items(), key=lambda item: (item[1], item[0]))
    if top == mine or count < min_votes:
        return ()
    return tuple(sorted(peer for peer, base in bases.items() if base == top))
