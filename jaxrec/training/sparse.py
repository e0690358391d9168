"""Row-sparse ("lazy") optimisers: each step reads and writes only the table rows its batch used.

A dense optax update of an embedding table touches every row every step (Adam:
read the gradient, both moments and the parameter, write three of them), so an
epoch costs O(steps x table). Here the parameters that are tables -- a leaf
whose first dimension is the number of users or items (the row rule of
`jaxrec.training.mesh.is_table`; 1-D per-row biases included; named with the
shape suffix ``_UxD`` / ``_NxD`` / ``_U`` / ``_N``) -- are updated
only at the rows the step's batch used: the batch's users for user tables, the
items the loss touched (positives and sampled negatives) for item tables. The
step gathers those rows of the gradient, parameter and moments, computes the
optimiser's update for them, and scatters them back (``.at[rows].set``): fixed
shapes, O(batch x dim). Every other parameter takes the ordinary optax update.

What untouched rows do (the documented choice, as TensorFlow Addons' ``LazyAdam``
and PyTorch's ``SparseAdam``): nothing. Their parameters and moments stay as they
are -- Adam's moments are not decayed, SGD momentum does not keep moving them,
weight decay does not shrink them. Adam's bias correction uses the global step
count. When every row is used every step (or for SGD without momentum and weight
decay) the result is the dense optimiser's.

Duplicate rows in a batch need no deduplication: the gradient rows are already
summed (``jax.grad``), so duplicates compute identical new rows and ``set``
writes the same value. With ``optim.sparse=auto`` a table is updated lazily only
when it has at least ``AUTO_MIN_RATIO`` times as many rows as a step can touch
(measured: scattering 20k touched item rows into ml-latest-small's 9,724-row table
is slower than the dense update); ``true`` makes every table lazy. Gradient
clipping (``optim.grad_clip``) takes the global
norm over every gradient, as the dense optimiser does.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxrec.training.mesh import is_table, path_name

TABLE_NAME = re.compile(r"_[UN](xD)?$")  # the shape-suffix names of per-user / per-item rows

ADAM_B1, ADAM_B2, ADAM_EPS = 0.9, 0.999, 1e-8  # optax.adam's defaults
ADAGRAD_INIT, ADAGRAD_EPS = 0.1, 1e-7  # optax.adagrad's defaults
AUTO_MIN_RATIO = 4.0  # optim.sparse=auto: lazy only for tables >= 4x the rows a step touches


class RowSparseState(NamedTuple):
    """``dense``: the ``optax.inject_hyperparams`` state of the non-table parameters (it
    holds ``hyperparams['learning_rate' | 'weight_decay']`` for the tables too);
    ``count``: steps taken; ``moments``: each optimiser moment as a tree shaped like the
    parameters, holding the tables' moments (other leaves ``optax.MaskedNode``), so
    its paths name the parameters (the mesh rules and checkpoints read them)."""

    dense: optax.OptState
    count: jax.Array
    moments: tuple  # per moment (adam: mu, nu): a tree like the parameters, tables only


@dataclasses.dataclass(frozen=True)
class RowSparseOptimizer:
    """A row-sparse optimiser: ``init(params)`` and ``apply(grads, state, params, rows)``.

    Args:
      name: adam | adamw | adagrad | sgd (the same update rules and defaults as optax's).
      dense: the inject_hyperparams optax transformation for the other parameters
        (without clipping: the global norm is taken here).
      factor: the learning-rate schedule's multiplier, ``factor(count)``.
      table_rows: ``{first dimension: index kind}``, kinds ``users`` / ``items``
        (a size shared by both maps to ``"users+items"``: both index sets).
      momentum: sgd's momentum (None or 0: none).
      grad_clip: global-norm clipping, or None.
      min_ratio: a table is updated lazily only when it has at least ``min_ratio`` times
        as many rows as the step can touch (a static shape: users in the batch, items the
        loss reports); otherwise its whole table takes the dense rule (scattering more
        rows than a small table holds costs more than streaming it). 0: always lazy.
    """

    name: str
    dense: optax.GradientTransformation
    factor: Callable[[jax.Array], jax.Array]
    table_rows: dict[int, str]
    momentum: float | None = None
    grad_clip: float | None = None
    min_ratio: float = 0.0

    def is_table(self, path, leaf) -> bool:
        """The row rule (`jaxrec.training.mesh.is_table`, 1-D rows included) on a leaf named
        as a per-row table (``..._UxD``, ``..._NxD``, ``..._U``, ``..._N``), so a dense
        kernel whose width happens to equal a vocabulary size is never taken for one."""
        return (is_table(jnp.shape(leaf), tuple(self.table_rows), vectors=True)
                and TABLE_NAME.search(path_name(path)) is not None)

    def _split(self, tree) -> tuple[list, list, Any]:
        flat, treedef = jax.tree_util.tree_flatten_with_path(tree)
        dense = [x for p, x in flat if not self.is_table(p, x)]
        tables = [x for p, x in flat if self.is_table(p, x)]
        return dense, tables, treedef

    def _initial_moments(self) -> tuple[float, ...]:
        if self.name in ("adam", "adamw"):
            return 0.0, 0.0
        if self.name == "adagrad":
            return (ADAGRAD_INIT,)
        return (0.0,) if self.momentum else ()

    def init(self, params) -> RowSparseState:
        dense, _, _ = self._split(params)
        moments = tuple(
            jax.tree_util.tree_map_with_path(
                lambda p, x, v=value: jnp.full_like(x, v) if self.is_table(p, x)
                else optax.MaskedNode(), params)
            for value in self._initial_moments())
        return RowSparseState(self.dense.init(dense), jnp.zeros((), jnp.int32), moments)

    def apply(self, grads, state: RowSparseState, params, rows: dict[str, jax.Array]):
        """One step: ``(new params, new state)``. ``rows`` maps ``users`` / ``items`` to the
        int arrays (any shape) of rows the batch used; table rows outside them must have
        zero gradient (the model's and loss's ``sparse_rows`` promise)."""
        if self.grad_clip is not None:
            norm = optax.global_norm(grads)
            grads = jax.tree.map(
                lambda g: g * jnp.minimum(1.0, self.grad_clip / jnp.maximum(norm, 1e-30)), grads)
        g_dense, g_tables, treedef = self._split(grads)
        p_dense, p_tables, _ = self._split(params)
        updates, dense_state = self.dense.update(g_dense, state.dense, p_dense)
        p_dense = optax.apply_updates(p_dense, updates)
        hyper = state.dense.hyperparams
        lr = hyper["learning_rate"] * self.factor(state.count)
        count = state.count + 1
        moment_leaves = [jax.tree.leaves(m) for m in state.moments]  # the tables' order
        per_table = list(zip(*moment_leaves, strict=True)) or [()] * len(p_tables)
        new_tables, new_moments = [], []
        for g, p, moments in zip(g_tables, p_tables, per_table, strict=True):
            idx = jnp.concatenate([rows[kind].reshape(-1)
                                   for kind in self.table_rows[p.shape[0]].split("+")])
            if p.shape[0] < self.min_ratio * idx.shape[0]:  # small table: the dense rule
                new_p, new_m = self._rows(g, p, moments, lr, hyper["weight_decay"], count)
                new_tables.append(new_p)
                new_moments.append(new_m)
                continue
            new_p, new_m = self._rows(g[idx], p[idx], tuple(m[idx] for m in moments),
                                      lr, hyper["weight_decay"], count)
            new_tables.append(p.at[idx].set(new_p, mode="drop"))
            new_moments.append(tuple(m.at[idx].set(v, mode="drop")
                                     for m, v in zip(moments, new_m, strict=True)))
        leaves, dense_it, table_it = [], iter(p_dense), iter(new_tables)
        for path, x in jax.tree_util.tree_flatten_with_path(params)[0]:
            leaves.append(next(table_it) if self.is_table(path, x) else next(dense_it))
        moments = tuple(jax.tree.unflatten(jax.tree.structure(m), list(values))
                        for m, values in zip(state.moments, zip(*new_moments, strict=True),
                                             strict=True))
        return jax.tree.unflatten(treedef, leaves), RowSparseState(dense_state, count, moments)

    def _rows(self, g, p, moments, lr, weight_decay, count):
        """The optimiser's update of gathered rows ``p`` (gradient ``g``); step ``count``
        (1-based). Returns the new rows and moments."""
        if self.name != "adamw":
            g = g + weight_decay * p  # optax.add_decayed_weights before the rule
        if self.name in ("adam", "adamw"):
            mu = ADAM_B1 * moments[0] + (1 - ADAM_B1) * g
            nu = ADAM_B2 * moments[1] + (1 - ADAM_B2) * g * g
            mu_hat = mu / (1 - ADAM_B1 ** count).astype(mu.dtype)
            nu_hat = nu / (1 - ADAM_B2 ** count).astype(nu.dtype)
            step = mu_hat / (jnp.sqrt(nu_hat) + ADAM_EPS)
            if self.name == "adamw":
                step = step + weight_decay * p
            return p - lr * step, (mu, nu)
        if self.name == "adagrad":
            acc = moments[0] + g * g
            return p - lr * jnp.where(acc > 0, jax.lax.rsqrt(acc + ADAGRAD_EPS), 0.0) * g, (acc,)
        if self.momentum:
            trace = g + self.momentum * moments[0]
            return p - lr * trace, (trace,)
        return p - lr * g, ()


def table_kinds(num_users: int, num_items: int) -> dict[int, str]:
    """``{rows: kind}`` for :class:`RowSparseOptimizer` (a size both share: both kinds)."""
    if num_users == num_items:
        return {num_users: "users+items"}
    return {num_users: "users", num_items: "items"}


def resolve_sparse(setting: str, *, model, loss, private: bool) -> bool:
    """Whether ``optim.sparse`` (auto | true | false) turns row-sparse updates on for
    this model and loss; one-line errors where ``true`` cannot be honoured."""
    reasons = []
    if not getattr(model, "sparse_rows", False):
        reasons.append(f"model {type(model).__name__} does not declare sparse_rows (its "
                       "tables' gradients may reach rows outside the batch)")
    if not getattr(loss, "sparse_rows", False):
        reasons.append(f"loss {getattr(loss, 'name', type(loss).__name__)!r} does not report "
                       "every item row it touches")
    if private:
        reasons.append("privacy=dp_sgd noises every row of the gradient (dense by design)")
    if setting == "false":
        return False
    if setting == "true" and reasons:
        raise ValueError(f"optim.sparse: true is not possible here: {reasons[0]}")
    return not reasons
