"""The benchmark harness's smoke path on tiny real subsets, so that the suite cannot rot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

RUN = Path(__file__).parents[1] / "benchmarks" / "run.py"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_smoke_suite_writes_results_table_and_figures(tmp_path, bladder_path, nontata_dir):
    cells, dna = f"cells:{bladder_path}:cell_type", f"dna:{nontata_dir}"
    command = [sys.executable, str(RUN), "--suite", "smoke", "--out", str(tmp_path),
               "--cells", f"{bladder_path}:cell_type", "--dna", str(nontata_dir),
               "--only", cells, "--only", dna, "--epochs", "2",
               "--methods", "simclr"]  # every method runs through the same task code  # fmt: skip
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]

    results = pd.read_csv(tmp_path / "results.csv")
    assert list(results.columns) == [
        "dataset", "method", "metric", "value", "wall_s", "peak_rss_mb", "seed"
    ]  # fmt: skip
    methods = results.groupby("dataset")["method"].unique().map(set).to_dict()
    assert methods[cells] - {"scvi"} == {"pca50", "simclr"}  # scVI only where installed
    assert methods[dna] == {"kmer4", "kmer6", "simclr"}

    def value(dataset: str, method: str, metric: str) -> float:
        row = results.query("dataset == @dataset and method == @method and metric == @metric")
        assert len(row) == 1, (dataset, method, metric)
        return float(row["value"].iloc[0])

    for method in ("pca50", "simclr"):
        for metric in ("knn15_accuracy", "logreg_accuracy", "leiden_ari", "leiden_nmi"):
            assert 0.0 <= value(cells, method, metric) <= 1.0
        assert -1.0 <= value(cells, method, "silhouette") <= 1.0
    # PCA on 16 real cell types is far above chance (1/16); a broken metric would not be
    assert value(cells, "pca50", "knn15_accuracy") > 0.5
    assert value(dna, "kmer6", "linear_probe_accuracy") > 0.6  # 2 balanced classes
    for dataset in (cells, dna):
        assert value(dataset, "simclr", "inference_items_per_s") > 0
    assert (results["wall_s"] > 0).all() and (results["peak_rss_mb"] > 50).all()

    summary = (tmp_path / "summary.md").read_text()
    assert "| bladder_small | simclr | 1 |" in summary
    assert "| nontata_small | kmer6 | 1 |" in summary
    for figure in ("accuracy.png", "umap.png"):
        assert (tmp_path / figure).read_bytes()[:8] == PNG_MAGIC
    # one saved embedding per dataset × method, the input of the UMAP grid
    saved = len(list((tmp_path / "embeddings").glob("*.npz")))
    assert saved == results.groupby(["dataset", "method"]).ngroups


def test_scaling_benchmark_measures_every_mode(tmp_path, bladder_path):
    command = [sys.executable, str(RUN.parent / "scaling.py"), "--out", str(tmp_path),
               "--counts", str(bladder_path), "--cells", "300,600", "--memory-max", "300",
               "--embed-args", "--method simclr --epochs 1 --dim 4"]  # fmt: skip
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = pd.read_csv(tmp_path / "scaling.csv")
    runs = list(zip(results["cells"], results["mode"]))
    assert runs == [(300, "backed"), (300, "memory"), (300, "backed --model"),
                    (600, "backed"), (600, "backed --model")]  # fmt: skip
    assert (results["wall_s"] > 0).all() and (results["peak_rss_mb"] > 50).all()
    assert (tmp_path / "scaling.png").read_bytes().startswith(PNG_MAGIC)
    assert not list(tmp_path.glob("synthetic_*.h5ad"))  # inputs removed after measuring
