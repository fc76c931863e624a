"""Wire messages: the registry of typed, versioned, frozen dataclass bodies.

Every message that crosses the wire is a frozen dataclass registered with :func:`wire_message`
under a fixed 16-bit type id and a version. :mod:`protocols.codec` turns them into the one envelope
``{"v": version, "t": type_id, "b": body}`` and back, validating every field against its annotation
and its :func:`limits`.

Type-id plan (16 bits; retired ids stay reserved with :func:`reserve`, never reused):

============  =======================================================
0x0001-0x00FF wire layer itself (0x0001 ``SignedRecord``, 0x0002 ``ErrorReply``)
0x01xx        gossip / membership (peer records, announcements)
0x02xx        query (``/plexus/query/1.0.0``)
0x03xx        PADER (Paillier-secure SoReg)
0x04xx        trust / MeritRank
0x05xx        G-Rank (clicklogs, search)
0x06xx        shared-seed SPSA
0x07xx        Gauntlet contribution scoring
0xFF00-0xFFFF tests only (never used by a running node)
============  =======================================================

Supported field annotations: ``int``, ``float`` (an ``int`` is accepted and stored as ``float``),
``bool``, ``str``, ``bytes``, ``tuple[T, ...]`` (a list on the wire), ``dict[str|bytes, T]``,
unions such as ``T | None``, and nested frozen dataclasses whose fields follow the same rules. Type
checks are strict: a bool is not an int, an int is not a str, bytes are not str. (A message with a
dict field is not hashable; prefer ``tuple[...]`` where messages go into sets or dict keys.)

Limits (``field(metadata=limits(...))``): ``max_len``/``min_len`` bound the field's own length (a
str in characters, bytes in bytes, a tuple or dict in entries); ``min``/``max``/``finite`` bound every
number inside the field; ``items=limits(...)`` gives separate limits for tuple elements and dict values,
``keys=limits(...)`` for dict keys. Floats must be finite unless ``finite=False``.

A class may define ``check(self) -> None`` for semantic validation; it raises ``ValueError(reason)``.
A class may define a classmethod ``sample(rng)`` (``rng``: numpy Generator; or ``sample()``) that
returns a valid instance: the fuzz tests (``tests/unit/test_fuzz_decoders.py``) start from it, else
they generate instances from the annotations and limits.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

#: Global frame cap (bytes): no frame larger than this is unpacked unless a caller raises the limit.
MAX_FRAME = 1024 * 1024
#: Default per-type frame cap (bytes of the whole encoded envelope) for :func:`wire_message`.
DEFAULT_MAX_BODY = 64 * 1024
#: Largest type id / version that fits the envelope's 16-bit fields.
MAX_TYPE_ID = 0xFFFF
MAX_VERSION = 0xFFFF
#: Type ids reserved for test-only messages.
TEST_TYPE_IDS = range(0xFF00, MAX_TYPE_ID + 1)
#: msgpack integers are 64-bit: the range a wire ``int`` can hold.
WIRE_INT_MIN = -(2**63)
WIRE_INT_MAX = 2**64 - 1
#: Metadata key under which :func:`limits` stores a field's :class:`Limits`.
LIMITS_KEY = "plexus.wire.limits"

#: Retired or otherwise forbidden type ids: never registered, refused on decode.
RESERVED_TYPE_IDS: set[int] = set()

_REGISTRY: dict[int, type] = {}
_T = TypeVar("_T")


class WireRegistrationError(TypeError):
    """A class cannot be registered as a wire message (raised at import time)."""


class FieldError(ValueError):
    """A value does not fit its field's type or limits; ``reason`` names the field path."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------- limits


@dataclass(frozen=True)
class Limits:
    """Bounds on one field's value (see the module docstring for what applies where)."""

    max_len: int | None = None
    """Largest length of the field's own value (str chars, bytes, tuple/dict entries); None: only the frame cap."""
    min_len: int = 0
    """Smallest length of the field's own value."""
    min: int | float | None = None
    """Smallest allowed number anywhere inside the field."""
    max: int | float | None = None
    """Largest allowed number anywhere inside the field."""
    finite: bool = True
    """Refuse NaN and infinities in float values."""
    items: Limits | None = None
    """Limits for tuple elements and dict values; default: the number bounds of this Limits only."""
    keys: Limits | None = None
    """Limits for dict keys; default: none beyond the frame cap."""

    def validate(self) -> None:
        """Raise ValueError if the limits contradict themselves."""
        if self.min_len < 0:
            raise ValueError(f"min_len must be >= 0, got {self.min_len}")
        if self.max_len is not None and self.max_len < self.min_len:
            raise ValueError(f"max_len {self.max_len} < min_len {self.min_len}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} > max {self.max}")
        for sub in (self.items, self.keys):
            if sub is not None:
                sub.validate()

    def element_limits(self) -> Limits:
        """Limits for the elements of a container field carrying these limits."""
        if self.items is not None:
            return self.items
        return Limits(min=self.min, max=self.max, finite=self.finite)


