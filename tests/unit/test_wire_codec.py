"""The wire envelope and codec: round trips, canonical bytes, every type and limit rule, size limits."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.codec import MAX_FRAME, DecodeError, EncodeError, decode, encode
from protocols.message import (
    RESERVED_TYPE_IDS,
    ErrorReply,
    WireRegistrationError,
    limits,
    registered_types,
    reserve,
    wire_info,
    wire_message,
)
from protocols.validation import Verdict, accept, ignore, reject, validate_frame

# ---------------------------------------------------------------- test-only messages (0xFF10-0xFF2F)


@dataclass(frozen=True)
class Point:
    """A nested (unregistered) struct."""

    x: int = field(metadata=limits(min=-1000, max=1000))
    label: str = field(default="", metadata=limits(max_len=8))


@wire_message(type_id=0xFF10, version=1)
@dataclass(frozen=True)
class Everything:
    """One field of every supported kind."""

    n: int = field(metadata=limits(min=0, max=255))
    ratio: float = field(metadata=limits(min=-1.0, max=1.0))
    flag: bool
    name: str = field(metadata=limits(max_len=16))
    blob: bytes = field(metadata=limits(max_len=32))
    scores: tuple[float, ...] = field(metadata=limits(max_len=6, min=0.0, max=10.0))
    tags: tuple[str, ...] = field(metadata=limits(max_len=4, items=limits(max_len=5)))
    maybe: int | None = None
    counts: dict[str, int] = field(default_factory=dict, metadata=limits(max_len=3, keys=limits(max_len=4)))
    where: Point | None = None


@wire_message(type_id=0xFF11, version=3)
@dataclass(frozen=True)
class Checked:
    """A message with a semantic check(): lo <= hi."""

    lo: int
    hi: int

    def check(self) -> None:
        if self.lo > self.hi:
            raise ValueError(f"lo {self.lo} > hi {self.hi}")


@wire_message(type_id=0xFF12, version=1, max_size=64)
@dataclass(frozen=True)
class Small:
    """A type with a tight frame cap."""

    data: bytes


@wire_message(type_id=0xFF13, version=1, max_size=4 * MAX_FRAME)
@dataclass(frozen=True)
class Loose:
    """Unlimited fields, NaN allowed, a type cap above the global one."""

    value: float = field(metadata=limits(finite=False))
    text: str = ""


@wire_message(type_id=0xFF14, version=1)
@dataclass(frozen=True)
class Buggy:
    """check() raises something that is not a ValueError."""

    k: int

    def check(self) -> None:
        _ = {}["missing"] if self.k == 7 else None


reserve(0xFF1F)

# ---------------------------------------------------------------- helpers


def frame(type_id: int, body: object, version: int = 1, **extra: object) -> bytes:
    """A hand-made envelope (for frames encode() would refuse to build)."""
    return msgpack.packb({"v": version, "t": type_id, "b": body, **extra}, use_bin_type=True)


def body_of(msg: object) -> dict:
    return msgpack.unpackb(encode(msg), raw=False)["b"]


def everything(**changes: object) -> Everything:
    base = dict(n=1, ratio=0.5, flag=True, name="n", blob=b"b", scores=(1.0,), tags=("a",))
    return Everything(**{**base, **changes})


def assert_refused(data: bytes, fragment: str, **kwargs: object) -> None:
    with pytest.raises(DecodeError) as info:
        decode(data, **kwargs)
    assert fragment in info.value.reason, info.value.reason


texts = st.text(max_size=5)
everything_strategy = st.builds(
    Everything,
    n=st.integers(0, 255),
    ratio=st.floats(-1.0, 1.0),
    flag=st.booleans(),
    name=st.text(max_size=16),
    blob=st.binary(max_size=32),
    scores=st.lists(st.floats(0.0, 10.0), max_size=6).map(tuple),
    tags=st.lists(texts, max_size=4).map(tuple),
    maybe=st.none() | st.integers(-(2**63), 2**64 - 1),
    counts=st.dictionaries(st.text(max_size=4), st.integers(-5, 5), max_size=3),
    where=st.none() | st.builds(Point, x=st.integers(-1000, 1000), label=st.text(max_size=8)),
)

# ---------------------------------------------------------------- round trips and canonical bytes


@settings(max_examples=300, deadline=None)
@given(everything_strategy)
def test_round_trip_preserves_every_field(msg: Everything) -> None:
    # Arrange / Act
    data = encode(msg)
    back = decode(data, expect=Everything)
    # Assert
    assert back == msg
    assert encode(back) == data


@settings(max_examples=200, deadline=None)
@given(st.integers(-(2**63), 2**64 - 1), st.integers(-(2**63), 2**64 - 1))
def test_round_trip_with_check(a: int, b: int) -> None:
    lo, hi = min(a, b), max(a, b)
    assert decode(encode(Checked(lo, hi))) == Checked(lo, hi)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=4), st.integers(-5, 5), max_size=3))
def test_encoding_is_canonical_whatever_the_dict_order(counts: dict[str, int]) -> None:
    # Arrange
    reversed_counts = dict(reversed(list(counts.items())))
    # Act / Assert
    assert encode(everything(counts=counts)) == encode(everything(counts=reversed_counts))


def test_equal_messages_encode_equal_bytes() -> None:
    assert encode(everything(ratio=0)) == encode(everything(ratio=0.0))
    assert encode(everything(ratio=-0.0)) == encode(everything(ratio=0.0))
    assert encode(everything(scores=[1.0])) == encode(everything(scores=(1.0,)))


def test_envelope_layout_is_v_t_b() -> None:
    # Act
    env = msgpack.unpackb(encode(Checked(1, 2)), raw=False)
    # Assert
    assert list(env) == ["v", "t", "b"]
    assert (env["v"], env["t"], env["b"]) == (3, 0xFF11, {"lo": 1, "hi": 2})


def test_int_is_accepted_for_a_float_field_and_becomes_float() -> None:
    msg = decode(frame(0xFF10, {**body_of(everything()), "ratio": 1}))
    assert msg.ratio == 1.0 and type(msg.ratio) is float


# ---------------------------------------------------------------- type rules


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("n", True),  # bool is not int
        ("n", 1.0),  # float is not int
        ("n", "1"),
        ("ratio", "0.5"),
        ("ratio", None),
        ("flag", 1),  # int is not bool
        ("name", b"n"),  # bytes are not str
        ("blob", "b"),  # str is not bytes
        ("scores", 1.0),
        ("scores", ["x"]),
        ("scores", {"a": 1.0}),
        ("tags", [b"a"]),
        ("maybe", "1"),
        ("counts", [1]),
        ("counts", {"a": "1"}),
        ("counts", {b"a": 1}),  # bytes key where str is declared
        ("where", {"x": 1}),  # nested struct missing a field
        ("where", {"x": 1, "label": "", "z": 0}),
        ("where", [1, ""]),
    ],
)
def test_wrong_field_type_is_refused(name: str, value: object) -> None:
    body = {**body_of(everything()), name: value}
    assert_refused(frame(0xFF10, body), name)


def test_unknown_and_missing_fields_are_refused() -> None:
    body = body_of(everything())
    assert_refused(frame(0xFF10, {**body, "extra": 1}), "unknown field")
    del body["name"]
    assert_refused(frame(0xFF10, body), "missing field")


def test_body_must_be_a_map() -> None:
    assert_refused(frame(0xFF11, [1, 2], version=3), "expected map")


# ---------------------------------------------------------------- limits


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("n", -1, "min"),
        ("n", 256, "max"),
        ("ratio", 1.5, "max"),
        ("ratio", math.nan, "finite"),
        ("ratio", math.inf, "finite"),
        ("ratio", -math.inf, "finite"),
        ("name", "x" * 17, "max_len"),
        ("blob", b"x" * 33, "max_len"),
        ("scores", [1.0] * 7, "max_len"),
        ("scores", [11.0], "max"),  # number bounds reach the elements
        ("scores", [math.nan], "finite"),
        ("tags", ["toolong"], "max_len"),  # items= limits
        ("counts", {"a": 1, "b": 2, "c": 3, "d": 4}, "max_len"),
        ("counts", {"abcde": 1}, "max_len"),  # keys= limits
        ("where", {"x": 1001, "label": ""}, "max"),
        ("maybe", 2**64, "wire range"),
    ],
)
def test_limits_are_enforced_on_decode(name: str, value: object, fragment: str) -> None:
    body = {**body_of(everything()), name: value}
    if name == "maybe":  # msgpack cannot even carry it; check the encoder side instead
        with pytest.raises(EncodeError, match=fragment):
            encode(everything(maybe=value))
        return
    assert_refused(frame(0xFF10, body), fragment)


def test_limits_are_enforced_on_encode() -> None:
    with pytest.raises(EncodeError, match="max_len"):
        encode(everything(name="x" * 17))
    with pytest.raises(EncodeError, match="expected int"):
        encode(everything(n=True))
    with pytest.raises(EncodeError, match="not a registered"):
        encode(Point(1))


def test_nan_passes_where_finite_is_off() -> None:
    msg = decode(encode(Loose(math.nan)))
    assert math.isnan(msg.value)


def test_check_failure_is_a_decode_error() -> None:
    assert_refused(frame(0xFF11, {"lo": 2, "hi": 1}, version=3), "lo 2 > hi 1")


def test_check_raising_anything_else_is_still_a_decode_error() -> None:
    assert decode(encode(Buggy(1))) == Buggy(1)
    assert_refused(frame(0xFF14, {"k": 7}), "Buggy refused")


# ---------------------------------------------------------------- envelope, ids, versions


def test_unknown_type_id_is_refused() -> None:
    assert 0xFF2E not in registered_types()
    assert_refused(frame(0xFF2E, {}), "unknown type id")


def test_reserved_type_id_is_refused() -> None:
    assert 0xFF1F in RESERVED_TYPE_IDS
    assert_refused(frame(0xFF1F, {}), "reserved")


def test_bad_version_is_refused() -> None:
    assert_refused(frame(0xFF11, {"lo": 1, "hi": 2}, version=2), "unsupported version 2")


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "empty"),
        (msgpack.packb([1, 0xFF11, {}]), "envelope must be a map"),
        (msgpack.packb({"v": 1, "t": 0xFF11}), "envelope keys"),
        (frame(0xFF11, {}, version=3, x=1), "envelope keys"),
        (msgpack.packb({"v": "1", "t": 0xFF11, "b": {}}), "integers"),
        (msgpack.packb({"v": 3, "t": True, "b": {}}), "integers"),
        (encode(Checked(1, 2)) + b"\x00", "trailing"),
        (encode(Checked(1, 2))[:-1], "truncated"),
        (b"\xc1", "malformed"),
        (b"\xd6\xff\x00\x00\x00\x00", "malformed"),  # timestamp ext
        (b"\xc7\x00\x05", "malformed"),  # empty ext
        (b"\x81\x01\x02", "malformed"),  # int map key
        (b"\x91" * 10_000, "malformed"),  # nests too deep
        (b"\xa2\xff\xfe", "malformed"),  # invalid UTF-8
        (b"\x81\xa1v\xdb\xff\xff\xff\xff", "truncated"),  # announces a 4 GiB string: never allocated
        (b"\x81\xa1v\xc6\xff\xff\xff\xff", "truncated"),  # same for bytes
        (b"\x81\xa1v\xdd\xff\xff\xff\xff", "max_array_len"),
        (b"\xdf\xff\xff\xff\xff", "max_map_len"),
    ],
)
def test_malformed_envelopes_are_refused(data: bytes, fragment: str) -> None:
    assert_refused(data, fragment)


def test_non_bytes_input_is_refused() -> None:
    assert_refused("not bytes", "must be bytes")  # type: ignore[arg-type]


def test_expect_refuses_other_types() -> None:
    assert decode(encode(Checked(1, 2)), expect=(Small, Checked)) == Checked(1, 2)
    assert_refused(encode(Checked(1, 2)), "unexpected message Checked", expect=Small)


def test_bad_arguments_are_caller_bugs() -> None:
    with pytest.raises(TypeError):
        decode(b"", expect=Point)
    with pytest.raises(ValueError):
        decode(b"", max_size=0)


# ---------------------------------------------------------------- size limits before unpacking


def test_oversize_valid_frame_is_refused_by_size() -> None:
    # Arrange: a well-formed, otherwise valid frame just over the global cap
    msg = Loose(1.0, "x" * MAX_FRAME)
    data = frame(0xFF13, {"value": 1.0, "text": msg.text})
    assert len(data) > MAX_FRAME
    assert decode(data, max_size=len(data)) == msg  # valid when the caller allows it
    # Act / Assert
    assert_refused(data, f"exceeds the limit of {MAX_FRAME}")
    assert decode(data, expect=Loose) == msg  # expecting a type with a larger cap raises the limit


def test_size_is_checked_before_unpacking() -> None:
    # Garbage that msgpack would refuse as malformed is refused for its size first.
    assert_refused(b"\xc1" * (MAX_FRAME + 1), "exceeds the limit")
    assert_refused(b"\xc1" * 100, "exceeds the limit of 64", expect=Small)
    assert_refused(b"\xc1" * 11, "exceeds the limit of 10", max_size=10)


def test_per_type_max_size_is_enforced() -> None:
    data = frame(0xFF12, {"data": b"x" * 100})
    assert_refused(data, "exceeds max_size 64")
    with pytest.raises(EncodeError, match="max_size"):
        encode(Small(b"x" * 100))


# ---------------------------------------------------------------- registration


def test_registration_rules() -> None:
    @dataclass(frozen=True)
    class Fine:
        a: int

    @dataclass
    class Mutable:
        a: int

    @dataclass(frozen=True)
    class ListField:
        a: list[int]

    @dataclass(frozen=True)
    class LenOnInt:
        a: int = field(metadata=limits(max_len=3))

    @dataclass(frozen=True)
    class BoundOnStr:
        a: str = field(metadata=limits(min=0))

    @dataclass(frozen=True)
    class NoInit:
        a: int = field(default=0, init=False)

    with pytest.raises(WireRegistrationError, match="already registered"):
        wire_message(0xFF10)(Fine)
    with pytest.raises(WireRegistrationError, match="init=False"):
        wire_message(0xFF25)(NoInit)
    with pytest.raises(WireRegistrationError, match="reserved"):
        wire_message(0xFF1F)(Fine)
    with pytest.raises(WireRegistrationError, match="frozen"):
        wire_message(0xFF20)(Mutable)
    with pytest.raises(WireRegistrationError, match="unsupported"):
        wire_message(0xFF21)(ListField)
    with pytest.raises(WireRegistrationError, match="without a length"):
        wire_message(0xFF22)(LenOnInt)
    with pytest.raises(WireRegistrationError, match="without numbers"):
        wire_message(0xFF23)(BoundOnStr)
    with pytest.raises(WireRegistrationError, match="type_id"):
        wire_message(0x10000)
    with pytest.raises(WireRegistrationError, match="version"):
        wire_message(0xFF24, version=0)
    with pytest.raises(ValueError, match="max_len"):
        limits(min_len=3, max_len=2)
    with pytest.raises(WireRegistrationError, match="registered"):
        reserve(0xFF10)
    assert {0xFF20, 0xFF21, 0xFF22, 0xFF23, 0xFF25} & set(registered_types()) == set()


@dataclass(frozen=True)
class Tree:
    """A recursive struct (refused)."""

    children: tuple[Tree, ...]


def test_recursive_messages_are_refused() -> None:
    with pytest.raises(WireRegistrationError, match="itself"):
        wire_message(0xFF26)(Tree)


def test_wire_layer_ids() -> None:
    assert wire_info(ErrorReply).type_id == 0x0002
    assert decode(encode(ErrorReply(0, "bad"))) == ErrorReply(0, "bad")


# ---------------------------------------------------------------- gossip validation answers


def test_validation_helpers() -> None:
    ok, msg = validate_frame(encode(Checked(1, 2)), expect=Checked)
    bad, none = validate_frame(b"\xc1")
    stale, _ = validate_frame(encode(Checked(1, 2)), rule=lambda m: ignore("stale") if m.lo < 5 else accept())
    assert (ok, msg) == (accept(), Checked(1, 2)) and ok.passes
    assert bad.verdict is Verdict.REJECT and bad.penalises and none is None and bad.reason
    assert stale == ignore("stale") and not stale.passes and not stale.penalises
    assert reject("x").verdict is Verdict.REJECT


# ---------------------------------------------------------------- arbitrary input gives DecodeError or a message

msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=8) | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["v", "t", "b", "n", "lo", "hi"]), inner, max_size=4),
    max_leaves=12,
)


def decodes_or_refuses(data: bytes) -> None:
    try:
        decode(data)
    except DecodeError as err:
        assert err.reason


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    decodes_or_refuses(data)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from([1, 3]), st.sampled_from([0xFF10, 0xFF11, 0xFF14, 0x0001, 0x0002]), msgpack_values)
def test_arbitrary_bodies_decode_or_raise_decode_error(version: int, type_id: int, body: object) -> None:
    decodes_or_refuses(frame(type_id, body, version=version))
