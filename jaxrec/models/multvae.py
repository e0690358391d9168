"""Mult-VAE and Mult-DAE (Liang et al. 2018, "Variational Autoencoders for Collaborative
Filtering", WWW).

Each user is their whole 0/1 history ``x_u`` over the N items. The encoder reads
the L2-normalised, dropout-corrupted history; the decoder returns logits over
all items, trained with the multinomial log-likelihood (``loss=multinomial``,
batch kind ``users``)::

    Mult-VAE:  [mu, log var] = f_enc(drop(x / ||x||)),  z = mu + eps * sigma,
               logits = f_dec(z);  loss = -sum_i x_i log softmax(logits)_i + beta KL
    Mult-DAE:  z = tanh(f_enc(drop(x / ||x||))),  logits = f_dec(z);  no KL term

with ``f_enc``, ``f_dec`` MLPs of tanh layers (the paper's ``[N -> 600 -> 200 ->
600 -> N]``). Scoring uses ``z = mu`` and no dropout. Because a user is their
history, the model scores a *new* user's fold-in history too
(:meth:`MultVAE.score_history`, the strong-generalisation protocol).

Memory: the training history is held as a ``U x N`` bool table (6 MB for
ml-latest-small, 22 MB for ml-1m, 3.7 GB for ml-20m).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxrec.models.base import ModelContext
from jaxrec.models.layers.history import UserHistory, dropout, history_matrix


class MultVAE(nnx.Module):
    """Mult-VAE (``variational=True``) or Mult-DAE (``variational=False``).

    Args:
      ctx: the data (`jaxrec.models.base.ModelContext`); reads ``ctx.info``, the dataset
        summary (vocabulary sizes).
      hidden: encoder hidden widths (the decoder mirrors them); paper: ``[600]``.
      latent: latent dimension; paper: 200.
      dropout: input dropout rate on the normalised history; paper: 0.5.
      variational: Mult-VAE (Gaussian latent, KL term) or Mult-DAE (deterministic).
      ctx.train: the training interactions (``users``, ``items`` arrays) whose
        histories the model encodes; ``jaxrec train`` passes the training split.
        None: every history is empty (for shape tests).
      rngs: Flax random streams (``params`` is used for the Xavier initialisers).

    Train with ``loss=multinomial`` (batch kind ``users``: one example per training
    user). ``__call__`` and ``score_all`` score a training user from their stored
    history; ``score_history`` from a given one.
    """

    default_loss: ClassVar[str] = "multinomial"  # the loss= it is meant for
    compatible_losses: ClassVar[tuple[str, ...]] = ("multinomial",)

    def __init__(self, ctx: ModelContext, *, hidden: Sequence[int] = (600,), latent: int = 200,
                 dropout: float = 0.5, variational: bool = True, rngs: nnx.Rngs):
        info = ctx.info
        train = ctx.train
        hidden = [int(h) for h in hidden]
        if latent < 1 or any(h < 1 for h in hidden):
            raise ValueError(f"model.hidden / model.latent: widths must be >= 1, got "
                             f"{hidden} / {latent}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"model.dropout: must be in [0, 1), got {dropout}")
        self.variational = bool(variational)
        self.dropout_rate = float(dropout)
        self.num_items = info.num_items
        enc_dims = [info.num_items, *hidden, latent * (2 if variational else 1)]
        dec_dims = [latent, *hidden[::-1], info.num_items]
        kw = dict(kernel_init=nnx.initializers.xavier_uniform(), rngs=rngs)
        self.encoder = nnx.List([nnx.Linear(a, b, **kw)
                                 for a, b in zip(enc_dims[:-1], enc_dims[1:], strict=True)])
        self.decoder = nnx.List([nnx.Linear(a, b, **kw)
                                 for a, b in zip(dec_dims[:-1], dec_dims[1:], strict=True)])
        self.num_users = info.num_users
        self.history_UxN = UserHistory(jnp.asarray(self.history_tables(train)["history_UxN"]))

    def history_tables(self, interactions: Any) -> dict[str, np.ndarray]:
        """``{"history_UxN": bool [U, N]}`` of ``interactions`` (`HistoryInput`)."""
        return {"history_UxN": history_matrix(interactions, self.num_users, self.num_items)}

    def _forward(self, x_BxN: jax.Array, key: jax.Array | None) -> tuple[jax.Array, jax.Array]:
        """``(logits_BxN, kl_B)``; ``key`` None: deterministic (no dropout, ``z = mu``)."""
        norm_B1 = jnp.sqrt(jnp.sum(x_BxN * x_BxN, axis=-1, keepdims=True))
        h = x_BxN / jnp.maximum(norm_B1, 1e-12)
        k_drop, k_eps = jax.random.split(key) if key is not None else (None, None)
        h = dropout(h, self.dropout_rate, k_drop)
        for i, layer in enumerate(self.encoder):
            h = layer(h)
            if i < len(self.encoder) - 1 or not self.variational:
                h = jnp.tanh(h)
        if self.variational:
            mu_BxD, logvar_BxD = jnp.split(h, 2, axis=-1)
            kl_B = 0.5 * jnp.sum(jnp.exp(logvar_BxD) + mu_BxD * mu_BxD - 1.0 - logvar_BxD,
                                 axis=-1)
            z = mu_BxD
            if k_eps is not None:
                z = mu_BxD + jnp.exp(0.5 * logvar_BxD) * jax.random.normal(k_eps, mu_BxD.shape)
        else:
            z, kl_B = h, jnp.zeros(h.shape[:-1], h.dtype)
        for i, layer in enumerate(self.decoder):
            z = layer(z)
            if i < len(self.decoder) - 1:
                z = jnp.tanh(z)
        return z, kl_B

    def user_logits(self, users_B: jax.Array, key: jax.Array, *, train: bool = True
                    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``(logits_BxN, kl_B, targets_BxN)`` of training users; dropout and sampling
        keyed by ``key`` when ``train``. The targets are the users' histories."""
        x_BxN = self.history_UxN[...][users_B].astype(jnp.float32)
        logits_BxN, kl_B = self._forward(x_BxN, key if train else None)
        return logits_BxN, kl_B, x_BxN

    def score_history(self, history_UxN: jax.Array) -> jax.Array:
        """Scores of every item from 0/1 histories ``[U, N]`` (new users: fold-in)."""
        return self._forward(history_UxN.astype(jnp.float32), None)[0]

    def score_all(self, users_U: jax.Array) -> jax.Array:
        return self.score_history(self.history_UxN[...][users_U])

    def __call__(self, users: jax.Array, items: jax.Array) -> jax.Array:
        shape = jnp.broadcast_shapes(users.shape, items.shape)
        logits = self.score_all(users.reshape(-1)).reshape(*users.shape, self.num_items)
        logits = jnp.broadcast_to(logits, (*shape, self.num_items))
        return jnp.take_along_axis(logits, jnp.broadcast_to(items, shape)[..., None],
                                   axis=-1)[..., 0]

    def l2_rows(self, users: jax.Array, items: jax.Array) -> list[jax.Array]:
        return []  # no per-row parameters: regularise with optim.weight_decay
