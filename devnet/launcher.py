"""Start, watch, kill and restart daemon processes on 127.0.0.1 (the local devnet).

State lives in ``<dir>/devnet.json`` so that separate CLI invocations (`devnet up`, `devnet kill`,
`devnet status`) agree on which processes are ours; only pids recorded there are ever signalled,
and only after checking that the process still runs our node with that home.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from node.client import ControlClient, ControlError
from node.home import NodeHome, write_atomic
from node.identity import load_or_create_identity, peer_id_of

LOOPBACK = "127.0.0.1"
STATE_FILE = "devnet.json"
POLL_S = 0.1
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 5.0
BOOTSTRAP_FANOUT = 3
PUBLIC_FILE_MODE = 0o644


class DevnetError(RuntimeError):
    """A devnet operation failed; the message says which node and why."""


@dataclass
class NodeProc:
    """One devnet node: its home, fixed port, identity and last known pid."""

    name: str
    home: str
    port: int
    peer_id: str
    pid: int = 0
    extra_args: list[str] = field(default_factory=list)

    @property
    def addr(self) -> str:
        return f"/ip4/{LOOPBACK}/tcp/{self.port}/p2p/{self.peer_id}"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def _runs_our_node(pid: int, home: str) -> bool:
    """True if ``pid`` is alive and its command line names this node's home (no pid reuse mix-up)."""
    if pid <= 0:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return home.encode() in cmdline


