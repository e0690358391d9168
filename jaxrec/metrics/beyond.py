"""Beyond-accuracy metrics of top-k lists, in pure ``jnp``.

Per user ``u`` with list ``L_u`` (the first ``k`` items that are real
recommendations: excluded or padded entries at the tail do not count), with
``n_i`` the number of distinct training users of item ``i`` and ``|U|`` the
number of users with a training interaction::

    avg_popularity@k = mean_{i in L_u} n_i                      (ARP, Abdollahpouri et al. 2019)
    novelty@k        = mean_{i in L_u} -log2(max(n_i, 1) / |U|) (mean self-information,
                                                                 Zhou et al. 2010)
    ild@k            = 1 - mean_{i < j in L_u} cos(f_i, f_j)    (intra-list diversity,
                                                                 Ziegler et al. 2005)

``f_i`` are item feature vectors (MovieLens: multi-hot genres); an all-zero
vector has cosine 0 with everything. Lists with fewer than two items have
``ild = 0``; empty lists have 0 everywhere.

Over all evaluated users' lists together, with ``c_i`` the number of lists
containing item ``i`` (its exposure) and ``N`` the catalogue size::

    coverage@k = |{i : c_i > 0}| / N
    gini@k     = sum_{j=1..N} (2j - N - 1) c_(j) / (N sum_i c_i),  c_(1) <= ... <= c_(N)

(the Gini index of exposure over the whole catalogue, unexposed items
included: 0 when every item is recommended equally often, ``1 - 1/N`` when a
single item takes all exposure; as in RecBole's ``GiniIndex``).

Directions (`HIGHER_IS_BETTER`), the conventional reading of each: these
metrics describe a list rather than score it, but sweeps, early stopping and
``jaxrec compare`` need a side. Higher is better for ``novelty``, ``ild`` and
``coverage`` (less obvious, more varied lists over more of the catalogue);
lower is better for ``avg_popularity`` (less popularity bias, as Abdollahpouri
et al. 2019 read ARP) and ``gini`` (more equal exposure).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def item_user_counts(train) -> tuple[np.ndarray, int]:
    """``(n_N, |U|)``: distinct training users per item, and users with any training row."""
    keys = np.unique(train.users.astype(np.int64) * train.num_items + train.items)
    n_N = np.bincount(keys % train.num_items, minlength=train.num_items)
    return n_N, int(len(np.unique(train.users)))


def self_information(n_N: np.ndarray, num_users: int) -> np.ndarray:
    """float32 ``-log2(max(n_i, 1) / |U|)``: items never seen in training count as seen once."""
    return (np.log2(max(num_users, 1)) - np.log2(np.maximum(n_N, 1))).astype(np.float32)


def unit_rows(x_NxG: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm; all-zero rows stay zero."""
    norm = np.linalg.norm(x_NxG, axis=1, keepdims=True)
    return np.where(norm > 0, x_NxG / np.maximum(norm, 1e-30), 0.0).astype(np.float32)


def top_mask(valid_UxK: jax.Array, k: int) -> jax.Array:
    """``valid_UxK`` restricted to the first ``k`` ranks.

    A mask rather than a slice ``[:, :k]`` of the top-k indices: slices of
    different widths of one ``lax.top_k`` output make XLA's CPU backend fall
    back from its top-k kernel to a full sort of every score row (~80x slower).
    """
    if not 1 <= k <= valid_UxK.shape[-1]:
        raise ValueError(f"cut-off k={k} must be in [1, {valid_UxK.shape[-1]}] (the top-K width)")
    return valid_UxK & (jnp.arange(valid_UxK.shape[-1]) < k)[None, :]


def _list_mean(values_UxK: jax.Array, mask_UxK: jax.Array) -> jax.Array:
    n_U = mask_UxK.sum(-1).astype(jnp.float32)
    total_U = jnp.where(mask_UxK, values_UxK, 0.0).sum(-1)
    return jnp.where(n_U > 0, total_U / jnp.maximum(n_U, 1.0), 0.0)


def avg_popularity(items_UxK: jax.Array, valid_UxK: jax.Array, k: int,
                   ctx: dict[str, jax.Array]) -> jax.Array:
    """Mean training popularity ``n_i`` of the top-k items: float32 ``[U]``.

    Args:
      items_UxK: int32 ranked item indices.
      valid_UxK: bool, True for real recommendations.
      k: static cut-off.
      ctx: holds ``popularity_N`` (float32 ``n_i``).
    """
    return _list_mean(ctx["popularity_N"][items_UxK], top_mask(valid_UxK, k))


def novelty(items_UxK: jax.Array, valid_UxK: jax.Array, k: int,
            ctx: dict[str, jax.Array]) -> jax.Array:
    """Mean self-information ``-log2 p(i)`` of the top-k items; ``ctx["self_info_N"]``."""
    return _list_mean(ctx["self_info_N"][items_UxK], top_mask(valid_UxK, k))


def intra_list_diversity(items_UxK: jax.Array, valid_UxK: jax.Array, k: int,
                         ctx: dict[str, jax.Array]) -> jax.Array:
    """``1 -`` mean pairwise cosine of the top-k items' features; ``ctx["unit_features_NxG"]``."""
    mask_UxK = top_mask(valid_UxK, k)
    f_UxKxG = jnp.where(mask_UxK[:, :, None], ctx["unit_features_NxG"][items_UxK], 0.0)
    sum_UxG = f_UxKxG.sum(1)  # sum_{i != j} cos = |sum_i f_i|^2 - sum_i |f_i|^2
    pair_sum_U = (sum_UxG * sum_UxG).sum(-1) - (f_UxKxG * f_UxKxG).sum((1, 2))
    n_U = mask_UxK.sum(-1).astype(jnp.float32)
    pairs_U = n_U * (n_U - 1.0)
    return jnp.where(n_U >= 2, 1.0 - pair_sum_U / jnp.maximum(pairs_U, 1.0), 0.0)


HIGHER_IS_BETTER: dict[str, bool] = {"avg_popularity": False, "novelty": True, "ild": True,
                                     "coverage": True, "gini": False}
"""Direction of each beyond-accuracy metric (see the module docstring)."""


def exposure_counts(items_UxK: jax.Array, weight_UxK: jax.Array, num_items: int) -> jax.Array:
    """float32 ``[N]``: the summed ``weight`` of each item over all list entries."""
    return jnp.zeros(num_items, jnp.float32).at[items_UxK.reshape(-1)].add(
        weight_UxK.reshape(-1).astype(jnp.float32))


def coverage(exposure_N: jax.Array) -> jax.Array:
    """Share of the catalogue recommended to at least one user."""
    return (exposure_N > 0).mean(dtype=jnp.float32)


def gini(exposure_N: jax.Array) -> jax.Array:
    """Gini index of the exposure counts over all ``N`` items (0 = equal exposure)."""
    n = exposure_N.shape[0]
    sorted_N = jnp.sort(exposure_N.astype(jnp.float32))
    weights_N = 2.0 * jnp.arange(1, n + 1, dtype=jnp.float32) - n - 1.0
    total = sorted_N.sum()
    return jnp.where(total > 0, (weights_N @ sorted_N) / (n * jnp.maximum(total, 1e-30)), 0.0)
