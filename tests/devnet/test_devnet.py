"""Real daemon processes on 127.0.0.1: a scripted scenario, and the devnet CLI verbs one by one."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.devnet

SCENARIO = """
name = "test-small"
nodes = 4
step_timeout_s = 90

[[steps]]
action = "wait_connected"
min_peers = 2

[[steps]]
action = "gossip"
label = "first"
messages = 40
rate = 40

[[steps]]
action = "kill"
node = "node2"

[[steps]]
action = "restart"
node = "node2"

[[steps]]
action = "gossip"
label = "second"
messages = 40
rate = 40
"""


def plexus(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "node", *args], capture_output=True, text=True, timeout=timeout)


def test_scenario_delivers_everything_and_a_killed_node_comes_back_whole(tmp_path):
    # Arrange
    scenario = tmp_path / "small.toml"
    scenario.write_text(textwrap.dedent(SCENARIO))
    # Act
    result = plexus("devnet", "run", str(scenario), "--dir", str(tmp_path / "dn"))
    report = json.loads((tmp_path / "dn" / "report.json").read_text())
    # Assert
    assert result.returncode == 0, result.stdout + result.stderr
    steps = {s["result"].get("label", s["action"]): s for s in report["steps"]}
    assert steps["first"]["result"]["delivery_ratio"] == 1.0
    assert steps["second"]["result"]["delivery_ratio"] == 1.0
    assert steps["second"]["result"]["delivered"]["node2"] == 30  # the restarted node got every later note
    restart = steps["restart"]["result"]
    assert restart["same_peer_id"] and restart["state_kept"]
    assert (tmp_path / "dn" / "gossip.png").stat().st_size > 0


def test_devnet_verbs_up_status_kill_restart_down(tmp_path):
    root = str(tmp_path / "dn")
    try:
        assert plexus("devnet", "up", "--nodes", "2", "--dir", root).returncode == 0
        before = json.loads(plexus("devnet", "status", "--dir", root, "--json").stdout)
        assert [row["alive"] for row in before] == [True, True]
        assert plexus("devnet", "kill", "node1", "--dir", root).returncode == 0
        assert [r["alive"] for r in json.loads(plexus("devnet", "status", "--dir", root, "--json").stdout)] == [True, False]
        assert plexus("devnet", "restart", "1", "--dir", root).returncode == 0
        after = json.loads(plexus("devnet", "status", "--dir", root, "--json").stdout)
        assert after[1]["alive"] and after[1]["peer_id"] == before[1]["peer_id"]
        assert after[1]["pid"] != before[1]["pid"]
    finally:
        down = plexus("devnet", "down", "--dir", root)
    assert down.returncode == 0
    assert [r["alive"] for r in json.loads(plexus("devnet", "status", "--dir", root, "--json").stdout)] == [False, False]
