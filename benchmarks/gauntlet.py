"""Gauntlet benchmark: separation of adversaries, weighting payoff and cost of the checks.

In-process simulation: 6 honest peers and one of each adversary kind fine-tune one tiny byte-level LM
on stdlib docstrings (learning.corpus) with shared-seed SPSA; three honest peers validate (budgeted, staleness-weighted
stage 2) and every node combines their score records. The same rounds are replayed unweighted (all
well-formed records applied, no Gauntlet) and all-honest (only the 6 honest peers).

Prints ONE JSON object. `--quick` runs fewer rounds (separation targets then may not be reachable).
Run: .venv/bin/python benchmarks/gauntlet.py [--quick]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
import torch

from learning import adversaries as adv
from learning.gauntlet import (
    GauntletSettings,
    RoundContext,
    Submission,
    Validator,
    aggregation_weights,
    combine_scores,
    round_weights,
)
from learning.gauntlet.sampling import assigned_pool
from learning.gauntlet.state import GauntletState
from learning.corpus import CorpusSettings, stdlib_corpus
from learning.models import TinyConfig, build_tiny, loss
from learning.spsa import ByteCodec, SpsaSettings, apply_round, param_checksum

RUN = "gauntlet-bench"
SEQ_LEN = 33
"""Tokens per sequence (32 predicted)."""
MODEL = TinyConfig(d_model=64, n_layers=2, n_heads=4, context=64, seed=7)
SPSA = SpsaSettings(eps=1e-3, lr=2e-4, samples_per_round=12)
GAUNTLET = GauntletSettings(eval_budget=7, assigned_pool_size=8, eval_batch_size=6, random_batch_size=16)
HONEST_PEERS = 6
VALIDATORS = 3
"""The first honest peers validate; the others only train."""
STALE_LAG = 3
"""Rounds the stale adversary's replica lags behind."""
EVAL_SEQUENCES = 128
"""Held-out sequences (from documents no peer trains on) for the final eval loss."""
CORPUS_FILES = 200
"""Standard-library files read for the corpus (sorted order; enough text, quick to parse)."""
RATE_PLAYERS = 100
RATE_REPEATS = 30
FULL_ROUNDS = 70
QUICK_ROUNDS = 25
SEP_TARGETS = {"freerider": 30, "noise": 30, "copycat": 30, "stale": 30, "lazy": 60}


def make_dataset() -> tuple[torch.Tensor, torch.Tensor]:
    """(train [N, SEQ_LEN], eval [M, SEQ_LEN]) byte sequences from the project's stdlib-docstring
    corpus: training windows from one training shard, eval windows from the held-out documents."""
    split = stdlib_corpus(CorpusSettings(n_shards=1, max_files=CORPUS_FILES))

    def windows(text: bytes, limit: int | None = None) -> torch.Tensor:
        data = np.frombuffer(text, dtype=np.uint8)
        n = len(data) // SEQ_LEN if limit is None else min(limit, len(data) // SEQ_LEN)
        return torch.from_numpy(data[: n * SEQ_LEN].reshape(n, SEQ_LEN).astype(np.int64))

    return windows(split.shards[0]), windows(split.eval, EVAL_SEQUENCES)


def peer_id(name: str) -> bytes:
    return name.encode()


@dataclass
class Peer:
    name: str
    kind: str
    rng: np.random.Generator

    @property
    def id(self) -> bytes:
        return peer_id(self.name)


def make_peers(with_adversaries: bool) -> list[Peer]:
    peers = [Peer(f"honest-{i}", adv.HONEST, np.random.default_rng(100 + i)) for i in range(HONEST_PEERS)]
    if with_adversaries:
        peers += [Peer(f"adv-{k}", k, np.random.default_rng(200 + i)) for i, k in enumerate(adv.ADVERSARY_KINDS)]
    return peers


def simulate(mode: str, rounds: int, train: torch.Tensor, eval_set: torch.Tensor) -> dict:
    """mode: 'weighted' (Gauntlet), 'unweighted' (plain SPSA, everything well-formed applied), 'honest'."""
    torch.manual_seed(0)
    model = build_tiny(MODEL)
    n = len(train)
    peers = make_peers(with_adversaries=mode != "honest")
    validators = [Validator(p.id, f"secret-{p.name}".encode(), GAUNTLET, SPSA)
                  for p in peers[:VALIDATORS]] if mode == "weighted" else []
    reputation = {v.node_id: 1.0 / VALIDATORS for v in validators}
    lagging: deque[dict] = deque(maxlen=STALE_LAG + 1)
    checksums: dict[bytes, int] = {}
    codec = ByteCodec.from_settings(SPSA)
    history: list[dict[str, float]] = []
    passes: list[int] = []
    evaluated: list[int] = []
    stage2_ms: list[float] = []
    stage2_wall_ms: list[float] = []
    for r in range(rounds):
        base = param_checksum(model)
        checksums[base] = r
        lagging.append({k: v.clone() for k, v in model.state_dict().items()})
        stale_model = copy.deepcopy(model)
        stale_model.load_state_dict(lagging[0])
        published = []
        for p in peers:
            pool = train[torch.from_numpy(assigned_pool(RUN, p.id, r, GAUNTLET.assigned_pool_size, n))]
            own = train[torch.from_numpy(p.rng.choice(n, GAUNTLET.assigned_pool_size, replace=False))]
            inputs = adv.PeerInputs(model=model, run=RUN, round=r, peer=p.id, spsa=SPSA,
                                    assigned_loss=lambda m, b=pool: loss(m, b),
                                    random_loss=lambda m, b=own: loss(m, b),
                                    seen=tuple(published), stale_model=stale_model, rng=p.rng)
            record = adv.make_update(p.kind, inputs)
            if record is not None:
                published.append(record)
        if mode != "weighted":
            apply_round(model, published, SPSA, weights=None)
            continue
        ctx = RoundContext(RUN, r, base, dict(checksums), SPSA.samples_per_round, codec)
        subs = [Submission(rec) for rec in published]
        reports = []
        for v in validators:
            c0, t0 = time.thread_time(), time.perf_counter()
            report = v.score_round(model, ctx, subs, lambda idx: (lambda m, b=train[torch.from_numpy(idx)]: loss(m, b)),
                                   n, known_peers=[p.id for p in peers])
            if report.evaluations:
                k = len(report.evaluations)
                stage2_ms.append((time.thread_time() - c0) * 1000 / k)
                stage2_wall_ms.append((time.perf_counter() - t0) * 1000 / k)
            passes.append(report.forward_passes)
            evaluated.append(len(report.evaluations))
            reports.append(report)
        combined = combine_scores([rep.record for rep in reports], reputation, GAUNTLET)
        finals = {p.id: combined.get(p.id, 0.0) for p in peers}
        weights = aggregation_weights(finals, GAUNTLET)
        accepted = [rec for rec in published if reports[0].screenings[rec.peer].accepted]
        apply_round(model, accepted, SPSA, weights=round_weights(weights, [rec.peer for rec in accepted]))
        history.append({"finals": {p.name: finals[p.id] for p in peers},
                        "weights": {p.name: weights[p.id] for p in peers}})
    with torch.no_grad():
        eval_loss = float(loss(model, eval_set))
    return {"eval_loss": eval_loss, "history": history, "passes": passes, "evaluated": evaluated,
            "stage2_ms": stage2_ms, "stage2_wall_ms": stage2_wall_ms}


