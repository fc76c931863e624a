"""Training and inference loops of a PADER user node: its own user, or a hosted dataset slice.

Hosted slice: the node holds users ``i`` with ``i % len(hosts) == host_index``; epochs follow the same
plans as ``SoRegModel.plan_epoch`` (one generator over the run, see ``pader_data``), keeping this node's
plans in order. A friend ``f`` is user ``hosts[f % len(hosts)] + b"/" + str(f)``. After each epoch the
node scores its users' held-out ratings through masked inference and records the RMSE.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from node.services.pader_data import Prepared
from node.services.pader_user import HostedUser
from protocols import pader as wire

log = logging.getLogger(__name__)

OWN = b""
"""Label of the node's own user."""
MIN_STD = 1e-6
"""Rating spread below which the own user's ratings are only centred, not scaled."""
SEED_BYTES = 8
"""Bytes of the peer id that seed the own user's initial vector."""


def _clip(z: np.ndarray, mean: float, std: float, lo: float, hi: float) -> np.ndarray:
    return np.clip(np.asarray(z) * std + mean, lo, hi)


class Trainer:
    """Holds the users of a user node and runs ``pader.train`` / ``recommend`` for them."""

    def __init__(self, service) -> None:
        self.service = service
        self.prepared: Prepared | None = None
        self.hosts: list[bytes] = []
        self.rng: np.random.Generator | None = None
        self.busy = False
        self.epoch = 0
        self.target = 0
        self.iterations = 0
        self.skipped = 0
        self.curve: list[dict] = []
        self.last_error = ""
        self.own_scale = (0.0, 1.0, 0.0, 5.0)
        """(mean, std, min, max) of the own user's ratings."""

    @property
    def users(self):
        return self.service.users

    # -- who is held --------------------------------------------------------------------------------
    def load_own_user(self) -> HostedUser | None:
        """(Re)load the node's own user from its stored ratings (none without ratings)."""
        ratings = self.service.own_ratings()
        if not ratings or self.prepared is not None:
            return None
        items = np.array([i for i, _ in ratings], np.int64)
        scores = np.array([s for _, s in ratings], np.float64)
        mean, std = float(scores.mean()), float(scores.std())
        std = std if std > MIN_STD else 1.0
        self.own_scale = (mean, std, float(min(scores.min(), mean)), float(max(scores.max(), mean)))
        soreg = self.service.pader.soreg
        u = self.service.stored_own_u()
        if u is None or u.shape != (soreg.dim,):
            seed = int.from_bytes(self.service.node.peer_id.to_bytes()[-SEED_BYTES:], "big")
            u = soreg.init_scale * np.random.default_rng(seed).standard_normal(soreg.dim)
        held = self.users.users.get(OWN)
        if held is not None:
            u = held.role.u
        user = self.users.add_user(OWN, u, items, (scores - mean) / std)
        return user

    def host_slice(self, prepared: Prepared, hosts: list[str], index: int) -> int:
        """Hold this node's users of a prepared slice; returns how many."""
        self.prepared, self.hosts = prepared, [wire.peer_bytes(h) for h in hosts]
        self.rng = prepared.order_rng()
        self.users.users.clear()
        m = prepared.model
        test = prepared.test
        for i in m.active_users.tolist():
            if i % len(hosts) != index:
                continue
            rows = m._rating_rows[i]
            user = self.users.add_user(str(i).encode(), m.U[i], m.data.items[rows], m.z[rows])
            sel = test.users == i
            user.test_items, user.test_scores = test.items[sel], test.scores[sel]
        self.curve, self.epoch, self.iterations = [], 0, 0
        return len(self.users.users)

    def friend_id(self, f: int) -> bytes:
        """User id of hosted user ``f`` (on whichever host holds it)."""
        return wire.user_id(self.hosts[f % len(self.hosts)], str(f).encode())

    # -- training -----------------------------------------------------------------------------------
    async def train(self, epochs: int) -> None:
        """Run ``epochs`` epochs (the caller set ``busy``); errors of single iterations are counted."""
        self.busy, self.target = True, self.epoch + epochs
        try:
            for user in self.users.users.values():
                self.users.make_shares(user)
            await self.service.publish_shares()
            for _ in range(epochs):
                started = time.monotonic()
                if self.prepared is not None:
                    await self._hosted_epoch()
                else:
                    await self._own_epoch()
                await self.service.publish_shares()
                self.epoch += 1
                row = {"epoch": self.epoch, "seconds": round(time.monotonic() - started, 2),
                       "iterations": self.iterations}
                row.update(await self.evaluate())
                self.curve.append(row)
        except Exception as exc:  # noqa: BLE001 - reported in status; the node goes on
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("PADER training stopped")
        finally:
            self.busy = False

    async def _step(self, user: HostedUser, items, z, friends) -> None:
        try:
            await self.users.train_step(user, np.asarray(items, np.int64), np.asarray(z, np.float64), friends)
            self.iterations += 1
        except Exception as exc:  # noqa: BLE001 - one failed iteration (seller gone, refused) is skipped
            self.skipped += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.info("PADER iteration skipped: %s", self.last_error)

    async def _hosted_epoch(self) -> None:
        m = self.prepared.model
        plans = m.plan_epoch(self.rng)
        done = 0
        for plan in plans:
            user = self.users.users.get(str(plan.user).encode())
            if user is None:
                continue
            friends = [(self.friend_id(int(f)), float(w))
                       for f, w in zip(m.data.trust[plan.trust_rows, 1], m.data.trust[plan.trust_rows, 2])]
            await self._step(user, m.data.items[plan.rating_rows], m.z[plan.rating_rows], friends)
            done += 1
            if done % self.service.settings.share_batch == 0:
                await self.service.publish_shares()

    async def _own_epoch(self) -> None:
        user = self.users.users.get(OWN) or self.load_own_user()
        if user is None:
            raise LookupError("no ratings yet: rate items with `plexus rate ITEM SCORE`")
        soreg = self.service.pader.soreg
        rng = np.random.default_rng()
        pick = rng.permutation(len(user.items))[:soreg.items_per_iter]
        friends = self.service.own_friends()
        chosen = [friends[i] for i in rng.permutation(len(friends))[:soreg.friends_per_iter]]
        await self._step(user, user.items[pick], user.z[pick], [(wire.peer_bytes(p), w) for p, w in chosen])
        self.service.save_own_u(user.role.u)

    # -- inference ----------------------------------------------------------------------------------
    def _scale(self, user: HostedUser) -> tuple[float, float, float, float]:
        if user.label == OWN or self.prepared is None:
            return self.own_scale
        m = self.prepared.model
        return (m.mean, m.std, *m.score_range)

    async def evaluate(self) -> dict:
        """RMSE of the held users' held-out ratings, scored through masked inference."""
        sse, n = 0.0, 0
        for user in self.users.users.values():
            if not len(user.test_items):
                continue
            scores = await self.users.score(user, user.test_items.tolist())
            known = [k for k, j in enumerate(user.test_items) if int(j) in scores]
            if not known:
                continue
            z = np.array([scores[int(user.test_items[k])] for k in known])
            pred = _clip(z, *self._scale(user))
            sse += float(np.sum((pred - user.test_scores[known]) ** 2))
            n += len(known)
        return {"sse": round(sse, 6), "n": n, "rmse": round(float(np.sqrt(sse / n)), 4) if n else None}

    async def recommend(self, k: int, label: object = None) -> dict:
        """Top-``k`` items (not rated in training) by predicted score for one held user."""
        key = OWN if label is None and OWN in self.users.users else str(label).encode() if label is not None else None
        if key is None and self.users.users:
            key = next(iter(self.users.users))
        user = self.users.users.get(key) if key is not None else None
        if user is None:
            raise LookupError("no such user on this node (rate items first, or pader.load a slice)")
        rated = set(user.items.tolist())
        candidates = sorted(j for j in self.users.item_seller if j not in rated)
        scores = await self.users.score(user, candidates)
        pred = _clip(np.array(list(scores.values())), *self._scale(user)) if scores else np.zeros(0)
        rows = sorted(zip(scores.keys(), pred.tolist()), key=lambda t: (-t[1], t[0]))[:k]
        me = str(self.service.node.peer_id)
        return {"user": f"{me}/{user.label.decode()}" if user.label else me, "label": user.label.decode(), "candidates": len(candidates),
                "items": [{"item": int(j), "score": round(float(s), 4)} for j, s in rows]}

    def status(self) -> dict:
        """Progress for ``pader.status``."""
        last = self.curve[-1] if self.curve else {}
        return {"training": self.busy, "epoch": self.epoch, "target_epoch": self.target,
                "iterations": self.iterations, "skipped": self.skipped, "rmse": last.get("rmse"),
                "curve": self.curve, "users": len(self.users.users), "sellers": len(self.users.sellers),
                "last_error": self.last_error, **self.users.stats}
