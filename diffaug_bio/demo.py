"""The demo: scanpy's bundled pbmc68k_reduced → embed → UMAP PNG → kNN accuracy vs PCA."""

from __future__ import annotations

import json
import logging
import os

import scanpy as sc

from . import distributed, pl, tl
from .evaluate import knn_accuracy, leiden_scores
from .io.files import check_output_folder, staged_writes

logger = logging.getLogger("diffaug_bio")

LABEL = "bulk_labels"
OUTPUTS = ("umap.png", "pbmc68k_reduced.h5ad", "scores.json")


def run_demo(
    outdir: str | os.PathLike = "diffaug-demo",
    method: str = tl.DEFAULT_METHOD,
    epochs: int | None = None,
    batch_size: int | None = None,
    dim: int | None = None,
    seed: int = 0,
    device: str = "auto",
    **method_options: object,
) -> dict:
    """Embed pbmc68k_reduced, draw its UMAP coloured by cell type, and score it against the
    PCA shipped with the data. Writes ``umap.png``, ``pbmc68k_reduced.h5ad``, ``scores.json``
    together: a failed write leaves an earlier demo's outputs as they were."""
    outdir = check_output_folder(outdir)  # created once there is something to write
    adata = sc.datasets.pbmc68k_reduced()
    tl.embed(
        adata,
        method,
        epochs=epochs,
        batch_size=batch_size,
        dim=dim,
        seed=seed,
        device=device,
        **method_options,
    )
    labels = adata.obs[LABEL].to_numpy()
    scores = {
        "dataset": "pbmc68k_reduced",
        "method": method,
        "knn15_accuracy": knn_accuracy(adata.obsm[tl.DEFAULT_KEY], labels),
        "knn15_accuracy_pca50": knn_accuracy(adata.obsm["X_pca"][:, :50], labels),
        "leiden_ari": leiden_scores(adata.obsm[tl.DEFAULT_KEY], labels, seed=seed)["ari"],
    }
    if not distributed.is_main():  # under torchrun the other ranks only helped to train
        return scores
    sc.pp.neighbors(adata, use_rep=tl.DEFAULT_KEY, random_state=seed)
    sc.tl.umap(adata, random_state=seed)
    with staged_writes(outdir, OUTPUTS, "demo's outputs") as staging:
        title = f"pbmc68k_reduced, diffaug-bio ({method})"
        pl.umap(adata, [LABEL], staging / "umap.png", title=title)
        adata.write_h5ad(staging / "pbmc68k_reduced.h5ad")
        (staging / "scores.json").write_text(json.dumps(scores, indent=1))
    return scores
