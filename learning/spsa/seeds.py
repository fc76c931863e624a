"""Seed derivation for shared-seed SPSA: a hash, never digit concatenation.

The reference ("Just One Byte") concatenates decimal digits of run, round and node,
so that (round 1, node 23) and (round 12, node 3) collide. Here every field is
length-prefixed before hashing, so distinct tuples give distinct inputs.
"""

from __future__ import annotations

import hashlib

SEED_DOMAIN = b"plexus/spsa/seed/v1"
"""Domain separation tag: seeds of this scheme never equal hashes made for anything else."""

SEED_BITS = 63
"""Seeds fit a signed 64-bit integer (``torch.Generator.manual_seed`` accepts them)."""

_DIGEST_BYTES = 8
_LENGTH_BYTES = 4


def _field(data: bytes) -> bytes:
    return len(data).to_bytes(_LENGTH_BYTES, "big") + data


def derive_seed(run: str, round_: int, peer: bytes, sample: int) -> int:
    """Return the 63-bit perturbation seed of ``sample`` of ``peer`` in ``round_`` of ``run``.

    BLAKE2b-64 over a length-prefixed encoding of the four fields, top bit cleared.
    """
    if not isinstance(run, str) or not run:
        raise ValueError("run must be a non-empty string")
    if not isinstance(peer, (bytes, bytearray)) or not peer:
        raise ValueError("peer must be non-empty bytes")
    for name, value in (("round_", round_), ("sample", sample)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    h = hashlib.blake2b(digest_size=_DIGEST_BYTES, person=b"plexus-spsa-seed")
    h.update(_field(SEED_DOMAIN))
    h.update(_field(run.encode("utf-8")))
    h.update(_field(round_.to_bytes(8, "big")))
    h.update(_field(bytes(peer)))
    h.update(_field(sample.to_bytes(8, "big")))
    return int.from_bytes(h.digest(), "big") & ((1 << SEED_BITS) - 1)
