"""Neural matrix factorisation, NeuMF (He et al. 2017, "Neural Collaborative Filtering").

A GMF branch and an MLP branch with their own embeddings, fused by one output
layer over the concatenation of the two branches' last layers::

    score(u, i) = h^T concat(p_u^G * q_i^G, phi(concat(p_u^M, q_i^M))) + b

Pre-training (Section 3.4.1 of the paper): with ``pretrained_gmf`` and
``pretrained_mlp`` (run directories of trained ``model=gmf`` and ``model=mlp``
runs on the same data), the branches start from those runs' best checkpoints
and the output layer from ``h = concat(alpha h^GMF, (1 - alpha) h^MLP)``,
``b = alpha b^GMF + (1 - alpha) b^MLP`` (the paper's ``alpha = 0.5``), so the
untrained NeuMF scores ``alpha s^GMF + (1 - alpha) s^MLP``. The paper then
trains with plain SGD (``optim=sgd``): Adam's moments were not saved with the
pre-trained models.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

from jaxrec.models.base import ModelContext
from jaxrec.models.gmf import GMF
from jaxrec.models.mlp import NCFMLP


class NeuMF(nnx.Module):
    """NeuMF: GMF and MLP branches fused by one output layer.

    Args:
      ctx: the data (`jaxrec.models.base.ModelContext`); reads ``ctx.info``, the dataset
        summary (vocabulary sizes), and with ``pretrained_*`` loads the runs through
        ``ctx.load_run``.
      gmf_dim: GMF embedding size (its predictive factors).
      mlp_dim: MLP user and item embedding size each.
      hidden: widths of the MLP's ReLU layers.
      init_std: standard deviation of the normal initialiser of the embeddings.
      alpha: weight of the GMF branch in the pre-trained output layer.
      pretrained_gmf: run directory (or its ``checkpoints/best``) of a trained
        ``GMF`` with ``dim == gmf_dim`` on the same data split, or None.
      pretrained_mlp: same for an ``NCFMLP`` with ``dim == mlp_dim`` and the
        same ``hidden``. Give both or neither.
      rngs: Flax random streams (``params`` is used).
    """

    default_loss: ClassVar[str] = "bce"  # the loss= it is meant for
    compatible_losses: ClassVar[tuple[str, ...]] = ("bce", "bpr")
    sparse_rows: ClassVar[bool] = True  # user/item tables get gradient only at batch rows

    def __init__(self, ctx: ModelContext, *, gmf_dim: int = 32, mlp_dim: int = 32,
                 hidden: Sequence[int] = (32, 16, 8), init_std: float = 0.01, alpha: float = 0.5,
                 pretrained_gmf: str | None = None, pretrained_mlp: str | None = None,
                 rngs: nnx.Rngs):
        if (pretrained_gmf is None) != (pretrained_mlp is None):
            raise ValueError("model.pretrained_gmf / model.pretrained_mlp: give both run "
                             f"directories or neither, got {pretrained_gmf!r} and "
                             f"{pretrained_mlp!r}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"model.alpha: must be in [0, 1], got {alpha}")
        self.gmf = GMF(ctx, dim=gmf_dim, init_std=init_std, head=False, rngs=rngs)
        self.mlp = NCFMLP(ctx, dim=mlp_dim, hidden=hidden, init_std=init_std, head=False,
                          rngs=rngs)
        width = gmf_dim + self.mlp.hidden[-1]
        bound = (3.0 / width) ** 0.5  # lecun_uniform, as the reference implementation
        self.out_kernel_H = nnx.Param(jax.random.uniform(rngs.params(), (width,),
                                                         minval=-bound, maxval=bound))
        self.out_bias = nnx.Param(jnp.zeros(()))
        self.gmf_dim = gmf_dim
        if pretrained_gmf is not None:
            gmf = load_pretrained(ctx, pretrained_gmf, GMF, "model.pretrained_gmf")
            mlp = load_pretrained(ctx, pretrained_mlp, NCFMLP, "model.pretrained_mlp")
            self.init_from(gmf, mlp, alpha=alpha)

    def init_from(self, gmf: GMF, mlp: NCFMLP, *, alpha: float = 0.5) -> None:
        """Copy trained GMF and MLP parameters in and fuse their output layers (in place).

        Afterwards ``self(u, i) == alpha * gmf(u, i) + (1 - alpha) * mlp(u, i)``.
        """
        if gmf.dim != self.gmf.dim:
            raise ValueError(f"model.gmf_dim: {self.gmf.dim}, but the pre-trained GMF has "
                             f"dim {gmf.dim}")
        if (mlp.dim, mlp.hidden) != (self.mlp.dim, self.mlp.hidden):
            raise ValueError(f"model.mlp_dim / model.hidden: {self.mlp.dim} / "
                             f"{list(self.mlp.hidden)}, but the pre-trained MLP has "
                             f"{mlp.dim} / {list(mlp.hidden)}")
        for name in ("user_emb_UxD", "item_emb_NxD"):
            getattr(self.gmf, name)[...] = getattr(gmf, name)[...]
            getattr(self.mlp, name)[...] = getattr(mlp, name)[...]
        for mine, theirs in zip(self.mlp.layers, mlp.layers, strict=True):
            mine.kernel[...] = theirs.kernel[...]
            mine.bias[...] = theirs.bias[...]
        self.out_kernel_H[...] = jnp.concatenate([alpha * gmf.out_kernel_D[...],
                                                  (1.0 - alpha) * mlp.out_kernel_H[...]])
        self.out_bias[...] = alpha * gmf.out_bias[...] + (1.0 - alpha) * mlp.out_bias[...]

    def __call__(self, users: jax.Array, items: jax.Array) -> jax.Array:
        users = jnp.broadcast_to(users, items.shape)
        h = self.out_kernel_H[...]
        return (self.gmf.weighted(users, items, h[: self.gmf_dim])
                + self.mlp.tower(users, items) @ h[self.gmf_dim:] + self.out_bias[...])

    def score_all(self, users_U: jax.Array) -> jax.Array:
        h = self.out_kernel_H[...]
        return (self.gmf.weighted_all(users_U, h[: self.gmf_dim])
                + self.mlp.tower_all(users_U) @ h[self.gmf_dim:] + self.out_bias[...])

    def l2_rows(self, users: jax.Array, items: jax.Array) -> list[jax.Array]:
        h = self.out_kernel_H[...]  # penalised once per example, as GMF's h
        return (self.gmf.l2_rows(users, items) + self.mlp.l2_rows(users, items)
                + [jnp.broadcast_to(h, (users.shape[0], h.shape[0]))])


def load_pretrained(ctx: ModelContext, path: str, cls: type, field: str):
    """The best-checkpoint model of the run at ``path`` (a run dir or its ``checkpoints/best``),
    loaded by ``ctx.load_run``; it must be a ``cls`` trained on data like ``ctx.info``."""
    if ctx.load_run is None:
        raise ValueError(f"{field}: no run loader in the model context (ModelContext.load_run); "
                         "build the model through jaxrec train")
    try:
        model, info = ctx.load_run(str(path))
    except FileNotFoundError as err:  # no run dir, or trained with trainer.save_checkpoint=false
        raise ValueError(f"{field}: {err}") from None
    if not isinstance(model, cls):
        raise ValueError(f"{field}: {path} trained {type(model).__name__}, expected "
                         f"{cls.__name__}")
    if info != ctx.info:
        raise ValueError(f"{field}: {path} was trained on other data ({info}); "
                         f"this run has {ctx.info}")
    return model
