"""The comparison as markdown: a system table and a pair table per metric."""

from __future__ import annotations

import math
from typing import Any

from jaxrec.stats import significance_marker


def _fmt(x: float, digits: int = 4) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _p(x: float) -> str:
    if x is None or math.isnan(x):
        return "-"
    return f"{x:.2e}" if x < 1e-3 else f"{x:.4f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths,
                                                                       strict=True)) + " |"
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
                      *(line(r) for r in rows)])


def format_report(report: dict[str, Any]) -> str:
    """Markdown tables: one system table and one pair table per metric."""
    ci_what = ("seeds (run-level values)" if report["ci"] == "seeds"
               else "users (seed-averaged per-user values)")
    parts = [f"protocol: {report['protocol']}   split: {report['split']}   95% CI: percentile "
             f"bootstrap over {ci_what}"]
    for key, block in report["metrics"].items():
        side = "higher" if block["higher_is_better"] else "lower"
        parts.append(f"\n## {key} ({side} is better)\n")
        rows = [[r["system"] + (" (best)" if r["system"] == block["best"] else ""),
                 str(r["seeds"]), _fmt(r["mean"]), _fmt(r["std"]),
                 f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"] for r in block["systems"]]
        parts.append(_table(["system", "seeds", "mean", "std", "95% CI"], rows))
        if block["pairs"]:
            prow = []
            for p in block["pairs"]:
                prow.append([f"{p['a']} vs {p['b']}", f"{p['users']} ({p['units']})",
                             _fmt(p["mean_diff"]), p["better"] or "-",
                             _p(p["t_p_holm"]) + significance_marker(p["t_p_holm"]),
                             _p(p["wilcoxon_p_holm"]) + significance_marker(p["wilcoxon_p_holm"]),
                             ",".join(map(str, p["seeds"])) if p["seeds_matched"]
                             else "unmatched"])
            parts.append("")
            parts.append(_table(["pair", "paired units", "mean diff (a-b)", "better",
                                 "t-test p (Holm)",
                                 "Wilcoxon p (Holm)", "paired seeds"], prow))
    parts.append("\n* p < 0.05, ** p < 0.01, *** p < 0.001 (two-sided, Holm-adjusted over the "
                 "pairs of each metric and test); '-': no per-user values")
    return "\n".join(parts)


def save_plot(report: dict[str, Any], path: str) -> str:
    """One panel per metric: each system's mean with its 95% bootstrap interval (over seeds
    or users, as the report says), the best system's marker filled; written to ``path``."""
    from jaxrec.extras import require

    matplotlib = require("matplotlib", extra="sweep", purpose="jaxrec compare --plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = list(report["metrics"].items())
    n_systems = max(len(block["systems"]) for _, block in metrics)
    fig, axes = plt.subplots(1, len(metrics), squeeze=False,
                             figsize=(4.6 * len(metrics), 0.5 * n_systems + 1.6))
    for ax, (key, block) in zip(axes[0], metrics, strict=True):
        rows = block["systems"]
        y = list(range(len(rows)))[::-1]
        for yi, row in zip(y, rows, strict=True):
            low, high = row["ci_low"], row["ci_high"]
            best = row["system"] == block["best"]
            ax.errorbar(row["mean"], yi, xerr=[[row["mean"] - low], [high - row["mean"]]],
                        fmt="o", color="C0", mfc="C0" if best else "white", capsize=4)
        ax.set_yticks(y, [row["system"] for row in rows], fontsize=8)
        ax.set_ylim(-0.6, len(rows) - 0.4)
        direction = "higher" if block["higher_is_better"] else "lower"
        ax.set_xlabel(f"{key} ({direction} is better)")
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(f"95% intervals over {report['ci']} ({report['protocol']}); filled: best",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
