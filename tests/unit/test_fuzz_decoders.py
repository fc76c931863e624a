"""Fuzz every decoder with malformed and random frames: the only exception allowed is DecodeError.

The fuzzer covers every message type registered *at test time* (all ``protocols.*`` modules are
imported first), so messages other engineers add later are fuzzed automatically. For each type it
builds valid frames (the class's ``sample`` or a generated example), plain and signed, and mutates
them: bit flips, byte pokes, truncation, extension, splicing, range deletion and duplication, random
bytes, random msgpack values, huge length headers, deep nesting, and structural edits of the decoded
envelope (wrong types in fields, missing and extra fields, other versions and type ids). Signed frames
are also re-signed after mutating their body, so the body decoder behind a *valid* signature is fuzzed
too. ``benchmarks/fuzz.py`` runs the same fuzzer at scale.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import random
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np
import pytest
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID

import protocols
from protocols.codec import DecodeError, decode, encode
from protocols.message import (
    WIRE_INT_MAX,
    WIRE_INT_MIN,
    DictNode,
    FieldError,
    Limits,
    Node,
    NoneNode,
    RESERVED_TYPE_IDS,
    ScalarNode,
    StructNode,
    TupleNode,
    UnionNode,
    registered_types,
    schema_of,
)
from protocols.records import RECORD_DOMAIN, SignedRecord, decode_signed, sign_record

#: Frames per decoder entry per type in the fast test...
FAST_FRAMES_PER_TYPE = 2_000
#: ...unless there are so many types that this total per decoder would be exceeded (keeps the unit set fast).
FAST_FRAMES_BUDGET = 30_000
#: Never fewer frames per decoder entry per type than this in the fast test.
FAST_FRAMES_MIN_PER_TYPE = 300
#: Frames per decoder entry point in the slow test (the issue's criterion).
SLOW_FRAMES_PER_DECODER = 100_000
#: Valid starting messages built per type.
SEEDS_PER_TYPE = 6
#: Failures kept (with their frames) for the report.
MAX_FAILURES_KEPT = 20
#: Bytes that tend to upset msgpack parsers (type markers, length prefixes, never-used 0xc1).
INTERESTING_BYTES = (0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xC0, 0xC1, 0xC4, 0xC7, 0xCA, 0xCB,
                     0xCF, 0xD3, 0xD4, 0xD8, 0xD9, 0xDB, 0xDC, 0xDD, 0xDE, 0xDF, 0xE0, 0xFF)
#: Headers announcing huge objects: str32, bin32, array32, map32, ext32 with 0xFFFFFFFF lengths.
HUGE_HEADERS = (b"\xdb\xff\xff\xff\xff", b"\xc6\xff\xff\xff\xff", b"\xdd\xff\xff\xff\xff",
                b"\xdf\xff\xff\xff\xff", b"\xc9\xff\xff\xff\xff\x01")
#: Out of 10 mutations, how many are a single structural edit of an otherwise valid frame.
STRUCTURAL_ONLY_IN_10 = 4
RANDOM_FRAME_MAX = 300
NEST_MAX = 5_000
VALUE_DEPTH = 3


# ---------------------------------------------------------------- random valid instances

#: Bounds for generated examples where a field sets none (keeps examples small).
EXAMPLE_MAX_LEN = 8
EXAMPLE_INT_SPAN = 2**40
EXAMPLE_FLOAT_SPAN = 1e6
EXAMPLE_ATTEMPTS = 20
_EXAMPLE_CHARS = "abcxyz019 _-/é世🙂"


def _example_len(lim: Limits, rng: Any) -> int:
    hi = lim.min_len + EXAMPLE_MAX_LEN if lim.max_len is None else min(lim.max_len, lim.min_len + EXAMPLE_MAX_LEN)
    return int(rng.integers(lim.min_len, hi + 1))


def _example_number(node: ScalarNode, rng: Any) -> int | float:
    lim = node.lim
    if node.kind is int:
        lo = max(WIRE_INT_MIN, -EXAMPLE_INT_SPAN if lim.min is None else int(-(-lim.min // 1)))
        hi = min(WIRE_INT_MAX, lo + 2 * EXAMPLE_INT_SPAN if lim.max is None else int(lim.max // 1))
        pick = int(rng.integers(0, 4))
        return lo if pick == 0 else hi if pick == 1 else lo + int(rng.integers(0, min(hi - lo, 2**62) + 1))
    lo = -EXAMPLE_FLOAT_SPAN if lim.min is None else float(lim.min)
    hi = lo + 2 * EXAMPLE_FLOAT_SPAN if lim.max is None else float(lim.max)
    return float(rng.uniform(lo, hi)) if hi > lo else lo


def example_value(node: Node, rng: Any) -> Any:
    """A random value that fits ``node`` (a compiled field type); ``rng`` is a numpy Generator."""
    if isinstance(node, NoneNode):
        return None
    if isinstance(node, ScalarNode):
        if node.kind in (int, float):
            return _example_number(node, rng)
        if node.kind is bool:
            return bool(rng.integers(0, 2))
        n = _example_len(node.lim, rng)
        if node.kind is bytes:
            return rng.bytes(n)
        return "".join(_EXAMPLE_CHARS[int(i)] for i in rng.integers(0, len(_EXAMPLE_CHARS), n))
    if isinstance(node, TupleNode):
        return tuple(example_value(node.item, rng) for _ in range(_example_len(node.lim, rng)))
    if isinstance(node, DictNode):
        want = _example_len(node.lim, rng)
        out = {}
        for _ in range(want * 4):
            if len(out) >= want:
                break
            out[example_value(node.key, rng)] = example_value(node.value, rng)
        return out
    if isinstance(node, UnionNode):
        return example_value(node.options[int(rng.integers(0, len(node.options)))], rng)
    if isinstance(node, StructNode):
        return example(node.cls, rng)
    raise TypeError(f"no example for {node!r}")


def example(cls: type, rng: Any) -> Any:
    """A random valid instance of a wire dataclass, from its ``sample(rng)`` classmethod if it has one.

    Otherwise built from its annotations and limits; tries a few times until ``check()`` passes and
    raises ValueError if it never does (then give the class a ``sample`` classmethod).
    """
    sample = getattr(cls, "sample", None)
    if callable(sample):
        return sample(rng) if inspect.signature(sample).parameters else sample()
    schema = schema_of(cls)
    last: Exception | None = None
    for _ in range(EXAMPLE_ATTEMPTS):
        try:
            return schema.build({name: example_value(node, rng) for name, node in schema.fields})
        except FieldError as err:
            last = err
    raise ValueError(f"cannot build a valid example of {cls.__qualname__}: {last}")


def load_protocol_modules() -> list[str]:
    """Import every ``protocols.*`` module so that all wire messages are registered."""
    names = []
    for info in pkgutil.walk_packages(protocols.__path__, prefix="protocols."):
        importlib.import_module(info.name)
        names.append(info.name)
    return names


@dataclass
class FuzzReport:
    """What a fuzzing run saw."""

    frames: dict[str, int] = field(default_factory=dict)
    """Frames fed to each decoder entry point."""
    accepted: dict[str, int] = field(default_factory=dict)
    """Frames that decoded (mutations that happened to stay valid)."""
    types: list[str] = field(default_factory=list)
    """Message types fuzzed."""
    unbuildable: list[str] = field(default_factory=list)
    """Types with no valid example (fuzzed from random bodies only)."""
    failures: list[tuple[str, str, str, str]] = field(default_factory=list)
    """(decoder, type, frame hex, traceback) of every non-DecodeError (first few kept)."""
    non_decode_errors: int = 0
    """How many frames raised anything other than DecodeError."""


class Fuzzer:
    """A seeded frame mutator for all registered wire types."""

    def __init__(self, seed: int) -> None:
        # A seeded stdlib Random for the hot loop (numpy scalar draws cost ~15 us each); numpy for examples.
        self.rand = random.Random(seed)
        self.rng = np.random.default_rng(seed)
        self.key = create_new_key_pair(seed.to_bytes(4, "big") * 8).private_key
        self.author = ID.from_pubkey(self.key.get_public_key()).to_bytes()
        self.mutators: list[Callable[[bytes, list[bytes]], bytes]] = [
            self.flip_bits, self.poke_bytes, self.truncate, self.extend, self.splice, self.delete_range,
            self.duplicate_range, self.random_bytes, self.random_value, self.huge_header, self.deep_nest,
            self.structural,
        ]

    # ------------------------------------------------------------ helpers
    def randint(self, lo: int, hi: int) -> int:
        """Uniform int in [lo, hi]."""
        return self.rand.randint(lo, hi)

    def choice(self, items: Any) -> Any:
        return self.rand.choice(items)

    def randbytes(self, n: int) -> bytes:
        return self.rand.randbytes(n)

    def random_scalar(self) -> Any:
        """A random msgpack scalar, edge values included."""
        makers = (
            lambda: None,
            lambda: self.randint(0, 1) == 1,
            lambda: self.randint(-(2**31), 2**31),
            lambda: self.choice((2**64 - 1, -(2**63), 2**32, -1, 0, 255, 256)),
            lambda: self.choice((float("nan"), float("inf"), float("-inf"), -0.0, 1e308)),
            lambda: self.rand.gauss(0.0, 1.0),
            lambda: self.choice(("", "a", "\u00e9", "\U0001f642", "x" * 70)),
            lambda: self.randbytes(self.randint(0, 40)).decode("latin-1"),
            lambda: self.randbytes(self.randint(0, 70)),
            lambda: msgpack.ExtType(self.randint(0, 127), self.randbytes(self.randint(0, 3))),
        )
        return self.choice(makers)()

    def random_value(self, data: bytes = b"", pool: list[bytes] | None = None, depth: int = VALUE_DEPTH) -> Any:
        """A random msgpack value (packed when called as a mutator)."""
        kind = self.randint(0, 3) if depth > 0 else 0
        if kind <= 1:
            value: Any = self.random_scalar()
        elif kind == 2:
            value = [self.random_value(depth=depth - 1) for _ in range(self.randint(0, 4))]
        else:
            value = {self.random_key(): self.random_value(depth=depth - 1) for _ in range(self.randint(0, 4))}
        if pool is None:
            return value
        return msgpack.packb(value, use_bin_type=True)

    def random_key(self) -> Any:
        """A map key: mostly plausible strings, sometimes bytes or (refused) ints."""
        pick = self.randint(0, 9)
        if pick == 0:
            return self.randint(-5, 5)
        if pick == 1:
            return self.randbytes(self.randint(0, 4))
        return self.choice(("v", "t", "b", "x", "", "kind", "peers", "a", "\u00e9"))

    # ------------------------------------------------------------ byte mutators
    def flip_bits(self, data: bytes, pool: list[bytes]) -> bytes:
        buf = bytearray(data or b"\x00")
        for _ in range(self.randint(1, 8)):
            pos = self.randint(0, len(buf) - 1)
            buf[pos] ^= 1 << self.randint(0, 7)
        return bytes(buf)

    def poke_bytes(self, data: bytes, pool: list[bytes]) -> bytes:
        buf = bytearray(data or b"\x00")
        for _ in range(self.randint(1, 4)):
            buf[self.randint(0, len(buf) - 1)] = self.choice(INTERESTING_BYTES) if self.randint(0, 1) else self.randint(0, 255)
        return bytes(buf)

    def truncate(self, data: bytes, pool: list[bytes]) -> bytes:
        return data[: self.randint(0, max(0, len(data) - 1))]

    def extend(self, data: bytes, pool: list[bytes]) -> bytes:
        return data + self.randbytes(self.randint(1, 16))

    def splice(self, data: bytes, pool: list[bytes]) -> bytes:
        other = self.choice(pool)
        return data[: self.randint(0, len(data))] + other[self.randint(0, len(other)):]

    def delete_range(self, data: bytes, pool: list[bytes]) -> bytes:
        a = self.randint(0, len(data))
        return data[:a] + data[min(len(data), a + self.randint(1, 8)):]

    def duplicate_range(self, data: bytes, pool: list[bytes]) -> bytes:
        a = self.randint(0, len(data))
        return data[:a] + data[a: a + self.randint(1, 16)] + data[a:]

    def random_bytes(self, data: bytes, pool: list[bytes]) -> bytes:
        return self.randbytes(self.randint(0, RANDOM_FRAME_MAX))

    def huge_header(self, data: bytes, pool: list[bytes]) -> bytes:
        a = self.randint(0, len(data))
        return data[:a] + self.choice(HUGE_HEADERS) + data[a:]

    def deep_nest(self, data: bytes, pool: list[bytes]) -> bytes:
        depth = self.randint(1, NEST_MAX)
        return self.choice((b"\x91", b"\x81\xa1b")) * depth + data

    # ------------------------------------------------------------ structural mutators
    def structural(self, data: bytes, pool: list[bytes]) -> bytes:
        """Decode the envelope, break one thing in it, re-pack it."""
        try:
            env = msgpack.unpackb(data, raw=False, strict_map_key=False)
        except Exception:  # noqa: BLE001 - a frame already broken by an earlier mutation
            return self.random_bytes(data, pool)
        if not isinstance(env, dict):
            return self.random_value(data, pool)
        for _ in range(self.randint(1, 2)):
            self.mutate_tree(env)
        try:
            return msgpack.packb(env, use_bin_type=True)
        except (OverflowError, ValueError, TypeError):  # e.g. an edited int beyond 64 bits
            return self.random_bytes(data, pool)

    def mutate_tree(self, env: dict) -> None:
        body = env.get("b")
        pick = self.randint(0, 9)
        if pick == 0:
            env["v"] = self.choice((0, 2, 65535, -1, "1", None, 1.0, True))
        elif pick == 1:
            env["t"] = self.choice([*registered_types(), *RESERVED_TYPE_IDS, 0, 0xFFFF, -1, "t"])
        elif pick == 2:
            env[self.choice(("b", "v", "t", "x"))] = self.random_value()
        elif pick == 3 and env:
            del env[self.choice(list(env))]
        elif isinstance(body, dict) and body:
            name = self.choice(list(body))
            if pick <= 6:
                body[name] = self.random_value()  # wrong types and out-of-range values
            elif pick == 7:
                del body[name]
            elif pick == 8:
                body["extra_" + str(self.randint(0, 9))] = self.random_scalar()
            else:
                self.mutate_inside(body, name)

    def mutate_inside(self, body: dict, name: str) -> None:
        value = body[name]
        if isinstance(value, list) and value:
            value[self.randint(0, len(value) - 1)] = self.random_value()
        elif isinstance(value, list):
            value.append(self.random_scalar())
        elif isinstance(value, dict) and value:
            value[self.choice(list(value))] = self.random_value()
        elif isinstance(value, (str, bytes)):
            body[name] = value * self.randint(2, 64)  # overflow length limits
        elif isinstance(value, int) and not isinstance(value, bool):
            body[name] = self.choice((value + 1, value - 1, -value, 2**63 - 1, -(2**63), float(value)))
        else:
            body[name] = self.random_scalar()

    # ------------------------------------------------------------ frames
    def valid_messages(self, cls: type) -> list[Any]:
        """A few valid instances of ``cls`` (empty if none can be built)."""
        out = []
        for _ in range(SEEDS_PER_TYPE):
            try:
                msg = example(cls, self.rng)
                encode(msg)
            except ValueError:
                continue
            out.append(msg)
        return out

    def sign_bytes(self, body: bytes) -> bytes:
        """A correctly signed record frame around arbitrary body bytes."""
        body = body or b"\x00"
        rec = SignedRecord(author=self.author, body=body, signature=self.key.sign(RECORD_DOMAIN + body))
        return encode(rec)

    def mutate(self, frame: bytes, pool: list[bytes]) -> bytes:
        """Often one structural edit alone (so it reaches the field checks), else one to three mutations."""
        if self.randint(0, 9) < STRUCTURAL_ONLY_IN_10:
            return self.structural(frame, pool)
        for _ in range(self.randint(1, 3)):
            frame = self.choice(self.mutators)(frame, pool)
        return frame


def _feed(report: FuzzReport, name: str, type_name: str, fn: Callable[[bytes], Any], frame: bytes) -> None:
    report.frames[name] = report.frames.get(name, 0) + 1
    try:
        fn(frame)
    except DecodeError:
        return
    except Exception:  # noqa: BLE001 - this is what the fuzzer hunts for
        report.non_decode_errors += 1
        if len(report.failures) < MAX_FAILURES_KEPT:
            report.failures.append((name, type_name, frame.hex(), traceback.format_exc()))
        return
    report.accepted[name] = report.accepted.get(name, 0) + 1


def fuzz(frames_per_type: int, seed: int = 0, min_frames_per_decoder: int = 0) -> FuzzReport:
    """Feed ``decode`` and ``decode_signed`` mutated frames of every registered type.

    Each decoder entry point gets ``max(frames_per_type, ceil(min_frames_per_decoder / types))``
    frames per type.
    """
    load_protocol_modules()
    fuzzer, report = Fuzzer(seed), FuzzReport()
    types = sorted(registered_types().items())
    per_type = max(frames_per_type, -(-min_frames_per_decoder // len(types)))
    for type_id, cls in types:
        report.types.append(f"{type_id:#06x} {cls.__module__}.{cls.__qualname__}")
        msgs = fuzzer.valid_messages(cls)
        if not msgs:
            report.unbuildable.append(cls.__qualname__)
        plain = [encode(m) for m in msgs] or [msgpack.packb({"v": 1, "t": type_id, "b": {}})]
        signed = [fuzzer.sign_bytes(p) for p in plain]
        decoders = {
            "decode": lambda b, c=cls: decode(b, expect=c) if len(b) % 2 else decode(b),
            "decode_signed": lambda b, c=cls: decode_signed(b, expect=c) if len(b) % 2 else decode_signed(b),
        }
        for i in range(per_type):
            base = plain[i % len(plain)]
            _feed(report, "decode", cls.__qualname__, decoders["decode"], fuzzer.mutate(base, plain))
            if i % 2:  # a valid signature over a mutated body: fuzz what lies behind verification
                frame = fuzzer.sign_bytes(fuzzer.mutate(base, plain))
            else:
                frame = fuzzer.mutate(signed[i % len(signed)], signed)
            _feed(report, "decode_signed", cls.__qualname__, decoders["decode_signed"], frame)
    return report


def _explain(report: FuzzReport) -> str:
    return "\n\n".join(f"{d} {t} frame={h}\n{tb}" for d, t, h, tb in report.failures)


def test_every_registered_type_has_a_valid_example() -> None:
    # Arrange
    load_protocol_modules()
    fuzzer = Fuzzer(1)
    # Act
    missing = [cls.__qualname__ for cls in registered_types().values() if not fuzzer.valid_messages(cls)]
    # Assert: give such a class a ``sample(rng)`` classmethod
    assert missing == []


def test_valid_frames_decode() -> None:
    load_protocol_modules()
    fuzzer = Fuzzer(2)
    for cls in registered_types().values():
        for msg in fuzzer.valid_messages(cls):
            assert decode(encode(msg)) == msg or msg != msg  # NaN fields compare unequal
            if cls is not SignedRecord:
                assert decode_signed(encode(sign_record(msg, fuzzer.key)))[1] == msg or msg != msg


def test_fuzz_every_decoder_fast() -> None:
    # Arrange
    load_protocol_modules()
    n_types = len(registered_types())
    per_type = max(FAST_FRAMES_MIN_PER_TYPE, min(FAST_FRAMES_PER_TYPE, FAST_FRAMES_BUDGET // n_types))
    # Act
    report = fuzz(per_type, seed=3)
    # Assert
    assert report.non_decode_errors == 0, _explain(report)
    assert len(report.types) == n_types
    assert report.frames == {"decode": per_type * n_types, "decode_signed": per_type * n_types}


@pytest.mark.slow
def test_fuzz_every_decoder_100k() -> None:
    # Act
    report = fuzz(0, seed=4, min_frames_per_decoder=SLOW_FRAMES_PER_DECODER)
    # Assert
    assert report.non_decode_errors == 0, _explain(report)
    assert min(report.frames.values()) >= SLOW_FRAMES_PER_DECODER, report.frames
    assert set(report.frames) == {"decode", "decode_signed"}


def test_the_harness_counts_other_exceptions() -> None:
    # Arrange: a decoder that breaks the contract on some frames
    def leaky(frame: bytes) -> None:
        if frame[:1] == b"\x00":
            raise KeyError("leak")
        raise DecodeError("fine")

    report = FuzzReport()
    # Act
    for frame in (b"\x00a", b"\x01", b"\x00b"):
        _feed(report, "leaky", "T", leaky, frame)
    # Assert
    assert report.frames == {"leaky": 3}
    assert report.non_decode_errors == 2 and "KeyError" in report.failures[0][3]
