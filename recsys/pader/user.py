"""The user role: holds its ratings, friends' shares and its vector ``u`` in plaintext; no secret key.

Sans-IO state machine, one session at a time per seller. A training iteration with seller S:
``start_training`` → (S) → ``on_items`` → (S) → ``on_product`` → (S) → ``on_revealed`` (updates ``u``).
Scoring: ``start_scoring`` → (S) → ``on_items`` → (S) → ``on_revealed`` (returns the scores).
A refused message raises ``ValueError`` and leaves the session as it was.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from crypto import packing
from crypto.fixedpoint import encode, encode_all
from crypto.packing import Packed
from crypto.paillier import PublicKey, WrongKeyError
from crypto.randomness import RandomnessPool
from crypto.secure import ErrorMask, draw_masks, error_masks, mask, remove_product_mask, unmask
from recsys.pader.common import Layouts, Mapper, PaderSettings, layouts_for, n2_bytes, parse_cts
from recsys.pader.messages import (SCORE, SESSION_BYTES, TRAIN, EncryptedItems, FriendShare, ItemRequest,
                                   MaskedErrors, MaskedGradient, MaskedProduct, PaderError, ReplayError,
                                   RevealedValues, SellerCatalogue, bytes_to_int, ct_to_bytes)


@dataclass
class SellerLink:
    """What a user knows of one seller: key, catalogue, layouts, randomness pool, friends' shares."""

    catalogue: SellerCatalogue
    """The seller's published catalogue."""
    public: PublicKey
    """Its Paillier public key."""
    layouts: Layouts
    """Slot layouts for this key."""
    pool: RandomnessPool
    """``r^n`` for this key."""
    friend_shares: dict[bytes, FriendShare] = field(default_factory=dict)
    """Latest ``Enc(−β u_f)`` per friend under this key."""


@dataclass
class _Iteration:
    seller: bytes
    session: bytes
    iteration: int
    purpose: int
    items: list[int]
    ratings: list[float]
    friends: list[tuple[bytes, float]]
    regularize: bool = True
    apply: bool = True
    stage: str = "items"
    positions: list[int] = field(default_factory=list)
    blocks: list[int] = field(default_factory=list)
    errors: list[Packed] = field(default_factory=list)
    vectors: list[list[Packed]] = field(default_factory=list)
    masks: list[ErrorMask] = field(default_factory=list)
    score_masks: list[int] = field(default_factory=list)
    gradient_masks: list[int] = field(default_factory=list)
    u_int: list[int] = field(default_factory=list)


