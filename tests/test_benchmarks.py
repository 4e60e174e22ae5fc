"""The benchmark scripts (the suite, scaling, the diagnostics) on tiny real subsets, so that
they cannot rot."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_script(name: str, *arguments: str) -> str:
    command = [sys.executable, str(BENCHMARKS / name), *arguments]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout


def test_smoke_suite_writes_results_table_and_figures_and_survives_a_failing_task(
    tmp_path, bladder_path, nontata_dir
):
    cells, dna = f"cells:{bladder_path}:cell_type", f"dna:{nontata_dir}"
    bad_label = f"cells:{bladder_path}:celltype"  # no such obs column: its tasks fail
    command = [sys.executable, str(BENCHMARKS / "run.py"), "--suite", "smoke", "--out",
               str(tmp_path), "--cells", f"{bladder_path}:cell_type", "--dna", str(nontata_dir),
               "--cells", f"{bladder_path}:celltype", "--only", bad_label, "--only", cells,
               "--only", dna, "--epochs", "2",
               "--methods", "simclr"]  # every method runs through the same task code  # fmt: skip
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    assert finished.returncode == 1, finished.stderr[-3000:]
    failed = finished.stderr.splitlines()[-1].split("tasks failed (messages above): ")[1]
    assert {f"{bad_label} pca50 seed 0", f"{bad_label} simclr seed 0"} <= set(failed.split("; "))
    assert all(task.startswith(f"{bad_label} ") for task in failed.split("; "))  # scVI too
    assert "skipping" not in finished.stderr  # --only named what to run

    results = pd.read_csv(tmp_path / "results.csv")  # the other tasks still ran
    assert list(results.columns) == [
        "dataset", "method", "metric", "value", "wall_s", "peak_rss_mb", "seed"
    ]  # fmt: skip
    methods = results.groupby("dataset")["method"].unique().map(set).to_dict()
    assert set(methods) == {cells, dna}
    assert methods[cells] - {"scvi"} == {"pca50", "simclr"}  # scVI only where installed
    assert methods[dna] == {"kmer4", "kmer6", "kmer6:pca=128", "simclr"}

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
    for peer in ("kmer6", "kmer6:pca=128"):  # 2 balanced classes
        assert value(dna, peer, "linear_probe_accuracy") > 0.6
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


def test_the_suite_refuses_bad_specs_up_front(tmp_path, run_script_here):
    for arguments, message in [
        (["--only", "pbmc"], "--only pbmc: not a dataset name; choose from pbmc68k_reduced"),
        (["--only", "mouse_bladder"], "mouse_bladder_2100.h5ad not found (see --data)"),
        (["--methods", "simclr:tempurature=0.3"], ": tempurature: not an option of --method"),
        (["--methods", "kmer6:pcs=128"], "kmer6:pcs=128: a k-mer peer takes one option"),
        (["--methods", "kmer6:pca=0"], "kmer6:pca=0: a k-mer peer takes one option"),
    ]:  # each used to fail inside a task, after the peers had run, in two tracebacks
        status, _, stderr = run_script_here(
            BENCHMARKS / "run.py", "--out", tmp_path, "--data", tmp_path / "no_data", *arguments
        )
        assert status == 2 and message in stderr.splitlines()[-1]
        assert not (tmp_path / "results.csv").exists()


def test_scaling_benchmark_measures_every_mode(tmp_path, bladder_path):
    run_script("scaling.py", "--out", str(tmp_path),
               "--counts", str(bladder_path), "--cells", "300,600", "--memory-max", "300",
               "--embed-args", "--method simclr --epochs 1 --dim 4")  # fmt: skip
    results = pd.read_csv(tmp_path / "scaling.csv")
    runs = list(zip(results["cells"], results["mode"]))
    assert runs == [(300, "backed"), (300, "memory"), (300, "backed --model"),
                    (600, "backed"), (600, "backed --model")]  # fmt: skip
    assert (results["wall_s"] > 0).all() and (results["peak_rss_mb"] > 50).all()
    assert (tmp_path / "scaling.png").read_bytes().startswith(PNG_MAGIC)
    assert not list(tmp_path.glob("synthetic_*.h5ad"))  # inputs removed after measuring


def test_leiden_spread_reports_pca_and_every_training_seed(bladder_path):
    import scanpy as sc

    from diffaug_bio.baselines import pca_embedding
    from diffaug_bio.evaluate import leiden_scores

    table = run_script("leiden_spread.py", "--cells", str(bladder_path), "--epochs", "2",
                       "--seeds", "0,1", "--method", "simclr")  # fmt: skip
    rows = {cells[0]: cells[1:] for line in table.splitlines()[2:]
            if (cells := [cell.strip() for cell in line.strip("|").split("|")])}  # fmt: skip
    assert list(rows) == ["pca50", "simclr, seed 0", "simclr, seed 1"]
    adata = sc.read_h5ad(bladder_path)
    types = set(adata.obs["cell_type"].astype(str))
    for ari, n_clusters, split in rows.values():
        mean, low, high = map(float, re.findall(r"-?\d+\.\d+", ari))
        assert -1 <= low <= mean <= high <= 1
        assert int(n_clusters) >= 1
        assert split == "none" or {name.split(" (")[0] for name in split.split(", ")} <= types
    # PCA's Leiden-seed-0 best ARI, computed here, lies within the reported spread
    seed0 = leiden_scores(pca_embedding(adata), adata.obs["cell_type"].astype(str), seed=0)
    low, high = map(float, re.findall(r"-?\d+\.\d+", rows["pca50"][0])[1:])
    assert low - 5e-4 <= seed0["ari"] <= high + 5e-4


def test_fit_on_seen_scores_the_seen_and_the_unseen_test_half(nontata_dir):
    output = run_script("fit_on_seen.py", "--dna", str(nontata_dir), "--epochs", "2",
                        "--seeds", "0", "--method", "simclr")  # fmt: skip
    lines = output.strip().splitlines()
    assert [line.split(" (")[0] for line in lines] == [
        "seed 0: seen test half", "seed 0: unseen test half"
    ]  # fmt: skip
    sizes = [int(line.split("n = ")[1].split(")")[0]) for line in lines]
    assert sizes == [20, 20]  # the fixture's 40 test sequences, halved
    for line in lines:
        assert 0 <= float(line.rsplit(": ", 1)[1].rstrip("%")) <= 100


def test_cli_startup_times_each_command_and_checks_its_exit_status(run_script_here):
    status, table, stderr = run_script_here(BENCHMARKS / "cli_startup.py", "--repeats", "1")
    assert status == 0, stderr
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines()]
    assert rows[0] == ["command", "median s", "status"]
    names = [row[0] for row in rows[2:]]
    assert names[0].startswith("python -c pass") and "import diffaug_bio.tl" in names[-1]
    assert "diffaug-bio embed --help" in names and any("(refused)" in name for name in names)
    for name, seconds, exit_status in rows[2:]:
        assert float(seconds) > 0
        assert exit_status == ("2" if "(refused)" in name else "0")


def test_the_diagnostics_refuse_missing_data_in_one_line(tmp_path, bladder_path, run_script_here):
    for script, arguments, message in [
        ("scaling.py", ["--counts", str(tmp_path / "no.h5ad")], "no.h5ad: no such file"),
        ("scaling.py", ["--counts", str(bladder_path), "--modes", "backed --model"],
         "needs a training mode"),
        ("leiden_spread.py", ["--data", str(tmp_path)], "mouse_bladder_2100.h5ad: no such file"),
        ("fit_on_seen.py", ["--data", str(tmp_path)], "human_nontata_promoters: no such folder"),
    ]:  # fmt: skip
        out = ["--out", str(tmp_path)] if script == "scaling.py" else []
        status, _, stderr = run_script_here(BENCHMARKS / script, *out, *arguments)
        assert status == 2, (script, stderr[-2000:])
        assert message in stderr.splitlines()[-1]  # was a traceback