NO_LIMITS = Limits()


def _as_limits(value: Limits | Mapping[str, Any] | None) -> Limits | None:
    if value is None or isinstance(value, Limits):
        return value
    return value[LIMITS_KEY]


def limits(
    *,
    max_len: int | None = None,
    min_len: int = 0,
    min: int | float | None = None,  # noqa: A002 - mirrors the metadata names in the API
    max: int | float | None = None,  # noqa: A002
    finite: bool = True,
    items: Limits | Mapping[str, Any] | None = None,
    keys: Limits | Mapping[str, Any] | None = None,
) -> dict[str, Limits]:
    """Field metadata with wire limits: ``field(metadata=limits(max_len=64, min=0, max=255))``."""
    lim = Limits(max_len, min_len, min, max, finite, _as_limits(items), _as_limits(keys))
    lim.validate()
    return {LIMITS_KEY: lim}


# alias named in the API brief
field_rules = limits


# --------------------------------------------------------------------------- schema nodes


class Node:
    """A compiled field type: converts between Python values and msgpack-ready values."""

    def dump(self, value: Any, path: str) -> Any:
        """Python value -> msgpack-ready value; raises FieldError."""
        raise NotImplementedError

    def load(self, value: Any, path: str) -> Any:
        """msgpack value -> Python value; raises FieldError."""
        raise NotImplementedError


#: Longest rendering of a peer-supplied value inside an error reason.
REASON_VALUE_CHARS = 40


def short_repr(value: Any, limit: int = REASON_VALUE_CHARS) -> str:
    """``repr(value)`` cut to ``limit`` characters: hostile values must not bloat reasons and logs."""
    if isinstance(value, (str, bytes)) and len(value) > limit:
        value = value[:limit]
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_len(value: Any, lim: Limits, path: str) -> None:
    n = len(value)
    if n < lim.min_len:
        raise FieldError(f"{path}: length {n} < min_len {lim.min_len}")
    if lim.max_len is not None and n > lim.max_len:
        raise FieldError(f"{path}: length {n} > max_len {lim.max_len}")


def _check_number(value: int | float, lim: Limits, path: str) -> None:
    if lim.min is not None and value < lim.min:
        raise FieldError(f"{path}: {value!r} < min {lim.min}")
    if lim.max is not None and value > lim.max:
        raise FieldError(f"{path}: {value!r} > max {lim.max}")


@dataclass(frozen=True)
class NoneNode(Node):
    """The ``None`` alternative of an optional field."""

    def dump(self, value: Any, path: str) -> Any:
        if value is not None:
            raise FieldError(f"{path}: expected None, got {type(value).__name__}")
        return None

    load = dump


@dataclass(frozen=True)
class ScalarNode(Node):
    """``int``, ``float``, ``bool``, ``str`` or ``bytes`` with its limits."""

    kind: type
    lim: Limits

    def _convert(self, value: Any, path: str) -> Any:
        kind, vt = self.kind, type(value)
        if kind is float and vt is int:
            value, vt = float(value), float
        if vt is not kind:
            raise FieldError(f"{path}: expected {kind.__name__}, got {vt.__name__}")
        if kind is int:
            if not WIRE_INT_MIN <= value <= WIRE_INT_MAX:
                raise FieldError(f"{path}: int {value} outside the 64-bit wire range")
            _check_number(value, self.lim, path)
        elif kind is float:
            if self.lim.finite and (value != value or value in (float("inf"), float("-inf"))):
                raise FieldError(f"{path}: float must be finite, got {value!r}")
            _check_number(value, self.lim, path)
            value = value + 0.0  # -0.0 -> 0.0: equal messages encode to equal bytes
        elif kind is not bool:
            _check_len(value, self.lim, path)
        return value

    dump = _convert
    load = _convert


