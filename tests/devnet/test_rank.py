"""Search under a Sybil attack on real daemon processes: the short rank scenario of `make devnet`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.devnet

SCENARIO = Path(__file__).resolve().parents[2] / "devnet" / "scenarios" / "rank_short.toml"
RUN_TIMEOUT_S = 400


def test_rank_short_keeps_weighted_mrr_drops_vanilla_and_answers_the_cli(tmp_path):
    # Act
    run = subprocess.run([sys.executable, "-m", "node", "devnet", "run", str(SCENARIO), "--dir", str(tmp_path / "dn")],
                         capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    report = json.loads((tmp_path / "dn" / "report.json").read_text())
    # Assert
    assert run.returncode == 0, run.stdout + run.stderr
    steps = {s["action"]: s for s in report["steps"]}
    figures = steps["rank_report"]["result"]
    assert steps["rank_report"]["checks"] == {"weighted_within_10pct": True, "vanilla_drops": True}
    assert figures["mrr_attack_weighted"] >= 0.9 * figures["mrr_honest"] > 0
    assert figures["mrr_attack_vanilla"] < figures["mrr_honest"]
    assert figures["reputation_gain"] is not None and (tmp_path / "dn" / "rank.png").exists()
    assert steps["rank_cli"]["checks"] == {"cli_search": True, "cli_rank": True}
