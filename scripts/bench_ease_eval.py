"""EASE: one validation pass on ml-latest-small, sparse-aware vs dense ``score_history``.

    JAXREC_DATA_DIR=<data> python scripts/bench_ease_eval.py [--dense] [--repeats 4]

Assembles ``experiment=ease_ml-latest-small``, solves it, and times
`jaxrec.metrics.scoring.evaluate` on the validation evaluators ``--repeats`` times
(the first includes compilation); prints the times, valid ndcg@10 / recall@20 and the
process's peak RSS. ``--dense`` replaces the model's sparse product
(`jaxrec.models.layers.history.sparse_history_product`) with the dense ``history @ B``
it replaces, for the comparison; run both back to back on a shared machine.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dense", action="store_true", help="the dense product instead")
    ap.add_argument("--repeats", type=int, default=4)
    args = ap.parse_args(argv)
    import jax
    import jax.numpy as jnp

    from jaxrec.api import compose
    from jaxrec.assembly import assemble
    from jaxrec.metrics.scoring import evaluate
    from jaxrec.models.ease import EASE
    from jaxrec.training.step import init_state, make_solver_epoch_fn

    if args.dense:
        EASE.score_history = lambda self, h: h.astype(jnp.float32) @ self.weights_NxN[...]
    with tempfile.TemporaryDirectory(prefix="bench-ease-") as out:
        run = assemble(compose(["experiment=ease_ml-latest-small", "logger.console=false"],
                               output_dir=out))
        graphdef, state = init_state(run.model, run.tx)
        state, _ = make_solver_epoch_fn(graphdef)(state, run.train_data(), {}, None, None,
                                                  jax.random.key(0))
        times, metrics = [], {}
        for _ in range(args.repeats):
            t = time.perf_counter()
            metrics = evaluate(run.valid_evals, graphdef, (state.params, state.rest))
            times.append(time.perf_counter() - t)
    keys = ("valid/ndcg@10", "valid/recall@20")
    print(f"{'dense' if args.dense else 'sparse'}: valid pass s {[round(x, 3) for x in times]} "
          f"(first includes compile); {', '.join(f'{k} {metrics[k]:.4f}' for k in keys)}; "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MiB")


if __name__ == "__main__":
    main()
