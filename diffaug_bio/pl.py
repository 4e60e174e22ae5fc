"""Plots, scanpy style: pictures of embeddings for notebooks, the demo and the workflows."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import anndata as ad
import matplotlib.pyplot as plt
import scanpy as sc


def umap(
    adata: ad.AnnData,
    color: Sequence[str],
    path: str | os.PathLike,
    title: str | None = None,
) -> Path:
    """Save ``sc.pl.umap`` of ``adata`` (after ``sc.tl.umap``) as a PNG, one panel per key of
    ``color``, each panel titled ``title: key``. Returns the path written."""
    color = list(color)
    titles = [f"{title}: {key}" if title else key for key in color]
    figure = sc.pl.umap(adata, color=color, title=titles, show=False, return_fig=True,
                        wspace=0.45, frameon=False)  # fmt: skip
    path = Path(path)
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path
