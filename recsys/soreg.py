"""Plaintext SoReg (Ma et al. 2011) — the reference that encrypted PADER must reproduce exactly.

Per user i (DESIGN.md §4), on z-scored ratings ``r``::

    L_i = ½ Σ_j (u_iᵀv_j − r_ij)² + (β/2) Σ_f s_if ‖u_i − u_f‖² + (λ_u/2)‖u_i‖² + (λ_v/2) Σ_j ‖v_j‖²
    e_j = u_iᵀv_j − r_ij
    ∂L/∂u_i = Σ_j e_j v_j + β Σ_f s_if (u_i − u_f) + λ_u u_i        ∂L/∂v_j = e_j u_i + λ_v v_j

MF is SoReg with β = 0 (:func:`mf_settings`).

One per-user iteration, and how it maps to the PADER "natural" protocol
-----------------------------------------------------------------------
0. Sampling (:meth:`SoRegModel.plan_iteration`; the plan is a plain record both sides can share).
   Let ``R`` be the user's rating rows (row indices into the training ``ratings``, ascending) and ``T``
   its out-going trust rows (rows of ``trust`` whose truster is the user, ascending). If
   ``len(R) > items_per_iter`` the plan takes ``R[rng.choice(len(R), items_per_iter, replace=False)]``,
   else all of ``R`` in order and draws nothing from ``rng``; then the same for ``T`` with
   ``friends_per_iter``. An epoch (:meth:`SoRegModel.plan_epoch`) first draws
   ``order = rng.permutation(active_users)`` (users with ≥ 1 training rating, ascending) unless an
   order is given, then plans each user in that order with the same ``rng``.
1. Seller S sends ``Enc(v_j)`` for the planned items; the user computes ``[u_iᵀv_j]`` and
   ``[e_j] = [u_iᵀv_j] − r_j`` (:func:`prediction_errors`), using ``u_i`` as it is now ("old u").
2. Secure multiplication gives the user ``[Σ_j e_j v_j]`` = ``V.T @ e``.
3. Social term: ``β Σ_f s_f u_i + Σ_f s_f Enc(−β u_f)``. The friends' vectors are their *current*
   ``U`` rows (sequential, default), or the rows at the start of the epoch when
   ``epoch(..., stale_friends=True)`` (what friends publishing ``Enc(−β u_f)`` once per epoch gives).
4. Masked decryption reveals ``g_u`` (:func:`user_gradient`, adds ``λ_u u_i``); the user sets
   ``u_i ← u_i − lr·g_u``.
5. Item gradients ``[e_j]·u_i`` (:func:`item_gradients`) use the **old** ``u_i`` of step 1 (no new
   interaction needed) and go to the item's owner. Each owner (``item_owner``, default one seller)
   adds them into its pending sum and counts the *users* that contributed; once ``n_agg`` users have
   contributed it applies, once per touched row, ``v_j ← v_j − lr·(G_j + λ_v v_j)``
   (:func:`apply_item_gradients`) and clears the sum. Pending sums carry over between epochs
   (a seller waits for ``n_agg`` users); :meth:`SoRegModel.flush_item_gradients` forces them out.
   With ``n_agg = 1`` every iteration applies its item gradients at once (classic per-user SGD).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from recsys.datasets import RatingData

MIN_STD = 1e-12
"""Rating spread below which z-scoring is refused (all scores equal)."""


@dataclass(frozen=True)
class SoRegSettings:
    """Hyper-parameters of SoReg (defaults: the PADER reference code)."""

    dim: int = 16
    """Latent dimension d."""
    lr: float = 0.003
    """SGD learning rate."""
    lambda_u: float = 2.0
    """L2 regularisation of user vectors."""
    lambda_v: float = 0.5
    """L2 regularisation of item vectors (added by the item owner when it applies gradients)."""
    beta: float = 0.5
    """Weight of the social term; 0 gives plain MF."""
    items_per_iter: int = 8
    """Rated items sampled per user iteration (all if the user has fewer)."""
    friends_per_iter: int = 10
    """Friends sampled per user iteration (all if the user has fewer)."""
    epochs: int = 300
    """Epochs a training run makes (used by callers that train to a budget)."""
    init_scale: float = 0.1
    """Standard deviation of the Gaussian initial U and V entries."""

    def validate(self) -> "SoRegSettings":
        """Raise ``ValueError`` on a setting out of range; return self."""
        positive_ints = ("dim", "items_per_iter", "epochs")
        for name in positive_ints:
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"SoRegSettings.{name} must be a positive integer, got {getattr(self, name)!r}")
        if not isinstance(self.friends_per_iter, int) or self.friends_per_iter < 0:
            raise ValueError(f"SoRegSettings.friends_per_iter must be an integer >= 0, got {self.friends_per_iter!r}")
        if not (np.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"SoRegSettings.lr must be > 0, got {self.lr!r}")
        for name in ("lambda_u", "lambda_v", "beta"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"SoRegSettings.{name} must be >= 0, got {value!r}")
        if not (np.isfinite(self.init_scale) and self.init_scale > 0):
            raise ValueError(f"SoRegSettings.init_scale must be > 0, got {self.init_scale!r}")
        return self


def mf_settings(settings: SoRegSettings) -> SoRegSettings:
    """The same settings with the social term off: plain matrix factorisation."""
    return replace(settings, beta=0.0)


def prediction_errors(u: np.ndarray, V: np.ndarray, r: np.ndarray) -> np.ndarray:
    """``e = V @ u − r``, shape (k,): errors of one user on k items (z-scored ratings)."""
    return V @ u - r


def user_gradient(
    u: np.ndarray, V: np.ndarray, r: np.ndarray, U_friends: np.ndarray, s: np.ndarray, beta: float, lambda_u: float
) -> np.ndarray:
    """``∂L/∂u = V.T @ e + β Σ_f s_f (u − u_f) + λ_u u``; ``U_friends`` (f, d), ``s`` (f,)."""
    grad = V.T @ prediction_errors(u, V, r) + lambda_u * u
    if len(s):
        grad = grad + beta * (s.sum() * u - s @ U_friends)
    return grad


def item_gradients(u: np.ndarray, V: np.ndarray, r: np.ndarray) -> np.ndarray:
    """(k, d): row j is ``e_j u`` — the data part of ``∂L/∂v_j`` (the owner adds ``λ_v v_j``)."""
    return np.outer(prediction_errors(u, V, r), u)


def apply_item_gradients(V: np.ndarray, grad_sum: np.ndarray, lr: float, lambda_v: float) -> np.ndarray:
    """``V − lr·(grad_sum + λ_v V)``: the item owner's update with an aggregated gradient."""
    return V - lr * (grad_sum + lambda_v * V)


