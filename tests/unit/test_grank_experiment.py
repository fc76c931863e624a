"""Search under attack (issue 4): vanilla G-Rank drops under a Sybil flood, reputation-weighted holds."""

from recsys.grank.experiment import flood_experiment


def test_flood_quick_vanilla_drops_and_weighted_holds():
    result = flood_experiment(seed=0, quick=True)

    assert result["mrr_honest"] > result["mrr_random"]
    assert result["mrr_attack_vanilla"] < 0.9 * result["mrr_honest"]
    assert result["mrr_attack_weighted"] >= 0.9 * result["mrr_honest"]
    assert result["mrr_attack_weighted"] >= 0.9 * result["mrr_honest_weighted"]
    assert result["mrr_targeted_weighted"] >= 0.9 * result["mrr_honest"]
    assert result["recall_at_k"]["attack_weighted"] > result["recall_at_k"]["attack_vanilla"]
