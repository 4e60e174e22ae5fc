"""Plots, scanpy style: pictures of embeddings for notebooks, the demo and the workflows."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import anndata as ad
import matplotlib.pyplot as plt
import scanpy as sc

from ._errors import InputError, shown

logger = logging.getLogger("diffaug_bio")

__all__ = ["umap"]


def _warn_if_umap_is_of_another_representation(adata: ad.AnnData) -> None:
    """A UMAP drawn from neighbours of X_pca (shipped with the data, say) looks like one of
    the embedding; say so when the AnnData holds diffaug-bio embeddings the graph ignores."""
    ours = set(adata.uns.get("diffaug", {}).get("embeddings", {})) & set(adata.obsm)
    used = adata.uns.get("neighbors", {}).get("params", {}).get("use_rep")
    if ours and used not in ours:
        key = sorted(ours)[0]
        logger.warning(
            "obsm['X_umap'] comes from neighbours of %s, not of %s: run sc.pp.neighbors(adata, "
            "use_rep=%r) and sc.tl.umap(adata) to draw the embedding",
            used or "X_pca / X",
            key,
            key,
        )


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
    _warn_if_umap_is_of_another_representation(adata)
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