def user_loss(
    u: np.ndarray, V: np.ndarray, r: np.ndarray, U_friends: np.ndarray, s: np.ndarray,
    beta: float, lambda_u: float, lambda_v: float,
) -> float:
    """``L_i`` of DESIGN.md for one user over the given items and friends."""
    e = prediction_errors(u, V, r)
    social = float(s @ np.sum((u - U_friends) ** 2, axis=1)) if len(s) else 0.0
    return 0.5 * float(e @ e) + 0.5 * beta * social + 0.5 * lambda_u * float(u @ u) + 0.5 * lambda_v * float(np.sum(V * V))


@dataclass(frozen=True)
class IterationPlan:
    """What one user iteration touches: shared verbatim by the plaintext and encrypted runs."""

    user: int
    """The user index."""
    rating_rows: np.ndarray
    """int64 row indices into the training ``ratings`` of the sampled ratings."""
    trust_rows: np.ndarray
    """int64 row indices into ``trust`` of the sampled friend edges (truster == user)."""


@dataclass(frozen=True)
class UserStep:
    """The values of one user iteration (before any update), for checks against the encrypted run."""

    user: int
    """The user index."""
    items: np.ndarray
    """(k,) item indices."""
    r: np.ndarray
    """(k,) z-scored ratings."""
    friends: np.ndarray
    """(f,) friend user indices."""
    s: np.ndarray
    """(f,) trust weights."""
    u: np.ndarray
    """(d,) the user's vector before the iteration."""
    errors: np.ndarray
    """(k,) prediction errors ``e_j``."""
    user_gradient: np.ndarray
    """(d,) ``∂L/∂u_i``."""
    item_gradients: np.ndarray
    """(k, d) ``e_j u_i`` rows (without ``λ_v v_j``)."""
    new_u: np.ndarray = field(default=None)  # type: ignore[assignment]
    """(d,) ``u_i − lr·g_u``."""


def _group_rows(keys: np.ndarray, n_groups: int) -> list[np.ndarray]:
    """Row indices per key, ascending within each group."""
    order = np.argsort(keys, kind="stable")
    bounds = np.searchsorted(keys[order], np.arange(n_groups + 1))
    return [order[bounds[g]:bounds[g + 1]] for g in range(n_groups)]


