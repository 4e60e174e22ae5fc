"""workflows/: the Snakemake pipelines a user copies run end to end and draw their PNGs."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pytest

ROOT = Path(__file__).parents[1]
WORKFLOWS = ROOT / "workflows"


def two_panel_png(path: Path) -> bool:
    """A real picture with the label panel and the cluster panel side by side."""
    height, width, _ = matplotlib.image.imread(path).shape
    return height > 200 and width > 2 * height


@pytest.mark.skipif(shutil.which("snakemake") is None, reason="snakemake not installed")
def test_both_workflows_draw_their_pngs_and_score_the_clusters(tmp_path, nontata_dir):
    config = [f"dna_dataset={nontata_dir}", "cells_epochs=2", "dna_epochs=1", "out=results"]
    command = ["snakemake", "-s", WORKFLOWS / "Snakefile", "--cores", "2"]
    command += ["--directory", tmp_path, "--config", *config]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "results"
    for kind in ("cells", "dna"):
        assert two_panel_png(out / kind / "umap.png")
    cells = json.loads((out / "cells" / "scores.json").read_text())
    assert cells["items"] == 700 and cells["labels"] == 10
    assert cells["ari"] > 0.3  # bulk_labels recovered well above chance (≈ 0) in 2 epochs
    dna = json.loads((out / "dna" / "scores.json").read_text())
    assert dna["items"] == 120 and dna["labels"] == 2 and -1 <= dna["ari"] <= 1


def test_the_plotting_script_refuses_an_unknown_label(tmp_path, pbmc):
    pbmc.obsm["X_diffaug"] = pbmc.obsm["X_pca"]
    pbmc.write_h5ad(tmp_path / "cells.h5ad")
    script = WORKFLOWS / "scripts" / "umap_clusters.py"
    command = [sys.executable, script, tmp_path / "cells.h5ad", "--label", "cell_type"]
    result = subprocess.run([*command, "-o", tmp_path / "umap.png"], capture_output=True, text=True)
    assert result.returncode == 2 and "no obs column 'cell_type'" in result.stderr
    assert not (tmp_path / "umap.png").exists()
