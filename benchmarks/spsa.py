"""Benchmark: shared-seed SPSA with one byte per step (issue 5). Prints ONE JSON object.

Measured side by side in one run:
* bytes: the payload per sample, one real GossipSub update message as py-libp2p builds it
  (rpc_pb2 Message + RPC, strict signing with a real Ed25519 key, topic
  ``plexus/<network>/spsa``, our msgpack envelope inside, varint length prefix), fp32
  gradient bytes of the tiny and the 124M models and their ratios;
* learning: eval loss at equal samples for N simulated peers exchanging bytes (each on its own
  shard, every replica applying every update in peer order), single-node MeZO (float
  gradient, no codec) and full-gradient data-parallel SGD on the same model;
* time per round: own forward passes vs regenerating the other peers' perturbations,
  at 0.8M and at 124M parameters.

Run: ``.venv/bin/python benchmarks/spsa.py [--quick]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import time

import torch

from learning.corpus import CorpusSettings, eval_batches, sample_batch, stdlib_corpus
from learning.models import GPT2_SMALL, TINY, build_tiny, count_params, loss
from learning.spsa import (
    MAX_ROUND,
    MAX_RUN_NAME_BYTES,
    ByteCodec,
    SpsaSettings,
    UpdateRecord,
    apply_round,
    apply_update,
    derive_seed,
    local_update,
    param_checksum,
    projected_gradient,
    record_fields,
)

NETWORK = "devnet"
TOPIC = f"plexus/{NETWORK}/spsa"
RUN = "bench-run"
FP32_BYTES = 4
BATCH, SEQ = 8, 64
EVAL_BATCHES, EVAL_BATCH = 4, 16
EVAL_SEED = 10**6
SGD_LR = 0.05
LOOPBACK_ADDR = "/ip4/127.0.0.1/tcp/40001"


# ----------------------------------------------------------------------------- wire bytes


def _envelope(record: UpdateRecord) -> tuple[bytes, str]:
    """The record inside our msgpack envelope {v, t, b}; protocols' SPSA message if it exists."""
    try:
        import protocols.spsa as wire  # the protocol layer's own message, once it exists

        msg = wire.update_message(record)
        from protocols.codec import encode

        return encode(msg), "protocols.spsa"
    except (ImportError, AttributeError):
        pass
    from protocols.codec import encode
    from protocols.message import wire_message

    @wire_message(type_id=0xFF60, version=1, max_size=1024)
    @dataclasses.dataclass(frozen=True)
    class SpsaUpdateStandIn:
        run: str
        round: int
        grads: bytes
        base: bytes

    run, round_, grads, base = record_fields(record)
    return encode(SpsaUpdateStandIn(run, round_, grads, base)), "protocols.codec stand-in {run, round, grads, base}"


def wire_bytes(samples: int) -> dict:
    """Build, sign and frame one update message exactly as py-libp2p 0.8.1's Pubsub does."""
    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.peer.id import ID
    from libp2p.peer.peerstore import create_signed_peer_record
    from libp2p.pubsub.pb import rpc_pb2
    from libp2p.pubsub.validators import PUBSUB_SIGNING_PREFIX, signature_validator
    from libp2p.utils.varint import encode_uvarint
    from multiaddr import Multiaddr

    keys = create_new_key_pair(bytes(range(32)))
    peer = ID.from_pubkey(keys.public_key)
    # worst case: the longest run name and the largest round the record allows
    run = "r" * MAX_RUN_NAME_BYTES
    record = UpdateRecord(run, MAX_ROUND - 1, peer.to_bytes(), bytes([0x85] * samples), b"\x11" * 8)
    data, envelope_kind = _envelope(record)
    msg = rpc_pb2.Message(data=data, topicIDs=[TOPIC], from_id=peer.to_bytes(), seqno=(2**40).to_bytes(8, "big"))
    msg.signature = keys.private_key.sign(PUBSUB_SIGNING_PREFIX.encode() + msg.SerializeToString())
    msg.key = keys.public_key.serialize()
    assert signature_validator(msg)
    rpc = rpc_pb2.RPC(publish=[msg]).SerializeToString()
    framed = encode_uvarint(len(rpc)) + rpc
    sender_record = create_signed_peer_record(peer, [Multiaddr(LOOPBACK_ADDR)], keys.private_key).marshal_envelope()
    rpc_spr = rpc_pb2.RPC(publish=[msg], senderRecord=sender_record).SerializeToString()
    return {
        "samples": samples,
        "envelope": envelope_kind,
        "envelope_bytes": len(data),
        "message_bytes": len(msg.SerializeToString()),
        "framed_rpc_bytes": len(framed),
        "py_libp2p_0_8_1_with_sender_record_bytes": len(encode_uvarint(len(rpc_spr))) + len(rpc_spr),
    }