class UserRole:
    """User state machine for PADER. ``u`` is the user's latent vector (d,)."""

    def __init__(self, user_id: bytes, u: np.ndarray, settings: PaderSettings, *, mapper: Mapper = map,
                 insecure_test_keys: bool = False, pools: dict[bytes, RandomnessPool] | None = None) -> None:
        """``pools``: ``r^n`` pools per seller key to draw from (shared by the users of one simulation
        process); by default each user makes its own."""
        self.settings = settings.validate()
        self.user_id = user_id
        self.u = np.array(u, dtype=np.float64)
        if self.u.shape != (settings.soreg.dim,):
            raise ValueError(f"u must have shape ({settings.soreg.dim},)")
        self.mapper = mapper
        self.sellers: dict[bytes, SellerLink] = {}
        self.version = 0
        self._insecure = insecure_test_keys
        self._pools = {} if pools is None else pools
        self._current: dict[bytes, _Iteration] = {}
        self._counter = 0
        self.stats = {"bytes_out": 0, "ciphertexts_out": 0}

    # -- sellers and friends ----------------------------------------------------------------------
    def add_seller(self, catalogue: SellerCatalogue) -> bytes:
        """Learn a seller's key and catalogue; returns its key fingerprint (the handle used below)."""
        public = PublicKey.from_bytes(catalogue.public_key, insecure_test_only=self._insecure)
        if public.fingerprint != catalogue.key_fp:
            raise WrongKeyError("catalogue fingerprint does not match its key")
        layouts = layouts_for(public, self.settings)
        if (layouts.items.slot_bits, layouts.vector.slot_bits) != (catalogue.item_slot_bits, catalogue.vector_slot_bits):
            raise PaderError("seller uses other slot layouts than our settings derive")
        old = self.sellers.get(public.fingerprint)
        pool = self._pools.get(public.fingerprint)
        if pool is None:
            pool = self._pools[public.fingerprint] = RandomnessPool(public, self.settings.randomness)
        self.sellers[public.fingerprint] = SellerLink(catalogue, public, layouts, pool,
                                                      old.friend_shares if old else {})
        return public.fingerprint

    def refill(self, key_fp: bytes, count: int | None = None, *, budget_s: float | None = None) -> int:
        """Offline phase: precompute ``r^n`` for one seller's key."""
        return self._link(key_fp).pool.refill(count, budget_s=budget_s, mapper=self.mapper)

    def friend_share(self, key_fp: bytes) -> FriendShare:
        """``Enc(−β u)`` under one seller's key, for this user's friends (publish after each update)."""
        link = self._link(key_fp)
        s = self.settings.packing
        values = encode_all(-self.settings.soreg.beta * self.u, s.scale_bits, s.value_bits)
        size = n2_bytes(link.public)
        cts = tuple(ct_to_bytes(packing.encrypt(link.public, link.pool.take, chunk, link.layouts.vector,
                                                s.scale_bits).c, size) for chunk in link.layouts.split_vector(values))
        return FriendShare(self.user_id, key_fp, self.version, cts)

    def add_friend_share(self, share: FriendShare) -> None:
        """Keep a friend's latest share (refuses unknown keys, bad sizes and stale versions)."""
        link = self._link(share.key_fp)
        parse_cts(link.public, share.cts, link.layouts.chunks)
        old = link.friend_shares.get(share.owner)
        if old is not None and share.version < old.version:
            raise ReplayError("friend share older than the one held")
        link.friend_shares[share.owner] = share

    # -- training ---------------------------------------------------------------------------------
    def start_training(self, key_fp: bytes, items: Sequence[int], ratings: Sequence[float],
                       friends: Sequence[tuple[bytes, float]] = (), *, regularize: bool = True,
                       apply: bool = True) -> ItemRequest:
        """Begin one iteration with a seller: ``ratings`` are z-scored, ``friends`` are (id, s_f).

        ``regularize=False`` leaves out ``λ_u u`` and the social term, ``apply=False`` returns the
        gradient without updating ``u``: together they split one iteration over several sellers exactly
        (see :meth:`apply_gradient`).
        """
        link = self._link(key_fp)
        if len(items) != len(ratings):
            raise ValueError("one rating per item expected")
        encode_all(ratings, 2 * self.settings.packing.scale_bits, self.settings.packing.value_bits)  # range check
        missing = [f for f, _ in friends if f not in link.friend_shares]
        if missing:
            raise PaderError(f"no share under this seller's key from {len(missing)} friend(s)")
        it = self._start(link, TRAIN, items, ratings, friends)
        self._current[link.public.fingerprint].regularize = regularize
        self._current[link.public.fingerprint].apply = apply
        return it

    def start_scoring(self, key_fp: bytes, items: Sequence[int]) -> ItemRequest:
        """Begin an inference session: masked predicted scores ``uᵀv_j`` for ``items``."""
        return self._start(self._link(key_fp), SCORE, items, [0.0] * len(items), [])

    def on_items(self, msg: EncryptedItems) -> MaskedErrors:
        """Step 1: ``[e_j] = Σ_l u_l [v_jl] − r_j`` per block, masked for the seller's decryption."""
        it, link = self._expect(msg.session, msg.iteration, msg.key_fp, "items")
        s, lay, pub = self.settings.packing, link.layouts, link.public
        slots = lay.items.slots
        positions, blocks = list(msg.positions), list(msg.blocks)
        if len(positions) != len(it.items) or sorted({p // slots for p in positions}) != blocks:
            raise PaderError("item positions and blocks do not match the request")
        columns = parse_cts(pub, msg.columns, len(blocks) * lay.dim)
        vectors = parse_cts(pub, msg.vectors, len(it.items) * lay.chunks if it.purpose == TRAIN else 0)
        x_bound = 1 << s.x_bits
        cols = [packing.wrap(pub, c, lay.items, slots, s.scale_bits, x_bound) for c in columns]
        vecs = [[packing.wrap(pub, vectors[i * lay.chunks + c], lay.vector, len(chunk), s.scale_bits, x_bound)
                 for c, chunk in enumerate(lay.split_vector([0] * lay.dim))]
                for i in range(len(it.items) if it.purpose == TRAIN else 0)]
        u_int = encode_all(self.u, s.scale_bits, s.value_bits)
        r_int = encode_all(it.ratings, 2 * s.scale_bits, s.value_bits)
        groups = [cols[b * lay.dim:(b + 1) * lay.dim] for b in range(len(blocks))]
        sums = list(self.mapper(_block_sum, [pub] * len(groups), groups, [u_int] * len(groups)))
        errors, masks, score_masks, out = [], [], [], []
        for b, block in enumerate(blocks):
            in_block = [(p % slots, i) for i, p in enumerate(positions) if p // slots == block]
            minus_r = [0] * slots
            for slot, i in in_block:
                minus_r[slot] = -r_int[i]
            e = packing.add_plain(pub, sums[b], minus_r) if it.purpose == TRAIN else sums[b]
            errors.append(e)
            m = [0] * slots
            if it.purpose == TRAIN:
                block_masks = error_masks(len(in_block), s)
                masks.extend(zip([i for _, i in in_block], block_masks))
                for (slot, _), em in zip(in_block, block_masks):
                    m[slot] = em.value(s.scale_bits)
            else:
                for (slot, i), v in zip(in_block, draw_masks(len(in_block), s.error_bits + s.mask_bits)):
                    m[slot] = v
                    score_masks.append((i, v))
            out.append(mask(pub, link.pool.take, e, m))
        it.positions, it.blocks, it.errors, it.vectors, it.u_int = positions, blocks, errors, vecs, u_int
        it.masks = [em for _, em in sorted(masks, key=lambda t: t[0])]
        it.score_masks = [v for _, v in sorted(score_masks, key=lambda t: t[0])]
        it.stage = "product" if it.purpose == TRAIN else "revealed"
        return MaskedErrors(it.session, it.iteration, pub.fingerprint, self._send(link, [p.c for p in out]))

    def on_product(self, msg: MaskedProduct) -> MaskedGradient:
        """Steps 2–5: unmask ``Σ e_j v_j``, add the social and ridge terms, mask the gradient; item grads."""
        it, link = self._expect(msg.session, msg.iteration, msg.key_fp, "product")
        s, lay, pub, soreg = self.settings.packing, link.layouts, link.public, self.settings.soreg
        cts = parse_cts(pub, msg.cts, lay.chunks)
        counts = [len(c) for c in lay.split_vector([0] * lay.dim)]
        bound = len(it.items) * (1 << (s.masked_error_bits - s.scale_bits)) * (1 << s.x_bits)
        products = [packing.wrap(pub, c, lay.vector, n, 2 * s.scale_bits, bound) for c, n in zip(cts, counts)]
        grad = remove_product_mask(pub, products, it.vectors, it.masks, self.mapper, self.settings.split)
        weights = [w for _, w in it.friends] if it.regularize else []
        if weights:
            shares = [parse_cts(pub, link.friend_shares[f].cts, lay.chunks) for f, _ in it.friends]
            w_int = [encode(w, s.scale_bits, s.value_bits) for w in weights]
            for c, n in enumerate(counts):
                col = [packing.wrap(pub, sh[c], lay.vector, n, s.scale_bits, 1 << s.x_bits) for sh in shares]
                grad[c] = packing.add(pub, grad[c], packing.weighted_sum(pub, col, w_int, s.scale_bits))
        plain = (soreg.beta * float(np.sum(weights)) + soreg.lambda_u) * self.u * it.regularize
        plain_int = lay.split_vector(encode_all(plain, 2 * s.scale_bits, s.value_bits + s.terms_bits))
        gmasks = draw_masks(lay.dim, s.gradient_bits + s.mask_bits)
        masked = [mask(pub, link.pool.take, packing.add_plain(pub, g, p), m)
                  for g, p, m in zip(grad, plain_int, lay.split_vector(gmasks))]
        item_grads = packing.scale_mul_many(pub, it.errors, it.u_int, s.scale_bits, self.mapper)
        flat = [packing.rerandomize(pub, g, link.pool.take()).c for row in item_grads for g in row]
        it.gradient_masks, it.stage = gmasks, "revealed"
        gradient = self._send(link, [p.c for p in masked])
        items = self._send(link, flat)
        return MaskedGradient(it.session, it.iteration, pub.fingerprint, gradient, items)

    def on_revealed(self, msg: RevealedValues) -> np.ndarray | dict[int, float]:
        """TRAIN: unmask the gradient, update ``u`` and return the gradient. SCORE: ``{item: uᵀv_j}``."""
        it, _ = self._expect(msg.session, msg.iteration, None, "revealed")
        s = self.settings.packing
        values = [bytes_to_int(b) for b in msg.values] if isinstance(msg.values, tuple) else None
        if it.purpose == SCORE:
            if values is None or len(values) != len(it.items):
                raise PaderError("expected one revealed score per item")
            scores = unmask(values, it.score_masks)
            self._current.pop(it.seller)
            return {j: v / float(1 << (2 * s.scale_bits)) for j, v in zip(it.items, scores)}
        if values is None or len(values) != self.settings.soreg.dim:
            raise PaderError("expected one revealed value per dimension")
        g = np.array(unmask(values, it.gradient_masks), dtype=np.float64) / float(1 << (2 * s.scale_bits))
        self._current.pop(it.seller)
        if it.apply:
            self.apply_gradient(g)
        return g

    def apply_gradient(self, g: np.ndarray) -> None:
        """``u ← u − lr·g`` (a revealed gradient, or the sum of several sellers' parts)."""
        g = np.asarray(g, dtype=np.float64)
        if g.shape != self.u.shape or not np.all(np.isfinite(g)):
            raise ValueError("gradient must be a finite vector of the user's dimension")
        self.u = self.u - self.settings.soreg.lr * g
        self.version += 1

    # -- internals --------------------------------------------------------------------------------
    def _link(self, key_fp: bytes) -> SellerLink:
        link = self.sellers.get(key_fp)
        if link is None:
            raise WrongKeyError("no seller with this key fingerprint")
        return link

    def _start(self, link: SellerLink, purpose: int, items: Sequence[int], ratings: Sequence[float],
               friends: Sequence[tuple[bytes, float]]) -> ItemRequest:
        known = set(link.catalogue.items)
        items = [int(j) for j in items]
        if not items or any(j not in known for j in items) or len(set(items)) != len(items):
            raise PaderError("items must be distinct and in the seller's catalogue")
        if len(items) > self.settings.max_items or len(friends) > self.settings.max_items:
            raise PaderError("too many items or friends for one iteration")
        self._counter += 1
        it = _Iteration(link.public.fingerprint, secrets.token_bytes(SESSION_BYTES), self._counter, purpose, items,
                        [float(r) for r in ratings], [(f, float(w)) for f, w in friends])
        self._current[link.public.fingerprint] = it
        return ItemRequest(it.session, it.iteration, self.user_id, link.public.fingerprint, purpose, tuple(items))

    def _expect(self, session: bytes, iteration: int, key_fp: bytes | None, stage: str) -> tuple[_Iteration, SellerLink]:
        it = next((x for x in self._current.values() if x.session == session), None)
        if it is None or it.iteration != iteration:
            raise ReplayError("no open session for this message (replayed or unknown)")
        if key_fp is not None and key_fp != it.seller:
            raise WrongKeyError("message is under another seller key (fingerprint mismatch)")
        if it.stage != stage:
            raise ReplayError(f"message out of order: session is at {it.stage!r}, not {stage!r}")
        return it, self.sellers[it.seller]

    def _send(self, link: SellerLink, cts: list) -> tuple[bytes, ...]:
        size = n2_bytes(link.public)
        self.stats["ciphertexts_out"] += len(cts)
        self.stats["bytes_out"] += len(cts) * size
        return tuple(ct_to_bytes(c, size) for c in cts)


def _block_sum(public: PublicKey, column: list[Packed], u_int: list[int]) -> Packed:
    """``Σ_l u_l·[v_·l]`` for one block (one task)."""
    return packing.weighted_sum(public, column, u_int, column[0].scale_bits)
