"""Benchmark diffaug-bio's methods against PCA / k-mer peers on real data.

    python benchmarks/run.py --suite smoke --out benchmarks/out
    python benchmarks/run.py --suite full --out benchmarks/out --data ../shared/data

Writes OUT/results.csv (dataset, method, metric, value, wall_s, peak_rss_mb, seed),
OUT/summary.md (mean ± sd over seeds), OUT/accuracy.png (headline accuracy per method ×
dataset) and OUT/umap.png (UMAP of each first-seed embedding, coloured by label). Each
(dataset, method, seed) runs in its own process, so its wall time and peak RSS are its own.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from diffaug_bio.methods import METHODS

sys.path.insert(0, str(Path(__file__).resolve().parent))

from figures import accuracy_bars, umap_grid
from suite import (
    DATA_FILES,
    DEFAULT_DATA,
    PEERS_CELLS,
    PEERS_DNA,
    Task,
    TaskFailed,
    check_method,
    dataset_kind,
    dataset_title,
    run_in_child,
    run_task,
    scvi_applicable,
)

SUITES = {
    # smoke: one seed, few epochs, DNA sets sampled to 6,000 sequences, the default method
    # and its hand-designed baseline — proves the harness works in minutes
    "smoke": {
        "seeds": [0],
        "epochs_cells": 20,
        "epochs_dna": 2,
        "max_sequences": 6000,
        "methods": "simclr,diffaug",
    },
    # full: package defaults, three seeds, every method
    "full": {
        "seeds": [0, 1, 2],
        "epochs_cells": None,
        "epochs_dna": None,
        "max_sequences": None,
        "methods": ",".join(METHODS),
    },
}


def _datasets(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[str]:
    """The datasets to run, in order; named ones missing under --data are skipped aloud,
    unknown or missing --only names refused."""
    extra = [f"cells:{spec}" for spec in args.cells] + [f"dna:{path}" for path in args.dna]
    known = ["pbmc68k_reduced", *DATA_FILES, *extra]
    unknown = [name for name in args.only if name not in known]
    if unknown:
        parser.error(f"--only {unknown[0]}: not a dataset name; choose from {', '.join(known)}")
    datasets = ["pbmc68k_reduced"]
    for name, relative in DATA_FILES.items():
        wanted = not args.only or name in args.only
        if (args.data / relative).exists():
            datasets.append(name)
        elif wanted and args.only:
            parser.error(f"--only {name}: {args.data / relative} not found (see --data)")
        elif wanted:
            print(f"skipping {name}: {args.data / relative} not found (see --data)",
                  file=sys.stderr)  # fmt: skip
    return [d for d in datasets + extra if not args.only or d in args.only]


SHOWN = {  # metric -> (column title, scale, decimals)
    "knn15_accuracy": ("kNN-15 %", 100, 1),
    "logreg_accuracy": ("logreg %", 100, 1),
    "leiden_ari": ("ARI", 1, 3),
    "leiden_nmi": ("NMI", 1, 3),
    "silhouette": ("silhouette", 1, 3),
    "linear_probe_accuracy": ("linear probe %", 100, 1),
    "train_seconds": ("train s", 1, 1),
    "inference_items_per_s": ("items/s", 1, 0),
}


def summarise(results: pd.DataFrame) -> str:
    """Markdown: one table per modality, a row per dataset × method, mean ± sd over seeds
    for each metric, then the peak RSS (MB, the largest over seeds)."""
    tables = []
    for kind, block in results.groupby(results["dataset"].map(dataset_kind), sort=False):
        metrics = [m for m in SHOWN if m in set(block["metric"])]
        header = ["dataset", "method", "seeds", *(SHOWN[m][0] for m in metrics), "peak RSS MB"]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for (dataset, method), rows in block.groupby(["dataset", "method"], sort=False):
            cells = [dataset_title(dataset), method, str(rows["seed"].nunique())]
            for metric in metrics:
                _, scale, decimals = SHOWN[metric]
                values = rows.loc[rows["metric"] == metric, "value"] * scale
                cell = f"{values.mean():,.{decimals}f}" if len(values) else "—"
                cells.append(cell + (f" ± {values.std():.{decimals}f}" if len(values) > 1 else ""))
            cells.append(f"{rows['peak_rss_mb'].max():,.0f}")
            lines.append("| " + " | ".join(cells) + " |")
        tables.append(f"**{kind}**\n\n" + "\n".join(lines) + "\n")
    return "\n".join(tables)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--suite", choices=sorted(SUITES), default="smoke")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="folder holding "
                        + " and ".join(DATA_FILES.values())
                        + " [default: ../shared/data beside the repository]")  # fmt: skip
    parser.add_argument("--methods", default=None,
                        help="comma-separated method specs (default: the suite's); "
                        "options after ':' joined by ';', e.g. diffaug:rounds=3")  # fmt: skip
    parser.add_argument("--seeds", default=None, help="comma-separated seeds (overrides the suite)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (overrides the suite)")
    parser.add_argument("--cells", action="append", default=[], help="extra PATH.h5ad:LABEL_COLUMN")
    parser.add_argument("--dna", action="append", default=[], help="extra DNA dataset path")
    parser.add_argument("--only", action="append", default=[],
                        help="run only this dataset (repeatable): pbmc68k_reduced, "
                        + ", ".join(DATA_FILES)
                        + ", or cells:PATH:LABEL / dna:PATH for --cells / --dna")  # fmt: skip
    parser.add_argument("--no-peers", action="store_true", help="skip PCA / k-mer peers")
    parser.add_argument("--task", help=argparse.SUPPRESS)  # internal: run one task, print JSON
    args = parser.parse_args()

    if args.task:
        print(json.dumps(run_task(Task(**json.loads(args.task)))))
        return

    suite = SUITES[args.suite]
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else suite["seeds"]
    methods = [m for m in (args.methods or suite["methods"]).split(",") if m]
    embedding_dir = args.out / "embeddings"
    args.out.mkdir(parents=True, exist_ok=True)
    datasets = _datasets(args, parser)
    for kind in sorted({dataset_kind(dataset) for dataset in datasets}):
        for method in methods:  # fail now, not hours in, on a mistyped spec
            try:
                check_method(method, kind)
            except ValueError as error:  # InputError, or an unknown method's name
                parser.error(f"--methods {method} ({kind} datasets): {error}")
    rows, failures = [], []
    for dataset in datasets:
        kind = dataset_kind(dataset)
        epochs = args.epochs or suite["epochs_dna" if kind == "dna" else "epochs_cells"]
        peers = [] if args.no_peers else list(PEERS_DNA if kind == "dna" else PEERS_CELLS)
        if "scvi" in peers and not scvi_applicable(dataset, str(args.data)):
            peers.remove("scvi")
        for method in peers + methods:
            for seed in seeds if method not in peers else seeds[:1]:
                saved = str(embedding_dir) if seed == seeds[0] else None
                task = Task(dataset, method, seed, epochs, str(args.data), saved,
                            suite["max_sequences"] if kind == "dna" else None)  # fmt: skip
                print(f"running {asdict(task)}", file=sys.stderr, flush=True)
                try:
                    metrics = run_in_child(task)
                except TaskFailed as failure:  # the other tasks still run and are summarised
                    print(failure, file=sys.stderr, flush=True)
                    failures.append(f"{dataset} {method} seed {seed}")
                    continue
                common = {key: metrics.pop(key) for key in ("wall_s", "peak_rss_mb")}
                for metric, value in metrics.items():
                    rows.append({"dataset": dataset, "method": method, "metric": metric,
                                 "value": value, **common, "seed": seed})  # fmt: skip
                pd.DataFrame(rows).to_csv(args.out / "results.csv", index=False)
    if rows:
        results = pd.DataFrame(rows)
        summary = summarise(results)
        (args.out / "summary.md").write_text(summary)
        accuracy_bars(results, args.out / "accuracy.png")
        umap_grid(results, embedding_dir, args.out / "umap.png", seed=seeds[0])
        print(summary)
    if failures:
        sys.exit(f"{len(failures)} tasks failed (messages above): {'; '.join(failures)}")


if __name__ == "__main__":
    main()