# ----------------------------------------------------------------------------- learning


def _eval(model, batches) -> float:
    with torch.no_grad():
        return sum(float(loss(model, b)) for b in batches) / len(batches)


def _batch_seed(peer: int, round_: int, sample: int) -> int:
    return derive_seed("batch", round_, peer.to_bytes(2, "big"), sample)


def run_peers(split, settings, peers, rounds, ev, every):
    """N peers on their own shards exchanging one byte per sample; two replicas, shuffled arrival."""
    model, replica = build_tiny(TINY), build_tiny(TINY)
    ids = [derive_seed("peer", 0, bytes([i]), 0).to_bytes(8, "big") * 4 + bytes(6) for i in range(peers)]
    curve = [(0, _eval(model, ev))]
    clock = {"forward": 0.0, "step": 0.0, "regen": 0.0, "checksum": 0.0}

    def timed_loss(batch):
        def fn(m):
            t = time.perf_counter()
            value = loss(m, batch)
            clock["forward"] += time.perf_counter() - t
            return value

        return fn

    base = param_checksum(model)
    for r in range(rounds):
        records = []
        for i, pid in enumerate(ids):
            batches = [sample_batch(split.shards[i], BATCH, SEQ, _batch_seed(i, r, k)) for k in range(settings.samples_per_round)]
            t = time.perf_counter()
            records.append(
                local_update(model, [timed_loss(b) for b in batches], run=RUN, round_=r, peer=pid, settings=settings, base_checksum=base)
            )
            clock["step"] += time.perf_counter() - t
        t = time.perf_counter()
        apply_round(model, records, settings)
        clock["regen"] += time.perf_counter() - t
        t = time.perf_counter()
        base = param_checksum(model)
        clock["checksum"] += time.perf_counter() - t
        random.Random(r).shuffle(records)
        apply_round(replica, records, settings)
        if base != param_checksum(replica):
            raise RuntimeError(f"replicas diverged at round {r}")
        if (r + 1) % every == 0 or r + 1 == rounds:
            curve.append(((r + 1) * peers * settings.samples_per_round, _eval(model, ev)))
    updates = rounds * peers * settings.samples_per_round
    k = settings.samples_per_round
    timing = {
        "samples_per_round": k,
        "forward_passes_ms_per_peer_round": 1e3 * clock["forward"] / (rounds * peers),
        "perturb_restore_ms_per_peer_round": 1e3 * (clock["step"] - clock["forward"]) / (rounds * peers),
        "regen_ms_per_update": 1e3 * clock["regen"] / updates,
        "regen_others_ms_per_round": 1e3 * clock["regen"] / updates * (peers - 1) * k,
        "checksum_ms_per_round": 1e3 * clock["checksum"] / rounds,
    }
    return curve, timing, base.hex()


