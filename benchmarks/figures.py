"""The suite's pictures: accuracy per method × dataset, and a UMAP grid of the embeddings."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on a server or in CI
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from suite import PEERS_CELLS, PEERS_DNA, dataset_kind, dataset_title, embedding_file

HEADLINE = {"cells": "knn15_accuracy", "dna": "linear_probe_accuracy"}
"""The one accuracy per modality that the bars show (REFERENCE.md §5 protocols)."""
PEER_COLOUR, METHOD_COLOUR = "0.6", "tab:blue"
UMAP_POINTS = 3000
"""Points drawn per panel (a seeded subsample): enough to see the structure, quick to fit."""


def accuracy_bars(results: pd.DataFrame, path: Path) -> Path:
    """One panel per dataset: the headline accuracy of each method, mean ± sd over seeds;
    peers in grey."""
    datasets = list(dict.fromkeys(results["dataset"]))
    figure, axes = plt.subplots(1, len(datasets), figsize=(4.5 * len(datasets), 4), squeeze=False)
    for axis, dataset in zip(axes[0], datasets):
        metric = HEADLINE[dataset_kind(dataset)]
        rows = results[(results["dataset"] == dataset) & (results["metric"] == metric)]
        stats = rows.groupby("method", sort=False)["value"].agg(["mean", "std"]).fillna(0.0)
        colours = [PEER_COLOUR if m in PEERS_CELLS + PEERS_DNA else METHOD_COLOUR
                   for m in stats.index]  # fmt: skip
        axis.bar(range(len(stats)), stats["mean"] * 100, yerr=stats["std"] * 100,
                 color=colours, capsize=3)  # fmt: skip
        axis.set_xticks(range(len(stats)), stats.index, rotation=45, ha="right", fontsize=8)
        low = (stats["mean"] - stats["std"]).min() * 100
        axis.set_ylim(max(0.0, low - 5), 100)
        axis.set_title(dataset_title(dataset), fontsize=10)
        axis.set_ylabel(f"{metric.replace('_', ' ')} (%)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def _umap(embedding: np.ndarray, seed: int) -> np.ndarray:
    import anndata as ad
    import scanpy as sc

    names = pd.RangeIndex(len(embedding)).astype(str)
    scratch = ad.AnnData(obsm={"X_rep": embedding}, obs=pd.DataFrame(index=names))
    sc.pp.neighbors(scratch, use_rep="X_rep", n_neighbors=15, random_state=seed)
    sc.tl.umap(scratch, random_state=seed)
    return scratch.obsm["X_umap"]


def umap_grid(results: pd.DataFrame, embedding_dir: Path, path: Path, seed: int = 0) -> Path:
    """A row per dataset, a panel per method (in run order): UMAP of each saved embedding,
    coloured by label (labels only colour the points; they never shaped the embedding)."""
    rows = {
        dataset: [m for m in dict.fromkeys(block["method"])
                  if (embedding_dir / embedding_file(dataset, m)).exists()]
        for dataset, block in results.groupby("dataset", sort=False)
    }  # fmt: skip
    width = max(len(methods) for methods in rows.values())
    figure, axes = plt.subplots(len(rows), width, squeeze=False,
                                figsize=(2.6 * width, 2.6 * len(rows)))  # fmt: skip
    rng = np.random.default_rng(seed)
    for row_axes, (dataset, methods) in zip(axes, rows.items()):
        for axis in row_axes[len(methods) :]:
            axis.set_axis_off()
        for axis, method in zip(row_axes, methods):
            saved = np.load(embedding_dir / embedding_file(dataset, method), allow_pickle=False)
            embedding, labels = saved["embedding"], saved["labels"]
            keep = rng.permutation(len(labels))[:UMAP_POINTS]
            xy = _umap(embedding[keep], seed)
            categories = pd.Categorical(labels[keep])
            palette = "tab10" if len(categories.categories) <= 10 else "tab20"
            axis.scatter(xy[:, 0], xy[:, 1], c=categories.codes, cmap=palette, s=3, linewidths=0)
            axis.set_title(f"{dataset_title(dataset)} · {method}", fontsize=7)
            axis.set_xticks([])
            axis.set_yticks([])
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
