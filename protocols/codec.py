"""The one envelope and codec for every wire message.

A frame is a msgpack map ``{"v": version, "t": type_id, "b": body}`` whose body is the message's
fields as a map (declaration order). Encoding is canonical: equal messages give equal bytes, which
is what signed records are signed over.

Decoding is validation, in this order: the frame's length against the size limit *before*
unpacking; msgpack with hard limits (no ext types, str/bytes map keys only, valid UTF-8); the
envelope's keys, version and type id (unknown or reserved ids are refused); the expected type; each
field's type and limits; unknown or missing fields; finally the class's ``check()``. Any failure
raises :class:`DecodeError` with a human reason, never another exception.
"""

from __future__ import annotations

from typing import Any

import msgpack

from protocols.message import (
    MAX_FRAME,
    RESERVED_TYPE_IDS,
    FieldError,
    lookup,
    schema_of,
    short_repr,
    wire_info,
)

__all__ = ["DecodeError", "EncodeError", "MAX_FRAME", "decode", "encode"]

#: Envelope keys.
KEY_VERSION, KEY_TYPE, KEY_BODY = "v", "t", "b"
_ENVELOPE_KEYS = frozenset((KEY_VERSION, KEY_TYPE, KEY_BODY))
#: Exceptions that msgpack (and the conversions after it) may raise on hostile bytes.
_UNPACK_ERRORS = (
    msgpack.exceptions.UnpackException,
    msgpack.exceptions.ExtraData,
    ValueError,  # FormatError, StackError, limits exceeded, bad UTF-8 (UnicodeDecodeError)
    TypeError,  # unhashable map keys
    OverflowError,
    RecursionError,
    IndexError,
    KeyError,
)


