"""Full ranking of a huge catalogue with the items split over devices: top-k merged on device.

On a ``(data, model)`` mesh whose ``model`` axis row-shards the item table
(`jaxrec.training.mesh`), a block's scores ``[U, N]`` are computed sharded
``P("data", "model")``: each device holds ``[U / data, N / model]`` of them,
never the whole block (a catalogue that ``model`` does not divide is padded with
``-inf`` columns, which rank after every real item since ``k <= N``).
:func:`sharded_top_k` then works on each device's tile alone (``jax.shard_map``):
it masks the excluded items that fall in the tile, takes the tile's top ``k`` and
reads their relevance, all-gathers the ``model`` tiles' ``[U / data, k]`` lists
(``k x model`` candidates per user) and keeps the best ``k``. Item ids are ascending
along the ``model`` axis and ``lax.top_k`` prefers the lower position among equal
scores, so the merged lists, ties included, are exactly the unsharded ``lax.top_k``'s.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P


def can_shard_items(mesh: Mesh | None, block: int) -> bool:
    """Whether ``mesh`` has a ``model`` axis (> 1) to split the items over and its ``data``
    axis divides a block of ``block`` users."""
    if mesh is None or "model" not in mesh.shape or mesh.shape["model"] < 2:
        return False
    return block % mesh.shape["data"] == 0


def sharded_top_k(scores_UxN: jax.Array, exclude_E: jax.Array, relevant_E: jax.Array, *,
                  k: int, mesh: Mesh) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The block's top ``k`` from item-sharded scores.

    Args:
      scores_UxN: float scores of a block of ``U`` users (constrained to
        ``P("data", "model")``).
      exclude_E, relevant_E: int32 block keys ``row * N + item`` (padding: ``U * N``).
      k: the cut-off (``<= N``).
      mesh: the ``(data, model)`` mesh.

    Returns:
      ``(top_scores_UxK float32, top_UxK int32 item ids, hits_UxK bool)``, sharded over
      ``data``; excluded items score ``-inf``.
    """
    num_items = scores_UxN.shape[1]
    shard = -(-num_items // mesh.shape["model"])
    local_k = min(k, shard)
    if shard * mesh.shape["model"] != num_items:  # -inf columns after the last item
        scores_UxN = jnp.pad(scores_UxN.astype(jnp.float32),
                             ((0, 0), (0, shard * mesh.shape["model"] - num_items)),
                             constant_values=-jnp.inf)

    def tile(scores_uxn, exclude_e, relevant_e):
        u = scores_uxn.shape[0]
        row0 = jax.lax.axis_index("data") * u
        item0 = jax.lax.axis_index("model") * shard

        def local(keys_E):  # block keys -> keys of this tile (out of range: dropped)
            row, item = keys_E // num_items - row0, keys_E % num_items - item0
            inside = (row >= 0) & (row < u) & (item >= 0) & (item < shard)
            return jnp.where(inside, row * shard + item, u * shard)

        flat_X = scores_uxn.astype(jnp.float32).reshape(-1)
        flat_X = flat_X.at[local(exclude_e)].set(-jnp.inf, mode="drop")
        top_s_uxk, top_uxk = jax.lax.top_k(flat_X.reshape(u, shard), local_k)
        relevant_X = jnp.zeros(u * shard, jnp.bool_).at[local(relevant_e)].set(True,
                                                                                mode="drop")
        hits_uxk = jnp.take_along_axis(relevant_X.reshape(u, shard), top_uxk, axis=1)
        # every model tile's candidates, in item order: [u, model * local_k]
        cand_s, cand_i, cand_h = (jax.lax.all_gather(x, "model", axis=1, tiled=True)
                                  for x in (top_s_uxk, top_uxk + item0, hits_uxk))
        best_s_uxK, pos_uxK = jax.lax.top_k(cand_s, k)
        return (best_s_uxK, jnp.take_along_axis(cand_i, pos_uxK, axis=1),
                jnp.take_along_axis(cand_h, pos_uxK, axis=1))

    return jax.shard_map(tile, mesh=mesh, in_specs=(P("data", "model"), P(), P()),
                         out_specs=(P("data"), P("data"), P("data")), check_vma=False
                         )(scores_UxN, exclude_E, relevant_E)