@dataclass(frozen=True)
class TupleNode(Node):
    """``tuple[T, ...]``: a list on the wire, a tuple in Python."""

    item: Node
    lim: Limits

    def dump(self, value: Any, path: str) -> Any:
        if not isinstance(value, (tuple, list)):
            raise FieldError(f"{path}: expected tuple, got {type(value).__name__}")
        _check_len(value, self.lim, path)
        return [self.item.dump(v, f"{path}[{i}]") for i, v in enumerate(value)]

    def load(self, value: Any, path: str) -> Any:
        if type(value) is not list:
            raise FieldError(f"{path}: expected array, got {type(value).__name__}")
        _check_len(value, self.lim, path)
        return tuple(self.item.load(v, f"{path}[{i}]") for i, v in enumerate(value))


@dataclass(frozen=True)
class DictNode(Node):
    """``dict[str|bytes, T]``: a map on the wire with keys sorted (canonical)."""

    key: Node
    value: Node
    lim: Limits

    def dump(self, value: Any, path: str) -> Any:
        if not isinstance(value, Mapping):
            raise FieldError(f"{path}: expected dict, got {type(value).__name__}")
        _check_len(value, self.lim, path)
        out = {self.key.dump(k, f"{path}.<key>"): self.value.dump(v, f"{path}[{short_repr(k)}]") for k, v in value.items()}
        return {k: out[k] for k in sorted(out)}

    def load(self, value: Any, path: str) -> Any:
        if type(value) is not dict:
            raise FieldError(f"{path}: expected map, got {type(value).__name__}")
        _check_len(value, self.lim, path)
        return {self.key.load(k, f"{path}.<key>"): self.value.load(v, f"{path}[{short_repr(k)}]") for k, v in value.items()}


@dataclass(frozen=True)
class UnionNode(Node):
    """``A | B | ...``: the first alternative that accepts the value wins."""

    options: tuple[Node, ...]

    def _first(self, method: str, value: Any, path: str) -> Any:
        reasons = []
        for opt in self.options:
            try:
                return getattr(opt, method)(value, path)
            except FieldError as err:
                reasons.append(err.reason)
        raise FieldError(f"{path}: no alternative fits ({'; '.join(reasons)})")

    def dump(self, value: Any, path: str) -> Any:
        return self._first("dump", value, path)

    def load(self, value: Any, path: str) -> Any:
        return self._first("load", value, path)


@dataclass(frozen=True)
class StructNode(Node):
    """A frozen dataclass: a map of its fields, in declaration order, on the wire."""

    cls: type
    fields: tuple[tuple[str, Node], ...]

    def dump(self, value: Any, path: str) -> Any:
        if type(value) is not self.cls:
            raise FieldError(f"{path}: expected {self.cls.__name__}, got {type(value).__name__}")
        return {name: node.dump(getattr(value, name), f"{path}.{name}") for name, node in self.fields}

    def load(self, value: Any, path: str) -> Any:
        if type(value) is not dict:
            raise FieldError(f"{path}: expected map, got {type(value).__name__}")
        names = {name for name, _ in self.fields}
        unknown = [k for k in value if k not in names]
        if unknown:
            raise FieldError(f"{path}: unknown field(s) {', '.join(short_repr(k) for k in unknown[:4])}")
        missing = [n for n in names if n not in value]
        if missing:
            raise FieldError(f"{path}: missing field(s) {sorted(missing)}")
        kwargs = {name: node.load(value[name], f"{path}.{name}") for name, node in self.fields}
        return self.build(kwargs, path)

    def build(self, kwargs: dict[str, Any], path: str | None = None) -> Any:
        """Construct the dataclass from already-converted field values and run its ``check()``."""
        path = path or self.cls.__name__
        try:
            obj = self.cls(**kwargs)
            check = getattr(obj, "check", None)
            if check is not None:
                check()
        except Exception as err:  # noqa: BLE001 - a peer's bytes must never raise past the codec
            raise FieldError(f"{path}: {self.cls.__name__} refused: {err}") from err
        return obj


# --------------------------------------------------------------------------- compiling annotations

_SCALARS = (int, float, bool, str, bytes)
_SCHEMAS: dict[type, StructNode] = {}
_COMPILING: set[type] = set()


