"""Loader benchmark: parse time, cached reload time and peak RSS of data=table.

Generates an interactions CSV with the shape of ml-20m (userId,movieId,rating,timestamp;
138,493 users, 26,744 items drawn from ids up to 131,262, half-star ratings, Unix
seconds), then times in fresh processes: the first parse (pyarrow, writes the npz
cache) and the cached reload, each with its peak RSS; prints a markdown table.

    python scripts/bench_data.py --rows 20000000           # ~1 GB of CSV in --dir
    python scripts/bench_data.py --rows 2000000 --dir /tmp/bench-data
    python scripts/bench_data.py --rows 2000000 20000000 --write   # -> docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PHASE = """
import json, resource, sys, time
from jaxrec.data.datasets.table import load_table
start = time.perf_counter()
inter = load_table(sys.argv[1], {"user": "userId", "item": "movieId", "rating": "rating",
                   "timestamp": "timestamp"}, cache_dir=sys.argv[2], name="bench")
seconds = time.perf_counter() - start
arrays = sum(a.nbytes for a in (inter.users, inter.items, inter.ratings, inter.timestamps))
print(json.dumps({"seconds": seconds, "rows": len(inter), "array_mb": arrays / 2**20,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def write_csv(path: Path, rows: int, seed: int = 0) -> None:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    rng = np.random.default_rng(seed)
    item_pool = np.sort(rng.choice(131_262, 26_744, replace=False) + 1)
    popularity = rng.zipf(1.3, len(item_pool)).astype(np.float64)
    popularity /= popularity.sum()
    with pcsv.CSVWriter(str(path), pa.schema([("userId", pa.int64()), ("movieId", pa.int64()),
                                              ("rating", pa.float64()),
                                              ("timestamp", pa.int64())]),
                        write_options=pcsv.WriteOptions(quoting_style="none")) as writer:
        for start in range(0, rows, 2_000_000):
            n = min(2_000_000, rows - start)
            users = np.sort(rng.integers(1, 138_494, n))
            table = pa.table({"userId": users,
                              "movieId": item_pool[rng.choice(len(item_pool), n, p=popularity)],
                              "rating": rng.integers(1, 11, n) / 2.0,
                              "timestamp": rng.integers(789_652_009, 1_427_784_002, n)})
            writer.write_table(table)


def phase(csv: Path, cache: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", PHASE, str(csv), str(cache)], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[20_000_000])
    parser.add_argument("--dir", type=Path, default=None, help="where the CSVs go")
    parser.add_argument("--write", action="store_true",
                        help="replace this script's section of docs/benchmarks.md")
    parser.add_argument("--doc", type=Path, default=Path(__file__).resolve().parent.parent
                        / "docs" / "benchmarks.md", help=argparse.SUPPRESS)
    args = parser.parse_args()
    root = args.dir or Path(tempfile.mkdtemp(prefix="jaxrec-bench-data-"))
    root.mkdir(parents=True, exist_ok=True)
    table = ["| rows | CSV MB | first parse s | cached reload s | peak RSS MB (parse / reload) "
             "| final arrays MB | peak / arrays |", "|---|---|---|---|---|---|---|"]
    for rows in args.rows:
        csv = root / f"ratings-{rows}.csv"
        if not csv.is_file():
            start = time.perf_counter()
            write_csv(csv, rows)
            print(f"wrote {csv} in {time.perf_counter() - start:.0f} s", file=sys.stderr)
        cache = root / f"cache-{rows}"
        subprocess.run(["rm", "-rf", str(cache)], check=True)
        first, again = phase(csv, cache), phase(csv, cache)
        table.append(f"| {rows:,} | {csv.stat().st_size / 2**20:,.0f} | {first['seconds']:.1f} | "
                     f"{again['seconds']:.1f} | {first['peak_mb']:,.0f} / "
                     f"{again['peak_mb']:,.0f} | {first['array_mb']:,.0f} | "
                     f"{first['peak_mb'] / first['array_mb']:.1f} |")
    print("\n".join(table))
    if args.write:
        from jaxrec import benchmarks

        start, end = benchmarks.markers("bench_data")
        command = "python scripts/bench_data.py --rows " + " ".join(map(str, args.rows))
        section = "\n".join([
            start, "## Loading a large interactions file (data=table)", "",
            f"`{command} --write` on {benchmarks.cpu_model()} ({os.cpu_count()} cores): an "
            "ml-20m-shaped CSV (userId,movieId,rating,timestamp) parsed with pyarrow in a fresh "
            "process, then reloaded from the npz parse cache in another; peak RSS is the "
            "process's maximum resident set, against the final int32/float32/int64 arrays.",
            "", *table, "", end])
        benchmarks.write_section(args.doc, section, "bench_data")
        print(f"wrote {args.doc}", file=sys.stderr)


if __name__ == "__main__":
    main()
