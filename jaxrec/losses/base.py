"""The loss contract: a loss owns its batch.

Like an optax ``GradientTransformation`` is an ``(init, update)`` pair, a loss is a
small protocol the train step calls without knowing what the loss samples:

``rows``
    what an epoch iterates: ``"interactions"`` (one row per training
    interaction), ``"users"`` (one row per training user: whole-user losses) or
    ``"none"`` (no gradient steps: closed-form models, ``loss=none``).
``default_monitor``
    the metric key early stopping watches when ``trainer.monitor=auto``.
``samples_unseen``
    whether it rejection-samples items the user has not seen (the assembly then
    checks that every user has one in the negative pool).
``l2``
    weight of the per-batch L2 penalty on the rows a batch touches (0: none).
``name``
    its ``configs/loss`` file (``loss=<name>``).
``check_model(model)``
    a one-line ``ValueError`` when the loss cannot train ``model`` (run at
    assembly, before anything compiles); first :func:`check_loss_suits_model`: a model
    states ``default_loss`` and ``compatible_losses`` (class attributes).
``objective(model, batch, data, key, step) -> (value, touched_BxT)``
    the batch objective (a scalar) and the items whose parameter rows the L2
    penalty covers. ``batch`` holds ``users``, ``items``, ``ratings`` and ``mask``
    ``[B]`` (0 for padding) of the rows; ``data`` is the device-resident
    `jaxrec.data.device.TrainData` (CSR for negative sampling, the negative pool);
    ``key`` is this step's PRNG key and ``step`` the global step count. A model with
    context fields (`jaxrec.models.base.ContextInput`) also gets ``context`` ``[B, C]``,
    each row's context ids, which the loss passes on (:func:`context_kwargs`); such a
    loss says so with ``passes_context = True``.

A new batch kind is one loss file: the step, the training loop and the sweep
never branch on it.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, runtime_checkable

import jax

from jaxrec.models.base import (
    ClosedForm,
    NextItemLogits,
    RowRegularized,
    Scorer,
    UserLogits,
    uses_context,
)


@runtime_checkable
class Loss(Protocol):
    name: ClassVar[str]
    rows: ClassVar[str]
    samples_unseen: ClassVar[bool]
    default_monitor: ClassVar[str]
    l2: float

    def check_model(self, model: Any) -> None: ...

    def objective(self, model: Any, batch: dict[str, jax.Array], data: Any, key: jax.Array,
                  step: jax.Array) -> tuple[jax.Array, jax.Array]: ...


def check_loss_suits_model(loss: Any, model: Any) -> None:
    """One-line ``ValueError`` unless ``loss`` is among the losses ``model`` declares
    (``compatible_losses``; ``default_loss`` is the one it is meant for). Models that
    declare nothing (out of tree) and losses without a ``name`` are not checked here."""
    compatible = getattr(model, "compatible_losses", None)
    loss_name = getattr(loss, "name", None)
    if compatible is None or loss_name is None or loss_name in compatible:
        return
    default = getattr(model, "default_loss", None) or compatible[0]
    raise ValueError(f"loss={loss_name} does not suit model {type(model).__name__}: it is "
                     f"meant for loss={default} (compatible: {', '.join(compatible)}); add "
                     f"loss={default} to the command line")


def check_gradient_model(loss: Any, model: Any, *, needs: tuple[type, ...] = (Scorer,),
                         hint: str = "") -> None:
    """The checks every gradient-trained loss makes: the loss suits the model
    (:func:`check_loss_suits_model`), the model is not closed-form, has the capabilities
    ``needs`` and, with ``loss.l2 > 0``, names its rows (`RowRegularized`)."""
    check_loss_suits_model(loss, model)
    name, model_name = type(loss).__name__, type(model).__name__
    if isinstance(model, ClosedForm):
        raise ValueError(f"loss: {model_name} is fitted in closed form; use loss=none")
    if loss.rows == "interactions" and isinstance(model, UserLogits | NextItemLogits):
        raise ValueError(f"loss: {name} does not train {model_name}; it trains on whole users: "
                         "use loss=multinomial (Mult-VAE/DAE) or loss=sequence_bce (SASRec)")
    for capability in needs:
        if not isinstance(model, capability):
            methods = ", ".join(sorted(n for n in vars(capability)
                                       if not n.startswith("_") and n != "max_len"))
            raise ValueError(f"loss: {name} does not train {model_name}: it needs "
                             f"{capability.__name__} ({methods}){hint}")
    if uses_context(model) and not getattr(loss, "passes_context", False):
        raise ValueError(f"model.context={list(model.context_fields)}: loss={loss_label(loss)} "
                         "does not pass per-interaction context to the model; use loss=bce, "
                         "bpr, mse or sampled_softmax, or model.context=[]")
    if loss.l2 and not isinstance(model, RowRegularized):
        raise ValueError(f"loss.l2={loss.l2}: {model_name} has no l2_rows(users, items); "
                         "set loss.l2=0 and use optim.weight_decay")


def loss_label(loss: Any) -> str:
    """The loss's ``configs/loss`` name (its class name when it has none)."""
    return getattr(loss, "name", None) or type(loss).__name__


def context_kwargs(batch: dict[str, jax.Array], *, axes: int = 0) -> dict[str, jax.Array]:
    """``{"context": batch["context"]}`` with ``axes`` 1-sized axes inserted before its field
    axis (to match ``users[:, None]``), or ``{}`` when the batch carries no context."""
    if "context" not in batch:
        return {}
    context = batch["context"]
    return {"context": context.reshape(context.shape[:-1] + (1,) * axes + context.shape[-1:])}
