"""A short in-process round loop: one validator separates blatant adversaries and weights them out."""

import numpy as np
import pytest
import torch

from learning import adversaries as adv
from learning.gauntlet import (
    GauntletSettings,
    GauntletState,
    RoundContext,
    Submission,
    Validator,
    aggregation_weights,
    assigned_pool,
    round_weights,
)
from learning.models import TinyConfig, build_tiny, loss
from learning.spsa import ByteCodec, SpsaSettings, apply_round, param_checksum

CFG = TinyConfig(d_model=16, n_layers=1, n_heads=2, context=16, seed=11)
SPSA = SpsaSettings(lr=1e-3, samples_per_round=8)
SETTINGS = GauntletSettings(eval_budget=8, assigned_pool_size=4, eval_batch_size=3, random_batch_size=8)
DATA = torch.from_numpy(np.random.default_rng(2).integers(0, 64, size=(64, 9)))
RUN = "sim"
ROUNDS = 8
KINDS = {b"h1": adv.HONEST, b"h2": adv.HONEST, b"h3": adv.HONEST, b"h4": adv.HONEST,
         b"noise": adv.NOISE, b"copy": adv.COPYCAT, b"zeros": adv.FREERIDER_ZEROS}


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models run fastest on one thread (and do not fight other processes for the cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def loss_of(indices):
    batch = DATA[torch.as_tensor(indices)]
    return lambda m: loss(m, batch)


@pytest.mark.slow
def test_blatant_adversaries_score_below_every_honest_peer_and_get_no_weight():
    model = build_tiny(CFG)
    validator = Validator(b"v", b"validator-secret", SETTINGS, SPSA)
    rng = np.random.default_rng(0)
    weights = {}
    for r in range(ROUNDS):
        base = param_checksum(model)
        published = []
        for peer, kind in KINDS.items():
            pool = assigned_pool(RUN, peer, r, SETTINGS.assigned_pool_size, len(DATA))
            record = adv.make_update(kind, adv.PeerInputs(model=model, run=RUN, round=r, peer=peer, spsa=SPSA,
                                                          assigned_loss=loss_of(pool), seen=tuple(published), rng=rng))
            published.append(record)
        ctx = RoundContext(RUN, r, base, {}, SPSA.samples_per_round, ByteCodec.from_settings(SPSA))
        report = validator.score_round(model, ctx, [Submission(p) for p in published], loss_of, len(DATA), KINDS)
        weights = aggregation_weights(validator.state.final_scores(), SETTINGS)
        accepted = [p for p in published if report.screenings[p.peer].accepted]
        apply_round(model, accepted, SPSA, weights=round_weights(weights, [p.peer for p in accepted]))

    finals = validator.state.final_scores()
    worst_honest = min(finals[p] for p, k in KINDS.items() if k == adv.HONEST)
    assert all(finals[p] < worst_honest for p, k in KINDS.items() if k != adv.HONEST)
    assert sum(weights[p] for p, k in KINDS.items() if k != adv.HONEST) <= 0.05
    restored = GauntletState.from_dict(validator.state.to_dict(), SETTINGS)
    assert restored.final_scores() == finals
