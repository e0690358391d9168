"""Uniform negative sampling on device, rejecting items the user has interacted with in training."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np


def num_search_steps(indptr: np.ndarray) -> int:
    """Binary-search iterations needed for the longest per-user item list."""
    longest = int(np.max(np.diff(indptr))) if len(indptr) > 1 else 0
    return max(1, math.ceil(math.log2(longest + 1)) + 1)


SEEN_BITS_MAX_BYTES = 64 << 20  # the user x item bitmap is built up to this size


def seen_bits(indptr: np.ndarray, indices: np.ndarray, num_items: int) -> np.ndarray | None:
    """The training CSR as a bitmap, uint32 ``[U, ceil(N / 32)]`` (bit ``i % 32`` of word
    ``i // 32`` of row ``u``: user u has item i), or None when it would exceed
    ``SEEN_BITS_MAX_BYTES`` (ml-1m: 2.8 MB; ml-20m: 468 MB, which keeps the binary search).

    A lookup is one gather, against the ~log2(longest list) dependent gathers of the
    binary search: on ml-latest-small's mf/bpr preset the sampler's rejection rounds
    were ~40% of the epoch.
    """
    num_users, words = len(indptr) - 1, -(-num_items // 32)
    if num_users * words * 4 > SEEN_BITS_MAX_BYTES:
        return None
    rows = np.repeat(np.arange(num_users, dtype=np.int64), np.diff(indptr))
    cols = np.asarray(indices, np.int64)
    bits = np.zeros(num_users * words, np.uint32)
    np.bitwise_or.at(bits, rows * words + cols // 32, np.left_shift(1, cols % 32).astype(np.uint32))
    return bits.reshape(num_users, words)


def is_seen(users_B: jax.Array, cand_BxM: jax.Array, indptr: jax.Array, indices: jax.Array,
            *, steps: int, bits_UxW: jax.Array | None = None) -> jax.Array:
    """Whether each candidate item is in its user's sorted training list (a bitmap lookup,
    or a CSR binary search when there is no bitmap).

    Args:
      users_B: user indices ``[B]``.
      cand_BxM: candidate item indices ``[B, M]``.
      indptr: ``[num_users + 1]`` CSR offsets; indices: ``[E]`` items sorted within each user.
      steps: binary-search iterations (static), from ``num_search_steps``.
      bits_UxW: the same lists as a bitmap (:func:`seen_bits`); None: binary search.
    """
    if bits_UxW is not None:
        words = bits_UxW[users_B[:, None], cand_BxM // 32]
        return ((words >> (cand_BxM % 32).astype(jnp.uint32)) & 1) == 1
    lo = jnp.broadcast_to(indptr[users_B][:, None], cand_BxM.shape)
    end = jnp.broadcast_to(indptr[users_B + 1][:, None], cand_BxM.shape)
    last = indices.shape[0] - 1

    def halve(_, bounds):
        lo, hi = bounds
        mid = (lo + hi) // 2
        go_right = indices[jnp.clip(mid, 0, last)] < cand_BxM
        active = lo < hi
        return jnp.where(active & go_right, mid + 1, lo), jnp.where(active & ~go_right, mid, hi)

    # a rolled loop: unrolling `steps` gathers made compile time grow ~2.4x per step
    lo, _ = jax.lax.fori_loop(0, steps, halve, (lo, end))
    return (lo < end) & (indices[jnp.clip(lo, 0, last)] == cand_BxM)


def sample_negatives(key: jax.Array, users_B: jax.Array, num_negatives: int, num_items: int,
                     indptr: jax.Array, indices: jax.Array, *, steps: int,
                     pool_P: jax.Array | None = None, bits_UxW: jax.Array | None = None,
                     max_rounds: int = 64) -> jax.Array:
    """Draw ``num_negatives`` items per user uniformly from the items the user has not seen.

    Rejection sampling: redraw the candidates that hit a training item until none
    do (bounded by ``max_rounds``; every user must have at least one unseen item,
    which the trainer checks on the host).

    Args:
      pool_P: the candidate items (int32 ``[P]``, see :func:`negative_pool`); None:
        all ``num_items`` items.
      bits_UxW: the training lists as a bitmap (:func:`seen_bits`); None: binary search.

    Returns:
      int32 ``[B, M]`` negative item indices.
    """
    shape = (users_B.shape[0], num_negatives)

    def draw(k):
        if pool_P is None:
            return jax.random.randint(k, shape, 0, num_items, dtype=jnp.int32)
        return pool_P[jax.random.randint(k, shape, 0, pool_P.shape[0], dtype=jnp.int32)]

    def cond(carry):
        _, _, seen, rounds = carry
        return jnp.any(seen) & (rounds < max_rounds)

    def body(carry):
        k, cand, seen, rounds = carry
        k, sub = jax.random.split(k)
        cand = jnp.where(seen, draw(sub), cand)
        return k, cand, is_seen(users_B, cand, indptr, indices, steps=steps,
                                 bits_UxW=bits_UxW), rounds + 1

    key, sub = jax.random.split(key)
    cand = draw(sub)
    seen = is_seen(users_B, cand, indptr, indices, steps=steps, bits_UxW=bits_UxW)
    _, cand, _, _ = jax.lax.while_loop(cond, body, (key, cand, seen, jnp.int32(0)))
    return cand


NEGATIVE_POOLS = ("auto", "train_items", "all_items")


def resolve_negatives(which: str, split_method: str | None) -> str:
    """``trainer.negatives=auto``: ``train_items`` on an item cold-start split, else
    ``all_items``."""
    if which not in NEGATIVE_POOLS:
        raise ValueError(f"trainer.negatives: must be one of {', '.join(NEGATIVE_POOLS)}, "
                         f"got {which!r}")
    if which != "auto":
        return which
    return "train_items" if split_method == "cold_item" else "all_items"


def negative_pool(train_items: np.ndarray, num_items: int, which: str = "all_items"
                  ) -> np.ndarray:
    """The items negatives are drawn from: int32 ``[P]``, sorted.

    ``train_items``: the items with at least one training interaction. On an
    item cold-start split the held-out items have none, so they are never
    pushed down as negatives during training (which would leak the split into
    their feature embeddings: the model would learn that the test items are the
    ones it never sees as positives). ``all_items``: the whole catalogue
    (RecBole's convention); on warm splits it is the better choice for full
    ranking, since items without training rows are pushed below the trained ones
    instead of keeping their random initial scores (GMF on ml-latest-small:
    test NDCG@10 0.288 with all items, 0.250 with train items). ``auto`` (see
    :func:`resolve_negatives`, resolved by ``jaxrec.train.run``) means
    ``all_items`` here.
    """
    which = resolve_negatives(which, None)
    if which == "all_items":
        return np.arange(num_items, dtype=np.int32)
    return np.flatnonzero(np.bincount(train_items, minlength=num_items) > 0).astype(np.int32)


def sample_batch_negatives(key: jax.Array, users_B: jax.Array, num_negatives: int, data
                           ) -> jax.Array:
    """:func:`sample_negatives` for a train step: int32 ``[B, M]`` unseen items per user, from
    the negative pool and the training CSR of ``data`` (`jaxrec.data.device.TrainData`)."""
    return sample_negatives(key, users_B, num_negatives, data.num_items, data["indptr"],
                            data["indices"], steps=data.search_steps, pool_P=data.get("neg_pool"),
                            bits_UxW=data.get("seen_bits"))


def check_negatives(train, pool: np.ndarray, negatives: str) -> None:
    """Every user must have an unseen item in the negative pool (host check, before compiling)."""
    counts = np.bincount(train.users, minlength=train.num_users)
    if len(counts) and counts.max() >= len(pool):
        user = int(np.argmax(counts))
        raise ValueError(f"data: user {train.user_ids[user]!r} has interacted with every item "
                         f"of the negative pool (trainer.negatives={negatives}, {len(pool)} items);"
                         " no negatives can be sampled")
