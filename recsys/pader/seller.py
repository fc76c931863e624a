"""The seller role: holds its items' vectors and the Paillier secret key; answers users' sessions.

Sans-IO: every ``on_*`` takes a message and returns the reply; bad input raises a ``ValueError``
(``PaderError``, ``WrongKeyError``, ``PackingOverflowError``) and leaves the role's state unchanged.
Item gradients of users are summed homomorphically per block and decrypted by :meth:`SellerRole.flush`
only as aggregates of ``n_agg`` distinct users (see ``FLUSH_POLICIES``).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from crypto import packing
from crypto.fixedpoint import encode_all
from crypto.packing import Packed
from crypto.paillier import SecretKey, WrongKeyError
from crypto.randomness import RandomnessPool
from crypto.secure import masked_products
from recsys.pader.common import (Layouts, Mapper, PaderSettings, check_session, layouts_for, n2_bytes,
                                 parse_cts)
from recsys.pader.messages import (SCORE, TRAIN, EncryptedItems, ItemRequest, MaskedErrors, MaskedGradient,
                                   MaskedProduct, PaderError, ReplayError, RevealedValues, SellerCatalogue,
                                   ct_to_bytes, int_to_bytes)
from recsys.soreg import apply_item_gradients


@dataclass(frozen=True)
class AuditRecord:
    """One decryption the seller made (kept when ``audit=True``, for privacy checks)."""

    kind: str
    """``masked_errors``, ``masked_scores``, ``masked_gradient`` or ``item_gradients``."""
    values: tuple[int, ...]
    """The decrypted slot values."""
    users: tuple[frozenset, ...]
    """For ``item_gradients``: the users aggregated in each slot; else the one sender per value."""
    positions: tuple[int, ...] = ()
    """For ``item_gradients``: catalogue position of each slot."""


@dataclass
class _Session:
    user: bytes
    purpose: int
    positions: list[int]
    blocks: list[int]
    rows: list[list[int]]
    stage: str = "errors"


_KEYS: dict[tuple[int, int], SecretKey] = {}


def decrypt_task(p: int, q: int, cs: list[int]) -> list[int]:
    """Raw decryptions with the key ``(p, q)`` — a picklable task for a local process pool."""
    if (p, q) not in _KEYS:
        _KEYS.clear()
        _KEYS[(p, q)] = SecretKey(p, q, insecure_test_only=True)
    key = _KEYS[(p, q)]
    return [key.decrypt(c) for c in cs]


@dataclass
class _Pending:
    sums: dict[int, list[Packed]] = field(default_factory=dict)
    users: dict[int, set] = field(default_factory=dict)
    iterations: int = 0


class SellerRole:
    """Seller state machine. ``items`` are its item ids in catalogue order, ``V`` their vectors (k, d)."""

    def __init__(self, seller_id: bytes, secret: SecretKey, items: Sequence[int], V: np.ndarray,
                 settings: PaderSettings, *, mapper: Mapper = map, audit: bool = False) -> None:
        self.settings = settings.validate()
        self.seller_id, self.secret, self.public = seller_id, secret, secret.public
        self.items = [int(j) for j in items]
        self.position = {j: i for i, j in enumerate(self.items)}
        if len(self.position) != len(self.items):
            raise ValueError("duplicate item ids in the catalogue")
        self.V = np.array(V, dtype=np.float64)
        if self.V.shape != (len(self.items), settings.soreg.dim):
            raise ValueError(f"V must be ({len(self.items)}, {settings.soreg.dim})")
        self.layouts: Layouts = layouts_for(self.public, settings)
        self.pool = RandomnessPool(self.public, settings.randomness)
        self.mapper = mapper
        self.audit: list[AuditRecord] | None = [] if audit else None
        self._sessions: dict[tuple[bytes, int], _Session] = {}
        self._seen: OrderedDict[tuple[bytes, int], None] = OrderedDict()
        self._pending = _Pending()
        self.stats = {"bytes_in": 0, "bytes_out": 0, "ciphertexts_out": 0, "decryptions": 0, "flushes": 0}

    # -- public surface ---------------------------------------------------------------------------
    def catalogue(self) -> SellerCatalogue:
        """What the seller publishes: key, items, layouts."""
        return SellerCatalogue(self.seller_id, self.public.to_bytes(), self.public.fingerprint, tuple(self.items),
                               self.layouts.items.slot_bits, self.layouts.vector.slot_bits)

    def refill(self, count: int | None = None, *, budget_s: float | None = None) -> int:
        """Offline phase: precompute ``r^n`` values (through the role's mapper)."""
        return self.pool.refill(count, budget_s=budget_s, mapper=self.mapper)

    def on_request(self, msg: ItemRequest) -> EncryptedItems:
        """Step 1: encrypt the requested items' vectors (item-major blocks; per-item vectors for TRAIN)."""
        check_session(msg.session, msg.iteration)
        self._check_key(msg.key_fp)
        key = (msg.session, msg.iteration)
        if key in self._seen or key in self._sessions:
            raise ReplayError("session/iteration already used")
        if msg.purpose not in (TRAIN, SCORE):
            raise PaderError(f"unknown purpose {msg.purpose!r}")
        items = list(msg.items)
        if not items or len(items) > self.settings.max_items or len(set(items)) != len(items):
            raise PaderError("request needs 1..max_items distinct items")
        if any(j not in self.position for j in items):
            raise PaderError("request names items this seller does not hold")
        if not isinstance(msg.user, bytes) or not msg.user:
            raise PaderError("request needs a user id")
        s = self.settings.packing
        positions = [self.position[j] for j in items]
        rows = [encode_all(self.V[p], s.scale_bits, s.value_bits) for p in positions]
        lay = self.layouts
        slots = lay.items.slots
        blocks = sorted({p // slots for p in positions})
        size = n2_bytes(self.public)
        columns = []
        for b in blocks:
            cells = [[0] * slots for _ in range(lay.dim)]
            for p, row in zip(positions, rows):
                if p // slots == b:
                    for l in range(lay.dim):
                        cells[l][p % slots] = row[l]
            for l in range(lay.dim):
                columns.append(ct_to_bytes(packing.encrypt(self.public, self.pool.take, cells[l], lay.items,
                                                           s.scale_bits).c, size))
        vectors = []
        if msg.purpose == TRAIN:
            for row in rows:
                for chunk in lay.split_vector(row):
                    vectors.append(ct_to_bytes(packing.encrypt(self.public, self.pool.take, chunk, lay.vector,
                                                               s.scale_bits).c, size))
        while len(self._sessions) >= self.settings.max_open_sessions:
            self.abort(*next(iter(self._sessions)))
        self._sessions[key] = _Session(msg.user, msg.purpose, positions, blocks, rows)
        reply = EncryptedItems(msg.session, msg.iteration, self.public.fingerprint, tuple(positions), tuple(blocks),
                               tuple(columns), tuple(vectors))
        self._count_out(len(columns) + len(vectors), size)
        return reply

    def on_masked_errors(self, msg: MaskedErrors) -> MaskedProduct | RevealedValues:
        """Step 2: decrypt ``e + M`` per block, return ``[Σ (ê+m') v]`` (TRAIN) or the masked scores (SCORE)."""
        session = self._session(msg.session, msg.iteration, msg.key_fp, "errors")
        s, lay = self.settings.packing, self.layouts
        cts = parse_cts(self.public, msg.cts, len(session.blocks))
        limit = 1 << s.masked_error_bits
        values = self._decrypt_blocks(cts, limit)
        masked = [values[session.blocks.index(p // lay.items.slots)][p % lay.items.slots] for p in session.positions]
        self._log("masked_errors" if session.purpose == TRAIN else "masked_scores", masked, session.user)
        self.stats["bytes_in"] += len(cts) * n2_bytes(self.public)
        if session.purpose == SCORE:
            self._finish(msg.session, msg.iteration)
            return RevealedValues(msg.session, msg.iteration, tuple(int_to_bytes(v) for v in masked))
        totals = masked_products(masked, session.rows, s.scale_bits)
        bound = len(masked) * (1 << (s.masked_error_bits - s.scale_bits)) * (1 << s.x_bits)
        size = n2_bytes(self.public)
        cts_out = tuple(ct_to_bytes(packing.encrypt(self.public, self.pool.take, chunk, lay.vector,
                                                    2 * s.scale_bits, bound).c, size)
                        for chunk in lay.split_vector(totals))
        session.stage = "gradient"
        self._count_out(len(cts_out), size)
        return MaskedProduct(msg.session, msg.iteration, self.public.fingerprint, cts_out)

    def on_masked_gradient(self, msg: MaskedGradient) -> RevealedValues:
        """Steps 4–5: reveal the masked user gradient; add the item gradients to the pending sums."""
        session = self._session(msg.session, msg.iteration, msg.key_fp, "gradient")
        s, lay = self.settings.packing, self.layouts
        grad_cts = parse_cts(self.public, msg.gradient, lay.chunks)
        item_cts = parse_cts(self.public, msg.item_gradients, len(session.blocks) * lay.dim)
        contribution_bound = 1 << (s.error_bits + s.x_bits)
        wrapped = [packing.wrap(self.public, c, lay.items, lay.items.slots, 3 * s.scale_bits, contribution_bound, 2)
                   for c in item_cts]
        new_sums = {}
        for bi, b in enumerate(session.blocks):
            old = self._pending.sums.get(b)
            cur = wrapped[bi * lay.dim:(bi + 1) * lay.dim]
            new_sums[b] = cur if old is None else [packing.add(self.public, x, y) for x, y in zip(old, cur)]
        limit = 1 << (s.gradient_bits + s.mask_bits + 1)
        values = []
        for chunk, count in zip(self._decrypt_raw(grad_cts), [len(c) for c in lay.split_vector([0] * lay.dim)]):
            values.extend(packing.unpack(chunk, int(self.public.n), lay.vector, count))
        if any(abs(v) > limit for v in values):
            raise packing.PackingOverflowError("masked gradient out of range (malformed or oversized)")
        # all checks passed: commit
        self._log("masked_gradient", values, session.user)
        self._pending.sums.update(new_sums)
        for p in session.positions:
            self._pending.users.setdefault(p, set()).add(session.user)
        self._pending.iterations += 1
        self._finish(msg.session, msg.iteration)
        self.stats["bytes_in"] += (len(grad_cts) + len(item_cts)) * n2_bytes(self.public)
        return RevealedValues(msg.session, msg.iteration, tuple(int_to_bytes(v) for v in values))

    def abort(self, session: bytes, iteration: int) -> bool:
        """Abandon an open session (e.g. on a timeout in the protocol layer); True if it was open."""
        if (session, iteration) not in self._sessions:
            return False
        self._finish(session, iteration)
        return True

    def open_sessions(self) -> int:
        """Sessions waiting for the user's next message."""
        return len(self._sessions)

    def ready_blocks(self, force: bool = False) -> list[int]:
        """Blocks whose pending sums may be decrypted now under the flush policy."""
        n_agg, pend = self.settings.n_agg, self._pending
        slots = self.layouts.items.slots
        if self.settings.flush_policy == "per_owner":
            users = set().union(*pend.users.values()) if pend.users else set()
            ok = force or (pend.iterations >= n_agg and len(users) >= n_agg)
            return sorted(pend.sums) if ok else []
        ready = []
        for b in sorted(pend.sums):
            counts = [len(pend.users.get(p, ())) for p in range(b * slots, (b + 1) * slots)]
            if all(c == 0 or c >= n_agg for c in counts) and (force or any(counts)):
                ready.append(b)
        return ready

    def flush(self, force: bool = False) -> list[int]:
        """Decrypt the aggregated item gradients of ready blocks and apply them; return updated item ids.

        ``force`` ignores the wait for more users under ``per_owner`` only; ``per_item`` never decrypts a
        slot of fewer than ``n_agg`` users.
        """
        blocks = self.ready_blocks(force)
        if not blocks:
            return []
        s, lay = self.settings.packing, self.layouts
        slots = lay.items.slots
        flat = [p.c for b in blocks for p in self._pending.sums[b]]
        limit = (1 << (s.error_bits + s.x_bits)) * (1 << s.terms_bits)
        raw = self._decrypt_raw(flat)
        grad_sum, positions, users, values = {}, [], [], []
        for bi, b in enumerate(blocks):
            try:
                rows = [packing.unpack(m, int(self.public.n), lay.items, slots)
                        for m in raw[bi * lay.dim:(bi + 1) * lay.dim]]
                if any(abs(v) > limit for row in rows for v in row):
                    raise packing.PackingOverflowError("aggregated item gradient out of range")
            except packing.PackingOverflowError:
                self.stats["discarded_blocks"] = self.stats.get("discarded_blocks", 0) + 1
                continue  # a malformed contribution spoilt this block's sum: drop it, keep the others
            values.extend(rows)
            for slot in range(slots):
                p = b * slots + slot
                who = self._pending.users.get(p, set())
                if not who:
                    continue
                grad_sum[p] = [rows[l][slot] / float(1 << (3 * s.scale_bits)) for l in range(lay.dim)]
                positions.append(p)
                users.append(frozenset(who))
        if self.audit is not None:
            self.audit.append(AuditRecord("item_gradients", tuple(v for row in values for v in row),
                                          tuple(users), tuple(positions)))
        idx = np.array(positions, dtype=np.int64)
        if len(idx):
            G = np.array([grad_sum[p] for p in positions])
            self.V[idx] = apply_item_gradients(self.V[idx], G, self.settings.soreg.lr, self.settings.soreg.lambda_v)
        for b in blocks:
            del self._pending.sums[b]
            for p in range(b * slots, (b + 1) * slots):
                self._pending.users.pop(p, None)
        if not self._pending.sums:
            self._pending.iterations = 0
        self.stats["flushes"] += 1
        return [self.items[p] for p in positions]

    def pending_items(self) -> list[int]:
        """Items with item gradients waiting for more users."""
        return [self.items[p] for p in sorted(self._pending.users)]

    # -- internals --------------------------------------------------------------------------------
    def _check_key(self, key_fp: bytes) -> None:
        if key_fp != self.public.fingerprint:
            raise WrongKeyError("message is under another seller key (fingerprint mismatch)")

    def _session(self, session: bytes, iteration: int, key_fp: bytes, stage: str) -> _Session:
        check_session(session, iteration)
        self._check_key(key_fp)
        key = (session, iteration)
        if key in self._seen:
            raise ReplayError("session/iteration already finished (replay)")
        state = self._sessions.get(key)
        if state is None:
            raise PaderError("unknown session/iteration")
        if state.stage != stage:
            raise ReplayError(f"message out of order: session is at {state.stage!r}, not {stage!r}")
        return state

    def _finish(self, session: bytes, iteration: int) -> None:
        self._sessions.pop((session, iteration), None)
        self._seen[(session, iteration)] = None
        while len(self._seen) > self.settings.replay_window:
            self._seen.popitem(last=False)

    def _decrypt_raw(self, cts: list[int]) -> list[int]:
        self.stats["decryptions"] += len(cts)
        p, q = self.secret.primes
        parts = max(1, min(self.settings.split, len(cts)))
        step = -(-len(cts) // parts)
        chunks = [cts[i:i + step] for i in range(0, len(cts), step)]
        out = []
        for res in self.mapper(decrypt_task, [p] * len(chunks), [q] * len(chunks), chunks):
            out.extend(res)
        return out

    def _decrypt_blocks(self, cts: list[int], limit: int) -> list[list[int]]:
        for c in cts:
            self.public.check(c)
        lay = self.layouts.items
        values = [packing.unpack(m, int(self.public.n), lay, lay.slots) for m in self._decrypt_raw(cts)]
        if any(abs(v) > limit for row in values for v in row):
            raise packing.PackingOverflowError("decrypted slot out of range (malformed or oversized value)")
        return values

    def _log(self, kind: str, values: list[int], user: bytes) -> None:
        if self.audit is not None:
            self.audit.append(AuditRecord(kind, tuple(values), tuple(frozenset([user]) for _ in values)))

    def _count_out(self, n: int, size: int) -> None:
        self.stats["ciphertexts_out"] += n
        self.stats["bytes_out"] += n * size
