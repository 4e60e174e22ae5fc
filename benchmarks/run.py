"""Benchmark diffaug-bio's methods against PCA / k-mer peers on real data.

    python benchmarks/run.py --suite smoke --out benchmarks/out
    python benchmarks/run.py --suite full --out benchmarks/out --data ../shared/data

Writes OUT/results.csv (dataset, method, metric, value, wall_s, peak_rss_mb, seed) and
OUT/summary.md (mean ± sd over seeds). Each (dataset, method, seed) runs in its own process.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from suite import (
    DEFAULT_DATA,
    PEERS_CELLS,
    PEERS_DNA,
    Task,
    dataset_kind,
    run_in_child,
    run_task,
    scvi_applicable,
)

SUITES = {
    # smoke: one seed, few epochs — proves the harness works in minutes
    "smoke": {"seeds": [0], "epochs_cells": 20, "epochs_dna": 2},
    # full: package defaults, three seeds
    "full": {"seeds": [0, 1, 2], "epochs_cells": None, "epochs_dna": None},
}


def _datasets(args: argparse.Namespace) -> list[str]:
    datasets = ["pbmc68k_reduced"]
    if (args.data / "mouse_bladder_2100.h5ad").exists():
        datasets.append("mouse_bladder")
    if (args.data / "genomic_benchmarks" / "human_nontata_promoters").is_dir():
        datasets.append("nontata")
    datasets += [f"cells:{spec}" for spec in args.cells] + [f"dna:{path}" for path in args.dna]
    return [d for d in datasets if not args.only or d in args.only]


def summarise(results: pd.DataFrame) -> str:
    """A Markdown table of mean ± sd over seeds for every dataset × method × metric."""
    grouped = results.groupby(["dataset", "method", "metric"])["value"]
    table = grouped.agg(["mean", "std", "count"]).reset_index()
    lines = ["| dataset | method | metric | mean | sd | seeds |", "|---|---|---|---|---|---|"]
    for row in table.itertuples():
        sd = "" if pd.isna(row.std) else f"{row.std:.4f}"
        lines.append(f"| {row.dataset} | {row.method} | {row.metric} | {row.mean:.4f} | {sd} "
                     f"| {row.count} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--suite", choices=sorted(SUITES), default="smoke")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument("--methods", default="simclr",
                        help="comma-separated method specs; options after ':' joined by ';', "
                        "e.g. simclr,diffaug,diffaug:replace_fraction=0")  # fmt: skip
    parser.add_argument("--seeds", default=None, help="comma-separated seeds (overrides the suite)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (overrides the suite)")
    parser.add_argument("--cells", action="append", default=[], help="extra PATH.h5ad:LABEL_COLUMN")
    parser.add_argument("--dna", action="append", default=[], help="extra DNA dataset path")
    parser.add_argument("--only", action="append", default=[], help="run only these datasets")
    parser.add_argument("--no-peers", action="store_true", help="skip PCA / k-mer peers")
    parser.add_argument("--task", help=argparse.SUPPRESS)  # internal: run one task, print JSON
    args = parser.parse_args()

    if args.task:
        print(json.dumps(run_task(Task(**json.loads(args.task)))))
        return

    suite = SUITES[args.suite]
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else suite["seeds"]
    methods = [m for m in args.methods.split(",") if m]
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for dataset in _datasets(args):
        kind = dataset_kind(dataset)
        epochs = args.epochs or suite["epochs_dna" if kind == "dna" else "epochs_cells"]
        peers = [] if args.no_peers else list(PEERS_DNA if kind == "dna" else PEERS_CELLS)
        if "scvi" in peers and not scvi_applicable(dataset, str(args.data)):
            peers.remove("scvi")
        for method in peers + methods:
            for seed in seeds if method not in peers else seeds[:1]:
                task = Task(dataset, method, seed, epochs, str(args.data))
                print(f"running {asdict(task)}", file=sys.stderr, flush=True)
                metrics = run_in_child(task)
                common = {key: metrics.pop(key) for key in ("wall_s", "peak_rss_mb")}
                for metric, value in metrics.items():
                    rows.append({"dataset": dataset, "method": method, "metric": metric,
                                 "value": value, **common, "seed": seed})  # fmt: skip
                results = pd.DataFrame(rows)
                results.to_csv(args.out / "results.csv", index=False)
    summary = summarise(results)
    (args.out / "summary.md").write_text(summary)
    print(summary)


if __name__ == "__main__":
    main()
