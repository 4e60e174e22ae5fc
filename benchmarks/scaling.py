"""Embedding time and peak memory versus number of cells, in memory and ``--backed``.

    python benchmarks/scaling.py --out benchmarks/out/scaling --cells 10000,100000,1000000

Synthetic raw counts with mouse bladder's per-gene statistics: for each of bladder's 2,000
most variable genes, a negative binomial per cell type (mean and dispersion fitted by
moments; the type only shapes the synthetic data and is never shown to the model), scaled
by a per-cell library size drawn from bladder's. Files are written a block at a time, so
the generator itself stays small. Each ``diffaug-bio embed`` runs under ``/usr/bin/time -v``
(wall seconds, maximum resident set size, cells per second of the whole command); writes
OUT/scaling.csv and OUT/scaling.png.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import scanpy as sc
from scipy import sparse

sys.path.insert(0, str(Path(__file__).resolve().parent))

from suite import DEFAULT_DATA

BLOCK = 10_000


class CountModel:
    """Per-type negative-binomial gene means/dispersions and library sizes, from real counts."""

    def __init__(self, adata: ad.AnnData, label: str, n_genes: int = 2000):
        scratch = adata.copy()
        sc.pp.normalize_total(scratch)
        sc.pp.log1p(scratch)
        sc.pp.highly_variable_genes(scratch, n_top_genes=n_genes, flavor="seurat")
        counts = adata[:, scratch.var["highly_variable"].to_numpy()].X
        counts = counts.toarray() if sparse.issparse(counts) else np.asarray(counts)
        self.genes = adata.var_names[scratch.var["highly_variable"].to_numpy()]
        library = counts.sum(1)
        relative = counts / library[:, None]
        types = adata.obs[label].astype("category").cat.codes.to_numpy()
        self.type_share = np.bincount(types) / len(types)
        self.proportions = np.stack([relative[types == t].mean(0) for t in range(types.max() + 1)])
        mean, var = counts.mean(0), counts.var(0)
        self.dispersion = np.clip(mean**2 / np.maximum(var - mean, 1e-6), 0.05, 100.0)
        self.log_library = (np.log(library).mean(), np.log(library).std())

    def sample(self, n: int, rng: np.random.Generator) -> sparse.csr_matrix:
        types = rng.choice(len(self.type_share), n, p=self.type_share)
        library = np.exp(rng.normal(*self.log_library, n))
        mean = self.proportions[types] * library[:, None]
        rate = rng.gamma(self.dispersion, mean / self.dispersion)  # gamma–Poisson = NB
        return sparse.csr_matrix(rng.poisson(rate).astype(np.float32))


def write_synthetic(model: CountModel, n: int, path: Path, seed: int = 0) -> Path:
    """An .h5ad of ``n`` synthetic cells, X as CSR written block by block."""
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as file:
        file.attrs.update({"encoding-type": "anndata", "encoding-version": "0.1.0"})
        for start in range(0, n, BLOCK):
            block = model.sample(min(BLOCK, n - start), rng)
            if start == 0:
                ad.io.write_elem(file, "X", block)
                matrix = ad.io.sparse_dataset(file["X"])
            else:
                matrix.append(block)
        ad.io.write_elem(file, "obs", pd.DataFrame(index=[f"cell{i}" for i in range(n)]))
        ad.io.write_elem(file, "var", pd.DataFrame(index=model.genes))
        for group in ("obsm", "varm", "obsp", "varp", "layers", "uns"):
            ad.io.write_elem(file, group, {})
    return path


def measure(command: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of ``command`` under ``/usr/bin/time -v``."""
    completed = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True)
    if completed.returncode != 0:  # the command's own messages, not time's report after them
        own = completed.stderr.split("Command exited with non-zero status")[0].strip()
        sys.exit(f"{' '.join(command)} failed:\n{own[-3000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", completed.stderr)
    hours, minutes, seconds = (float(part or 0) for part in wall.groups())
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", completed.stderr)
    return 3600 * hours + 60 * minutes + seconds, int(rss.group(1)) / 1024


