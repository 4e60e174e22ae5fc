"""workflows/: the Snakemake pipelines a user copies run end to end and draw their PNGs."""

import json
import shutil
import subprocess
from pathlib import Path

import matplotlib.image
import pytest

ROOT = Path(__file__).parents[1]
WORKFLOWS = ROOT / "workflows"
PLOTTING = WORKFLOWS / "scripts" / "umap_clusters.py"


def two_panel_png(path: Path) -> bool:
    """A real picture with the label panel and the cluster panel side by side."""
    height, width, _ = matplotlib.image.imread(path).shape
    return height > 200 and width > 2 * height


@pytest.mark.skipif(shutil.which("snakemake") is None, reason="snakemake not installed")
def test_both_workflows_draw_their_pngs_and_score_the_clusters(tmp_path, nontata_dir):
    config = [f"dna_dataset={nontata_dir}", "cells_epochs=2", "dna_epochs=1", "out=my results"]
    command = ["snakemake", "-s", WORKFLOWS / "Snakefile", "--cores", "2"]
    command += ["--directory", tmp_path, "--config", *config]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]  # a space in a path: quoted
    out = tmp_path / "my results"
    for kind in ("cells", "dna"):
        assert two_panel_png(out / kind / "umap.png")
    cells = json.loads((out / "cells" / "scores.json").read_text())
    assert cells["items"] == 700 and cells["labels"] == 10
    assert cells["ari"] > 0.3  # bulk_labels recovered well above chance (≈ 0) in 2 epochs
    dna = json.loads((out / "dna" / "scores.json").read_text())
    assert dna["items"] == 120 and dna["labels"] == 2 and -1 <= dna["ari"] <= 1

    # with results present, a mistyped input fails (was: "Nothing to be done", exit 0) and a
    # changed setting re-runs what it affects
    missing = subprocess.run([*command, "cells_input=nope.h5ad"], capture_output=True, text=True)
    assert missing.returncode != 0
    assert "cells_input: no such file: nope.h5ad" in missing.stdout + missing.stderr
    dry = subprocess.run([*command, "leiden_resolution=0.3", "-n"], capture_output=True, text=True)
    assert dry.returncode == 0 and "rule umap:" in dry.stdout, dry.stdout[-2000:]
    assert "rule embed_cells:" not in dry.stdout and "rule train_dna:" not in dry.stdout


def test_the_plotting_script_draws_unlabelled_items_without_scores(tmp_path, pbmc, run_script_here):
    pbmc.obsm["X_diffaug"] = pbmc.obsm["X_pca"]
    pbmc.obs["label"] = float("nan")  # train-dna on a bare FASTA: no labels
    pbmc.write_h5ad(tmp_path / "seqs.h5ad")
    status, stdout, stderr = run_script_here(
        PLOTTING, tmp_path / "seqs.h5ad", "--label", "label", "-o", tmp_path / "umap.png",
        "--scores", tmp_path / "scores.json",
    )  # fmt: skip
    assert status == 0, stderr[-2000:]
    assert "no label to score them against" in stdout  # was: ARI 0.000 against "nan"
    assert set(json.loads((tmp_path / "scores.json").read_text())) == {"items", "clusters"}
    assert not two_panel_png(tmp_path / "umap.png")  # one panel: the clusters


def test_the_plotting_script_refuses_an_unknown_label(tmp_path, pbmc, run_script_here):
    pbmc.obsm["X_diffaug"] = pbmc.obsm["X_pca"]
    pbmc.write_h5ad(tmp_path / "cells.h5ad")
    status, _, stderr = run_script_here(
        PLOTTING, tmp_path / "cells.h5ad", "--label", "cell_type", "-o", tmp_path / "umap.png"
    )
    assert status == 2 and "no obs column 'cell_type'" in stderr
    assert not (tmp_path / "umap.png").exists()


@pytest.mark.skipif(shutil.which("snakemake") is None, reason="snakemake not installed")
def test_training_jobs_take_every_core_they_are_given(tmp_path, nontata_dir):
    """snakemake sets OMP_NUM_THREADS to a job's threads (1 unless the rule says otherwise):
    without a threads directive torch trained on one core under --cores 2."""
    command = ["snakemake", "-s", WORKFLOWS / "Snakefile", "--cores", "2", "-n", "--directory",
               tmp_path, "--config", f"dna_dataset={nontata_dir}"]  # fmt: skip
    dry = subprocess.run(command, capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr[-2000:]
    jobs = {block.split(":")[0]: block for block in dry.stdout.split("rule ")[1:]}
    for rule in ("embed_cells", "train_dna"):
        assert "threads: 2" in jobs[rule], jobs[rule][-500:]
