"""In-process PADER training over a data set: every user and seller role in one process.

Drives the same ``IterationPlan``s as ``recsys.soreg.SoRegModel`` so that encrypted and plaintext runs
can be compared step for step (benchmarks and tests). Each message is passed directly between roles;
``on_message`` lets a caller record them.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from crypto.paillier import SecretKey
from recsys.pader.common import Mapper, PaderSettings
from recsys.pader.seller import SellerRole
from recsys.pader.user import UserRole
from recsys.soreg import IterationPlan, SoRegModel


def user_id(i: int) -> bytes:
    """Wire id of user index ``i`` in simulations."""
    return b"user-%d" % i


class EncryptedSoReg:
    """Encrypted SoReg on a ``SoRegModel``'s data, initial vectors and plans (the model is not changed).

    ``combined=True`` (default) runs one exact SoReg iteration across all sellers of the sampled items
    (each seller reveals only its masked part; ridge and social terms go through the first seller);
    ``combined=False`` runs one full iteration per seller, as independent users would.
    """

    def __init__(self, model: SoRegModel, settings: PaderSettings, keys: Sequence[SecretKey], *,
                 mapper: Mapper = map, audit: bool = False, combined: bool = True,
                 on_message: Callable[[str, object], None] | None = None, insecure_test_keys: bool = False,
                 auto_flush: bool = True) -> None:
        self.model, self.settings, self.combined = model, settings.validate(), combined
        self.auto_flush = auto_flush
        owners = np.unique(model.item_owner)
        if len(keys) < len(owners):
            raise ValueError(f"{len(owners)} sellers need as many keys")
        self.sellers: list[SellerRole] = []
        self.owner_fp: dict[int, bytes] = {}
        for o, key in zip(owners, keys):
            items = np.flatnonzero(model.item_owner == o)
            seller = SellerRole(b"seller-%d" % o, key, items.tolist(), model.V[items], settings, mapper=mapper,
                                audit=audit)
            self.sellers.append(seller)
            self.owner_fp[int(o)] = key.public.fingerprint
        self.by_fp = {s.public.fingerprint: s for s in self.sellers}
        self.mapper, self.insecure = mapper, insecure_test_keys
        self.users: dict[int, UserRole] = {}
        self.user_pools: dict = {}
        """``r^n`` pools per seller key shared by the simulated users (one process)."""
        self.on_message = on_message or (lambda kind, msg: None)

    def user(self, i: int) -> UserRole:
        """The role of user ``i`` (created on first use with the model's initial ``u_i``)."""
        if i not in self.users:
            role = UserRole(user_id(i), self.model.U[i], self.settings, mapper=self.mapper,
                            insecure_test_keys=self.insecure, pools=self.user_pools)
            for seller in self.sellers:
                role.add_seller(seller.catalogue())
            self.users[i] = role
        return self.users[i]

    def refill(self, count: int, mapper: Mapper | None = None) -> None:
        """Offline phase: ``count`` more ``r^n`` for every seller and for the users' shared pools."""
        mapper = mapper or self.mapper
        for seller in self.sellers:
            seller.pool.refill(count, mapper=mapper)
            self.user(int(self.model.active_users[0])).sellers[seller.public.fingerprint].pool.refill(
                count, mapper=mapper)

    def _exchange(self, user: UserRole, seller: SellerRole, request) -> np.ndarray:
        send = self.on_message
        send("request", request)
        items = seller.on_request(request)
        send("items", items)
        errors = user.on_items(items)
        send("masked_errors", errors)
        product = seller.on_masked_errors(errors)
        send("product", product)
        gradient = user.on_product(product)
        send("masked_gradient", gradient)
        revealed = seller.on_masked_gradient(gradient)
        send("revealed", revealed)
        return user.on_revealed(revealed)

    def run_plan(self, plan: IterationPlan) -> np.ndarray:
        """One user iteration (all sellers of its sampled items); returns the user's new vector."""
        m = self.model
        user = self.user(plan.user)
        items = m.data.items[plan.rating_rows]
        r = m.z[plan.rating_rows]
        friends = m.data.trust[plan.trust_rows, 1].astype(np.int64)
        weights = m.data.trust[plan.trust_rows, 2]
        owners = m.item_owner[items]
        order = sorted(set(owners.tolist()))
        parts = []
        for n, o in enumerate(order):
            fp = self.owner_fp[o]
            first = n == 0 or not self.combined
            f_list = []
            if first:
                for f, w in zip(friends, weights):
                    user.add_friend_share(self.user(int(f)).friend_share(fp))
                    f_list.append((user_id(int(f)), float(w)))
            sel = owners == o
            request = user.start_training(fp, items[sel].tolist(), r[sel].tolist(), f_list, regularize=first,
                                          apply=not self.combined)
            parts.append(self._exchange(user, self.by_fp[fp], request))
        if self.combined:
            user.apply_gradient(np.sum(parts, axis=0))
        if self.auto_flush:
            for seller in self.sellers:
                seller.flush()
        return user.u

    def run_plans(self, plans: Sequence[IterationPlan]) -> None:
        """Run plans in order."""
        for plan in plans:
            self.run_plan(plan)

    def U(self) -> np.ndarray:
        """Current user vectors (the model's initial rows for users that never ran)."""
        U = self.model.U.copy()
        for i, role in self.users.items():
            U[i] = role.u
        return U

    def V(self) -> np.ndarray:
        """Current item vectors gathered from the sellers."""
        V = self.model.V.copy()
        for seller in self.sellers:
            V[seller.items] = seller.V
        return V

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Plaintext-side scores from the current vectors (evaluation only; the roles never do this)."""
        U, V = self.U(), self.V()
        z = np.sum(U[np.asarray(users, np.int64)] * V[np.asarray(items, np.int64)], axis=-1)
        return np.clip(z * self.model.std + self.model.mean, *self.model.score_range)

    def score(self, i: int, items: Sequence[int]) -> dict[int, float]:
        """Encrypted inference for user ``i``: ``{item: z-scored uᵀv_j}`` through the masked protocol."""
        user, out = self.user(i), {}
        by_owner: dict[int, list[int]] = {}
        for j in items:
            by_owner.setdefault(int(self.model.item_owner[j]), []).append(int(j))
        for o, js in by_owner.items():
            fp = self.owner_fp[o]
            seller = self.by_fp[fp]
            request = user.start_scoring(fp, js)
            items_msg = seller.on_request(request)
            revealed = seller.on_masked_errors(user.on_items(items_msg))
            out.update(user.on_revealed(revealed))
        return out