def run_single_mezo(split, settings, samples, ev, every):
    """Plain MeZO on one node over all training shards: float gradient, no codec."""
    model = build_tiny(TINY)
    data = b"\n\n".join(split.shards)
    curve = [(0, _eval(model, ev))]
    for s in range(samples):
        batch = sample_batch(data, BATCH, SEQ, _batch_seed(0xFFFF, s, 0))
        seed = derive_seed(RUN + "-single", s, b"single", 0)
        g = projected_gradient(model, lambda m: loss(m, batch), seed, settings.eps)
        apply_update(model, seed, g, settings.lr, settings.weight_decay)
        if (s + 1) % every == 0 or s + 1 == samples:
            curve.append((s + 1, _eval(model, ev)))
    return curve


def run_sgd(split, peers, rounds, ev, every_rounds):
    """Full-gradient data-parallel SGD: each round averages the peers' backprop gradients."""
    model = build_tiny(TINY)
    model.train()
    curve = [(0, _eval(model, ev))]
    for r in range(rounds):
        model.zero_grad()
        for i in range(peers):
            (loss(model, sample_batch(split.shards[i], BATCH, SEQ, _batch_seed(i, r, 0))) / peers).backward()
        with torch.no_grad():
            for p in model.parameters():
                p.sub_(SGD_LR * p.grad)
        if (r + 1) % every_rounds == 0 or r + 1 == rounds:
            curve.append(((r + 1) * peers, _eval(model, ev)))
    return curve


def regen_by_kind(model, reps: int) -> dict:
    """Milliseconds to regenerate and apply one update, per perturbation kind."""
    out = {}
    for kind in ("gaussian", "rademacher"):
        t = time.perf_counter()
        for i in range(reps):
            apply_update(model, derive_seed(RUN, i, b"kind", 0), 0.5, 1e-9, kind=kind)
        out[kind] = 1e3 * (time.perf_counter() - t) / reps
    return out


# ----------------------------------------------------------------------------- 124M


def big_rounds(settings, peers, rounds) -> dict:
    """A 124M GPT-2-small-shaped model: forward passes and regeneration per peer over a few rounds."""
    t = time.perf_counter()
    model = build_tiny(GPT2_SMALL)
    build_s = time.perf_counter() - t
    n = count_params(model)
    ids = [bytes([i]) * 38 for i in range(peers)]
    fwd, step, regen, check = [], [], [], []

    def timed(batch):
        def fn(m):
            t = time.perf_counter()
            value = loss(m, batch)
            fwd.append(time.perf_counter() - t)
            return value

        return fn

    base = param_checksum(model)
    for r in range(rounds):
        records = []
        for i, pid in enumerate(ids):
            batch = torch.randint(0, GPT2_SMALL.vocab_size, (1, SEQ + 1), generator=torch.Generator().manual_seed(r * 97 + i))
            t = time.perf_counter()
            records.append(local_update(model, [timed(batch)], run=RUN, round_=r, peer=pid, settings=settings, base_checksum=base))
            step.append(time.perf_counter() - t)
        t = time.perf_counter()
        apply_round(model, records, settings)
        regen.append((time.perf_counter() - t) / len(records))
        t = time.perf_counter()
        base = param_checksum(model)
        check.append(time.perf_counter() - t)
    by_kind = regen_by_kind(model, reps=1)
    return {
        "params": n,
        "build_s": build_s,
        "rounds": rounds,
        "peers": peers,
        "forward_s_per_pass_1x64": sum(fwd) / len(fwd),
        "perturb_restore_s_per_peer_round": (sum(step) - sum(fwd)) / len(step),
        "regen_s_per_peer": sum(regen) / len(regen),
        "checksum_s": sum(check) / len(check),
        "regen_ms_per_update_by_kind": by_kind,
    }


