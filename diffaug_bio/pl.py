"""Plots, scanpy style: pictures of embeddings for notebooks, the demo and the workflows."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import anndata as ad
import matplotlib.pyplot as plt
import scanpy as sc

from ._errors import InputError, shown

__all__ = ["umap"]


def umap(
    adata: ad.AnnData,
    color: str | Sequence[str],
    path: str | os.PathLike,
    title: str | None = None,
) -> Path:
    """Save ``sc.pl.umap`` of ``adata`` (after ``sc.tl.umap``) as a PNG, one panel per key of
    ``color`` (one key, or several), each panel titled ``title: key``. Returns the path."""
    color = [color] if isinstance(color, str) else list(color)
    if "X_umap" not in adata.obsm:
        raise InputError("no UMAP to draw: run sc.tl.umap(adata) first")
    genes = adata.raw.var_names if adata.raw is not None else adata.var_names  # as scanpy
    unknown = [key for key in color if key not in adata.obs and key not in genes]
    if unknown or not color:
        raise InputError(f"color: give obs columns or genes; not found: {shown(unknown)}")
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError(f"{path}: output folder {path.parent} does not exist")
    titles = [f"{title}: {key}" if title else key for key in color]
    figure = sc.pl.umap(adata, color=color, title=titles, show=False, return_fig=True,
                        wspace=0.45, frameon=False)  # fmt: skip
    try:
        figure.savefig(path, dpi=110, bbox_inches="tight")
    finally:
        plt.close(figure)
    return path
