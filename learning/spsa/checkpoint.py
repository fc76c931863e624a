"""Checkpoints: parameters + round + checksum, written atomically (temp file + rename)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from .rounds import param_checksum

CHECKPOINT_VERSION = 1
"""Version tag stored inside every checkpoint."""


def save_checkpoint(model: torch.nn.Module, path: str | os.PathLike, round_: int, checksum: bytes) -> None:
    """Write ``model``'s state dict with its round and checksum to ``path`` atomically.

    ``checksum`` must equal :func:`param_checksum` of the model (checked).
    """
    if param_checksum(model) != checksum:
        raise ValueError("checksum does not match the model's parameters")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "version": CHECKPOINT_VERSION,
        "round": int(round_),
        "checksum": bytes(checksum),
        "state_dict": {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()},
    }
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_checkpoint(model: torch.nn.Module, path: str | os.PathLike) -> tuple[int, bytes]:
    """Load a checkpoint into ``model``; return (round, checksum).

    Raises ``ValueError`` if the file is not a checkpoint of this format or the loaded
    parameters do not hash to the stored checksum.
    """
    payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{path} is not a version-{CHECKPOINT_VERSION} SPSA checkpoint")
    model.load_state_dict(payload["state_dict"])
    checksum = bytes(payload["checksum"])
    if param_checksum(model) != checksum:
        raise ValueError(f"{path}: parameters do not match the stored checksum")
    return int(payload["round"]), checksum
