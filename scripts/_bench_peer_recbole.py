"""Peer side of scripts/bench_lightgcn.py: time RecBole's LightGCN epochs on a given split.

Runs inside the separate RecBole venv (never imported by jaxrec), so it uses only the
standard library, torch and recbole:

    <peer-venv>/bin/python scripts/_bench_peer_recbole.py --data DIR --epochs 2 \
        --dim 64 --layers 2 --batch-size 2048 --lr 0.001 --reg 1e-5

``DIR/bench/bench.{train,valid,test}.inter`` are RecBole atomic files
(``user_id:token`` / ``item_id:token``). Builds RecBole's dataset and dataloaders from
them (no filtering, uniform sampling of one negative per positive), then times each
``Trainer._train_epoch`` call: the forward, BPR loss, backward and Adam step of every
batch, nothing else. Prints one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import json
import resource
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=2048)
    ap.add_argument("--lr", type=float, default=0.001)
    ap.add_argument("--reg", type=float, default=1e-5)
    args = ap.parse_args()

    import recbole
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.general_recommender import LightGCN
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    config = Config(model="LightGCN", dataset="bench", config_dict={
        "data_path": args.data, "benchmark_filename": ["train", "valid", "test"],
        "load_col": {"inter": ["user_id", "item_id"]},
        "user_inter_num_interval": "[0,inf)", "item_inter_num_interval": "[0,inf)",
        "embedding_size": args.dim, "n_layers": args.layers, "reg_weight": args.reg,
        "train_batch_size": args.batch_size, "learning_rate": args.lr,
        "epochs": args.epochs, "train_neg_sample_args": {
            "distribution": "uniform", "sample_num": 1, "alpha": 1.0, "dynamic": False,
            "candidate_num": 0},
        "eval_args": {"group_by": "user", "order": "RO", "mode": "full"},
        "device": "cpu", "use_gpu": False, "show_progress": False, "seed": 0,
        "reproducibility": True, "checkpoint_dir": f"{args.data}/saved", "worker": 0,
        "log_wandb": False})
    init_seed(config["seed"], config["reproducibility"])
    t = time.perf_counter()
    dataset = create_dataset(config)
    train_data, _, _ = data_preparation(config, dataset)
    data_seconds = time.perf_counter() - t
    model = LightGCN(config, train_data._dataset).to(config["device"])
    trainer = Trainer(config, model)
    epochs, losses = [], []
    for epoch in range(args.epochs):
        t = time.perf_counter()
        loss = trainer._train_epoch(train_data, epoch, show_progress=False)
        epochs.append(time.perf_counter() - t)
        losses.append(float(loss if not isinstance(loss, tuple) else sum(loss)))
    print(json.dumps({
        "recbole_version": recbole.__version__, "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(), "epoch_seconds": epochs, "losses": losses,
        "train_rows": len(train_data._dataset), "users": int(dataset.user_num) - 1,
        "items": int(dataset.item_num) - 1, "data_seconds": data_seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
