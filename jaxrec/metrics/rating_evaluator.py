"""`RatingEvaluator`: RMSE and MAE of predicted ratings over a split's pairs, on device."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxrec.metrics.rating import absolute_error, squared_error
from jaxrec.multihost import fetch

if TYPE_CHECKING:
    from jaxrec.data.interactions import Interactions

PredictFn = Callable[[Any, jax.Array, jax.Array], jax.Array]  # (params, users_B, items_B) -> [B]


@functools.lru_cache(maxsize=32)
def _program(predict_fn: PredictFn) -> Callable:
    """``(params, batches) -> errors [batches, 2, size]`` (squared, absolute; 0 on padding):
    one compiled program per model function, shared by every split and trial."""

    def body(params, b):
        preds_B = predict_fn(params, b["users"], b["items"])
        if preds_B.shape != b["users"].shape:
            raise ValueError(f"predict_fn returned shape {preds_B.shape}, expected "
                             f"{b['users'].shape}")
        se_B = jnp.where(b["mask"], squared_error(preds_B, b["ratings"]), 0.0)
        ae_B = jnp.where(b["mask"], absolute_error(preds_B, b["ratings"]), 0.0)
        return jnp.stack([se_B, ae_B])

    return jax.jit(lambda params, batches: jax.lax.map(lambda b: body(params, b), batches))


class RatingEvaluator:
    """RMSE and MAE of predicted ratings over all target interactions, on device.

    Args:
      split: prefix of the metric keys (``valid/rmse``, ``valid/mae``).
      target: interactions with the true ratings.
      batch: most pairs predicted at once; batches are sized evenly and the
        last one is padded and masked.

    ``predict_fn(params, users_B int32, items_B int32) -> preds_B`` must be pure
    and jittable. One program per ``predict_fn`` computes every pair's errors;
    the pooled metrics and each user's own come from the same pass, and evaluators
    laid out alike (`share_layout`) run the same executable.
    """

    inputs = "pairs"
    input_tables: dict[str, jax.Array] | None = None  # as ListEvaluator's

    def __init__(self, split: str, target: Interactions, *, batch: int = 65536):
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"eval.rating_batch: {batch!r} must be a positive int")
        if len(target) == 0:
            raise ValueError(f"{split}: no target interactions to compute rmse / mae on")
        self.split, self.max_batch = split, batch
        self.num_pairs = len(target)
        self._target = target
        self.layout(self.num_pairs)
        self._users = np.asarray(target.users)

    def layout(self, slots: int) -> None:
        """Lay the pairs out in evenly sized batches covering ``slots >= num_pairs`` (padding
        masked), so evaluators of different sizes can share one program's shapes."""
        n_batches = max(1, math.ceil(slots / self.max_batch))
        size = max(1, math.ceil(slots / n_batches))
        self.batch, self.shape = size, (n_batches, size)
        target = self._target

        def pad(x: np.ndarray, dtype) -> np.ndarray:
            out = np.zeros(n_batches * size, dtype)
            out[:self.num_pairs] = x
            return out.reshape(n_batches, size)

        self._batches = jax.device_put({
            "users": pad(target.users, np.int32),
            "items": pad(target.items, np.int32),
            "ratings": pad(target.ratings, np.float32),
            "mask": pad(np.ones(self.num_pairs, bool), bool),
        })

    def errors(self, predict_fn: PredictFn, params: Any) -> tuple[np.ndarray, np.ndarray]:
        """Every target pair's ``(squared error, absolute error)``, float64 ``[num_pairs]``."""
        out = fetch(_program(predict_fn)(params, self._batches)).astype(np.float64)
        return tuple(out[:, i, :].reshape(-1)[:self.num_pairs] for i in range(2))

    def evaluate(self, predict_fn: PredictFn, params: Any
                 ) -> tuple[dict[str, float], tuple[np.ndarray, dict[str, np.ndarray]]]:
        """`run`'s metrics and `per_user`'s vectors, from one pass."""
        se, ae = self.errors(predict_fn, params)
        metrics = {f"{self.split}/rmse": float(np.sqrt(se.sum() / self.num_pairs)),
                   f"{self.split}/mae": float(ae.sum() / self.num_pairs)}
        users, index = np.unique(self._users, return_inverse=True)
        count = np.bincount(index).astype(np.float64)
        return metrics, (users.astype(np.int32), {
            f"{self.split}/rmse": np.sqrt(np.bincount(index, se) / count).astype(np.float32),
            f"{self.split}/mae": (np.bincount(index, ae) / count).astype(np.float32)})

    def run(self, predict_fn: PredictFn, params: Any) -> dict[str, float]:
        """``{f"{split}/rmse": ..., f"{split}/mae": ...}`` over all target pairs."""
        return self.evaluate(predict_fn, params)[0]

    def per_user(self, predict_fn: PredictFn, params: Any
                 ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Each user's RMSE and MAE over their own target pairs (for paired tests between
        rating models). Unlike the ranking metrics', these vectors' means are not the pooled
        values `run` reports: users with more pairs weigh more there."""
        return self.evaluate(predict_fn, params)[1]
