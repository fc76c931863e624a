"""Real daemons fine-tune with Gauntlet scoring on (devnet/scenarios/gauntlet_short.toml).

Three honest daemons, a `noise` and a `copycat` adversary misbehaving on the wire: every replica
applies the same weights (one checksum at the end), both adversaries end below every honest peer
and hold no weight, and the ratings plot is written.
"""

from __future__ import annotations

import pytest

from tests.devnet.scenarios import run_scenario

pytestmark = pytest.mark.devnet

TIMEOUT_S = 900


def test_gauntlet_short_scenario_separates_the_adversaries_on_one_checksum(tmp_path):
    # Arrange
    root = tmp_path / "dn"
    # Act
    result, report = run_scenario("gauntlet_short", root, TIMEOUT_S)
    # Assert
    steps = {s["action"]: s for s in report["steps"]}
    run, final = steps["gauntlet_run"], steps["gauntlet_report"]["result"]
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert run["checks"]["same_checksum"]
    assert all(r is not None for r in final["separation_round"].values())
    assert final["adversary_weight_share_last_rounds"] <= 0.05
    assert (root / "gauntlet_ratings.png").exists()
