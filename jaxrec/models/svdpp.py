"""SVD++ (Koren 2008, "Factorization meets the neighborhood", KDD, eq. 15).

``r_hat(u, i) = mu + b_u + b_i + q_i . (p_u + |N(u)|^-1/2 sum_{j in N(u)} y_j)``

``N(u)`` is the implicit feedback of user ``u``: the items it rated in the
training split (one entry per training row, as Surprise's ``SVDpp``), and
``y_j`` a second factor per item. With no history (``N(u)`` empty) the model is
biased MF. The global mean ``mu`` starts at the training mean and is learned, as
in `jaxrec.models.mf`, or stays fixed there (``learn_mean=False``, as in Koren's
paper and Surprise). Learned with SGD at a rate scaled to the batch, it moves by
about ``lr * sum_b err_b`` per step, a noise that grows with the batch size. Measured
with biased MF on fold 0 of ml-latest-small's 5-fold protocol (dim 100, Surprise's
per-rating rate 0.005 scaled to the batch): a learned ``mu`` gave test RMSE / MAE
0.8732 / 0.6724 at batch 64 and 0.8825 / 0.6887 at batch 256 (diverged at 1024), a
fixed one 0.8727 / 0.6682 at batch 64, 256 and 1024 alike.

The history is the training edge list sorted by user (constant
:class:`~jaxrec.models.layers.features.FeatureTable` variables, never trained),
and the implicit term of *every* user is one ``segment_sum`` over it, ``O(E D)``
per call; rows of users outside the batch get no gradient. A padded ``[U, S]``
table gathered per batch costs ``O(B S_max D)`` instead, where ``S_max`` is the
heaviest user's history (2,150 rows in ml-latest-small's 80% train split, against
a mean of 132): on ml-latest-small (dim 20, 2-core CPU) a padded-table variant took
47 ms per training step against 6.8 ms on edges at batch 256, and 197 against
3.3 ms at batch 1024, with equal losses.
"""

from __future__ import annotations

from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxrec.models.base import ModelContext
from jaxrec.models.layers.features import FeatureTable
from jaxrec.models.mf import MF


