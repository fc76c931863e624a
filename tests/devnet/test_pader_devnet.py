"""The short PADER scenario on real daemon processes (2 sellers, 2 user hosts, 2048-bit keys, FilmTrust subset)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.devnet.scenarios import run_scenario

pytestmark = pytest.mark.devnet

RUN_TIMEOUT_S = 600


def test_pader_short_trains_close_to_plaintext_soreg_and_recommends(tmp_path):
    # Act
    result, report = run_scenario("pader_short", tmp_path / "dn", RUN_TIMEOUT_S)
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