def rounds_to_separate(history: list[dict], peers: list[Peer]) -> dict[str, int | None]:
    """Per adversary: the round (1-based count of rounds played) after which every honest peer's
    final score stays above the adversary's until the end; None if that never holds."""
    honest = [p.name for p in peers if p.kind == adv.HONEST]
    result = {}
    for p in peers:
        if p.kind == adv.HONEST:
            continue
        separated_from = None
        for r in range(len(history) - 1, -1, -1):
            finals = history[r]["finals"]
            if min(finals[h] for h in honest) > finals[p.name]:
                separated_from = r
            else:
                break
        result[p.kind] = None if separated_from is None else separated_from + 1
    return result


def rate_ms_100() -> tuple[float, float]:
    """Median (CPU ms, wall ms) of one 100-player OpenSkill match."""
    state = GauntletState(GAUNTLET)
    rng = np.random.default_rng(1)
    players = [f"p{i}".encode() for i in range(RATE_PLAYERS)]
    cpu, wall = [], []
    for _ in range(RATE_REPEATS):
        scores = dict(zip(players, rng.normal(size=RATE_PLAYERS).tolist()))
        c0, t0 = time.thread_time(), time.perf_counter()
        state.rate_match(scores)
        cpu.append((time.thread_time() - c0) * 1000)
        wall.append((time.perf_counter() - t0) * 1000)
    return statistics.median(cpu), statistics.median(wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rounds = QUICK_ROUNDS if args.quick else FULL_ROUNDS
    train, eval_set = make_dataset()
    t0 = time.perf_counter()
    weighted = simulate("weighted", rounds, train, eval_set)
    unweighted = simulate("unweighted", rounds, train, eval_set)
    honest = simulate("honest", rounds, train, eval_set)
    peers = make_peers(True)
    sep = rounds_to_separate(weighted["history"], peers)
    last = [r for r in sep.values() if r is not None]
    after = max(last) if len(last) == len(sep) else None
    adv_names = [p.name for p in peers if p.kind != adv.HONEST]
    share = None
    if after is not None and after < rounds:
        share = max(sum(h["weights"][a] for a in adv_names) for h in weighted["history"][after:])
    base_model = build_tiny(MODEL)
    with torch.no_grad():
        initial = float(loss(base_model, eval_set))
    evaluated_max = max(weighted["evaluated"])
    rate_cpu, rate_wall = rate_ms_100()
    out = {
        "rounds": rounds,
        "model_params": sum(p.numel() for p in base_model.parameters()),
        "samples_per_round": SPSA.samples_per_round,
        "validators": VALIDATORS,
        "eval_budget": GAUNTLET.eval_budget,
        "validation_ms_per_peer": round(statistics.median(weighted["stage2_ms"]), 3),
        "validation_ms_per_peer_wall": round(statistics.median(weighted["stage2_wall_ms"]), 3),
        "rate_ms_100_peers": round(rate_cpu, 3),
        "rate_ms_100_peers_wall": round(rate_wall, 3),
        "timing_note": "ms are CPU time of the measuring thread (torch single-threaded); *_wall is "
                       "elapsed time, inflated when other processes share the 2 cores",
        "forward_passes_per_round": max(weighted["passes"]),
        "forward_pass_budget": 2 * evaluated_max * 2,
        "rounds_to_separate": sep,
        "separation_targets": SEP_TARGETS,
        "adversary_weight_share": share,
        "eval_loss_initial": round(initial, 4),
        "eval_loss_weighted": round(weighted["eval_loss"], 4),
        "eval_loss_unweighted": round(unweighted["eval_loss"], 4),
        "eval_loss_all_honest": round(honest["eval_loss"], 4),
        "weighted_vs_honest": round(weighted["eval_loss"] / honest["eval_loss"] - 1, 4),
        "final_weights": {k: round(v, 4) for k, v in weighted["history"][-1]["weights"].items()},
        "seconds": round(time.perf_counter() - t0, 1),
    }
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