def _sample(rows: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    if len(rows) <= limit:
        return rows
    return rows[rng.choice(len(rows), limit, replace=False)]


class SoRegModel:
    """SoReg state: ``U`` (n_users, d), ``V`` (n_items, d) and the rating mean/std for z-scoring.

    Bound to one training ``RatingData``; see the module docstring for the exact iteration schedule.
    """

    def __init__(self, data: RatingData, settings: SoRegSettings, U: np.ndarray, V: np.ndarray,
                 item_owner: np.ndarray | None = None) -> None:
        settings.validate()
        if len(data.ratings) == 0:
            raise ValueError("SoReg needs at least one training rating")
        if U.shape != (data.n_users, settings.dim) or V.shape != (data.n_items, settings.dim):
            raise ValueError(f"U/V shapes {U.shape}/{V.shape} do not match the data and dim {settings.dim}")
        self.data, self.settings, self.U, self.V = data, settings, U, V
        scores = data.scores
        self.mean = float(scores.mean())
        self.std = float(scores.std())
        if self.std < MIN_STD:
            raise ValueError("all training scores are equal; cannot z-score")
        self.score_range = (float(scores.min()), float(scores.max()))
        self.z = (scores - self.mean) / self.std
        self.item_owner = np.zeros(data.n_items, np.int64) if item_owner is None else np.asarray(item_owner, np.int64)
        if self.item_owner.shape != (data.n_items,) or self.item_owner.min() < 0:
            raise ValueError("item_owner must give a non-negative owner index per item")
        self._rating_rows = _group_rows(data.users, data.n_users)
        self._trust_rows = _group_rows(data.trust[:, 0].astype(np.int64), data.n_users)
        self.active_users = np.array([i for i, rows in enumerate(self._rating_rows) if len(rows)], np.int64)
        self._pending = np.zeros_like(V)
        self._pending_rows: dict[int, set[int]] = {}
        self._pending_users: dict[int, int] = {}

    @classmethod
    def init(cls, data: RatingData, settings: SoRegSettings, seed: int, *,
             item_owner: np.ndarray | None = None) -> "SoRegModel":
        """A fresh model: U and V entries drawn from N(0, init_scale²) with ``default_rng(seed)``."""
        settings.validate()
        rng = np.random.default_rng(seed)
        U = settings.init_scale * rng.standard_normal((data.n_users, settings.dim))
        V = settings.init_scale * rng.standard_normal((data.n_items, settings.dim))
        return cls(data, settings, U, V, item_owner)

    # -- planning ---------------------------------------------------------------------------------
    def plan_iteration(self, user: int, rng: np.random.Generator) -> IterationPlan:
        """Sample the user's items then friends exactly as the module docstring says."""
        rating_rows = _sample(self._rating_rows[user], self.settings.items_per_iter, rng)
        trust_rows = _sample(self._trust_rows[user], self.settings.friends_per_iter, rng)
        return IterationPlan(int(user), rating_rows, trust_rows)

    def plan_epoch(self, rng: np.random.Generator, order: np.ndarray | None = None) -> list[IterationPlan]:
        """One plan per user: ``rng.permutation(active_users)`` unless ``order`` is given."""
        if order is None:
            order = rng.permutation(self.active_users)
        return [self.plan_iteration(int(user), rng) for user in order]

    # -- one iteration ----------------------------------------------------------------------------
    def step(self, plan: IterationPlan, U_source: np.ndarray | None = None) -> UserStep:
        """Compute (without applying) the iteration; friends' vectors come from ``U_source`` (default U)."""
        source = self.U if U_source is None else U_source
        s = self.settings
        items = self.data.items[plan.rating_rows]
        r = self.z[plan.rating_rows]
        friends = self.data.trust[plan.trust_rows, 1].astype(np.int64)
        weights = self.data.trust[plan.trust_rows, 2]
        u = self.U[plan.user].copy()
        V = self.V[items]
        g_u = user_gradient(u, V, r, source[friends], weights, s.beta, s.lambda_u)
        return UserStep(plan.user, items, r, friends, weights, u, prediction_errors(u, V, r), g_u,
                        item_gradients(u, V, r), u - s.lr * g_u)

    def apply_step(self, step: UserStep, n_agg: int = 1) -> None:
        """Set ``u_i ← new_u`` and hand the item gradients to their owners (aggregating n_agg users).

        Raises ``FloatingPointError`` when the step is not finite (training diverged: lower lr or beta).
        """
        if not (np.all(np.isfinite(step.new_u)) and np.all(np.isfinite(step.item_gradients))):
            raise FloatingPointError(f"SoReg diverged at user {step.user}: lower lr or beta "
                                     f"(lr={self.settings.lr}, beta={self.settings.beta})")
        self.U[step.user] = step.new_u
        np.add.at(self._pending, step.items, step.item_gradients)
        for owner in np.unique(self.item_owner[step.items]):
            owner = int(owner)
            rows = self._pending_rows.setdefault(owner, set())
            rows.update(int(j) for j in step.items[self.item_owner[step.items] == owner])
            self._pending_users[owner] = self._pending_users.get(owner, 0) + 1
            if self._pending_users[owner] >= n_agg:
                self._apply_owner(owner)

    def _apply_owner(self, owner: int) -> None:
        rows = np.fromiter(sorted(self._pending_rows.pop(owner, set())), np.int64)
        self._pending_users.pop(owner, None)
        self.V[rows] = apply_item_gradients(self.V[rows], self._pending[rows], self.settings.lr, self.settings.lambda_v)
        self._pending[rows] = 0.0

    def flush_item_gradients(self) -> None:
        """Apply every owner's pending item-gradient sum now, whatever its user count."""
        for owner in list(self._pending_rows):
            self._apply_owner(owner)

    def user_iteration(self, user: int, rng: np.random.Generator) -> UserStep:
        """The reference per-user SGD step: plan, compute, update ``u_i`` and the items (n_agg = 1)."""
        step = self.step(self.plan_iteration(user, rng))
        self.apply_step(step, n_agg=1)
        return step

    # -- epochs -----------------------------------------------------------------------------------
    def run_plans(self, plans: list[IterationPlan], *, n_agg: int = 1, stale_friends: bool = False) -> list[UserStep]:
        """Run planned iterations in order; item gradients aggregate over ``n_agg`` users per owner."""
        if not isinstance(n_agg, int) or n_agg < 1:
            raise ValueError(f"n_agg must be a positive integer, got {n_agg!r}")
        snapshot = self.U.copy() if stale_friends else None
        steps = []
        for plan in plans:
            step = self.step(plan, snapshot)
            self.apply_step(step, n_agg)
            steps.append(step)
        return steps

    def epoch(self, rng: np.random.Generator, *, order: np.ndarray | None = None, n_agg: int = 1,
              stale_friends: bool = False) -> list[UserStep]:
        """Per-user SGD over all active users in a seeded order (see the module docstring)."""
        return self.run_plans(self.plan_epoch(rng, order), n_agg=n_agg, stale_friends=stale_friends)

    def full_batch_gradients(self) -> tuple[np.ndarray, np.ndarray]:
        """Gradients of the total loss Σ_i L_i (each ‖V‖² counted once) w.r.t. U and V.

        The social term of user i pulls i towards its friends and, symmetrically, each friend towards i.
        """
        s = self.settings
        users, items = self.data.users, self.data.items
        e = np.sum(self.U[users] * self.V[items], axis=1) - self.z
        grad_U = np.zeros_like(self.U)
        grad_V = np.zeros_like(self.V)
        np.add.at(grad_U, users, e[:, None] * self.V[items])
        np.add.at(grad_V, items, e[:, None] * self.U[users])
        if s.beta and len(self.data.trust):
            a = self.data.trust[:, 0].astype(np.int64)
            b = self.data.trust[:, 1].astype(np.int64)
            diff = self.data.trust[:, 2, None] * (self.U[a] - self.U[b])
            np.add.at(grad_U, a, s.beta * diff)
            np.add.at(grad_U, b, -s.beta * diff)
        return grad_U + s.lambda_u * self.U, grad_V + s.lambda_v * self.V

    def full_batch_step(self) -> None:
        """One gradient-descent step with learning rate ``settings.lr`` on the total loss."""
        grad_U, grad_V = self.full_batch_gradients()
        self.U -= self.settings.lr * grad_U
        self.V -= self.settings.lr * grad_V

    def total_loss(self) -> float:
        """Σ_i ½Σ_j e_ij² + (β/2) Σ_(i,f) s_if‖u_i − u_f‖² + (λ_u/2)‖U‖² + (λ_v/2)‖V‖²."""
        s = self.settings
        e = np.sum(self.U[self.data.users] * self.V[self.data.items], axis=1) - self.z
        social = 0.0
        if len(self.data.trust):
            a, b = self.data.trust[:, 0].astype(np.int64), self.data.trust[:, 1].astype(np.int64)
            social = float(self.data.trust[:, 2] @ np.sum((self.U[a] - self.U[b]) ** 2, axis=1))
        return 0.5 * float(e @ e) + 0.5 * s.beta * social + 0.5 * s.lambda_u * float(np.sum(self.U ** 2)) \
            + 0.5 * s.lambda_v * float(np.sum(self.V ** 2))

    # -- inference --------------------------------------------------------------------------------
    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Scores on the rating scale (de-z-scored), clipped to the training data's range."""
        users = np.asarray(users, np.int64)
        items = np.asarray(items, np.int64)
        if users.shape != items.shape:
            raise ValueError("users and items must have the same shape")
        if users.size and (users.min() < 0 or users.max() >= self.data.n_users
                           or items.min() < 0 or items.max() >= self.data.n_items):
            raise ValueError("user or item index out of range")
        z = np.sum(self.U[users] * self.V[items], axis=-1)
        return np.clip(z * self.std + self.mean, *self.score_range)
