"""The device-resident training data every step and closed-form solve reads.

:class:`TrainData` is a pytree: its arrays are device data (shared, not
vmapped, by stacked trial members), and two sizes the samplers need are static
(part of the compiled program). It reads like a mapping (``data["indptr"]``),
so models' ``solve_epoch(data, key)`` and losses index it by name.

Arrays:
  ``users``, ``items``, ``ratings`` ``[R]``: the rows an epoch iterates -- the
  training interactions for losses with ``rows = "interactions"``, the active
  training users for ``rows = "users"`` (``items`` / ``ratings`` then hold
  placeholders);
  ``indptr`` ``[U + 1]``, ``indices`` ``[E]``: every user's sorted training items
  (the CSR negative samplers reject against);
  ``seen_bits`` ``[U, ceil(N / 32)]`` uint32: the same lists as a bitmap, when it fits in
  `jaxrec.data.sampling.SEEN_BITS_MAX_BYTES` (one gather per rejection test);
  ``item_counts`` ``[N]``: training interactions per item;
  ``neg_pool`` ``[P]``: the items negatives are drawn from
  (`jaxrec.data.sampling.negative_pool`);
  ``row_inputs``: further per-row arrays the model reads from its batch (``context``
  ``[R, C]``: `jaxrec.models.base.row_inputs`), gathered like ``users``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np

from jaxrec.data.sampling import num_search_steps, seen_bits

ROWS = ("interactions", "users", "none")


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class TrainData:
    """Training arrays on device plus the static sizes the samplers need.

    Attributes:
      arrays: the named device arrays (see the module docstring).
      num_items: catalogue size N (static).
      search_steps: binary-search iterations covering the longest training list (static).
      num_interactions: E, the number of training interactions (static).
      row_inputs: names of the further per-row arrays a batch carries (static).
    """

    arrays: dict[str, jax.Array]
    num_items: int = dataclasses.field(metadata={"static": True})
    search_steps: int = dataclasses.field(metadata={"static": True})
    num_interactions: int = dataclasses.field(metadata={"static": True})
    row_inputs: tuple[str, ...] = dataclasses.field(default=(), metadata={"static": True})

    @property
    def batch_fields(self) -> tuple[str, ...]:
        """The per-row arrays the epoch gathers into each batch."""
        return ("users", "items", "ratings", *self.row_inputs)

    def __getitem__(self, name: str) -> jax.Array:
        return self.arrays[name]

    def __contains__(self, name: str) -> bool:
        return name in self.arrays

    def get(self, name: str, default: Any = None) -> Any:
        return self.arrays.get(name, default)

    @property
    def num_rows(self) -> int:
        """Rows an epoch iterates (interactions or users)."""
        return int(self.arrays["users"].shape[0])


def host_arrays(train, pool_P: np.ndarray, *, rows: str = "interactions",
                extra: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """The host (numpy) arrays `train_data` puts on device (the memory plan sizes them)."""
    if rows not in ROWS:
        raise ValueError(f"loss.rows: {rows!r} is not one of {', '.join(ROWS)}")
    if extra and rows != "interactions":
        raise ValueError(f"model: per-interaction inputs ({', '.join(extra)}) need a loss "
                         f"over interactions, not loss.rows={rows}")
    indptr, indices = train.csr()
    arrays = {"users": np.asarray(train.users, np.int32),
              "items": np.asarray(train.items, np.int32),
              "ratings": np.asarray(train.ratings, np.float32),
              "indptr": np.asarray(indptr, np.int32), "indices": np.asarray(indices, np.int32),
              "item_counts": np.bincount(train.items, minlength=train.num_items
                                         ).astype(np.float32),
              "neg_pool": np.asarray(pool_P), **(extra or {})}
    bits = seen_bits(arrays["indptr"], arrays["indices"], train.num_items)
    if bits is not None:
        arrays["seen_bits"] = bits
    if rows == "users":
        active = np.flatnonzero(np.diff(np.asarray(indptr)) > 0).astype(np.int32)
        arrays.update(users=active, items=np.zeros(len(active), np.int32),
                      ratings=np.ones(len(active), np.float32))
    return arrays


def train_data(train, pool_P: np.ndarray, *, rows: str = "interactions",
               extra: dict[str, np.ndarray] | None = None, on_host: bool = False
               ) -> TrainData:
    """Put the training split on device for an epoch over ``rows``.

    Args:
      train: the training `jaxrec.data.interactions.Interactions`.
      pool_P: the items negatives are drawn from (`jaxrec.data.sampling.negative_pool`).
      rows: ``interactions`` (one row per training interaction), ``users`` (one per
        user with a training interaction: whole-user losses) or ``none`` (closed-form
        solves, which read the interactions).
      extra: per-row arrays ``[E, ...]`` the model reads from its batch
        (`jaxrec.models.base.row_inputs`).
      on_host: keep the arrays in host memory (a device mesh places them itself).
    """
    arrays = host_arrays(train, pool_P, rows=rows, extra=extra)
    # put as they are: a dtype conversion on device would compile a program per array
    return TrainData(arrays if on_host else jax.device_put(arrays),
                     num_items=int(train.num_items),
                     search_steps=num_search_steps(arrays["indptr"]),
                     num_interactions=len(train), row_inputs=tuple(extra or ()))
