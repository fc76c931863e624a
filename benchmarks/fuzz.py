"""Fuzz every wire decoder and print one JSON object.

Runs the fuzzer of ``tests/unit/test_fuzz_decoders.py`` over every registered message type (all
``protocols.*`` modules are imported first) and feeds ``decode`` and ``decode_signed`` at least
``--frames`` malformed or random frames each. The issue's criterion: 100,000 frames per decoder give
only ``DecodeError`` (``non_decode_errors`` must be 0).

Usage: ``.venv/bin/python benchmarks/fuzz.py [--frames N] [--seed S] [--quick]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from libp2p.crypto.ed25519 import create_new_key_pair  # noqa: E402

from protocols.codec import decode, encode  # noqa: E402
from protocols.message import ErrorReply  # noqa: E402
from protocols.records import decode_signed, encode_signed, sign_record  # noqa: E402
from tests.unit.test_fuzz_decoders import fuzz  # noqa: E402 - needs the repository root on sys.path

#: The issue's criterion: frames per decoder entry point.
DEFAULT_FRAMES = 100_000
#: Frames per decoder for ``--quick``.
QUICK_FRAMES = 10_000
#: Failures printed in full (to stderr) when a non-DecodeError shows up.
FAILURES_SHOWN = 3
#: Repetitions for the per-call timings of valid frames.
TIMING_CALLS = 2_000
MICROS = 1e6


def per_call_us(fn, arg) -> float:
    """Mean microseconds per call of ``fn(arg)`` over TIMING_CALLS calls."""
    started = time.perf_counter()
    for _ in range(TIMING_CALLS):
        fn(arg)
    return round((time.perf_counter() - started) / TIMING_CALLS * MICROS, 1)


def valid_frame_timings() -> dict[str, float]:
    """Cost of the happy path on a small message: encode, decode, sign, decode_signed."""
    msg = ErrorReply(code=1, reason="a short human-readable reason")
    key = create_new_key_pair(b"k" * 32).private_key
    frame, signed = encode(msg), encode_signed(sign_record(msg, key))
    return {
        "encode_us": per_call_us(encode, msg),
        "decode_us": per_call_us(decode, frame),
        "sign_record_us": per_call_us(lambda m: sign_record(m, key), msg),
        "decode_signed_us": per_call_us(decode_signed, signed),
        "frame_bytes": len(frame),
        "signed_frame_bytes": len(signed),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=DEFAULT_FRAMES, help="frames per decoder entry point")
    parser.add_argument("--seed", type=int, default=0, help="fuzzer seed")
    parser.add_argument("--quick", action="store_true", help=f"only {QUICK_FRAMES} frames per decoder")
    args = parser.parse_args()
    frames = QUICK_FRAMES if args.quick else args.frames
    if frames <= 0:
        parser.error("--frames must be positive")

    started = time.perf_counter()
    report = fuzz(0, seed=args.seed, min_frames_per_decoder=frames)
    seconds = time.perf_counter() - started

    for decoder, type_name, frame_hex, tb in report.failures[:FAILURES_SHOWN]:
        print(f"{decoder} {type_name} frame={frame_hex}\n{tb}", file=sys.stderr)
    total = sum(report.frames.values())
    print(json.dumps({
        "frames_per_decoder": min(report.frames.values()),
        "frames_by_decoder": report.frames,
        "decoders": sorted(report.frames),
        "types": len(report.types),
        "type_names": report.types,
        "unbuildable_types": report.unbuildable,
        "accepted_by_decoder": report.accepted,
        "non_decode_errors": report.non_decode_errors,
        "seconds": round(seconds, 2),
        "frames_per_second": round(total / seconds),
        "seed": args.seed,
        "valid_frame": valid_frame_timings(),
    }))
    return 0 if report.non_decode_errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
