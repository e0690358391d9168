"""Peer side of scripts/bench_scale.py: time ``implicit``'s BPR epochs on a given split.

Runs inside the separate implicit venv (never imported by jaxrec), so it uses only the
standard library, numpy, scipy and implicit:

    <peer-venv>/bin/python scripts/_bench_peer_implicit.py --split train.npz \
        --factors 32 --iterations 2

``train.npz`` holds ``users``, ``items`` (int32, the training rows) and ``num_users``,
``num_items``. Fits ``BayesianPersonalizedRanking(factors, iterations)`` (one sampled
negative per training pair and iteration, its defaults otherwise) on the 0/1 matrix and
prints one JSON object: seconds per iteration (``fit`` alone), rows, threads, peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", required=True)
    ap.add_argument("--factors", type=int, default=32)
    ap.add_argument("--iterations", type=int, default=2)
    args = ap.parse_args()

    import implicit
    import numpy as np
    import scipy.sparse as sp
    from implicit.bpr import BayesianPersonalizedRanking

    z = np.load(args.split)
    shape = (int(z["num_users"]), int(z["num_items"]))
    users, items = z["users"], z["items"]
    matrix = sp.csr_matrix((np.ones(len(users), np.float32), (users, items)), shape=shape)
    matrix.data[:] = 1.0  # duplicates count once
    model = BayesianPersonalizedRanking(factors=args.factors, iterations=args.iterations,
                                        random_state=0)
    t = time.perf_counter()
    model.fit(matrix, show_progress=False)
    seconds = time.perf_counter() - t
    print(json.dumps({
        "implicit_version": implicit.__version__, "factors": args.factors,
        "iterations": args.iterations, "seconds_per_iteration": seconds / args.iterations,
        "train_rows": int(matrix.nnz), "threads": os.cpu_count(),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
