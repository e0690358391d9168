"""Peer side of scripts/bench_train.py: fit scikit-surprise's SVD on a given split.

Runs inside the separate Surprise venv (never imported by jaxrec), so it uses
only the standard library, numpy and surprise:

    <peer-venv>/bin/python scripts/_bench_peer_surprise.py \
        --train train.csv --test test.csv --factors 64 --epochs 20 --seed 0

``train.csv`` / ``test.csv`` hold ``user,item,rating`` rows with raw MovieLens
ids and no header. Prints one JSON object: timings (``fit_seconds`` is
``SVD.fit`` alone; ``seconds_per_epoch`` is it divided by the epochs), test
RMSE / MAE (unclipped, like jaxrec's, and Surprise's default clipped to the
rating scale) and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import resource
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--factors", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rating-min", type=float, default=0.5)
    ap.add_argument("--rating-max", type=float, default=5.0)
    args = ap.parse_args()

    import surprise
    from surprise import SVD, Dataset, Reader

    t = time.perf_counter()
    reader = Reader(line_format="user item rating", sep=",",
                    rating_scale=(args.rating_min, args.rating_max))
    trainset = Dataset.load_from_file(args.train, reader=reader).build_full_trainset()
    with open(args.test, newline="") as f:
        test = [(u, i, float(r)) for u, i, r in csv.reader(f)]
    load_seconds = time.perf_counter() - t

    algo = SVD(n_factors=args.factors, n_epochs=args.epochs, random_state=args.seed)
    t = time.perf_counter()
    algo.fit(trainset)
    fit_seconds = time.perf_counter() - t

    t = time.perf_counter()
    se = se_clip = ae = 0.0
    known_users, known_items = trainset._raw2inner_id_users, trainset._raw2inner_id_items
    unknown = 0  # test rows whose user or item has no training rating (biases only)
    for u, i, r in test:
        unknown += u not in known_users or i not in known_items
        est = algo.predict(u, i, clip=False).est
        est_clip = min(max(est, args.rating_min), args.rating_max)
        se += (est - r) ** 2
        se_clip += (est_clip - r) ** 2
        ae += abs(est - r)
    predict_seconds = time.perf_counter() - t
    n = max(len(test), 1)
    print(json.dumps({
        "surprise_version": surprise.__version__,
        "n_factors": args.factors,
        "n_epochs": args.epochs,
        "train_rows": trainset.n_ratings,
        "test_rows": len(test),
        "test_unknown": unknown,
        "load_seconds": load_seconds,
        "fit_seconds": fit_seconds,
        "seconds_per_epoch": fit_seconds / args.epochs,
        "predict_seconds": predict_seconds,
        "test_rmse": math.sqrt(se / n),
        "test_rmse_clipped": math.sqrt(se_clip / n),
        "test_mae": ae / n,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    main()
