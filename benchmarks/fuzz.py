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

from tests.unit.test_fuzz_decoders import fuzz  # noqa: E402 - needs the repository root on sys.path

#: The issue's criterion: frames per decoder entry point.
DEFAULT_FRAMES = 100_000
#: Frames per decoder for ``--quick``.
QUICK_FRAMES = 10_000
#: Failures printed in full (to stderr) when a non-DecodeError shows up.
FAILURES_SHOWN = 3


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
    }))
    return 0 if report.non_decode_errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