def _has_kind(node: Node, kinds: tuple[type, ...], containers: bool) -> bool:
    if isinstance(node, ScalarNode):
        return node.kind in kinds
    if isinstance(node, UnionNode):
        return any(_has_kind(o, kinds, containers) for o in node.options)
    if isinstance(node, (TupleNode, DictNode)):
        return containers or _has_kind(node.item if isinstance(node, TupleNode) else node.value, kinds, containers)
    return False


def _compile(tp: Any, lim: Limits, where: str) -> Node:
    origin = typing.get_origin(tp)
    if tp is type(None):
        return NoneNode()
    if tp in _SCALARS:
        return ScalarNode(tp, lim)
    if origin in (typing.Union, types.UnionType):
        return UnionNode(tuple(_compile(a, lim, where) for a in typing.get_args(tp)))
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) != 2 or args[1] is not Ellipsis:
            raise WireRegistrationError(f"{where}: only homogeneous tuple[T, ...] is supported, got {tp}")
        return TupleNode(_compile(args[0], lim.element_limits(), where), lim)
    if origin is dict:
        key_tp, val_tp = typing.get_args(tp)
        if key_tp not in (str, bytes):
            raise WireRegistrationError(f"{where}: dict keys must be str or bytes, got {key_tp}")
        key_node = _compile(key_tp, lim.keys or NO_LIMITS, where)
        return DictNode(key_node, _compile(val_tp, lim.element_limits(), where), lim)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return schema_of(tp)
    raise WireRegistrationError(f"{where}: unsupported wire annotation {tp!r}")


def _check_limits_fit(node: Node, lim: Limits, where: str) -> None:
    base = node.options if isinstance(node, UnionNode) else (node,)
    has_len = any(isinstance(n, (TupleNode, DictNode)) or (isinstance(n, ScalarNode) and n.kind in (str, bytes)) for n in base)
    if (lim.max_len is not None or lim.min_len) and not has_len:
        raise WireRegistrationError(f"{where}: max_len/min_len set on a field without a length")
    if (lim.min is not None or lim.max is not None) and not _has_kind(node, (int, float), containers=False):
        raise WireRegistrationError(f"{where}: min/max set on a field without numbers")


def schema_of(cls: type) -> StructNode:
    """The compiled schema of a frozen dataclass (compiled once, cached)."""
    cached = _SCHEMAS.get(cls)
    if cached is not None:
        return cached
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise WireRegistrationError(f"{cls!r} is not a dataclass")
    if not cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        raise WireRegistrationError(f"{cls.__qualname__} must be a frozen dataclass")
    if cls in _COMPILING:
        raise WireRegistrationError(f"{cls.__qualname__} refers to itself: recursive messages are not supported")
    try:
        hints = typing.get_type_hints(cls)
    except Exception as err:  # noqa: BLE001 - any failure to resolve annotations is a registration error
        raise WireRegistrationError(f"{cls.__qualname__}: cannot resolve annotations: {err}") from err
    compiled = []
    _COMPILING.add(cls)
    try:
        for f in dataclasses.fields(cls):
            where = f"{cls.__qualname__}.{f.name}"
            if not f.init:
                raise WireRegistrationError(f"{where}: init=False fields cannot travel on the wire")
            lim = f.metadata.get(LIMITS_KEY, NO_LIMITS)
            node = _compile(hints[f.name], lim, where)
            _check_limits_fit(node, lim, where)
            compiled.append((f.name, node))
    finally:
        _COMPILING.discard(cls)
    schema = StructNode(cls, tuple(compiled))
    _SCHEMAS[cls] = schema
    return schema


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class WireInfo:
    """What the registry knows about one message class (stored as ``cls.__wire__``)."""

    type_id: int
    """The envelope's ``t``."""
    version: int
    """The envelope's ``v``; a frame with another version is refused."""
    max_size: int
    """Largest accepted encoded frame (envelope included) for this type, in bytes."""


def reserve(*ids: int) -> None:
    """Reserve (retire) type ids: they can never be registered and are refused on decode."""
    for tid in ids:
        if tid in _REGISTRY:
            raise WireRegistrationError(f"type id {tid:#06x} is registered to {_REGISTRY[tid].__qualname__}")
        RESERVED_TYPE_IDS.add(tid)


