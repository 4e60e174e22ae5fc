"""Scoring embeddings against labels (labels are used here only, never for training).

Protocols follow REFERENCE.md §5: cells — kNN-15 and logistic-regression accuracy with
5-fold stratified cross-validation, best Leiden ARI/NMI over resolutions, silhouette by
label; DNA — a linear probe fitted on the train split and scored on the test split.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import anndata as ad
import numpy as np
import scanpy as sc
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ._utils import keeps_torch_threads

logger = logging.getLogger("diffaug_bio")


def _folds(labels: np.ndarray, folds: int, seed: int) -> StratifiedKFold:
    """``folds`` stratified folds, fewer when the smallest class cannot fill them (said)."""
    smallest = np.unique(labels, return_counts=True)[1].min()
    usable = min(folds, max(2, smallest))
    if usable < folds:
        logger.warning("the smallest class has %d items: %d-fold cross-validation instead "
                       "of %d", smallest, usable, folds)  # fmt: skip
    return StratifiedKFold(usable, shuffle=True, random_state=seed)


def knn_accuracy(
    embedding: np.ndarray, labels: Sequence, k: int = 15, folds: int = 5, seed: int = 0
) -> float:
    """Mean accuracy of a k-nearest-neighbour classifier, stratified k-fold cross-validation."""
    labels = np.asarray(labels)
    classifier = KNeighborsClassifier(n_neighbors=k)
    return float(
        cross_val_score(classifier, embedding, labels, cv=_folds(labels, folds, seed)).mean()
    )


def _logistic_regression() -> object:
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))


def logreg_accuracy(
    embedding: np.ndarray, labels: Sequence, folds: int = 5, seed: int = 0
) -> float:
    """Mean accuracy of logistic regression on standardised features, stratified k-fold."""
    labels = np.asarray(labels)
    scores = cross_val_score(
        _logistic_regression(), embedding, labels, cv=_folds(labels, folds, seed)
    )
    return float(scores.mean())


def linear_probe(
    train_embedding: np.ndarray,
    train_labels: Sequence,
    test_embedding: np.ndarray,
    test_labels: Sequence,
) -> float:
    """Accuracy on the test split of logistic regression fitted on the train split."""
    probe = _logistic_regression().fit(train_embedding, np.asarray(train_labels))
    return float(probe.score(test_embedding, np.asarray(test_labels)))


@keeps_torch_threads
def leiden_clusterings(
    embedding: np.ndarray,
    resolutions: Sequence[float] = (0.3, 0.5, 1.0),
    n_neighbors: int = 15,
    seed: int = 0,
) -> dict[float, np.ndarray]:
    """Leiden clusters of the embedding's kNN graph at each of ``resolutions`` (the graph is
    built once), with the evaluation protocol's settings."""
    scratch = ad.AnnData(obsm={"X_embedding": np.asarray(embedding, dtype=np.float32)},
                         obs={"_": np.zeros(len(embedding))})  # fmt: skip
    sc.pp.neighbors(scratch, use_rep="X_embedding", n_neighbors=n_neighbors, random_state=seed)
    clusterings = {}
    for resolution in resolutions:
        sc.tl.leiden(scratch, resolution=resolution, flavor="igraph", n_iterations=2,
                     random_state=seed)  # fmt: skip
        clusterings[resolution] = scratch.obs["leiden"].to_numpy()
    return clusterings


def leiden_scores(
    embedding: np.ndarray,
    labels: Sequence,
    resolutions: Sequence[float] = (0.3, 0.5, 1.0),
    n_neighbors: int = 15,
    seed: int = 0,
) -> dict[str, float]:
    """Best ARI and best NMI of Leiden clusterings of the kNN graph over ``resolutions``."""
    clusterings = leiden_clusterings(embedding, resolutions, n_neighbors, seed).values()
    ari = max(adjusted_rand_score(labels, clusters) for clusters in clusterings)
    nmi = max(normalized_mutual_info_score(labels, clusters) for clusters in clusterings)
    return {"ari": float(ari), "nmi": float(nmi)}


def label_silhouette(embedding: np.ndarray, labels: Sequence, seed: int = 0) -> float:
    """Mean silhouette width of the labels in the embedding (Euclidean), in [-1, 1]: how far
    apart, relative to their spread, the labelled groups sit. At most 5,000 items are scored
    (a seeded subsample), since the score costs O(n²)."""
    labels = np.asarray(labels)
    sample = min(len(labels), 5000)
    return float(silhouette_score(embedding, labels, sample_size=sample, random_state=seed))


def majority_fraction(labels: Sequence) -> float:
    """Accuracy of always guessing the most common label: the floor every probe must beat."""
    _, counts = np.unique(np.asarray(labels), return_counts=True)
    return float(counts.max() / counts.sum())