# ----------------------------------------------------------------------------- main


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, smaller corpus")
    parser.add_argument("--peers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared machine)")
    parser.add_argument("--skip-124m", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rounds = args.rounds or (20 if args.quick else 100)
    settings = SpsaSettings(eps=1e-3, lr=1e-3, samples_per_round=1)
    settings.validate()
    every = max(1, rounds // 10)

    wire = [wire_bytes(k) for k in (1, 2, 8)]
    one = wire[0]["framed_rpc_bytes"]
    tiny_params = count_params(build_tiny(TINY))
    d, layers, vocab, ctx = GPT2_SMALL.d_model, GPT2_SMALL.n_layers, GPT2_SMALL.vocab_size, GPT2_SMALL.context
    big_params = vocab * d + ctx * d + layers * (12 * d * d + 13 * d) + 2 * d

    t = time.perf_counter()
    split = stdlib_corpus(CorpusSettings(n_shards=args.peers, max_files=150 if args.quick else None))
    corpus_s = time.perf_counter() - t
    ev = eval_batches(split.eval, EVAL_BATCHES, EVAL_BATCH, SEQ, EVAL_SEED)
    samples = rounds * args.peers * settings.samples_per_round
    t = time.perf_counter()
    peers_curve, timing, checksum = run_peers(split, settings, args.peers, rounds, ev, every)
    peers_s = time.perf_counter() - t
    single_curve = run_single_mezo(split, settings, samples, ev, every * args.peers)
    sgd_curve = run_sgd(split, args.peers, rounds, ev, every)
    start, end_peers, end_single = peers_curve[0][1], peers_curve[-1][1], single_curve[-1][1]

    out = {
        "benchmark": "spsa",
        "quick": args.quick,
        "torch_threads": args.threads,
        "payload_bytes_per_step": len(ByteCodec().encode(1.0).to_bytes(1, "big")),
        "codec_relative_error_bound": ByteCodec.from_settings(settings).relative_error_bound,
        "topic": TOPIC,
        "wire_bytes_per_update": one,
        "wire_bytes_per_extra_sample": (wire[2]["framed_rpc_bytes"] - one) / 7,
        "wire_detail": wire,
        "wire_note": (
            "framed_rpc_bytes = varint length + RPC{publish:[Message]} with from, seqno, topic, data, "
            "Ed25519 signature and key, as py-libp2p's Pubsub.publish builds it; below that, Yamux adds a "
            "12 B header and Noise 2 B length + 16 B tag per frame. py-libp2p 0.8.1's GossipSub also "
            "attaches its signed peer record (senderRecord) to every RPC it publishes: the "
            "py_libp2p_0_8_1_with_sender_record_bytes column."
        ),
        "fp32_grad_bytes": {"tiny": FP32_BYTES * tiny_params, "124m": FP32_BYTES * big_params},
        "params": {"tiny": tiny_params, "124m": big_params},
        "ratio_tiny": FP32_BYTES * tiny_params / one,
        "ratio_124m": FP32_BYTES * big_params / one,
        "learning": {
            "peers": args.peers,
            "rounds": rounds,
            "samples": samples,
            "batch": [BATCH, SEQ],
            "eps": settings.eps,
            "lr": settings.lr,
            "sgd_lr": SGD_LR,
            "corpus_bytes": {"train": sum(map(len, split.shards)), "eval": len(split.eval)},
            "corpus_load_s": corpus_s,
            "start_eval_loss": start,
            "n_peer_eval_loss": end_peers,
            "single_mezo_eval_loss": end_single,
            "sgd_eval_loss": sgd_curve[-1][1],
            "n_peer_vs_single_rel_diff": (end_peers - end_single) / end_single,
            "within_5pct": abs(end_peers - end_single) <= 0.05 * end_single,
            "below_start": end_peers < start,
            "replica_checksum": checksum,
            "curve_n_peer": peers_curve,
            "curve_single_mezo": single_curve,
            "curve_sgd": sgd_curve,
            "n_peer_wall_s": peers_s,
        },
        "time_per_round_tiny": {
            **timing,
            "regen_ms_per_update_by_kind": regen_by_kind(build_tiny(TINY), reps=20),
            "network_ms": None,
            "network_note": "gossip latency is measured on the devnet (node/devnet report), not here",
        },
    }
    if not args.skip_124m:
        out["time_per_round_124m"] = big_rounds(settings, peers=2, rounds=1 if args.quick else 2)
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
