"""The layout of a node's home directory, in one place."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

SECRET_FILE_MODE = 0o600
HOME_DIR_MODE = 0o700


@dataclass(frozen=True)
class NodeHome:
    """Paths inside a node's home directory."""

    root: Path

    @property
    def identity(self) -> Path:
        return self.root / "identity.key"

    @property
    def database(self) -> Path:
        return self.root / "node.db"

    @property
    def log(self) -> Path:
        return self.root / "node.log"

    @property
    def info(self) -> Path:
        return self.root / "node.json"

    @property
    def control_socket(self) -> Path:
        return self.root / "control.sock"

    def ensure(self) -> None:
        """Create the directory (owner-only) if it does not exist."""
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, HOME_DIR_MODE)

    def read_info(self) -> dict:
        """The daemon's published node.json, or FileNotFoundError if it is not running/ready."""
        return json.loads(self.info.read_text())


def write_atomic(path: Path, data: bytes, mode: int = SECRET_FILE_MODE) -> None:
    """Write a file so that a crash leaves either the old or the new content, never half of it."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.chmod(tmp, mode)
    os.replace(tmp, path)
