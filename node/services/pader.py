"""PADER in the node: a seller serves sessions on ``/plexus/pader/1.0.0``; a user trains with the sellers.

Role by option ``--opt pader.role=seller|user|none`` (default ``none``: the service only answers
``pader.status`` and refuses sessions). Other options (``--opt pader.<field>=<value>``): see
:class:`PaderNodeSettings`.

* Seller: its Paillier key lives in ``<home>/paillier.key`` (0600, created on first start); it hosts item
  vectors (``pader.load`` of a dataset slice), publishes its signed catalogue on
  ``plexus/<network>/pader-catalogue`` and answers sessions. The user id of a session is built from the
  stream's authenticated remote peer id (``peer`` or ``peer/label`` for a hosted user, see
  ``protocols.pader``), never taken from the request. After each training session it decrypts the
  item-gradient sums that are ready (aggregated over ``n_agg`` users) and updates its vectors.
* User: its own ratings (``pader.rate``, SQLite), friends (this node's positive trust edges from the
  trust service, plus ``pader.friend``), or a hosted dataset slice (``pader.load``). ``pader.train`` runs
  epochs in the background (progress in ``pader.status``); ``recommend`` scores items through the same
  masked protocol. Friend shares go out as signed batches on ``plexus/<network>/pader-friends``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import anyio
import numpy as np
import trio
from libp2p.peer.id import ID

from crypto import keystore
from crypto.paillier import generate_keypair
from node.control import CommandError
from node.runtime import Node
from node.options import settings_from_options
from node.settings import NodeSettings
from node.services import pader_data as data
from node.services.pader_train import Trainer
from node.services.pader_user import UserSide
from protocols import pader as wire
from protocols.codec import DecodeError
from protocols.framing import FrameError
from protocols.validation import Validation, accept, ignore
from recsys.pader import ItemRequest, MaskedErrors, RevealedValues, SellerRole

log = logging.getLogger(__name__)

OPTION_PREFIX = "pader."
ROLES = ("seller", "user", "none")
KEY_FILE = "paillier.key"
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS pader_ratings (item INTEGER PRIMARY KEY, score REAL NOT NULL, rated_at REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS pader_friends (peer TEXT PRIMARY KEY, weight REAL NOT NULL)",
)
U_KEY = "pader.u"
"""Store key of the node's own user vector (JSON list)."""


