"""Length-prefixed frames on byte streams (libp2p streams or anything with ``read(n)``/``write``).

A frame is a 4-byte big-endian length followed by that many bytes. The length is checked against
the caller's limit before a single body byte is read, so an oversized frame costs nothing.
"""

from __future__ import annotations

import struct
from typing import Protocol

from protocols.codec import DecodeError

LENGTH_PREFIX = struct.Struct(">I")


class ByteStream(Protocol):
    """The part of a libp2p stream that framing needs."""

    async def read(self, n: int | None = None) -> bytes: ...

    async def write(self, data: bytes) -> None: ...


class FrameError(DecodeError):
    """The stream ended early or announced a frame larger than allowed."""


async def read_exactly(stream: ByteStream, n: int) -> bytes:
    """Read exactly ``n`` bytes or raise FrameError if the stream ends first."""
    chunks: list[bytes] = []
    remaining = n
    while remaining:
        try:
            chunk = await stream.read(remaining)
        except EOFError:
            chunk = b""
        if not chunk:
            raise FrameError(f"stream ended after {n - remaining} of {n} bytes")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


async def read_frame(stream: ByteStream, max_size: int) -> bytes:
    """Read one frame, refusing a length over ``max_size`` before reading the body."""
    (length,) = LENGTH_PREFIX.unpack(await read_exactly(stream, LENGTH_PREFIX.size))
    if length > max_size:
        raise FrameError(f"frame of {length} bytes exceeds the {max_size}-byte limit")
    if length == 0:
        raise FrameError("empty frame")
    return await read_exactly(stream, length)


async def write_frame(stream: ByteStream, payload: bytes) -> None:
    """Write one frame."""
    await stream.write(LENGTH_PREFIX.pack(len(payload)) + payload)