class Devnet:
    """The devnet rooted at ``root`` (default ``.devnet``)."""

    def __init__(self, root: Path, network: str = "devnet") -> None:
        self.root = root.resolve()
        self.network = network
        self.nodes: list[NodeProc] = []
        self._children: dict[int, subprocess.Popen] = {}
        if (self.root / STATE_FILE).exists():
            self._load()

    # -- state ---------------------------------------------------------------------------
    def _load(self) -> None:
        state = json.loads((self.root / STATE_FILE).read_text())
        self.network = state["network"]
        self.nodes = [NodeProc(**n) for n in state["nodes"]]

    def save(self) -> None:
        state = {"network": self.network, "nodes": [asdict(n) for n in self.nodes]}
        write_atomic(self.root / STATE_FILE, json.dumps(state, indent=2).encode(), PUBLIC_FILE_MODE)

    def node(self, ref: str | int) -> NodeProc:
        """A node by name (node3) or index (3)."""
        for index, proc in enumerate(self.nodes):
            if str(ref) in (proc.name, str(index)):
                return proc
        raise DevnetError(f"no devnet node {ref!r} (have {', '.join(n.name for n in self.nodes) or 'none'})")

    def alive(self, proc: NodeProc) -> bool:
        child = self._children.get(proc.pid)
        if child is not None and child.poll() is not None:
            return False
        return _runs_our_node(proc.pid, proc.home)

    # -- lifecycle -----------------------------------------------------------------------
    def create(self, count: int, extra_args: list[list[str]] | None = None) -> None:
        """Create homes and identities for ``count`` nodes with fixed ports (no process yet)."""
        if any(self.alive(n) for n in self.nodes):
            raise DevnetError(f"a devnet is already running in {self.root}; run `plexus devnet down` first")
        self.root.mkdir(parents=True, exist_ok=True)
        self.nodes = []
        for index in range(count):
            home = self.root / f"node{index}"
            NodeHome(home).ensure()
            peer_id = str(peer_id_of(load_or_create_identity(NodeHome(home).identity)))
            args = extra_args[index] if extra_args and index < len(extra_args) else []
            self.nodes.append(NodeProc(f"node{index}", str(home), free_port(), peer_id, extra_args=list(args)))
        self.save()

    def bootstrap_for(self, proc: NodeProc) -> list[str]:
        """Each node bootstraps to its ring neighbours and node0 (discovery does the rest)."""
        index = self.nodes.index(proc)
        count = len(self.nodes)
        picks = {(index - 1) % count, (index + 1) % count, 0}
        picks.discard(index)
        return [self.nodes[i].addr for i in sorted(picks)][:BOOTSTRAP_FANOUT]

    def start(self, proc: NodeProc) -> None:
        """Start (or restart) one node process with its fixed home, port and bootstrap list."""
        if self.alive(proc):
            raise DevnetError(f"{proc.name} is already running (pid {proc.pid})")
        NodeHome(Path(proc.home)).info.unlink(missing_ok=True)
        argv = [sys.executable, "-m", "node", "run", "--home", proc.home,
                "--listen", f"/ip4/{LOOPBACK}/tcp/{proc.port}", "--network", self.network]
        for addr in self.bootstrap_for(proc):
            argv += ["--bootstrap", addr]
        argv += proc.extra_args
        with open(Path(proc.home) / "stdout.log", "ab") as out:
            child = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        self._children[child.pid] = child
        proc.pid = child.pid
        self.save()

    def wait_ready(self, procs: list[NodeProc], timeout_s: float = READY_TIMEOUT_S) -> None:
        """Block until each node wrote node.json with its pid and answers `status`."""
        deadline = time.monotonic() + timeout_s
        pending = list(procs)
        while pending:
            for proc in list(pending):
                if not self.alive(proc):
                    log = Path(proc.home) / "stdout.log"
                    tail = log.read_text(errors="replace")[-400:] if log.exists() else ""
                    raise DevnetError(f"{proc.name} exited during start-up: {tail.strip()}")
                try:
                    if NodeHome(Path(proc.home)).read_info()["pid"] == proc.pid:
                        ControlClient(Path(proc.home), timeout_s=2.0).call("status")
                        pending.remove(proc)
                except (FileNotFoundError, ValueError, KeyError, ControlError):
                    pass
            if pending and time.monotonic() > deadline:
                raise DevnetError(f"not ready after {timeout_s:.0f} s: {', '.join(p.name for p in pending)}")
            if pending:
                time.sleep(POLL_S)

    def up(self, count: int, extra_args: list[list[str]] | None = None) -> None:
        """Create and start ``count`` nodes, return when every one is ready."""
        self.create(count, extra_args)
        for proc in self.nodes:
            self.start(proc)
        self.wait_ready(self.nodes)

    def kill(self, ref: str | int) -> NodeProc:
        """kill -9 one node."""
        proc = self.node(ref)
        if not self.alive(proc):
            raise DevnetError(f"{proc.name} is not running")
        os.kill(proc.pid, signal.SIGKILL)
        self._reap(proc, STOP_TIMEOUT_S)
        return proc

    def restart(self, ref: str | int) -> NodeProc:
        """Bring a stopped node back with the same home (same identity and state)."""
        proc = self.node(ref)
        self.start(proc)
        self.wait_ready([proc])
        return proc

    def down(self) -> list[str]:
        """SIGTERM every live node, SIGKILL what has not stopped in time; returns the stopped names."""
        stopped = []
        for proc in self.nodes:
            if self.alive(proc):
                os.kill(proc.pid, signal.SIGTERM)
                stopped.append(proc.name)
        for proc in self.nodes:
            if proc.name in stopped and not self._reap(proc, STOP_TIMEOUT_S):
                os.kill(proc.pid, signal.SIGKILL)
                self._reap(proc, STOP_TIMEOUT_S)
        return stopped

    def _reap(self, proc: NodeProc, timeout_s: float) -> bool:
        """Wait for a node to exit; True if it did within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        child = self._children.get(proc.pid)
        while time.monotonic() < deadline:
            if child is not None and child.poll() is not None:
                return True
            if child is None and not _runs_our_node(proc.pid, proc.home):
                return True
            time.sleep(POLL_S)
        return False

    def client(self, ref: str | int) -> ControlClient:
        return ControlClient(Path(self.node(ref).home))

    def status(self) -> list[dict]:
        """One row per node: name, pid, alive, peer id, connected peers."""
        rows = []
        for proc in self.nodes:
            row = {"name": proc.name, "pid": proc.pid, "alive": self.alive(proc), "peer_id": proc.peer_id,
                   "addr": proc.addr, "connected": None}
            if row["alive"]:
                try:
                    row["connected"] = ControlClient(Path(proc.home), timeout_s=2.0).call("status")["connected"]
                except ControlError:
                    pass
            rows.append(row)
        return rows
