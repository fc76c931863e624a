"""The short PADER scenario on real daemon processes (2 sellers, 2 user hosts, 2048-bit keys, FilmTrust subset)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.devnet

SCENARIO = Path(__file__).resolve().parents[2] / "devnet" / "scenarios" / "pader_short.toml"
RUN_TIMEOUT_S = 600


def test_pader_short_trains_close_to_plaintext_soreg_and_recommends(tmp_path):
    # Act
    result = subprocess.run([sys.executable, "-m", "node", "devnet", "run", str(SCENARIO), "--dir", str(tmp_path / "dn")],
                            capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    report = json.loads((tmp_path / "dn" / "report.json").read_text())
    # Assert
    assert result.returncode == 0, result.stdout + result.stderr
    step = next(s for s in report["steps"] if s["action"] == "pader")
    assert step["ok"], step["checks"]
    res = step["result"]
    assert len(res["curve_pader"]) == res["epochs"] and res["skipped_iterations"] == 0
    assert abs(res["rmse_pader"] - res["rmse_soreg"]) <= 0.01
    assert [row["score"] for row in res["recommend"]["items"]] == sorted(
        (row["score"] for row in res["recommend"]["items"]), reverse=True)
    assert Path(res["plots"][0]).stat().st_size > 0
