"""Shared-seed SPSA (MeZO) with one byte per step: seeds, codec, rounds, log, checkpoints.

Pure and synchronous (no I/O beyond checkpoint files): the node calls these from a
worker thread.
"""

from .checkpoint import load_checkpoint, save_checkpoint
from .codec import ByteCodec
from .log import LogEntry, UpdateLog
from .mezo import apply_update, perturb, projected_gradient
from .records import (
    CHECKSUM_BYTES,
    MAX_ROUND,
    MAX_RUN_NAME_BYTES,
    RoundValidator,
    UpdateRecord,
    record_fields,
    record_from_fields,
    validate_update,
)
from .replica import Replica
from .rounds import application_order, apply_round, local_update, param_checksum
from .seeds import derive_seed
from .settings import MAX_SAMPLES_PER_ROUND, SpsaSettings

__all__ = [
    "CHECKSUM_BYTES",
    "MAX_ROUND",
    "MAX_RUN_NAME_BYTES",
    "MAX_SAMPLES_PER_ROUND",
    "ByteCodec",
    "LogEntry",
    "Replica",
    "RoundValidator",
    "SpsaSettings",
    "UpdateLog",
    "UpdateRecord",
    "application_order",
    "apply_round",
    "apply_update",
    "derive_seed",
    "load_checkpoint",
    "local_update",
    "param_checksum",
    "perturb",
    "projected_gradient",
    "record_fields",
    "record_from_fields",
    "save_checkpoint",
    "validate_update",
]
