"""Node state in SQLite (WAL): the peer table, received gossip and each service's own tables.

Every write is a committed transaction before the daemon acknowledges it, so a kill -9 loses
nothing that was acknowledged (WAL + synchronous=NORMAL survives process crashes; only a power
loss can drop the last commits). Services declare their schema with :meth:`Store.migrate`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

BUSY_TIMEOUT_MS = 5_000

CORE_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS peers (
        peer_id TEXT PRIMARY KEY,
        addrs TEXT NOT NULL DEFAULT '',
        first_seen REAL NOT NULL,
        last_seen REAL NOT NULL,
        source TEXT NOT NULL,
        record_seq INTEGER NOT NULL DEFAULT 0,
        services TEXT NOT NULL DEFAULT ''
    )""",
    """CREATE TABLE IF NOT EXISTS gossip_messages (
        msg_id BLOB PRIMARY KEY,
        topic TEXT NOT NULL,
        author TEXT NOT NULL,
        received_at REAL NOT NULL,
        payload BLOB NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS gossip_by_topic ON gossip_messages(topic, received_at)",
    "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL)",
)


PEER_COLUMNS = "peer_id, addrs, first_seen, last_seen, source, record_seq, services"
"""Columns of the peers table in ``PeerRow`` order."""


@dataclass(frozen=True)
class PeerRow:
    """One row of the peer table."""

    peer_id: str
    addrs: tuple[str, ...]
    first_seen: float
    last_seen: float
    source: str
    record_seq: int
    services: tuple[str, ...]


class Store:
    """A thin, typed layer over one SQLite database in WAL mode."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
        )
        self.migrate("core", 1, CORE_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: committed on success, rolled back on any exception."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def query(self, sql: str, params: Sequence = ()) -> list[tuple]:
        """Run a read query and return all rows."""
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def migrate(self, component: str, version: int, statements: Iterable[str]) -> None:
        """Apply a component's schema once per version (idempotent across restarts)."""
        with self.transaction() as db:
            row = db.execute("SELECT version FROM schema_versions WHERE component=?", (component,)).fetchone()
            if row is not None and row[0] >= version:
                return
            for statement in statements:
                db.execute(statement)
            db.execute(
                "INSERT INTO schema_versions(component, version) VALUES(?, ?) "
                "ON CONFLICT(component) DO UPDATE SET version=excluded.version",
                (component, version),
            )

    # -- key/value -------------------------------------------------------------------------
    def put(self, key: str, value: bytes) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO kv(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (key, value),
            )

    def get(self, key: str) -> bytes | None:
        rows = self.query("SELECT value FROM kv WHERE key=?", (key,))
        return bytes(rows[0][0]) if rows else None

    # -- peer table ------------------------------------------------------------------------
    def touch_peer(self, peer_id: str, now: float, source: str, addrs: Sequence[str] = ()) -> None:
        """Record that a peer was seen now (insert it on first sight)."""
        joined = ",".join(addrs)
        with self.transaction() as db:
            db.execute(
                "INSERT INTO peers(peer_id, addrs, first_seen, last_seen, source) VALUES(?, ?, ?, ?, ?) "
                "ON CONFLICT(peer_id) DO UPDATE SET last_seen=excluded.last_seen, "
                "addrs=CASE WHEN excluded.addrs != '' THEN excluded.addrs ELSE peers.addrs END",
                (peer_id, joined, now, now, source),
            )

    def record_peer(self, peer_id: str, now: float, addrs: Sequence[str], seq: int, services: Sequence[str]) -> bool:
        """Store a signed peer record if it is newer than the one held; return whether it was."""
        with self.transaction() as db:
            row = db.execute("SELECT record_seq FROM peers WHERE peer_id=?", (peer_id,)).fetchone()
            if row is not None and row[0] >= seq:
                return False
            db.execute(
                "INSERT INTO peers(peer_id, addrs, first_seen, last_seen, source, record_seq, services) "
                "VALUES(?, ?, ?, ?, 'record', ?, ?) ON CONFLICT(peer_id) DO UPDATE SET addrs=excluded.addrs, "
                "last_seen=excluded.last_seen, record_seq=excluded.record_seq, services=excluded.services",
                (peer_id, ",".join(addrs), now, now, seq, ",".join(services)),
            )
            return True

    def peer(self, peer_id: str) -> PeerRow | None:
        """One peer's row, or None."""
        rows = self.query(f"SELECT {PEER_COLUMNS} FROM peers WHERE peer_id=?", (peer_id,))
        return _peer_row(rows[0]) if rows else None

    def peer_count(self) -> int:
        """Peers in the peer table."""
        return int(self.query("SELECT COUNT(*) FROM peers")[0][0])

    def peers(self) -> list[PeerRow]:
        rows = self.query(f"SELECT {PEER_COLUMNS} FROM peers ORDER BY last_seen DESC")
        return [_peer_row(r) for r in rows]

    # -- received gossip -------------------------------------------------------------------
    def add_gossip(self, msg_id: bytes, topic: str, author: str, received_at: float, payload: bytes) -> bool:
        """Keep a received gossip message; False if it was already stored."""
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO gossip_messages(msg_id, topic, author, received_at, payload) VALUES(?, ?, ?, ?, ?)",
                (msg_id, topic, author, received_at, payload),
            )
            return cursor.rowcount == 1

    def gossip_since(self, topic: str, since: float = 0.0, limit: int = 10_000) -> list[tuple[str, float, bytes]]:
        """(author, received_at, payload) of messages on a topic received after ``since``, oldest first."""
        rows = self.query(
            "SELECT author, received_at, payload FROM gossip_messages WHERE topic=? AND received_at>? "
            "ORDER BY received_at LIMIT ?",
            (topic, since, limit),
        )
        return [(r[0], r[1], bytes(r[2])) for r in rows]


def _peer_row(r) -> PeerRow:
    return PeerRow(r[0], _split(r[1]), r[2], r[3], r[4], r[5], _split(r[6]))


def _split(joined: str) -> tuple[str, ...]:
    return tuple(part for part in joined.split(",") if part)
