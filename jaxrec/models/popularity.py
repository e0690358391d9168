"""Most-popular baseline: every user gets the items with the most training interactions."""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

from jaxrec.models.base import ModelContext


class Popularity(nnx.Module):
    """Scores an item by its number of training interactions (the same for every user).

    Trained by one closed-form :meth:`solve_epoch` (no gradient steps); run it with
    ``loss=none``.
    """

    default_loss: ClassVar[str] = "none"  # the loss= it is meant for
    compatible_losses: ClassVar[tuple[str, ...]] = ("none",)

    scores_cold_items = True  # an unseen item scores 0 (jaxrec.metrics.slices)
    scores_cold_users = True

    def __init__(self, ctx: ModelContext, *, rngs: nnx.Rngs):
        info = ctx.info
        del rngs
        self.counts_N = nnx.Param(jnp.zeros((info.num_items,)))

    def solve_epoch(self, data: dict[str, jax.Array], key: jax.Array) -> jax.Array:
        """Count interactions per item; returns 0 (there is no training loss)."""
        del key
        counts = jnp.zeros_like(self.counts_N[...]).at[data["items"]].add(1.0)
        self.counts_N[...] = counts
        return jnp.zeros(())

    def __call__(self, users: jax.Array, items: jax.Array) -> jax.Array:
        return jnp.broadcast_to(self.counts_N[...][items], jnp.broadcast_shapes(users.shape,
                                                                                 items.shape))

    def score_all(self, users_U: jax.Array) -> jax.Array:
        return jnp.broadcast_to(self.counts_N[...][None, :], (users_U.shape[0],
                                                               self.counts_N.shape[0]))

    def l2_rows(self, users: jax.Array, items: jax.Array) -> list[jax.Array]:
        return []
