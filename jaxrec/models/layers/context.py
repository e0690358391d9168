"""Per-interaction context fields of the feature models (``model.context`` of DeepFM,
DCN-V2 and the two-tower model): hour of day, weekday, the gap since the user's
previous interaction and the dataset's extra interaction columns (e.g. ``device``).

A context-aware score is ``score(u, i | c)``: the user (request) side gets one more
field per context field, ``v_c = E_c[c]``. Where ``c`` comes from:

* **training**: each training row's own context, computed on the host once
  (``context_ids(train)``, `jaxrec.data.features.context.ContextSpec.ids`), carried on
  device as ``TrainData["context"]`` and gathered into the batch as ``batch["context"]``
  ``[B, C]`` by the epoch program; the losses pass it on (``model(users, items,
  context=...)``, `jaxrec.losses.base.context_kwargs`);
* **scoring** (``score_all``, and ``__call__`` without ``context``): the per-user
  request table ``request_UxC``, a constant model variable. The evaluators of each
  split swap in that split's table (``request_tables(known, heldout)``, through
  `jaxrec.metrics.inputs`): the context of the user's first held-out interaction of
  the split. The table the model is built with (and ``recommend`` uses) holds each
  user's latest training interaction's context.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxrec.data.features.context import ContextSpec


class RequestContext(nnx.Variable):
    """Per-user context ids ``[U, C]`` of the request being scored: constant data,
    replaced per evaluated split (`jaxrec.metrics.scoring.scoring_state`), never trained."""


class ContextFields(nnx.Module):
    """One embedding table per context field (one array, a row range per field) and,
    with ``bias``, a first-order weight per context value.

    Args:
      train: the training interactions (vocabularies of column fields, the default
        request table).
      names: the context fields (`jaxrec.data.features.context.ContextSpec`).
      num_users: U, the rows of the request table.
      dim: embedding dimension D.
      init_std: standard deviation of the normal initialiser.
      bias: also learn a scalar weight per context value (FM first order).
      rngs: Flax random streams.
    """

    def __init__(self, train: Any, names: Sequence[str], num_users: int, dim: int, *,
                 init_std: float = 0.05, bias: bool = False, rngs: nnx.Rngs):
        if train is None:
            raise ValueError("model.context: the model needs the training interactions")
        self.spec = ContextSpec.build(train, names)
        sizes = self.spec.sizes
        self.offsets = tuple(int(x) for x in np.cumsum([0, *sizes])[:-1])
        self.num_users = int(num_users)
        self.table = nnx.Param(jax.nn.initializers.normal(init_std)(
            rngs.params(), (sum(sizes), dim)))
        self.bias = nnx.Param(jnp.zeros((sum(sizes),))) if bias else None
        self.request_UxC = RequestContext(jnp.asarray(
            self.spec.request_ids(train, None, self.num_users)))

    @property
    def num_fields(self) -> int:
        return len(self.spec.names)

    def _ids(self, users: jax.Array, context: jax.Array | None) -> jax.Array:
        """Offset ids ``[..., C]``: ``context`` (``users.shape + (C,)``) or the request table's."""
        ids = self.request_UxC[...][users] if context is None else context
        offsets = jnp.asarray(self.offsets, jnp.int32).reshape((1,) * (ids.ndim - 1) + (-1,))
        return ids + offsets

    def fields(self, users: jax.Array, context: jax.Array | None = None) -> jax.Array:
        """``[..., C, D]`` context field vectors of ``users`` (any shape)."""
        return self.table[...][self._ids(users, context)]

    def first_order(self, users: jax.Array, context: jax.Array | None = None) -> jax.Array:
        """``[...]`` summed first-order weights of the context values (needs ``bias``)."""
        return jnp.sum(self.bias[...][self._ids(users, context)], axis=-1)

    def request_table(self, known: Any, heldout: Any) -> np.ndarray:
        """int32 ``[U, C]``: the request of each user with ``heldout`` rows (the first
        one's context, the gap from ``known``), else of their latest ``known`` row."""
        return self.spec.request_ids(known, heldout, self.num_users)


class ContextInputs:
    """The `jaxrec.models.base.ContextInput` methods of a model whose context module is
    the attribute path ``context_path`` (None there: no context fields)."""

    context_path: str = "context"

    def _context_module(self) -> ContextFields | None:
        obj = self
        for part in self.context_path.split("."):
            obj = getattr(obj, part, None)
        return obj

    @property
    def context_fields(self) -> tuple[str, ...]:
        """The context fields the model reads (empty: none)."""
        module = self._context_module()
        return module.spec.names if module is not None else ()

    def context_ids(self, interactions: Any) -> np.ndarray:
        """int32 ``[E, C]``: the context ids of each row of ``interactions`` (host)."""
        module = self._context_module()
        if module is None:
            return np.zeros((len(interactions.users), 0), np.int32)
        return module.spec.ids(interactions)

    def request_tables(self, known: Any, heldout: Any) -> dict[str, np.ndarray]:
        """``{variable path: [U, C]}``: the request table for scoring ``heldout`` after
        ``known`` (`ContextFields.request_table`); empty without context fields."""
        module = self._context_module()
        if module is None:
            return {}
        return {f"{self.context_path}.request_UxC": module.request_table(known, heldout)}
