"""Decentralised search: G-Rank clicklogs pulled from peers, item metadata on gossip, SQLite state.

One :class:`recsys.grank.GRankEngine` per node. What comes in goes through it, what it accepts is
persisted and replayed on start:

* local clicks (``click``) become entries signed by this node's key;
* local items (``items.add``) become metadata signed by this node's key, published on
  ``plexus/<network>/grank-items`` and republished every ``republish_interval_s``;
* every ``pull_interval_s`` the node pulls from one random connected peer over ``/plexus/grank/1.0.0``
  (at most ``max_pull_rounds`` exchanges while the answer says ``more``); entries with a bad author
  signature are dropped and each costs the answering peer a reject penalty; an entry that conflicts
  with a held one (same author and seq, other content: equivocation) costs its author a penalty;
* ``search`` ranks with reputation-weighted G-Rank, the reputation being the trust service's MeritRank
  scores from this node's view; without a trust service (or with ``vanilla``) it ranks with vanilla
  G-Rank and says so in the answer.

Control commands: ``search``, ``click``, ``items.add``, ``items.list``, ``search.stats``, ``search.pull``
and ``search.import`` (signed entries / items from a dump, checked exactly like pulled ones).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import anyio
import numpy as np
import trio
from libp2p.peer.id import ID
from libp2p.pubsub.pb import rpc_pb2

from node.control import CommandError
from node.ratelimit import KeyedLimiter
from node.runtime import Node
from node.options import settings_from_options
from node.settings import NodeSettings
from protocols import grank as wire
from protocols.codec import DecodeError, decode, encode
from protocols.validation import Validation, accept
from recsys.grank import (
    ClickEntry,
    ClickLogSettings,
    GossipSettings,
    GRankEngine,
    GRankEngineSettings,
    ItemMetadata,
    PullRequest,
    PullResponse,
    tokenize,
)
from recsys.grank.clicklog import MAX_SHOWN

log = logging.getLogger(__name__)

MILLIS = 1000
OPTION_PREFIX = "search."
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS grank_entries (
        author TEXT NOT NULL,
        seq INTEGER NOT NULL,
        entry_id TEXT NOT NULL,
        frame BLOB NOT NULL,
        received_at REAL NOT NULL,
        PRIMARY KEY (author, seq)
    )""",
    """CREATE TABLE IF NOT EXISTS grank_items (
        item_id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        title TEXT NOT NULL,
        frame BLOB NOT NULL,
        received_at REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS grank_items_by_owner ON grank_items(owner)",
)


@dataclass(frozen=True)
class SearchSettings:
    """Timers and caps of the search service; override with ``--opt search.<field>=<value>``."""

    pull_interval_s: float = 5.0
    """Seconds between clicklog pulls from one random connected peer."""
    max_pull_rounds: int = 8
    """Pull exchanges per tick at most (the peer said ``more``): bounds one tick's traffic."""
    republish_interval_s: float = 30.0
    """Seconds between re-publications of this node's own item metadata (late joiners learn them)."""
    republish_max_items: int = 64
    """Own items re-published per round at most."""
    serve_rate_per_peer_s: float = 4.0
    """Pull requests served per remote peer per second (token bucket, burst of twice this)."""
    max_entries_per_author: int = 10_000
    """Clicklog entries kept per author (bounds what one flooder can store here)."""
    max_summary_authors: int = 4096
    """Authors described in one pull request (keeps the request frame under its cap)."""
    max_k: int = 1000
    """Largest ``k`` a search may ask for; also the row cap of ``items.list``."""
    seed: int = 0
    """Seed of the peer picker and the bootstrap sampler."""

    def validate(self) -> None:
        """Raise ValueError naming the first field out of range."""
        for name in ("pull_interval_s", "republish_interval_s", "serve_rate_per_peer_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"search.{name} must be a finite number > 0, got {value!r}")
        for name in ("max_pull_rounds", "republish_max_items", "max_entries_per_author", "max_k"):
            if getattr(self, name) < 1:
                raise ValueError(f"search.{name} must be >= 1")
        if not 1 <= self.max_summary_authors <= wire.MAX_SUMMARY_AUTHORS:
            raise ValueError(f"search.max_summary_authors must be in 1..{wire.MAX_SUMMARY_AUTHORS}")

    def engine(self) -> GRankEngineSettings:
        """The core's settings."""
        return GRankEngineSettings(
            clicklog=ClickLogSettings(max_entries_per_author=self.max_entries_per_author),
            gossip=GossipSettings(max_summary_authors=self.max_summary_authors,
                                  max_bytes_per_message=wire.MAX_ENTRY_BYTES,
                                  max_entries_per_message=wire.MAX_RESPONSE_ENTRIES),
        )

    @classmethod
    def from_options(cls, settings: NodeSettings) -> "SearchSettings":
        """Defaults overridden by ``--opt search.<field>=<value>``; ValueError on unknown or bad values."""
        return settings_from_options(cls, settings, OPTION_PREFIX)


@dataclass
class SearchStats:
    """Counters shown by ``search.stats``."""

    pulls_ok: int = 0
    pulls_failed: int = 0
    pulled_entries: int = 0
    served: int = 0
    bad_signatures: int = 0
    equivocations: int = 0


class SearchService:
    """G-Rank search over pulled clicklogs, weighted by the trust service's reputation."""

    name = "search"

    def __init__(self, settings: SearchSettings | None = None) -> None:
        self._given = settings
        self.settings = settings or SearchSettings()
        self.node: Node | None = None
        self.me = ""
        self.engine: GRankEngine | None = None
        self.stats = SearchStats()
        self._rng = np.random.default_rng(self.settings.seed)
        self._last_shown: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._serve_limit: KeyedLimiter | None = None

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self, node: Node) -> None:
        self.node = node
        self.me = str(node.peer_id)
        if self._given is None:
            self.settings = SearchSettings.from_options(node.settings)
        self._rng = np.random.default_rng(self.settings.seed)
        self._serve_limit = KeyedLimiter(self.settings.serve_rate_per_peer_s, 2 * self.settings.serve_rate_per_peer_s)
        self.engine = GRankEngine(self.me, self.settings.engine())
        node.store.migrate("search", 1, SCHEMA)
        self._load()
        node.serve_protocol(wire.PROTOCOL_ID, self._serve)
        await node.subscribe(wire.items_topic(node.settings.network), self._on_item, self._validate_item)
        node.spawn("search.pull", self._pull_loop)
        node.spawn("search.republish", self._republish_loop)
        for name, handler in (("search", self._cmd_search), ("click", self._cmd_click),
                              ("items.add", self._cmd_items_add), ("items.list", self._cmd_items_list),
                              ("search.stats", self._cmd_stats), ("search.pull", self._cmd_pull),
                              ("search.import", self._cmd_import)):
            node.control.add(name, handler)

    def _load(self) -> None:
        """Replay persisted entries and metadata through the engine (signatures were checked on arrival)."""
        entries = [decode(bytes(f), expect=wire.WireClick).entry()
                   for (f,) in self.node.store.query("SELECT frame FROM grank_entries ORDER BY author, seq")]
        self.engine.accept_entries(entries)
        items = self.node.store.query("SELECT frame FROM grank_items")
        for (frame,) in items:
            self.engine.accept_metadata(decode(bytes(frame), expect=wire.WireItem).metadata())
        log.info("search: replayed %d clicklog entries and %d items", len(entries), len(items))

    # -- public API ----------------------------------------------------------------------
    def reputation(self) -> Mapping[str, float] | None:
        """MeritRank scores from this node's view, or None when no trust service runs here."""
        try:
            trust = self.node.service("trust")
        except KeyError:
            return None
        scores = getattr(trust, "reputation", None)
        return dict(scores()) if callable(scores) else None

    def click(self, query: str, item: str, shown: tuple[str, ...] | None = None) -> ClickEntry:
        """Record, sign and persist our click on ``item`` for ``query``; returns the signed entry.

        ``shown`` defaults to the last results of the same query when they contained ``item``.
        """
        terms = tokenize(query)
        if not terms:
            raise ValueError("query has no terms")
        if shown is None:
            remembered = self._last_shown.get(terms, ())
            shown = remembered if item in remembered else (item,)
        store = self.engine.store
        seq = max([store.next_seq(self.me) - 1, *store.seqs_above_frontier(self.me)]) + 1
        entry = ClickEntry(self.me, seq, terms, tuple(shown), item, int(time.time() * MILLIS))
        signed = wire.sign_click(entry, self.node.key_pair.private_key)
        self._ingest([signed])
        return signed

    async def add_item(self, title: str, tags: Iterable[str]) -> ItemMetadata:
        """Create, sign, store and publish metadata for one of our items."""
        meta = wire.sign_item(ItemMetadata.create(self.me, title, list(tags)), self.node.key_pair.private_key)
        wire.WireItem.of(meta).check()
        self._store_item(meta)
        try:
            await self.node.publish(wire.items_topic(self.node.settings.network), wire.encode_item(meta))
        except Exception as exc:  # noqa: BLE001 - stored anyway; the republish loop retries
            log.info("search: publish of item %s failed (%s); will republish", meta.item_id, exc)
        return meta

    async def pull_from(self, peer: ID) -> dict:
        """Pull from ``peer`` until it has nothing more for us (at most ``max_pull_rounds`` exchanges)."""
        received = new = bad = rounds = 0
        more = True
        while more and rounds < self.settings.max_pull_rounds:
            rounds += 1
            response = await self._exchange(peer, self.engine.pull_request())
            good, n_bad = await anyio.to_thread.run_sync(wire.split_verified, response.entries)
            for _ in range(n_bad):
                self.node.scores.penalise(peer.to_base58())
            received, bad = received + len(response.entries), bad + n_bad
            self.stats.bad_signatures += n_bad
            new += len(self._ingest(good))
            more = response.more
        self.stats.pulls_ok += 1
        self.stats.pulled_entries += new
        return {"peer": peer.to_base58(), "rounds": rounds, "received": received, "new": new, "bad": bad,
                "more": more}

    async def _exchange(self, peer: ID, request: PullRequest) -> wire.PullResponseMsg:
        with trio.fail_after(self.node.settings.timeouts.stream_s):
            stream = await self.node.open_stream(peer, wire.PROTOCOL_ID)
            try:
                return await wire.ask_pull(stream, request)
            finally:
                await stream.close()

    # -- ingest and persistence ----------------------------------------------------------
    def _ingest(self, entries: list[ClickEntry]) -> list[ClickEntry]:
        """Add signature-checked entries; penalise equivocating authors; persist and return the new ones."""
        for entry in entries:
            held = self.engine.store.get(entry.author, entry.seq)
            if held is not None and held != entry:
                self.stats.equivocations += 1
                self.node.scores.penalise(entry.author)
                log.info("search: %s equivocated on seq %d", entry.author, entry.seq)
        new = self.engine.accept_entries(entries)
        if new:
            now = time.time()
            with self.node.store.transaction() as db:
                db.executemany(
                    "INSERT OR IGNORE INTO grank_entries(author, seq, entry_id, frame, received_at) "
                    "VALUES(?, ?, ?, ?, ?)",
                    [(e.author, e.seq, e.entry_id, encode(wire.WireClick.of(e)), now) for e in new],
                )
        return new

    def _store_item(self, meta: ItemMetadata) -> bool:
        if not self.engine.accept_metadata(meta):
            return False
        with self.node.store.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO grank_items(item_id, owner, title, frame, received_at) VALUES(?, ?, ?, ?, ?)",
                (meta.item_id, meta.owner, meta.title, wire.encode_item(meta), time.time()),
            )
        return True

    # -- inbound -------------------------------------------------------------------------
    def _validate_item(self, author: str, msg: rpc_pb2.Message) -> Validation:
        verdict, meta = wire.check_item_frame(msg.data, self.engine.metadata.get)
        if meta is not None and not verdict.penalises:
            return accept()  # republished items are forwarded too, so that late joiners get them
        return verdict

    async def _on_item(self, msg: rpc_pb2.Message) -> None:
        verdict, meta = wire.check_item_frame(msg.data, self.engine.metadata.get)
        if verdict.passes:
            self._store_item(meta)

    async def _serve(self, stream) -> None:
        peer = stream.muxed_conn.peer_id.to_base58()
        with trio.move_on_after(self.node.settings.timeouts.stream_s):
            if self._serve_limit.allow(peer):
                outcome = await wire.serve_pull(stream, self._answer)
                self.stats.served += 1
                log.debug("search: pull from %s: %s", peer, outcome)
        await stream.close()

    async def _answer(self, request: PullRequest) -> PullResponse:
        if not request.summaries:
            return self.engine.bootstrap(self._rng)
        return self.engine.answer(request, priority=self.reputation())

    # -- background tasks ----------------------------------------------------------------
    async def _pull_loop(self) -> None:
        while True:
            await trio.sleep(self.settings.pull_interval_s)
            peers = self.node.connected_peers()
            if not peers:
                continue
            peer = peers[int(self._rng.integers(len(peers)))]
            try:
                await self.pull_from(peer)
            except Exception as exc:  # noqa: BLE001 - a peer without the protocol, a timeout: next tick
                self.stats.pulls_failed += 1
                log.info("search: pull from %s failed: %s: %s", peer, type(exc).__name__, exc)

    async def _republish_loop(self) -> None:
        topic = wire.items_topic(self.node.settings.network)
        while True:
            await trio.sleep(self.settings.republish_interval_s)
            for meta in self.engine.own_items()[: self.settings.republish_max_items]:
                try:
                    await self.node.publish(topic, wire.encode_item(meta))
                except Exception as exc:  # noqa: BLE001 - no peers yet or budget exhausted: next round
                    log.debug("search: republish failed: %s", exc)
                    break

    # -- control -------------------------------------------------------------------------
    async def _cmd_search(self, args: dict) -> dict:
        query, k, vanilla = args.get("query"), args.get("k", 10), bool(args.get("vanilla", False))
        if not isinstance(query, str) or not tokenize(query):
            raise CommandError("search needs a 'query' with at least one alphanumeric term")
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= self.settings.max_k:
            raise CommandError(f"search 'k' must be an int in 1..{self.settings.max_k}")
        reputation = None if vanilla else self.reputation()
        fallback = None
        if not vanilla and reputation is None:
            fallback = "trust service not running: vanilla G-Rank"
        elif not vanilla and not any(v > 0 for v in reputation.values()):
            # The core weighs our own clicks like our most trusted peer: with nobody trusted, nothing counts.
            reputation, fallback = None, "no reputation yet (this node trusts nobody): vanilla G-Rank"
        results = self.engine.search(query, k, reputation=reputation)
        self._remember(tokenize(query), [r.item_id for r in results])
        rows = []
        for rank, result in enumerate(results, start=1):
            meta = self.engine.metadata.get(result.item_id)
            rows.append({"rank": rank, "item_id": result.item_id, "score": result.score,
                         "metadata_match": result.metadata_match,
                         "title": meta.title if meta else None, "owner": meta.owner if meta else None})
        return {"query": query, "terms": list(tokenize(query)), "k": k, "weighted": reputation is not None,
                "fallback": fallback, "reputation_peers": len(reputation or {}),
                "entries": len(self.engine.store), "results": rows}

    def _remember(self, terms: tuple[str, ...], items: list[str]) -> None:
        self._last_shown.pop(terms, None)
        self._last_shown[terms] = tuple(items[:MAX_SHOWN])
        while len(self._last_shown) > self.settings.max_k:
            del self._last_shown[next(iter(self._last_shown))]

    async def _cmd_click(self, args: dict) -> dict:
        query, item, shown = args.get("query"), args.get("item"), args.get("shown")
        if not isinstance(query, str) or not isinstance(item, str):
            raise CommandError("click needs 'query' and 'item' strings")
        if shown is not None and (not isinstance(shown, list) or not all(isinstance(s, str) for s in shown)):
            raise CommandError("click 'shown' must be a list of item ids")
        try:
            entry = self.click(query, item, tuple(shown) if shown is not None else None)
        except ValueError as exc:
            raise CommandError(f"cannot record click: {exc}") from exc
        return {"author": entry.author, "seq": entry.seq, "query": list(entry.query), "clicked": entry.clicked,
                "shown": len(entry.shown), "entry_id": entry.entry_id}

    async def _cmd_items_add(self, args: dict) -> dict:
        title, tags = args.get("title"), args.get("tags", [])
        if not isinstance(title, str) or not title.strip():
            raise CommandError("items.add needs a non-empty 'title'")
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise CommandError("items.add 'tags' must be a list of strings")
        try:
            meta = await self.add_item(title, tags)
        except ValueError as exc:
            raise CommandError(f"cannot add item: {exc}") from exc
        return {"item_id": meta.item_id, "owner": meta.owner, "title": meta.title, "tags": list(meta.tags)}

    async def _cmd_items_list(self, args: dict) -> dict:
        owner, limit = args.get("owner"), args.get("limit", self.settings.max_k)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= self.settings.max_k:
            raise CommandError(f"items.list 'limit' must be an int in 1..{self.settings.max_k}")
        where, params = ("WHERE owner=?", [owner]) if isinstance(owner, str) else ("", [])
        rows = self.node.store.query(f"SELECT frame FROM grank_items {where} ORDER BY item_id LIMIT ?", (*params, limit))
        items = [decode(bytes(f), expect=wire.WireItem) for (f,) in rows]
        return {"items": [{"item_id": i.item_id, "owner": i.owner, "title": i.title, "tags": list(i.tags)}
                          for i in items]}

    async def _cmd_stats(self, _args: dict) -> dict:
        store = self.engine.store
        return {"entries": len(store), "authors": len(store.authors()), "own_entries": store.next_seq(self.me),
                "items": len(self.engine.metadata), "own_items": len(self.engine.own_items()),
                **dataclasses.asdict(self.stats)}

    async def _cmd_pull(self, args: dict) -> dict:
        peer = args.get("peer")
        if peer is None:
            peers = self.node.connected_peers()
            if not peers:
                raise CommandError("no connected peer to pull from")
            target = peers[int(self._rng.integers(len(peers)))]
        else:
            try:
                target = ID.from_base58(str(peer))
            except Exception as exc:  # noqa: BLE001 - base58 errors come in several types
                raise CommandError(f"{peer!r} is not a peer id") from exc
        try:
            return await self.pull_from(target)
        except Exception as exc:  # noqa: BLE001 - dial, negotiation, decode errors
            self.stats.pulls_failed += 1
            raise CommandError(f"pull from {target} failed: {type(exc).__name__}: {exc}") from exc

    async def _cmd_import(self, args: dict) -> dict:
        """Import signed entries and items (hex frames); each is checked like a pulled one."""
        entries, items = args.get("entries", []), args.get("items", [])
        if not isinstance(entries, list) or not isinstance(items, list):
            raise CommandError("search.import needs 'entries' and/or 'items' lists of hex frames")
        try:
            clicks = [decode(bytes.fromhex(f), expect=wire.WireClick) for f in entries]
            metas = [decode(bytes.fromhex(f), expect=wire.WireItem).metadata() for f in items]
        except (ValueError, TypeError, DecodeError) as exc:
            raise CommandError(f"search.import: bad frame: {exc}") from exc
        good, bad = await anyio.to_thread.run_sync(wire.split_verified, clicks)
        new = self._ingest(good)
        good_items = [m for m in metas if wire.item_verifies(m)]
        stored = sum(self._store_item(m) for m in good_items)
        return {"entries_new": len(new), "entries_bad": bad, "items_stored": stored,
                "items_bad": len(metas) - len(good_items)}
