"""The baselines an embedding must beat, computed the standard way.

Cells: PCA-50 after scanpy's standard pipeline (or its Pearson-residual one). DNA: k-mer
frequency vectors, whole or reduced by PCA to an embedding's width.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import scanpy as sc
from scipy import sparse
from sklearn.decomposition import PCA
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ._errors import InputError
from ._utils import keeps_torch_threads
from .io.expression import (
    PEARSON_THETA,
    check_normalisation,
    get_matrix,
    looks_like_counts,
)
from .io.kmers import kmer_counts


@keeps_torch_threads
def pca_embedding(
    adata: ad.AnnData,
    layer: str | None = None,
    n_comps: int = 50,
    n_top_genes: int = 2000,
    normalisation: str = "log1p",
) -> np.ndarray:
    """scanpy's standard pipeline: normalize_total(1e4) + log1p (raw counts only),
    ``n_top_genes`` HVG (2,000 as customary), scale (max 10), PCA. With
    ``normalisation="pearson"`` scanpy's Pearson-residual pipeline instead (raw counts):
    HVG by residual variance, Pearson residuals, PCA."""
    check_normalisation(normalisation)
    matrix = get_matrix(adata, layer)
    scratch = ad.AnnData(
        matrix.astype(np.float32) if sparse.issparse(matrix) else np.asarray(matrix, np.float32)
    )
    if normalisation == "pearson":
        if not looks_like_counts(matrix):
            raise InputError("Pearson residuals need raw counts")
        if scratch.n_vars > n_top_genes:
            sc.experimental.pp.highly_variable_genes(
                scratch, flavor="pearson_residuals", n_top_genes=n_top_genes, theta=PEARSON_THETA
            )
            scratch = scratch[:, scratch.var["highly_variable"]].copy()
        sc.experimental.pp.normalize_pearson_residuals(scratch, theta=PEARSON_THETA)
        return _pca(scratch, n_comps)
    if looks_like_counts(matrix):
        sc.pp.normalize_total(scratch, target_sum=1e4)
        sc.pp.log1p(scratch)
    if scratch.n_vars > n_top_genes:
        sc.pp.highly_variable_genes(scratch, n_top_genes=n_top_genes)
        scratch = scratch[:, scratch.var["highly_variable"]].copy()
    sc.pp.scale(scratch, max_value=10)
    return _pca(scratch, n_comps)


def _pca(scratch: ad.AnnData, n_comps: int) -> np.ndarray:
    n_comps = min(n_comps, scratch.n_obs - 1, scratch.n_vars - 1)
    sc.tl.pca(scratch, n_comps=n_comps, random_state=0)
    return scratch.obsm["X_pca"]


def kmer_frequencies(sequences: list[str], k: int) -> np.ndarray:
    """Frequencies of every k-mer over A/C/G/T (k-mers holding other characters are skipped)."""
    counts = kmer_counts(sequences, k)
    totals = np.asarray(counts.sum(axis=1))
    return np.asarray(counts.multiply(1 / np.maximum(totals, 1)).todense())


def kmer_principal_components(
    sequences: list[str], k: int, n_comps: int, fit_rows: np.ndarray
) -> np.ndarray:
    """k-mer frequencies, standardised and projected onto their first ``n_comps`` principal
    components, both fitted on ``fit_rows`` only (no labels): the unsupervised, inductive
    reduction that a learned DNA embedding of the same width must beat — logistic regression
    on all 4^k frequencies is a supervised model of far more features."""
    frequencies = kmer_frequencies(sequences, k)
    fitted = frequencies[np.asarray(fit_rows)]
    n_comps = min(n_comps, len(fitted) - 1, frequencies.shape[1])
    reduction = make_pipeline(StandardScaler(), PCA(n_comps, random_state=0)).fit(fitted)
    return reduction.transform(frequencies)
