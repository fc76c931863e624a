"""Real daemons fine-tune the tiny model together (devnet/scenarios/spsa_short.toml).

A late joiner catches up from a peer's checkpoint and signed log; a node killed with -9 and restarted
resumes from its own checkpoint and log and catches up; every live node ends on the same checksum.
"""

from __future__ import annotations

import pytest

from tests.devnet.scenarios import run_scenario

pytestmark = pytest.mark.devnet

TIMEOUT_S = 900


def test_spsa_short_scenario_ends_on_one_checksum_after_a_late_join_and_a_kill(tmp_path):
    # Arrange
    root = tmp_path / "dn"
    # Act
    result, report = run_scenario("spsa_short", root, TIMEOUT_S)
    # Assert
    steps = {s["action"]: s for s in report["steps"]}
    final = steps["spsa_report"]["result"]
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert steps["spsa_join"]["result"]["joined"]
    assert steps["restart"]["result"]["same_peer_id"]
    assert len(set(final["checksums"].values())) == 1
    assert set(final["checksums"]) == {"node0", "node1", "node2", "node3"}
    assert steps["spsa_report"]["checks"]["same_checksum"]
    assert (root / "spsa_eval_loss.png").exists()
