"""Stage 2 on a real tiny torch model: exact restore, cost within budget, samplers, the validator round."""

import numpy as np
import pytest
import torch

from learning import adversaries as adv
from learning.gauntlet import (
    GauntletSettings,
    RoundContext,
    Stage2Evaluator,
    Submission,
    Validator,
    assigned_pool,
    own_eval_indices,
    select_peers,
)
from learning.models import TinyConfig, build_tiny, loss
from learning.spsa import ByteCodec, SpsaSettings, param_checksum

CFG = TinyConfig(d_model=16, n_layers=1, n_heads=2, context=16, seed=3)
SPSA = SpsaSettings(lr=1e-3, samples_per_round=4)
DATA = torch.from_numpy(np.random.default_rng(0).integers(0, 256, size=(40, 9)))
RUN = "t"


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


def test_assigned_pool_is_deterministic_and_peer_specific():
    a = assigned_pool(RUN, b"p", 3, 8, 40)

    assert np.array_equal(a, assigned_pool(RUN, b"p", 3, 8, 40))
    assert not np.array_equal(a, assigned_pool(RUN, b"q", 3, 8, 40))
    assert len(set(a.tolist())) == 8


def test_evaluator_draw_depends_on_its_secret_and_stays_in_the_pool():
    pool = assigned_pool(RUN, b"p", 3, 8, 40)

    one = own_eval_indices(pool, b"secret-1", 3, b"p", 4)
    two = own_eval_indices(pool, b"secret-2", 3, b"p", 4)

    assert set(one) <= set(pool) and set(two) <= set(pool)
    assert not np.array_equal(one, two)


def test_selection_prefers_long_unevaluated_peers():
    peers = [bytes([i]) for i in range(10)]
    last = {p: 99 for p in peers[1:]}
    picks = [select_peers(peers, last, 100, 3, f"s{r}".encode(), staleness_power=2.0) for r in range(200)]

    stale_rate = sum(peers[0] in p for p in picks) / len(picks)

    assert stale_rate > 0.9
    assert all(len(p) == 3 for p in picks)


def test_stage2_restores_parameters_bit_for_bit():
    model = build_tiny(CFG)
    before = param_checksum(model)
    record = adv.noise(adv.PeerInputs(model=model, run=RUN, round=0, peer=b"n", spsa=SPSA,
                                      assigned_loss=loss_of([0, 1]), rng=np.random.default_rng(1)))
    evaluator = Stage2Evaluator(model, SPSA, loss_of([2, 3, 4]))

    result = evaluator.evaluate(record, loss_of([0, 1]))

    assert param_checksum(model) == before
    assert result.loss_after_random != result.loss_before_random


def test_stage2_costs_at_most_four_passes_per_peer():
    model = build_tiny(CFG)
    evaluator = Stage2Evaluator(model, SPSA, loss_of([2, 3, 4]))
    records = [adv.honest(adv.PeerInputs(model=model, run=RUN, round=0, peer=bytes([i]), spsa=SPSA,
                                         assigned_loss=loss_of([i]))) for i in range(3)]

    results = [evaluator.evaluate(r, loss_of([0])) for r in records]

    assert evaluator.forward_passes == sum(r.forward_passes for r in results) <= 2 * len(records) * 2


def test_honest_update_helps_its_own_data_more_than_random_data():
    model = build_tiny(CFG)
    pool = [0, 1, 2, 3]
    record = adv.honest(adv.PeerInputs(model=model, run=RUN, round=0, peer=b"h", spsa=SPSA,
                                       assigned_loss=loss_of(pool)))

    result = Stage2Evaluator(model, SPSA, loss_of(list(range(20, 40)))).evaluate(record, loss_of(pool))

    assert result.own_gain > 0 and result.indicator == 1


def test_validator_round_flags_copycat_and_stays_within_budget():
    model = build_tiny(CFG)
    settings = GauntletSettings(eval_budget=2, assigned_pool_size=4, eval_batch_size=2)
    base = param_checksum(model)
    honest = [adv.honest(adv.PeerInputs(model=model, run=RUN, round=0, peer=p, spsa=SPSA,
                                        assigned_loss=loss_of(assigned_pool(RUN, p, 0, 4, len(DATA)))))
              for p in (b"h1", b"h2", b"h3")]
    copy = adv.copycat(adv.PeerInputs(model=model, run=RUN, round=0, peer=b"cc", spsa=SPSA,
                                      assigned_loss=loss_of([0]), seen=tuple(honest)))
    validator = Validator(b"v", b"secret", settings, SPSA)
    ctx = RoundContext(RUN, 0, base, {}, SPSA.samples_per_round, ByteCodec.from_settings(SPSA))

    report = validator.score_round(model, ctx, [Submission(r) for r in honest + [copy]], loss_of, len(DATA))

    assert not report.screenings[b"cc"].accepted
    assert len(report.evaluations) == 2
    assert report.forward_passes <= 2 * len(report.evaluations) * 2
    assert param_checksum(model) == base
    assert report.record.validator == b"v" and report.record.round == 0


def test_validator_needs_a_secret():
    with pytest.raises(ValueError, match="secret"):
        Validator(b"v", b"", GauntletSettings(), SPSA)
