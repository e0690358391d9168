"""Runs and systems: finding run dirs, loading them, grouping seeds of one configuration
into systems and labelling them."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pandas as pd

from jaxrec.metrics.per_user import ID_COLUMNS

# Config keys that do not make a different system.
_NOT_SYSTEM = ("seed", "data.split.seed", "name", "paths.", "logger.", "trainer.progress",
               "hydra.")


@dataclasses.dataclass
class Run:
    dir: Path
    arg: str  # the command-line directory it was found under
    seed: int
    config: dict[str, Any]  # flattened, dotted keys
    results: dict[str, Any]
    per_user: dict[str, pd.DataFrame] = dataclasses.field(default_factory=dict)

    def frame(self, split: str) -> pd.DataFrame | None:
        if split not in self.per_user:
            path = self.dir / f"per_user_{split}.parquet"
            self.per_user[split] = pd.read_parquet(path) if path.is_file() else None
        return self.per_user[split]


@dataclasses.dataclass
class System:
    label: str
    runs: list[Run]

    @property
    def seeds(self) -> list[int]:
        return [r.seed for r in self.runs]


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: json.dumps(node) if isinstance(node, list) else node}


def find_runs(path: str | Path) -> list[Path]:
    """Run dirs (holding ``results.json``) at or below ``path``, sorted."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"compare: {path} is not a directory")
    if (path / "results.json").is_file():
        return [path]
    runs = sorted(p.parent for p in path.rglob("results.json"))
    if not runs:
        raise FileNotFoundError(f"compare: no run (results.json) under {path}")
    return runs


def load_run(run_dir: Path, arg: str) -> Run:
    from omegaconf import OmegaConf

    results = json.loads((run_dir / "results.json").read_text())
    config_path = run_dir / "config.yaml"
    config = (_flatten(OmegaConf.to_container(OmegaConf.load(config_path)))
              if config_path.is_file() else {})
    return Run(run_dir, arg, int(config.get("seed", 0)), config, results)


def _signature(run: Run) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in run.config.items()
                        if not any(k == s or (s.endswith(".") and k.startswith(s))
                                   for s in _NOT_SYSTEM)))


def _short(key: str, value: Any) -> str:
    if key.endswith("._target_"):
        return f"{key[:-len('._target_')]}={str(value).rsplit('.', 1)[-1]}"
    return f"{key}={value}"


def _config_labels(configs: list[dict[str, Any]], max_parts: int = 4) -> list[str]:
    """Short labels from the config keys that tell systems apart.

    A key is shown when the systems that set it (non-null) disagree on its
    value; ``<group>._target_`` is shown as ``<group>=<Class>``. So keys of one
    model class show only where two systems of that class differ.
    """
    keys = sorted({k for c in configs for k in c})
    shown = [k for k in keys
             if len({str(c[k]) for c in configs if c.get(k) is not None}) > 1]
    labels = []
    for c in configs:
        parts = [_short(k, c[k]) for k in shown if c.get(k) is not None]
        labels.append(" ".join(parts[:max_parts]) + (" ..." if len(parts) > max_parts else ""))
    return labels


def group_systems(runs: list[Run], *, by_arg: bool = False) -> list[System]:
    """Runs -> systems (seeds of one configuration), in first-seen order.

    Runs are grouped by config (seed aside) and named by the config keys that tell the
    groups apart (``model=MF loss=BPR``), not by their folders (run folders are named
    by time). With ``by_arg``, or when the directories given hold one configuration
    between them, each directory is one system named after it.
    """
    args = list(dict.fromkeys(r.arg for r in runs))
    groups: dict[Any, list[Run]] = {}
    for run in runs:
        groups.setdefault(_signature(run), []).append(run)
    if by_arg or (len(groups) == 1 and len(args) > 1):
        names = [Path(a).name or a for a in args]
        if len(set(names)) < len(names):
            names = list(args)
        systems = [System(n, [r for r in runs if r.arg == a]) for n, a in zip(names, args,
                                                                               strict=True)]
    else:
        members = list(groups.values())
        labels = _config_labels([dict(_signature(rs[0])) for rs in members])
        if len(set(labels)) < len(labels):
            labels = [f"{label} #{i + 1}" for i, label in enumerate(labels)]
        systems = [System(label or Path(rs[0].arg).name, rs)
                   for label, rs in zip(labels, members, strict=True)]
    for sys_ in systems:
        seeds = sys_.seeds
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"compare: system {sys_.label!r} has runs with the same seed "
                             f"({', '.join(str(r.dir) for r in sys_.runs)}); pass --by-arg or "
                             "fewer directories")
    return systems


def default_metric(run: Run, split: str) -> str:
    """The split's counterpart of the monitored metric when per-user values have it, else the
    first per-user column."""
    key = f"{split}/{str(run.results.get('monitor', '')).split('/', 1)[-1]}"
    frame = run.frame(split)
    columns = [] if frame is None else [c for c in frame.columns if c not in ID_COLUMNS]
    if key in columns or not columns:
        return key
    return columns[0]
