"""The user side of PADER in a node: the users it holds, the sellers it knows, sessions over streams.

A node holds its own user (label ``b""``, id = its peer id) and, on the devnet, the users of a dataset
slice (label ``b"<index>"``, id = ``peer id + b"/<index>"``), each in its own ``UserRole`` with its own
ratings; only the ``r^n`` pools (public randomness per seller key) are shared. Heavy role calls run in
worker threads; one lock per user keeps a user's sessions (training or scoring) one at a time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Sequence

import anyio
import numpy as np
from libp2p.peer.id import ID

from crypto.randomness import RandomnessPool
from protocols import pader as wire
from recsys.pader import SCORE, FriendShare, PaderSettings, SellerCatalogue, UserRole

log = logging.getLogger(__name__)

SCORE_CHUNK = 256
"""Items per scoring session (keeps every frame far under the wire caps)."""


@dataclass
class HostedUser:
    """One user held by this node."""

    label: bytes
    """``b""`` for the node's own user, else the hosted user's label."""
    role: UserRole
    """The sans-IO role (vector, seller links, friends' shares)."""
    items: np.ndarray
    """Rated item ids (training)."""
    z: np.ndarray
    """Z-scored training ratings, aligned with ``items``."""
    friends: list[tuple[bytes, float]] = field(default_factory=list)
    """``(friend user id, s_f)`` pairs."""
    test_items: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    """Held-out item ids (hosted users)."""
    test_scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """Held-out scores on the rating scale."""
    lock: anyio.Lock = field(default_factory=anyio.Lock)
    """One session at a time per user."""


@dataclass
class Seller:
    """A seller this node has heard of."""

    peer: ID
    """Its peer id (the catalogue's signer)."""
    catalogue: SellerCatalogue
    """Its latest catalogue."""
    seq: int
    """Sequence number of that catalogue."""


class UserSide:
    """Sellers, friend shares and the sessions of the users this node holds."""

    def __init__(self, node, settings: PaderSettings, *, insecure_test_keys: bool, timeout_s: float) -> None:
        self.node, self.settings = node, settings
        self.insecure, self.timeout_s = insecure_test_keys, timeout_s
        self.users: dict[bytes, HostedUser] = {}
        self.sellers: dict[bytes, Seller] = {}
        """By key fingerprint."""
        self.item_seller: dict[int, bytes] = {}
        """Item id → key fingerprint of the seller listing it (latest catalogue wins)."""
        self.shares: dict[tuple[bytes, bytes], FriendShare] = {}
        """(owner, key_fp) → latest friend share known (own users' and received ones)."""
        self.outbox: list[FriendShare] = []
        """Own users' shares not yet published."""
        self.pools: dict[bytes, RandomnessPool] = {}
        self.stats = {"bytes_sent": 0, "bytes_received": 0, "sessions": 0, "refused": 0, "failed_sessions": 0}

    # -- sellers, users, shares ---------------------------------------------------------------------
    def learn_catalogue(self, cat: SellerCatalogue, seq: int) -> bool:
        """Take a seller's (newer) catalogue; every held user learns the key. False if stale or unusable."""
        held = next((s for s in self.sellers.values() if s.peer.to_bytes() == cat.seller), None)
        if held is not None and held.seq >= seq:
            return False
        if held is not None and held.catalogue == cat:
            held.seq = seq  # a re-publication of what we hold
            return False
        try:
            for user in list(self.users.values()):
                user.role.add_seller(cat)
            probe = UserRole(b"probe", np.zeros(self.settings.soreg.dim), self.settings,
                             insecure_test_keys=self.insecure, pools=self.pools)
            probe.add_seller(cat)
        except ValueError as exc:
            log.info("catalogue of %s refused: %s", ID(cat.seller), exc)
            return False
        if held is not None and held.catalogue.key_fp != cat.key_fp:
            self.sellers.pop(held.catalogue.key_fp, None)
        self.sellers[cat.key_fp] = Seller(ID(cat.seller), cat, seq)
        for j in cat.items:
            self.item_seller[int(j)] = cat.key_fp
        return True

    def add_user(self, label: bytes, u: np.ndarray, items: Sequence[int], z: Sequence[float]) -> HostedUser:
        """Hold a user (replacing one with the same label)."""
        uid = wire.user_id(self.node.peer_id.to_bytes(), label)
        role = UserRole(uid, u, self.settings, insecure_test_keys=self.insecure, pools=self.pools)
        for seller in self.sellers.values():
            role.add_seller(seller.catalogue)
        user = HostedUser(label, role, np.asarray(items, np.int64), np.asarray(z, np.float64))
        self.users[label] = user
        return user

    def take_share(self, share: FriendShare) -> None:
        """Keep a received share if newer than the one held."""
        key = (share.owner, share.key_fp)
        old = self.shares.get(key)
        if old is None or share.version >= old.version:
            self.shares[key] = share

    def make_shares(self, user: HostedUser) -> list[FriendShare]:
        """``Enc(−β u)`` of a user under every known seller key (kept locally and queued for gossip)."""
        out = []
        for fp in sorted(user.role.sellers):
            share = user.role.friend_share(fp)
            self.shares[(share.owner, fp)] = share
            out.append(share)
        self.outbox.extend(out)
        return out

    # -- sessions -----------------------------------------------------------------------------------
    async def _run(self, fn, *args):
        return await anyio.to_thread.run_sync(fn, *args)

    async def session(self, user: HostedUser, request) -> object:
        """One session with the seller of ``request.key_fp`` over a stream: the role's final result."""
        seller = self.sellers[request.key_fp]
        role = user.role
        stream = await self.node.open_stream(seller.peer, wire.PROTOCOL_ID)
        client = wire.SessionClient(stream, user.label)
        self.stats["sessions"] += 1
        try:
            with anyio.fail_after(self.timeout_s):
                items = await client.exchange(request)
                reply = await client.exchange(await self._run(role.on_items, items))
                if request.purpose == SCORE:
                    return await self._run(role.on_revealed, reply)
                revealed = await client.exchange(await self._run(role.on_product, reply))
                return await self._run(role.on_revealed, revealed)
        except wire.SessionRefused:
            self.stats["refused"] += 1
            raise
        except Exception:
            self.stats["failed_sessions"] += 1
            raise
        finally:
            self.stats["bytes_sent"] += client.bytes_out
            self.stats["bytes_received"] += client.bytes_in
            try:
                await stream.close()
            except Exception:  # noqa: BLE001 - the stream may already be reset
                pass

    async def train_step(self, user: HostedUser, items: np.ndarray, z: np.ndarray,
                         friends: Sequence[tuple[bytes, float]]) -> np.ndarray:
        """One SoReg iteration over all sellers of ``items`` (friends' term via the first seller)."""
        async with user.lock:
            role = user.role
            fps = [self.item_seller.get(int(j)) for j in items]
            order = sorted({fp for fp in fps if fp is not None})
            if not order:
                raise LookupError("no known seller holds any of these items")
            parts = []
            for n, fp in enumerate(order):
                f_list = []
                if n == 0:
                    for fid, weight in friends:
                        share = self.shares.get((fid, fp))
                        if share is not None:
                            try:
                                role.add_friend_share(share)
                                f_list.append((fid, float(weight)))
                            except ValueError:
                                pass
                sel = np.array([f == fp for f in fps])
                request = role.start_training(fp, items[sel].tolist(), z[sel].tolist(), f_list,
                                              regularize=n == 0, apply=False)
                parts.append(await self.session(user, request))
            gradient = np.sum(parts, axis=0)
            role.apply_gradient(gradient)
            self.make_shares(user)
            return gradient

    async def score(self, user: HostedUser, items: Sequence[int]) -> dict[int, float]:
        """Masked inference: ``{item: z-scored uᵀv}`` for the items some known seller holds."""
        by_fp: dict[bytes, list[int]] = {}
        for j in items:
            fp = self.item_seller.get(int(j))
            if fp is not None:
                by_fp.setdefault(fp, []).append(int(j))
        out: dict[int, float] = {}
        async with user.lock:
            for fp in sorted(by_fp):
                js = by_fp[fp]
                for start in range(0, len(js), SCORE_CHUNK):
                    request = user.role.start_scoring(fp, js[start:start + SCORE_CHUNK])
                    out.update(await self.session(user, request))
        return out

    async def refill(self, target: int, chunk: int) -> int:
        """Top up the ``r^n`` pool of every seller key towards ``target`` (one chunk per key)."""
        added = 0
        for fp, pool in list(self.pools.items()):
            if len(pool) < target:
                added += await anyio.to_thread.run_sync(lambda p=pool: p.refill(min(chunk, target - len(p))))
        return added
