"""The control API: JSON lines over a Unix socket in the node's home, owner-only (mode 0600).

Only processes of the same user on this machine can reach it; the socket's file permissions are
the access control. One request per connection: ``{"cmd": NAME, "args": {...}}``. A plain command
answers one line ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "..."}``; a streaming
command answers ``{"ok": true, "stream": true}`` and then one ``{"event": ...}`` line per event until
the client hangs up.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import SocketStream

from node.home import SECRET_FILE_MODE

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 64 * 1024
Command = Callable[[dict], Awaitable[Any]]
StreamCommand = Callable[[dict], AsyncIterator[Any]]


class CommandError(Exception):
    """A command refused its arguments; the message goes back to the CLI as one line."""


class ControlRegistry:
    """Commands offered by the node and its services, by name."""

    def __init__(self) -> None:
        self.commands: dict[str, Command] = {}
        self.streams: dict[str, StreamCommand] = {}

    def add(self, name: str, handler: Command) -> None:
        if name in self.commands or name in self.streams:
            raise ValueError(f"control command {name!r} registered twice")
        self.commands[name] = handler

    def add_stream(self, name: str, handler: StreamCommand) -> None:
        if name in self.commands or name in self.streams:
            raise ValueError(f"control command {name!r} registered twice")
        self.streams[name] = handler


async def serve_control(
    path: Path, registry: ControlRegistry, request_timeout_s: float, *, task_status=anyio.TASK_STATUS_IGNORED
) -> None:
    """Listen on the Unix socket at ``path`` until cancelled; reports started once it listens."""
    path.unlink(missing_ok=True)
    old_umask = os.umask(0o177)
    try:
        listener = await anyio.create_unix_listener(path)
    finally:
        os.umask(old_umask)
    os.chmod(path, SECRET_FILE_MODE)

    async def handle(client: SocketStream) -> None:
        async with client:
            try:
                await _handle(client, registry, request_timeout_s)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream):
                pass
            except Exception:  # noqa: BLE001 - a CLI bug must not stop the daemon
                log.exception("control connection failed")

    async with listener:
        task_status.started()
        await listener.serve(handle)


async def _read_line(client: SocketStream) -> bytes:
    buffer = b""
    while b"\n" not in buffer:
        chunk = await client.receive()
        buffer += chunk
        if len(buffer) > MAX_REQUEST_BYTES:
            raise CommandError("request too large")
    return buffer.split(b"\n", 1)[0]


async def _send(client: SocketStream, obj: Any) -> None:
    await client.send((json.dumps(obj, default=str) + "\n").encode())


async def _handle(client: SocketStream, registry: ControlRegistry, timeout_s: float) -> None:
    try:
        with anyio.fail_after(timeout_s):
            request = json.loads(await _read_line(client))
        name, args = request["cmd"], request.get("args") or {}
        if not isinstance(name, str) or not isinstance(args, dict):
            raise CommandError("request needs a string 'cmd' and an object 'args'")
    except (ValueError, KeyError, TypeError, TimeoutError, CommandError) as exc:
        await _send(client, {"ok": False, "error": f"bad control request: {exc}"})
        return
    if name in registry.streams:
        await _send(client, {"ok": True, "stream": True})
        async for event in registry.streams[name](args):
            await _send(client, {"event": event})
        return
    handler = registry.commands.get(name)
    if handler is None:
        await _send(client, {"ok": False, "error": f"unknown command {name!r}"})
        return
    try:
        with anyio.fail_after(timeout_s):
            result = await handler(args)
    except CommandError as exc:
        await _send(client, {"ok": False, "error": str(exc)})
        return
    except TimeoutError:
        await _send(client, {"ok": False, "error": f"{name} timed out after {timeout_s:.0f} s"})
        return
    except Exception as exc:  # noqa: BLE001 - reported to the caller, logged in full here
        log.exception("control command %s failed", name)
        await _send(client, {"ok": False, "error": f"{name} failed: {type(exc).__name__}: {exc}"})
        return
    await _send(client, {"ok": True, "result": result})
