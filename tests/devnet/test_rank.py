"""Search under a Sybil attack on real daemon processes: the short rank scenario of `make devnet`."""

from __future__ import annotations

import pytest

from tests.devnet.scenarios import run_scenario

pytestmark = pytest.mark.devnet

RUN_TIMEOUT_S = 400


def test_rank_short_keeps_weighted_mrr_drops_vanilla_and_answers_the_cli(tmp_path):
    # Act
    run, report = run_scenario("rank_short", tmp_path / "dn", RUN_TIMEOUT_S)
    # Assert
    assert run.returncode == 0, run.stdout + run.stderr
    steps = {s["action"]: s for s in report["steps"]}
    figures = steps["rank_report"]["result"]
    assert steps["rank_report"]["checks"] == {"weighted_within_10pct": True, "vanilla_drops": True}
    assert figures["mrr_attack_weighted"] >= 0.9 * figures["mrr_honest"] > 0
    assert figures["mrr_attack_vanilla"] < figures["mrr_honest"]
    assert figures["reputation_gain"] is not None and (tmp_path / "dn" / "rank.png").exists()
    assert steps["rank_cli"]["checks"] == {"cli_search": True, "cli_rank": True}
