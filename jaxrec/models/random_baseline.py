"""Random baseline: every (user, item) pair gets a uniform random score, for results tables."""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

from jaxrec.models.base import ModelContext


def _mix32(x: jax.Array) -> jax.Array:
    """MurmurHash3's 32-bit finaliser: a bijective avalanche mix of uint32 values."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x85EBCA6B)
    x = x ^ (x >> 13)
    x = x * jnp.uint32(0xC2B2AE35)
    return x ^ (x >> 16)


def pair_uniform(seed: jax.Array, users: jax.Array, items: jax.Array) -> jax.Array:
    """A deterministic uniform value in ``[0, 1)`` per ``(seed, user, item)`` (any shapes).

    A counter-based hash, so scoring a pair never needs a stored ``U x N`` table
    and ``score_all`` agrees with pairwise scores exactly.
    """
    h = _mix32(users.astype(jnp.uint32) ^ seed.astype(jnp.uint32))
    h = _mix32(h ^ (items.astype(jnp.uint32) * jnp.uint32(0x9E3779B9)))
    return (h >> 8).astype(jnp.float32) * (1.0 / (1 << 24))


class RandomBaseline(nnx.Module):
    """Uniform random scores, fixed by a seed (the model name in configs is ``random``).

    The seed is drawn from ``rngs`` at construction and redrawn from the epoch key
    by :meth:`solve_epoch` (``loss=none``); the scores stay fixed after that.
    """

    default_loss: ClassVar[str] = "none"  # the loss= it is meant for
    compatible_losses: ClassVar[tuple[str, ...]] = ("none",)

    scores_cold_items = True  # needs no per-item training (jaxrec.metrics.slices)
    scores_cold_users = True

    def __init__(self, ctx: ModelContext, *, rngs: nnx.Rngs):
        info = ctx.info
        self._num_items = info.num_items
        self.seed = nnx.Param(jax.random.bits(rngs.params(), dtype=jnp.uint32))

    def solve_epoch(self, data: dict[str, jax.Array], key: jax.Array) -> jax.Array:
        """Draw the scoring seed from ``key``; returns 0 (there is no training loss)."""
        del data
        self.seed[...] = jax.random.bits(key, dtype=jnp.uint32)
        return jnp.zeros(())

    def __call__(self, users: jax.Array, items: jax.Array) -> jax.Array:
        return pair_uniform(self.seed[...], users, items)

    def score_all(self, users_U: jax.Array) -> jax.Array:
        return pair_uniform(self.seed[...], users_U[:, None], jnp.arange(self._num_items)[None])

    def l2_rows(self, users: jax.Array, items: jax.Array) -> list[jax.Array]:
        return []
