"""Deterministic application of a round, parameter checksums and a peer's own update."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence

import torch

from .codec import ByteCodec
from .mezo import apply_update, projected_gradient
from .records import CHECKSUM_BYTES, UpdateRecord
from .seeds import derive_seed
from .settings import SpsaSettings


def param_checksum(model: torch.nn.Module) -> bytes:
    """BLAKE2b-64 of every parameter's name, shape, dtype and exact bytes, in order."""
    h = hashlib.blake2b(digest_size=CHECKSUM_BYTES, person=b"plexus-spsa-sum")
    with torch.no_grad():
        for name, p in model.named_parameters():
            t = p.detach().to("cpu").contiguous()
            h.update(f"{name}|{tuple(t.shape)}|{t.dtype}|".encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.digest()


def application_order(records: Sequence[UpdateRecord]) -> list[UpdateRecord]:
    """Records sorted by peer id: the one order every replica uses."""
    return sorted(records, key=lambda r: r.peer)


def apply_round(
    model: torch.nn.Module,
    records: Sequence[UpdateRecord],
    settings: SpsaSettings,
    weights: Mapping[bytes, float] | None = None,
) -> None:
    """Apply every record of one round, by peer id then sample index.

    ``weights`` (peer id → finite weight ≥ 0, missing peers weigh 1.0) scale each peer's
    update; weight 0 skips the peer without regenerating its perturbation. Every record
    must be of the same run and round, from distinct peers, with valid bytes; otherwise
    ``ValueError`` is raised before any parameter changes.
    """
    settings.validate()
    codec = ByteCodec.from_settings(settings)
    ordered = application_order(records)
    plan: list[tuple[int, float, float]] = []
    for i, rec in enumerate(ordered):
        if i and rec.peer == ordered[i - 1].peer:
            raise ValueError("two records from the same peer in one round")
        if (rec.run, rec.round) != (ordered[0].run, ordered[0].round):
            raise ValueError("records of different runs or rounds cannot be applied together")
        weight = 1.0 if weights is None else float(weights.get(rec.peer, 1.0))
        if not (math.isfinite(weight) and weight >= 0):
            raise ValueError(f"weight must be finite and >= 0, got {weight!r}")
        for sample, b in enumerate(rec.grads):
            g = codec.decode(b)
            if weight != 0.0 and g != 0.0:
                plan.append((derive_seed(rec.run, rec.round, rec.peer, sample), g, weight))
            elif weight != 0.0 and settings.weight_decay != 0.0:
                plan.append((derive_seed(rec.run, rec.round, rec.peer, sample), 0.0, weight))
    for seed, g, weight in plan:
        apply_update(model, seed, g, settings.lr, settings.weight_decay, weight, settings.perturbation)


def local_update(
    model: torch.nn.Module,
    losses: Sequence[Callable[[torch.nn.Module], torch.Tensor]],
    *,
    run: str,
    round_: int,
    peer: bytes,
    settings: SpsaSettings,
    base_checksum: bytes | None = None,
) -> UpdateRecord:
    """Measure this peer's projected gradients (one per loss) and pack them as a record.

    All samples are measured on the same base parameters, which are left unchanged.
    ``base_checksum`` saves hashing the parameters again when the caller already has
    :func:`param_checksum` of this round's model (it is not re-checked).
    """
    settings.validate()
    if len(losses) != settings.samples_per_round:
        raise ValueError(f"need {settings.samples_per_round} losses, got {len(losses)}")
    codec = ByteCodec.from_settings(settings)
    base = param_checksum(model) if base_checksum is None else bytes(base_checksum)
    grads = bytearray()
    for sample, loss_fn in enumerate(losses):
        seed = derive_seed(run, round_, peer, sample)
        grads.append(codec.encode(projected_gradient(model, loss_fn, seed, settings.eps, settings.perturbation)))
    return UpdateRecord(run=run, round=round_, peer=peer, grads=bytes(grads), base_checksum=base)