def history_edges(train: Any, num_users: int, num_items: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``N(u)`` as edges sorted by user: ``(users_E, items_E, norm_U)`` (host, numpy).

    ``norm_U`` is ``|N(u)|^-1/2`` (0 for users without training rows). ``train``:
    an ``Interactions`` or anything with int ``users`` and ``items`` arrays; None:
    no history.
    """
    if train is None:
        empty = np.zeros(0, np.int32)
        return empty, empty, np.zeros(num_users, np.float32)
    users = np.asarray(train.users, np.int64)
    items = np.asarray(train.items, np.int64)
    if users.size and (users.min() < 0 or users.max() >= num_users
                       or items.min() < 0 or items.max() >= num_items):
        raise ValueError(f"model.train: indices out of range for {num_users} users x "
                         f"{num_items} items")
    order = np.lexsort((items, users))
    counts = np.bincount(users, minlength=num_users)
    norm = np.where(counts > 0, 1.0 / np.sqrt(np.maximum(counts, 1)), 0.0)
    return (users[order].astype(np.int32), items[order].astype(np.int32),
            norm.astype(np.float32))


class SVDpp(MF):
    """SVD++: biased MF whose user factor adds the normalised sum of its items' ``y_j``.

    Args:
      ctx: the data (`jaxrec.models.base.ModelContext`); reads ``ctx.info``, the dataset
        summary (vocabulary sizes, training rating mean).
      dim: factor dimension D (Surprise's default: 20).
      init_std: standard deviation of the normal initialiser of ``p``, ``q`` and
        ``y`` (Surprise: 0.1).
      use_bias: include ``mu``, ``b_u`` and ``b_i``; ``mu`` starts at the training mean.
      learn_mean: train ``mu`` (True, as ``mf``) or keep it at the training mean.
      bias_l2_scale: the L2 penalty on ``b_u``, ``b_i`` relative to the factors
        (``mu`` is never penalised; Surprise: 1.0).
      ctx.train: the training interactions that define ``N(u)``; ``jaxrec train``
        passes the training split. None: empty histories (plain biased MF), for
        shape tests only.
      rngs: Flax random streams (``params`` is used).

    The L2 penalty (``loss.l2``) applies per example to ``p_u``, ``q_i``, the
    biases and every ``y_j`` with ``j in N(u)``, as in Koren's SGD rules.
    """

    default_loss: ClassVar[str] = "mse"  # the loss= it is meant for
    compatible_losses: ClassVar[tuple[str, ...]] = ("mse", "bce", "bpr")
    init_from_info: ClassVar[bool] = False  # reads ctx.train (N(u)): not MF's jitted init
    sparse_rows: ClassVar[bool] = False  # N(u)'s implicit factors get gradient beyond the batch

    def __init__(self, ctx: ModelContext, *, dim: int = 20, init_std: float = 0.01,
                 use_bias: bool = True, learn_mean: bool = True, bias_l2_scale: float = 0.1,
                 rngs: nnx.Rngs):
        info = ctx.info
        train = ctx.train
        if dim < 1:
            raise ValueError(f"model.dim: must be >= 1, got {dim}")
        super().__init__(ctx, dim=dim, init_std=init_std, use_bias=use_bias,
                         bias_l2_scale=bias_l2_scale, rngs=rngs)  # p_u, q_i, mu, b_u, b_i
        init = jax.nn.initializers.normal(init_std)
        self.implicit_emb_NxD = nnx.Param(init(rngs.params(), (info.num_items, dim)))
        if use_bias and not learn_mean:
            self.global_bias = FeatureTable(jnp.asarray(info.rating_mean, jnp.float32))
        self.num_users, self.num_items = info.num_users, info.num_items
        tables = self.history_tables(train)
        self.history_users_E = FeatureTable(jnp.asarray(tables["history_users_E"]))
        self.history_items_E = FeatureTable(jnp.asarray(tables["history_items_E"]))
        self.history_norm_U = FeatureTable(jnp.asarray(tables["history_norm_U"]))

    def history_tables(self, interactions: Any) -> dict[str, np.ndarray]:
        """``N(u)`` of ``interactions`` as the edge tables (`HistoryInput`)."""
        users_E, items_E, norm_U = history_edges(interactions, self.num_users, self.num_items)
        return {"history_users_E": users_E, "history_items_E": items_E,
                "history_norm_U": norm_U}

    def _segment_sum(self, values_ExD: jax.Array) -> jax.Array:
        """``[U, ...]``: per-user sums of edge values (edges sorted by user)."""
        return jax.ops.segment_sum(values_ExD, self.history_users_E[...],
                                   num_segments=self.history_norm_U.shape[0],
                                   indices_are_sorted=True)

    def implicit_factors(self) -> jax.Array:
        """``[U, D]``: ``|N(u)|^-1/2 sum_{j in N(u)} y_j`` for every user (0 without history)."""
        implicit_UxD = self._segment_sum(self.implicit_emb_NxD[...][self.history_items_E[...]])
        return self.history_norm_U[...][:, None] * implicit_UxD

    def __call__(self, users: jax.Array, items: jax.Array) -> jax.Array:
        """Scores ``[...]`` of index arrays of broadcastable shapes (e.g. ``[B]``, ``[B, M]``):
        MF's ``mu + b_u + b_i + q_i . p_u`` plus ``q_i`` . the implicit term."""
        implicit = jnp.sum(self.implicit_factors()[users] * self.item_emb_NxD[...][items], axis=-1)
        return super().__call__(users, items) + implicit

    def user_factors(self, users_B: jax.Array) -> jax.Array:
        """``p_u`` plus the implicit term: the vector ``score_all`` reads (`UserFactors`)."""
        return super().user_factors(users_B) + self.implicit_factors()[users_B]

    # score_all: MF's, score_factors(user_factors(u)), with the implicit term in user_factors

    def l2_rows(self, users: jax.Array, items: jax.Array) -> list[jax.Array]:
        """MF's rows (``p_u``, ``q_i``, scaled biases) and ``sqrt(sum_{j in N(u)} |y_j|^2)``.

        The last entry is a ``[B]`` row whose square is the summed squared norm of
        the user's ``y_j`` (one per-user ``segment_sum`` instead of a padded
        ``[B, S, D]`` gather); the floor inside the square root keeps its
        gradient finite for users without history.
        """
        y_sq_E = jnp.sum(jnp.square(self.implicit_emb_NxD[...][self.history_items_E[...]]),
                         axis=-1)
        y_sq_U = self._segment_sum(y_sq_E)
        return [*super().l2_rows(users, items), jnp.sqrt(jnp.maximum(y_sq_U, 1e-30))[users]]