def plot(results: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (time_axis, memory_axis) = plt.subplots(1, 2, figsize=(10, 4))
    for mode, rows in results.groupby("mode"):
        time_axis.plot(rows["cells"], rows["wall_s"], "o-", label=mode)
        memory_axis.plot(rows["cells"], rows["peak_rss_mb"], "o-", label=mode)
    for axis, title in ((time_axis, "wall seconds"), (memory_axis, "peak RSS (MB)")):
        axis.set_xscale("log")
        axis.set_ylim(bottom=0)
        axis.set_xlabel("cells (2,000 genes)")
        axis.set_title(title)
        axis.legend()
    figure.suptitle("diffaug-bio embed: cost versus number of cells")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/scaling"))
    parser.add_argument("--counts", type=Path, default=DEFAULT_DATA / "mouse_bladder_2100.h5ad",
                        help="raw counts whose statistics the synthetic cells copy")  # fmt: skip
    parser.add_argument("--label", default="cell_type", help="obs column of cell types")
    parser.add_argument("--cells", default="10000,100000,1000000", help="comma-separated sizes")
    parser.add_argument("--modes", default="backed,memory,backed --model",
                        help="comma-separated: backed (train + embed), memory (the same, "
                        "loading the file), 'backed --model' (embed only, with the model "
                        "trained at the first size)")  # fmt: skip
    parser.add_argument("--memory-max", type=int, default=100_000,
                        help="largest size run in memory (the whole matrix is loaded)")  # fmt: skip
    parser.add_argument("--embed-args", default="--train-cells 20000",
                        help="extra arguments for every diffaug-bio embed")  # fmt: skip
    args = parser.parse_args()
    modes = args.modes.split(",")
    if not args.counts.is_file():
        parser.error(f"--counts {args.counts}: no such file")
    if modes[0] == "backed --model":
        parser.error("--modes: 'backed --model' needs a training mode (backed or memory) "
                     "before it, which saves the model it applies")  # fmt: skip

    args.out.mkdir(parents=True, exist_ok=True)
    model = CountModel(ad.read_h5ad(args.counts), args.label)
    rows = []
    model_dir = args.out / "model"
    shutil.rmtree(model_dir, ignore_errors=True)  # a model left by an earlier run is not ours
    for n in (int(size) for size in args.cells.split(",")):
        source = write_synthetic(model, n, args.out / f"synthetic_{n}.h5ad")
        try:
            run_modes(args, modes, n, source, model_dir, rows)
        finally:  # up to gigabytes at a million cells
            source.unlink()
    results = pd.DataFrame(rows)
    plot(results, args.out / "scaling.png")
    print(results.to_string(index=False))


def run_modes(
    args: argparse.Namespace, modes: list[str], n: int, source: Path, model_dir: Path, rows: list
) -> None:
    """Time every mode on the ``n`` synthetic cells in ``source``; append rows, save the CSV."""
    for mode in modes:
        if mode == "memory" and n > args.memory_max:
            continue
        command = [sys.executable, "-m", "diffaug_bio", "--quiet", "embed", str(source),
                   "-o", str(args.out / "embedded.h5ad")]  # fmt: skip
        if mode == "backed --model":  # inference only, with the first size's model
            command += ["--backed", "--model", str(model_dir)]
        else:
            command += args.embed_args.split() + (["--backed"] if mode == "backed" else [])
            if not model_dir.exists():
                command += ["--save-model", str(model_dir)]
        wall, rss = measure(command)
        written = ad.read_h5ad(args.out / "embedded.h5ad", backed="r")
        assert written.obsm["X_diffaug"].shape[0] == n
        rows.append({"cells": n, "mode": mode, "wall_s": round(wall, 1),
                     "peak_rss_mb": round(rss), "cells_per_s": round(n / wall),
                     "args": "" if "model" in mode else args.embed_args})  # fmt: skip
        print(rows[-1], flush=True)
        pd.DataFrame(rows).to_csv(args.out / "scaling.csv", index=False)


if __name__ == "__main__":
    main()