class DecodeError(ValueError):
    """The one exception decoders raise: the frame is malformed or invalid; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EncodeError(ValueError):
    """A message cannot be encoded (a field breaks its type or limits, or the frame is too large)."""


def _reject_ext(code: int, data: bytes) -> Any:
    raise ValueError(f"msgpack ext type {code} is not allowed")


def encode(msg: Any) -> bytes:
    """Encode a registered message into its canonical envelope; raises EncodeError if it is invalid."""
    cls = type(msg)
    try:
        info = wire_info(cls)
    except TypeError as err:
        raise EncodeError(str(err)) from err
    try:
        body = schema_of(cls).dump(msg, cls.__name__)
    except FieldError as err:
        raise EncodeError(err.reason) from err
    try:
        data = msgpack.packb(
            {KEY_VERSION: info.version, KEY_TYPE: info.type_id, KEY_BODY: body},
            use_bin_type=True,
            use_single_float=False,
            strict_types=True,
        )
    except (ValueError, TypeError, OverflowError) as err:  # e.g. a str with lone surrogates
        raise EncodeError(f"{cls.__name__}: cannot pack: {err}") from err
    if len(data) > info.max_size:
        raise EncodeError(f"{cls.__name__}: frame of {len(data)} bytes exceeds max_size {info.max_size}")
    return data


def _expected(expect: type | tuple[type, ...] | None) -> tuple[type, ...] | None:
    """Normalise ``expect``; a class that is not a registered message is a caller bug (TypeError)."""
    if expect is None:
        return None
    classes = expect if isinstance(expect, tuple) else (expect,)
    if not classes:
        raise TypeError("expect must name at least one message class")
    for cls in classes:
        wire_info(cls)
    return classes


def _limit_before_unpack(expect: tuple[type, ...] | None, max_size: int | None) -> int:
    """The byte limit known before unpacking; a bad ``max_size`` is a caller bug (ValueError)."""
    if max_size is not None:
        if type(max_size) is not int or max_size <= 0:
            raise ValueError(f"max_size must be a positive int, got {max_size!r}")
        return max_size
    if expect:
        return max(wire_info(cls).max_size for cls in expect)
    return MAX_FRAME


def _unpack(data: bytes, limit: int) -> Any:
    unpacker = msgpack.Unpacker(
        max_buffer_size=limit,
        max_str_len=limit,
        max_bin_len=limit,
        max_array_len=limit,
        max_map_len=limit,
        max_ext_len=0,
        ext_hook=_reject_ext,
        raw=False,
        strict_map_key=True,
        use_list=True,
    )
    try:
        unpacker.feed(data)
        obj = unpacker.unpack()
    except msgpack.OutOfData as err:
        raise DecodeError("truncated frame") from err
    except _UNPACK_ERRORS as err:
        raise DecodeError(f"malformed msgpack: {type(err).__name__}: {err}") from err
    if unpacker.tell() != len(data):
        raise DecodeError(f"{len(data) - unpacker.tell()} trailing bytes after the envelope")
    return obj


def _envelope(obj: Any) -> tuple[int, int, Any]:
    if type(obj) is not dict:
        raise DecodeError(f"envelope must be a map, got {type(obj).__name__}")
    if obj.keys() != _ENVELOPE_KEYS:
        raise DecodeError(f"envelope keys must be v, t, b; got {', '.join(short_repr(k) for k in list(obj)[:5])}")
    version, type_id = obj[KEY_VERSION], obj[KEY_TYPE]
    if type(version) is not int or type(type_id) is not int:
        raise DecodeError("envelope v and t must be integers")
    return version, type_id, obj[KEY_BODY]


def _decode(data: Any, expect: tuple[type, ...] | None, limit: int) -> Any:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodeError(f"frame must be bytes, got {type(data).__name__}")
    if type(data) is not bytes:
        data = bytes(data)
    if len(data) > limit:
        raise DecodeError(f"frame of {len(data)} bytes exceeds the limit of {limit}")
    if not data:
        raise DecodeError("empty frame")
    version, type_id, body = _envelope(_unpack(data, limit))
    if type_id in RESERVED_TYPE_IDS:
        raise DecodeError(f"type id {type_id:#06x} is reserved (retired)")
    cls = lookup(type_id)
    if cls is None:
        raise DecodeError(f"unknown type id {type_id}")
    info = wire_info(cls)
    if version != info.version:
        raise DecodeError(f"{cls.__name__}: unsupported version {version} (expected {info.version})")
    if expect is not None and cls not in expect:
        names = ", ".join(c.__name__ for c in expect)
        raise DecodeError(f"unexpected message {cls.__name__} (expected {names})")
    if len(data) > info.max_size:
        raise DecodeError(f"{cls.__name__}: frame of {len(data)} bytes exceeds max_size {info.max_size}")
    try:
        return schema_of(cls).load(body, cls.__name__)
    except FieldError as err:
        raise DecodeError(err.reason) from err


def decode(
    data: bytes,
    *,
    expect: type | tuple[type, ...] | None = None,
    max_size: int | None = None,
) -> Any:
    """Decode and validate one frame; raises DecodeError (and only DecodeError) if it is bad.

    ``expect``: the message class(es) the caller accepts; anything else is refused. ``max_size``:
    the byte limit checked before unpacking (default: the largest ``max_size`` of the expected
    classes, else :data:`MAX_FRAME`); the frame's own type's ``max_size`` is enforced as well.
    Bad *arguments* (``expect`` not a registered class, ``max_size`` not positive) are caller bugs
    and raise TypeError / ValueError before any byte is looked at.
    """
    classes = _expected(expect)
    limit = _limit_before_unpack(classes, max_size)
    try:
        return _decode(data, classes, limit)
    except DecodeError:
        raise
    except RecursionError as err:
        raise DecodeError("frame nests too deeply") from err
    except Exception as err:  # noqa: BLE001 - the contract: hostile bytes give DecodeError, never a crash
        raise DecodeError(f"internal decoder error: {type(err).__name__}: {err}") from err
