"""Peer behaviours, honest and adversarial, as pure functions producing the update a peer would publish.

Every behaviour gets the same `PeerInputs` an honest peer has for a round and returns the
`UpdateRecord` it would publish (or None for "publishes nothing"). Used in-process by tests and
benchmarks, and by real nodes started with `plexus run --adversary KIND`.

Kinds (DESIGN §4 "Adversaries to beat"):
- freerider: publishes nothing (`freerider`) or an all-zero payload (`freerider_zeros`);
- noise: random valid bytes (claims work it never did);
- copycat: replays the bytes another peer published this round under its own id;
- stale: trains honestly but on a replica that lags some rounds behind (old checksum);
- lazy: trains on data of its own choosing instead of its assigned pool.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from learning.spsa import ByteCodec, SpsaSettings, UpdateRecord, local_update, param_checksum

LossFn = Callable[[torch.nn.Module], torch.Tensor]
"""A closure computing a scalar loss of the model on one fixed batch."""

ZERO_BYTE = 0
"""The codec's encoding of a zero projected gradient."""
RESERVED_BYTE = 0x80
"""The codec's invalid byte (negative zero): a noise peer that wants to be accepted avoids it."""

HONEST = "honest"
FREERIDER = "freerider"
FREERIDER_ZEROS = "freerider_zeros"
NOISE = "noise"
COPYCAT = "copycat"
STALE = "stale"
LAZY = "lazy"
ADVERSARY_KINDS = (FREERIDER, NOISE, COPYCAT, STALE, LAZY)
"""The adversary kinds `plexus run --adversary` accepts."""


@dataclass(frozen=True)
class PeerInputs:
    """What a peer has when it builds its update for one round."""

    model: torch.nn.Module
    """Its replica at the round's base parameters (left unchanged by every behaviour)."""
    run: str
    """Run id."""
    round: int
    """Round being built."""
    peer: bytes
    """Its own peer id (seeds are bound to it)."""
    spsa: SpsaSettings
    """The run's SPSA settings (samples per round = bytes per record)."""
    assigned_loss: LossFn
    """Loss on its assigned pool for this round (what it is supposed to train on)."""
    random_loss: LossFn | None = None
    """Loss on data it picked itself (used by `lazy`)."""
    seen: tuple[UpdateRecord, ...] = ()
    """Other peers' records of this round received so far (used by `copycat`)."""
    stale_model: torch.nn.Module | None = None
    """A replica lagging some rounds behind (used by `stale`)."""
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))
    """Randomness of the behaviour itself (used by `noise` and `copycat`)."""


def _train(model: torch.nn.Module, loss_fn: LossFn, inputs: PeerInputs) -> UpdateRecord:
    losses = [loss_fn] * inputs.spsa.samples_per_round
    return local_update(model, losses, run=inputs.run, round_=inputs.round, peer=inputs.peer,
                        settings=inputs.spsa)


def honest(inputs: PeerInputs) -> UpdateRecord:
    """Every sample a MeZO projected gradient on the assigned pool, on the current replica."""
    return _train(inputs.model, inputs.assigned_loss, inputs)


def freerider(inputs: PeerInputs) -> None:
    """Publishes nothing."""
    return None


def freerider_zeros(inputs: PeerInputs) -> UpdateRecord:
    """Publishes a well-formed all-zero payload on the current checksum (no work at all)."""
    return UpdateRecord(inputs.run, inputs.round, inputs.peer,
                        bytes([ZERO_BYTE]) * inputs.spsa.samples_per_round, param_checksum(inputs.model))


def noise(inputs: PeerInputs) -> UpdateRecord:
    """Publishes random valid bytes on the current checksum."""
    valid = np.array([b for b in range(256) if b != RESERVED_BYTE], dtype=np.uint8)
    payload = inputs.rng.choice(valid, size=inputs.spsa.samples_per_round).tobytes()
    return UpdateRecord(inputs.run, inputs.round, inputs.peer, payload, param_checksum(inputs.model))


def copycat(inputs: PeerInputs) -> UpdateRecord | None:
    """Republishes one seen record's bytes and checksum under its own id (nothing if it saw none)."""
    victims = [r for r in inputs.seen if r.peer != inputs.peer and r.round == inputs.round]
    if not victims:
        return None
    victim = victims[int(inputs.rng.integers(len(victims)))]
    return UpdateRecord(inputs.run, inputs.round, inputs.peer, victim.grads, victim.base_checksum)


def stale(inputs: PeerInputs) -> UpdateRecord:
    """Trains on its assigned pool, but on a lagging replica (its record carries the old checksum)."""
    if inputs.stale_model is None:
        raise ValueError("the stale behaviour needs inputs.stale_model (a lagging replica)")
    return _train(inputs.stale_model, inputs.assigned_loss, inputs)


def lazy(inputs: PeerInputs) -> UpdateRecord:
    """Trains honestly, but on data of its own choosing instead of its assigned pool."""
    if inputs.random_loss is None:
        raise ValueError("the lazy behaviour needs inputs.random_loss (data it picked itself)")
    return _train(inputs.model, inputs.random_loss, inputs)


BEHAVIOURS: dict[str, Callable[[PeerInputs], UpdateRecord | None]] = {
    HONEST: honest,
    FREERIDER: freerider,
    FREERIDER_ZEROS: freerider_zeros,
    NOISE: noise,
    COPYCAT: copycat,
    STALE: stale,
    LAZY: lazy,
}
"""Behaviour by name."""


def make_update(kind: str, inputs: PeerInputs) -> UpdateRecord | None:
    """The record a peer of behaviour `kind` publishes this round (None: it publishes nothing)."""
    try:
        behaviour = BEHAVIOURS[kind]
    except KeyError:
        raise ValueError(f"unknown behaviour {kind!r}; choose one of {sorted(BEHAVIOURS)}") from None
    return behaviour(inputs)


def check_codec_bytes(record: UpdateRecord, spsa: SpsaSettings) -> None:
    """Raise ValueError if `record` carries a byte the run's codec refuses (sanity helper)."""
    ByteCodec.from_settings(spsa).check(record.grads)
