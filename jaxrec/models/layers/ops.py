"""Small array operations that the models' hot paths share."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def rowdot(a: jax.Array, b: jax.Array) -> jax.Array:
    """``sum(a * b, axis=-1)`` of broadcastable ``[..., D]`` arrays, as a product with a
    ones vector.

    XLA:CPU fuses gathers, the product and a last-axis ``sum`` into one reduction loop
    that it does not vectorise: for ``w[users] * h[items]`` over ml-latest-small's 72k
    training rows at D = 64 that loop takes ~9 ms, the matrix-vector product ~1 ms
    (measured on the 2-core CI CPU; iALS's conjugate-gradient steps are made of it).
    Accelerators run either form at memory speed. Only the summation order differs
    from ``jnp.sum``.
    """
    a, b = jnp.broadcast_arrays(a, b)
    return (a * b) @ jnp.ones((a.shape[-1],), a.dtype)


def edge_sum(table_RxD: jax.Array, src_E: jax.Array, dst_E: jax.Array, weight_E: jax.Array,
             num_rows: int, *, chunk: int | None = None) -> jax.Array:
    """``out[dst[e]] += weight[e] * table[src[e]]`` over the edges ``e``: a sparse matrix
    (``num_rows x R``, entries ``weight`` at ``(dst, src)``) times ``table``.

    On CPU the edges go through a ``lax.scan`` in chunks of ~2 MB of gathered rows, so
    each chunk's gather, scale and scatter stay in cache: on LightGCN's ml-1m-sized graph
    (535k edges, D = 64) one product takes 11 ms this way against 100 ms as one
    ``segment_sum`` over a materialised ``[E, D]`` array (2-core CPU). Accelerators take
    the one ``segment_sum``. Padded edges weigh 0.

    Args:
      chunk: edges per scan step; None: ``2**19 // D`` on CPU, all of them elsewhere.
    """
    num_edges, dim = src_E.shape[0], table_RxD.shape[-1]
    if chunk is None:
        chunk = max(256, (1 << 19) // max(dim, 1)) if jax.default_backend() == "cpu" else 0
    if not chunk or num_edges <= chunk:
        return jax.ops.segment_sum(weight_E[:, None] * table_RxD[src_E], dst_E,
                                   num_segments=num_rows)
    pad = -num_edges % chunk
    xs = tuple(jnp.pad(a, (0, pad)).reshape(-1, chunk) for a in (src_E, dst_E, weight_E))

    def add_chunk(out_RxD, chunk_edges):
        src, dst, weight = chunk_edges
        return out_RxD.at[dst].add(weight[:, None] * table_RxD[src]), None

    out = jnp.zeros((num_rows, dim), table_RxD.dtype)
    return jax.lax.scan(add_chunk, out, xs)[0]