@dataclass(frozen=True)
class PaderNodeSettings:
    """The PADER service's options; override with ``--opt pader.<field>=<value>``."""

    role: str = "none"
    """``seller``, ``user`` or ``none`` (idle: answers status only)."""
    key_bits: int = 2048
    """Seller key size (2048 or 3072; 1024 only with ``test_keys``)."""
    test_keys: bool = False
    """Allow 1024-bit keys (tests only, never a real run)."""
    catalogue_interval_s: float = 5.0
    """Seconds between re-publications of a seller's catalogue (late joiners learn it)."""
    session_timeout_s: float = 60.0
    """Bound on one whole session (stream open to last reply), both sides."""
    refill_interval_s: float = 0.5
    """Seconds between idle top-ups of the ``r^n`` pools."""
    refill_target: int = 512
    """``r^n`` values kept ready per key."""
    refill_chunk: int = 32
    """Values computed per top-up (bounds how long one top-up holds a worker thread)."""
    share_batch: int = 16
    """Iterations between two friend-share publications while training."""
    max_epochs: int = 100
    """Largest ``pader.train`` epoch count accepted."""
    max_recommend: int = 100
    """Largest ``k`` of ``recommend``."""
    max_friend_weight: float = 1.0
    """Trust weights are clipped to this as SoReg's ``s_f`` (fits the packing's value range)."""

    def validate(self) -> "PaderNodeSettings":
        """Raise ``ValueError`` naming the first bad field; return self."""
        if self.role not in ROLES:
            raise ValueError(f"pader.role must be one of {', '.join(ROLES)}, got {self.role!r}")
        if self.key_bits not in (2048, 3072) and not (self.test_keys and self.key_bits == 1024):
            raise ValueError("pader.key_bits must be 2048 or 3072 (1024 only with pader.test_keys=1)")
        for name in ("catalogue_interval_s", "session_timeout_s", "refill_interval_s", "max_friend_weight"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ValueError(f"pader.{name} must be > 0")
        for name in ("refill_target", "refill_chunk", "share_batch", "max_epochs", "max_recommend"):
            if getattr(self, name) < 1:
                raise ValueError(f"pader.{name} must be >= 1")
        return self

    @classmethod
    def from_options(cls, settings: NodeSettings) -> "PaderNodeSettings":
        """Defaults overridden by ``--opt pader.<field>=<value>``; ValueError on unknown or bad values."""
        return settings_from_options(cls, settings, OPTION_PREFIX)


class PaderService:
    """Seller and/or user side of PADER, by role."""

    name = "pader"

    def __init__(self, settings: PaderNodeSettings | None = None) -> None:
        self._given = settings
        self.settings = settings or PaderNodeSettings()
        self.node: Node | None = None
        self.pader = data.pader_settings()
        self.key = None
        self.seller: SellerRole | None = None
        self.seller_lock = anyio.Lock()
        self.seller_stats = {"sessions": 0, "refused": 0, "malformed": 0, "bytes_in": 0, "bytes_out": 0,
                             "updated_items": 0}
        self.loaded: dict = {}
        self.users: UserSide | None = None
        self.trainer: Trainer | None = None
        self._catalogue_seq = 0

    # -- start --------------------------------------------------------------------------------------
    async def start(self, node: Node) -> None:
        self.node = node
        self.settings = (self._given or PaderNodeSettings.from_options(node.settings)).validate()
        node.store.migrate("pader", 1, SCHEMA)
        self.users = UserSide(node, self.pader, insecure_test_keys=self.settings.test_keys,
                              timeout_s=self.settings.session_timeout_s)
        self.trainer = Trainer(self)
        for name, handler in (("pader.status", self._cmd_status), ("pader.rate", self._cmd_rate),
                              ("pader.ratings", self._cmd_ratings), ("pader.friend", self._cmd_friend),
                              ("pader.load", self._cmd_load), ("pader.train", self._cmd_train),
                              ("recommend", self._cmd_recommend), ("pader.key", self._cmd_key)):
            node.control.add(name, handler)
        node.serve_protocol(wire.PROTOCOL_ID, self._serve)
        if self.settings.role == "none":
            return
        net = node.settings.network
        await node.subscribe(wire.topic(net, wire.CATALOGUE_TOPIC), self._on_catalogue, self._validate_catalogue)
        await node.subscribe(wire.topic(net, wire.FRIENDS_TOPIC), self._on_shares, self._validate_shares)
        if self.settings.role == "seller":
            self.key = await anyio.to_thread.run_sync(self._load_key)
            node.spawn("pader.catalogue", self._catalogue_loop)
        else:
            self.trainer.load_own_user()
        node.spawn("pader.refill", self._refill_loop)

    def _load_key(self):
        path = Path(self.node.settings.home) / KEY_FILE
        if not self.settings.test_keys:
            return keystore.load_or_create(path, bits=self.settings.key_bits)
        if path.exists():
            return keystore.load(path, insecure_test_only=True)
        key = generate_keypair(self.settings.key_bits, insecure_test_only=True)
        keystore.save(path, key)
        return key

    # -- seller -------------------------------------------------------------------------------------
    def host_items(self, items: list[int], V: np.ndarray) -> None:
        """Serve these items (replacing any held ones) and publish the catalogue at once."""
        self.seller = SellerRole(self.node.peer_id.to_bytes(), self.key, items, V, self.pader)
        self.node.spawn("pader.catalogue.now", self._publish_catalogue)

    async def _publish_catalogue(self) -> None:
        if self.seller is None:
            return
        self._catalogue_seq = max(self._catalogue_seq + 1, int(time.time() * 1000))
        frame = wire.sign_catalogue(self.seller.catalogue(), self._catalogue_seq, self.node.key_pair.private_key)
        await self.node.publish(wire.topic(self.node.settings.network, wire.CATALOGUE_TOPIC), frame)

    async def _catalogue_loop(self) -> None:
        while True:
            try:
                await self._publish_catalogue()
            except Exception as exc:  # noqa: BLE001 - backpressure or no peers yet: try again next round
                log.info("catalogue publish failed: %s", exc)
            await trio.sleep(self.settings.catalogue_interval_s)

    def _seller_step(self, msg):
        seller = self.seller
        if isinstance(msg, ItemRequest):
            return seller.on_request(msg)
        if isinstance(msg, MaskedErrors):
            return seller.on_masked_errors(msg)
        reply = seller.on_masked_gradient(msg)
        self.seller_stats["updated_items"] += len(seller.flush())
        return reply

    async def _serve(self, stream) -> None:
        peer = stream.muxed_conn.peer_id.to_bytes()
        stats = self.seller_stats
        open_session = None
        try:
            with trio.move_on_after(self.settings.session_timeout_s):
                while True:
                    try:
                        msg, size = await wire.read_request(stream)
                    except FrameError:
                        break
                    except DecodeError as err:
                        stats["malformed"] += 1
                        stats["bytes_out"] += await wire.write_reply(stream, wire.error(wire.MALFORMED, err.reason))
                        continue
                    stats["bytes_in"] += size
                    if self.seller is None:
                        await wire.write_reply(stream, wire.error(wire.NOT_SERVING, "this node sells no items"))
                        break
                    try:
                        role_msg = wire.from_wire(msg, peer)
                        async with self.seller_lock:
                            reply = await anyio.to_thread.run_sync(self._seller_step, role_msg)
                    except ValueError as exc:
                        stats["refused"] += 1
                        stats["bytes_out"] += await wire.write_reply(
                            stream, wire.error(wire.REFUSED, f"{type(exc).__name__}: {exc}"))
                        continue
                    if isinstance(role_msg, ItemRequest):
                        open_session = (role_msg.session, role_msg.iteration)
                        stats["sessions"] += 1
                    stats["bytes_out"] += await wire.write_reply(stream, reply)
                    if isinstance(reply, RevealedValues):
                        open_session = None
                        break
        finally:
            if open_session is not None and self.seller is not None:
                async with self.seller_lock:
                    self.seller.abort(*open_session)
            await stream.close()

    # -- gossip -------------------------------------------------------------------------------------
    def _validate_catalogue(self, author: str, msg) -> Validation:
        verdict, cat, seq = wire.check_catalogue(msg.data)
        if cat is None or not verdict.passes:
            return verdict
        held = next((s for s in self.users.sellers.values() if s.peer.to_bytes() == cat.seller), None)
        return ignore("stale catalogue") if held is not None and held.seq >= seq else accept()

    async def _on_catalogue(self, msg) -> None:
        _, cat, seq = wire.check_catalogue(msg.data)
        if cat is not None and cat.seller != self.node.peer_id.to_bytes() and self.settings.role == "user":
            await anyio.to_thread.run_sync(self.users.learn_catalogue, cat, seq)

    def _validate_shares(self, author: str, msg) -> Validation:
        return wire.check_shares(msg.data)[0]

    async def _on_shares(self, msg) -> None:
        verdict, shares = wire.check_shares(msg.data)
        if verdict.passes and self.settings.role == "user":
            for share in shares:
                self.users.take_share(share)

    async def publish_shares(self) -> None:
        """Send the queued friend shares of this node's users (signed batches)."""
        out, self.users.outbox = self.users.outbox, []
        topic = wire.topic(self.node.settings.network, wire.FRIENDS_TOPIC)
        for start in range(0, len(out), wire.MAX_SHARES):
            frame = wire.sign_shares(out[start:start + wire.MAX_SHARES], self.node.key_pair.private_key)
            self.users.stats["bytes_sent"] += len(frame)
            await self.node.publish(topic, frame)

    async def _refill_loop(self) -> None:
        s = self.settings
        while True:
            await trio.sleep(s.refill_interval_s)
            if self.seller is not None and len(self.seller.pool) < s.refill_target:
                await anyio.to_thread.run_sync(self.seller.refill, s.refill_chunk)
            if self.users is not None and not self.trainer.busy:
                await self.users.refill(s.refill_target, s.refill_chunk)

    # -- own user's data ----------------------------------------------------------------------------
    def own_ratings(self) -> list[tuple[int, float]]:
        """This node's own ratings, by item id."""
        return [(int(r[0]), float(r[1])) for r in self.node.store.query("SELECT item, score FROM pader_ratings ORDER BY item")]

    def own_friends(self) -> list[tuple[str, float]]:
        """``(peer id, s_f)``: positive trust edges this node authored (trust service) and ``pader.friend``."""
        weights: dict[str, float] = {}
        try:
            self.node.service("trust")
            rows = self.node.store.query(
                "SELECT dst, SUM(weight * factor) FROM trust_edges WHERE src=? GROUP BY dst",
                (str(self.node.peer_id),))
            weights.update({str(r[0]): float(r[1]) for r in rows})
        except Exception:  # noqa: BLE001 - no trust service (or its table) on this node
            pass
        for peer, weight in self.node.store.query("SELECT peer, weight FROM pader_friends"):
            weights[str(peer)] = float(weight)
        cap = self.settings.max_friend_weight
        return sorted((p, min(w, cap)) for p, w in weights.items() if w > 0)

    def save_own_u(self, u: np.ndarray) -> None:
        """Persist the own user's vector."""
        self.node.store.put(U_KEY, json.dumps([float(x) for x in u]).encode())

    def stored_own_u(self) -> np.ndarray | None:
        """The own user's persisted vector, if any."""
        raw = self.node.store.get(U_KEY)
        return None if raw is None else np.array(json.loads(raw), np.float64)

    # -- control commands ---------------------------------------------------------------------------
    def _need(self, role: str) -> None:
        if self.settings.role != role:
            raise CommandError(f"this node's PADER role is {self.settings.role!r}; start it with "
                               f"--opt pader.role={role}")

    async def _cmd_status(self, _args: dict) -> dict:
        out = {"role": self.settings.role, "key_bits": self.settings.key_bits, "loaded": self.loaded}
        if self.seller is not None:
            out["seller"] = {"key_fp": self.seller.public.fingerprint.hex(), "items": len(self.seller.items),
                             "pending_items": len(self.seller.pending_items()), "pool": len(self.seller.pool),
                             **self.seller_stats, **{f"role_{k}": v for k, v in self.seller.stats.items()}}
            out["bytes_sent"], out["bytes_received"] = self.seller_stats["bytes_out"], self.seller_stats["bytes_in"]
        if self.settings.role == "user":
            out.update(self.trainer.status())
        return out

    async def _cmd_key(self, _args: dict) -> dict:
        if self.key is None:
            raise CommandError("this node holds no seller key")
        return {"key_fp": self.key.public.fingerprint.hex(), "bits": self.key.public.bits}

    async def _cmd_rate(self, args: dict) -> dict:
        try:
            item, score = int(args["item"]), float(args["score"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CommandError("pader.rate needs an integer item and a numeric score") from exc
        if not (0 <= item <= wire.MAX_ITEM_ID and math.isfinite(score)):
            raise CommandError("item must be a non-negative integer and score a finite number")
        with self.node.store.transaction() as db:
            db.execute("INSERT INTO pader_ratings(item, score, rated_at) VALUES(?, ?, ?) ON CONFLICT(item) "
                       "DO UPDATE SET score=excluded.score, rated_at=excluded.rated_at", (item, score, time.time()))
        if self.settings.role == "user":
            self.trainer.load_own_user()
        return {"item": item, "score": score, "ratings": len(self.own_ratings())}

    async def _cmd_ratings(self, _args: dict) -> dict:
        return {"ratings": [{"item": i, "score": s} for i, s in self.own_ratings()]}

    async def _cmd_friend(self, args: dict) -> dict:
        peer, weight = str(args.get("peer", "")), args.get("weight", 1.0)
        try:
            ID.from_base58(peer)
            weight = float(weight)
        except Exception as exc:  # noqa: BLE001 - base58 errors come in several types
            raise CommandError(f"{peer!r} is not a peer id or weight {weight!r} is not a number") from exc
        with self.node.store.transaction() as db:
            db.execute("INSERT INTO pader_friends(peer, weight) VALUES(?, ?) ON CONFLICT(peer) "
                       "DO UPDATE SET weight=excluded.weight", (peer, weight))
        return {"peer": peer, "weight": weight}

    async def _cmd_load(self, args: dict) -> dict:
        try:
            spec = data.SliceSpec.from_args(args)
        except (TypeError, ValueError) as exc:
            raise CommandError(f"pader.load: {exc}") from exc
        prepared = await anyio.to_thread.run_sync(data.prepare, spec)
        if self.settings.role == "seller":
            index = int(args.get("seller_index", 0))
            if not 0 <= index < spec.n_sellers:
                raise CommandError("seller_index must be in 0..n_sellers-1")
            items = np.flatnonzero(prepared.model.item_owner == index)
            self.host_items(items.tolist(), prepared.model.V[items])
            self.loaded = {"dataset": prepared.dataset_used, "note": prepared.note, "items": len(items),
                           "seller_index": index}
        elif self.settings.role == "user":
            hosts = [str(h) for h in args.get("hosts") or [str(self.node.peer_id)]]
            index = int(args.get("host_index", hosts.index(str(self.node.peer_id)) if str(self.node.peer_id) in hosts else 0))
            if not 0 <= index < len(hosts):
                raise CommandError("host_index must index hosts")
            count = self.trainer.host_slice(prepared, hosts, index)
            self.loaded = {"dataset": prepared.dataset_used, "note": prepared.note, "users": count,
                           "host_index": index, "hosts": len(hosts)}
        else:
            self._need("user")
        return self.loaded

    async def _cmd_train(self, args: dict) -> dict:
        self._need("user")
        try:
            epochs = int(args.get("epochs", 1))
        except (TypeError, ValueError) as exc:
            raise CommandError("epochs must be an integer") from exc
        if not 1 <= epochs <= self.settings.max_epochs:
            raise CommandError(f"epochs must be in 1..{self.settings.max_epochs}")
        if self.trainer.busy:
            raise CommandError("training is already running (see pader status)")
        if not self.users.sellers:
            raise CommandError("no seller catalogue known yet: wait for sellers to publish")
        self.trainer.busy = True
        self.node.spawn("pader.train", self.trainer.train, epochs)
        return {"started": True, "epochs": epochs}

    async def _cmd_recommend(self, args: dict) -> dict:
        self._need("user")
        try:
            k = int(args.get("k", 10))
        except (TypeError, ValueError) as exc:
            raise CommandError("k must be an integer") from exc
        if not 1 <= k <= self.settings.max_recommend:
            raise CommandError(f"k must be in 1..{self.settings.max_recommend}")
        return await self.trainer.recommend(k, args.get("user"))
