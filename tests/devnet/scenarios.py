"""Run a scenario of ``devnet/scenarios/`` the way ``plexus devnet run`` does, for the devnet tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCENARIOS = Path(__file__).resolve().parents[2] / "devnet" / "scenarios"


def run_scenario(name: str, root: Path, timeout_s: float) -> tuple[subprocess.CompletedProcess, dict]:
    """Run ``devnet/scenarios/<name>.toml`` with ``--dir root``; the process result and its report.json."""
    result = subprocess.run([sys.executable, "-m", "node", "devnet", "run", str(SCENARIOS / f"{name}.toml"),
                             "--dir", str(root)], capture_output=True, text=True, timeout=timeout_s)
    return result, json.loads((root / "report.json").read_text())
