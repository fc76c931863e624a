"""The CLI's side of the control API: a blocking JSON-lines client over the node's Unix socket."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from node.home import NodeHome

DEFAULT_TIMEOUT_S = 30.0
READ_CHUNK = 65536


class ControlError(RuntimeError):
    """The daemon is not reachable or refused the command; the message is one clear line."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ControlClient:
    """Talks to the daemon whose home is ``home``."""

    def __init__(self, home: Path, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.home = NodeHome(home)
        self.timeout_s = timeout_s

    def _connect(self) -> socket.socket:
        path = self.home.control_socket
        if not path.exists():
            raise ControlError(f"no daemon is running in {self.home.root} (start one with: plexus run --home {self.home.root})")
        try:
            info = self.home.read_info()
            if not _pid_alive(int(info["pid"])):
                raise ControlError(f"the daemon in {self.home.root} (pid {info['pid']}) is not running any more")
        except (FileNotFoundError, ValueError, KeyError):
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout_s)
        try:
            sock.connect(str(path))
        except OSError as exc:
            sock.close()
            raise ControlError(f"cannot reach the daemon in {self.home.root}: {exc.strerror or exc}") from exc
        return sock

    @staticmethod
    def _lines(sock: socket.socket) -> Iterator[dict]:
        buffer = b""
        while True:
            try:
                chunk = sock.recv(READ_CHUNK)
            except socket.timeout as exc:
                raise ControlError("the daemon did not answer in time") from exc
            if not chunk:
                return
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                yield json.loads(line)

    def call(self, cmd: str, **args: Any) -> Any:
        """Run one command and return its result; ControlError with the daemon's reason if refused."""
        with self._connect() as sock:
            sock.sendall((json.dumps({"cmd": cmd, "args": args}) + "\n").encode())
            for answer in self._lines(sock):
                if not answer.get("ok"):
                    raise ControlError(answer.get("error", "unknown error"))
                return answer.get("result")
        raise ControlError("the daemon closed the connection without answering")

    def stream(self, cmd: str, **args: Any) -> Iterator[Any]:
        """Run a streaming command and yield its events until the daemon or the caller stops."""
        sock = self._connect()
        sock.settimeout(None)
        with sock:
            sock.sendall((json.dumps({"cmd": cmd, "args": args}) + "\n").encode())
            lines = self._lines(sock)
            first = next(lines, None)
            if first is None or not first.get("ok"):
                raise ControlError((first or {}).get("error", "the daemon closed the connection"))
            for line in lines:
                yield line["event"]