def wire_message(type_id: int, version: int = 1, max_size: int = DEFAULT_MAX_BODY) -> Callable[[type[_T]], type[_T]]:
    """Class decorator: register a frozen dataclass as a wire body under ``type_id``.

    Raises :class:`WireRegistrationError` at import time on a duplicate or reserved type id, an id or
    version outside 1..0xFFFF, a non-frozen class, or an unsupported annotation.
    """
    if type(type_id) is not int or not 1 <= type_id <= MAX_TYPE_ID:
        raise WireRegistrationError(f"type_id must be an int in 1..{MAX_TYPE_ID:#x}, got {type_id!r}")
    if type(version) is not int or not 1 <= version <= MAX_VERSION:
        raise WireRegistrationError(f"version must be an int in 1..{MAX_VERSION}, got {version!r}")
    if type(max_size) is not int or max_size <= 0:
        raise WireRegistrationError(f"max_size must be a positive int, got {max_size!r}")

    def register(cls: type[_T]) -> type[_T]:
        if type_id in RESERVED_TYPE_IDS:
            raise WireRegistrationError(f"type id {type_id:#06x} is reserved")
        existing = _REGISTRY.get(type_id)
        same = existing is not None and (existing.__module__, existing.__qualname__) == (cls.__module__, cls.__qualname__)
        if existing is not None and not same:
            raise WireRegistrationError(
                f"type id {type_id:#06x} already registered to {existing.__module__}.{existing.__qualname__}"
            )
        if "__wire__" in cls.__dict__:
            raise WireRegistrationError(f"{cls.__qualname__} is already registered")
        schema_of(cls)
        cls.__wire__ = WireInfo(type_id, version, max_size)  # type: ignore[attr-defined]
        _REGISTRY[type_id] = cls  # a re-import of the same module replaces its own class
        return cls

    return register


def registered_types() -> dict[int, type]:
    """A copy of the registry: type id -> message class."""
    return dict(_REGISTRY)


def wire_info(cls: type) -> WireInfo:
    """The registration of a message class; raises TypeError if it is not registered."""
    info = cls.__dict__.get("__wire__") if isinstance(cls, type) else None
    if info is None:
        raise TypeError(f"{getattr(cls, '__qualname__', cls)!r} is not a registered wire message")
    return info


def lookup(type_id: int) -> type | None:
    """The class registered under ``type_id``, or None."""
    return _REGISTRY.get(type_id)


# --------------------------------------------------------------------------- wire-layer messages (0x0001-0x00FF)

#: Length of an Ed25519 signature.
SIGNATURE_LEN = 64
#: Longest author peer id accepted (an Ed25519 identity-multihash peer id is 38 bytes).
MAX_PEER_ID_LEN = 64
#: Longest human-readable reason in an :class:`ErrorReply`.
MAX_REASON_LEN = 512


@wire_message(type_id=0x0001, version=1, max_size=MAX_FRAME)
@dataclass(frozen=True)
class SignedRecord:
    """A message signed by its author's libp2p key (see :mod:`protocols.records`).

    Decoding a ``SignedRecord`` with :func:`protocols.codec.decode` checks only its shape; use
    :func:`protocols.records.verify_record` or :func:`protocols.records.decode_signed` to verify it.
    """

    author: bytes = dataclasses.field(metadata=limits(min_len=1, max_len=MAX_PEER_ID_LEN))
    """The author's libp2p peer id bytes; its public key is inlined (Ed25519 identity multihash)."""
    body: bytes = dataclasses.field(metadata=limits(min_len=1, max_len=MAX_FRAME))
    """The signed message, encoded with :func:`protocols.codec.encode` (canonical bytes)."""
    signature: bytes = dataclasses.field(metadata=limits(min_len=SIGNATURE_LEN, max_len=SIGNATURE_LEN))
    """Ed25519 signature over ``RECORD_DOMAIN + body``."""


@wire_message(type_id=0x0002, version=1)
@dataclass(frozen=True)
class ErrorReply:
    """A generic answer to a request that could not be served (e.g. it did not decode)."""

    code: int = dataclasses.field(metadata=limits(min=0, max=MAX_VERSION))
    """Machine-readable error class chosen by the service (0: malformed request)."""
    reason: str = dataclasses.field(metadata=limits(max_len=MAX_REASON_LEN))
    """Human-readable reason, e.g. a DecodeError's reason."""

