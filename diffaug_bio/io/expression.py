"""Turning an AnnData matrix into encoder input, the same way at training and at reuse.

The rule, decided once at fit time and saved with a model:

* raw counts (every value a non-negative integer) are normalised with scanpy's
  ``normalize_total`` (10,000 per cell) and ``log1p``; anything else (log-normalised,
  scaled, negative values as in ``pbmc68k_reduced``) is used as is;
* with more genes than ``n_top_genes`` (default :data:`DEFAULT_N_TOP_GENES`) and
  non-negative values, the highly variable genes are kept (scanpy's
  ``highly_variable_genes``, flavour ``seurat``);
* each kept gene is standardised to zero mean and unit variance (clipped at ±10), with
  the training data's mean and standard deviation.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
from scipy import sparse

from .._errors import InputError, shown

logger = logging.getLogger("diffaug_bio")

TARGET_SUM = 1e4
CLIP = 10.0
DEFAULT_N_TOP_GENES = 2000
"""Highly variable genes kept by default: scanpy's customary count. A method may ask for
more (``Method.n_top_genes``): DiffAug gains from 5,000, the view-based methods lose."""
BLOCK_ROWS = 10_000
"""Cells per block when a matrix is prepared or embedded a block at a time."""

Matrix = np.ndarray | sparse.spmatrix
RowReadable = Matrix | Any
"""Anything with ``shape`` and row slicing: an array, a sparse matrix, a BackedMatrix."""


def get_matrix(adata: ad.AnnData, layer: str | None) -> np.ndarray | sparse.spmatrix:
    """The matrix a user asked for: ``adata.X`` or ``adata.layers[layer]``."""
    if layer is None:
        if adata.X is None:
            raise InputError("AnnData has no X matrix; name a layer with --layer")
        return adata.X
    if layer not in adata.layers:
        available = ", ".join(adata.layers.keys()) or "none"
        raise InputError(f"unknown layer {layer!r} (layers in the file: {available})")
    return adata.layers[layer]


def row_blocks(matrix: RowReadable, size: int | None = None) -> Iterator[tuple[int, Matrix]]:
    """``(start, matrix[start:start + size])`` over all rows (``size`` default BLOCK_ROWS):
    work on a large matrix (or a backed file) a block at a time, so memory does not grow
    with the number of cells."""
    size = size or BLOCK_ROWS
    for start in range(0, matrix.shape[0], size):
        yield start, matrix[start : start + size]


def sample_rows(matrix: RowReadable, n: int, seed: int) -> tuple[np.ndarray, Matrix]:
    """A uniform random sample of ``n`` rows (sorted row numbers, rows), read block by block."""
    chosen = np.sort(np.random.default_rng(seed).choice(matrix.shape[0], n, replace=False))
    parts = []
    for start, block in row_blocks(matrix):
        inside = chosen[(chosen >= start) & (chosen < start + block.shape[0])]
        if len(inside):
            parts.append(block[inside - start])
    rows = sparse.vstack(parts, format="csr") if sparse.issparse(parts[0]) else np.vstack(parts)
    return chosen, rows


def _values(matrix: np.ndarray | sparse.spmatrix) -> np.ndarray:
    """The stored values of a matrix (the non-zeros of a sparse one), for checks."""
    if sparse.issparse(matrix):
        return np.asarray(matrix.data)
    return np.asarray(matrix).ravel()


def check_finite(matrix: np.ndarray | sparse.spmatrix, what: str) -> None:
    values = _values(matrix)
    if not np.isfinite(values).all():
        bad = int((~np.isfinite(values)).sum())
        raise InputError(f"{what} holds {bad} NaN or infinite values; clean them before embedding")


def check_values(matrix: np.ndarray | sparse.spmatrix, what: str) -> None:
    """Refuse what no recipe can use: NaN / inf, a matrix that is zero everywhere, and
    negative values among integers (counts with an error in them: scaled or log data are
    not integers, so they pass)."""
    check_finite(matrix, what)
    values = _values(matrix)
    if not values.any():
        raise InputError(f"{what} is zero everywhere; there is nothing to embed")
    negative = values < 0
    if negative.any() and np.all(np.mod(values, 1) == 0):
        raise InputError(
            f"{what} holds negative values where counts are expected "
            f"({int(negative.sum())} values < 0, smallest {values.min():g})"
        )


def looks_like_counts(matrix: np.ndarray | sparse.spmatrix) -> bool:
    """True when every stored value is a non-negative integer."""
    values = _values(matrix)
    return bool(values.size and values.min() >= 0 and np.all(np.mod(values, 1) == 0))


def _log_normalise(matrix: np.ndarray | sparse.spmatrix) -> np.ndarray | sparse.spmatrix:
    """normalize_total (10,000) + log1p through scanpy, on a throw-away AnnData."""
    if sparse.issparse(matrix):
        matrix = sparse.csr_matrix(matrix, dtype=np.float32, copy=True)
    else:
        matrix = np.array(matrix, dtype=np.float32)
    empty = int(np.sum(np.asarray(matrix.sum(axis=1)).ravel() == 0))
    if empty:
        raise InputError(
            f"{empty} of {matrix.shape[0]} cells have no counts at all; filter them out first "
            "(sc.pp.filter_cells(adata, min_counts=1))"
        )
    scratch = ad.AnnData(matrix)
    sc.pp.normalize_total(scratch, target_sum=TARGET_SUM)
    sc.pp.log1p(scratch)
    return scratch.X


def _dense(matrix: np.ndarray | sparse.spmatrix) -> np.ndarray:
    if sparse.issparse(matrix):
        return matrix.toarray().astype(np.float32, copy=False)
    return np.ascontiguousarray(matrix, dtype=np.float32)  # one layout: same sums, same result


@dataclass
class ExpressionPreprocessing:
    """The fitted recipe from an AnnData to a float32 cells × genes encoder input."""

    genes: list[str]
    layer: str | None = None
    normalise: bool = False
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    std: np.ndarray = field(default_factory=lambda: np.ones(0, np.float32))

    @classmethod
    def fit(
        cls,
        adata: ad.AnnData,
        layer: str | None = None,
        n_top_genes: int = DEFAULT_N_TOP_GENES,
    ) -> tuple[ExpressionPreprocessing, np.ndarray]:
        """Choose normalisation, genes and scaling from ``adata``; return recipe and output."""
        return cls.fit_rows(get_matrix(adata, layer), adata.var_names, layer, n_top_genes)

    @classmethod
    def fit_rows(
        cls,
        matrix: np.ndarray | sparse.spmatrix,
        var_names: pd.Index,
        layer: str | None = None,
        n_top_genes: int = DEFAULT_N_TOP_GENES,
        source: str | None = None,
    ) -> tuple[ExpressionPreprocessing, np.ndarray]:
        """:meth:`fit` on a matrix of cells (all of them, or a sample of a large file) whose
        columns are ``var_names``, taken from ``layer`` (None: X); ``source`` names the
        matrix in messages (default: the layer, or X)."""
        if n_top_genes < 1:
            raise InputError(f"n_top_genes must be at least 1, not {n_top_genes}")
        source = source or (f"layer {layer!r}" if layer else "X")
        check_values(matrix, source)
        normalise = looks_like_counts(matrix)
        if normalise:
            matrix = _log_normalise(matrix)
            logger.info("%s holds raw counts: normalize_total(1e4) + log1p", source)
        else:
            logger.info("%s is not raw counts: values used as they are", source)
        genes = list(map(str, var_names))
        non_negative = _values(matrix).min(initial=0) >= 0
        if len(genes) > n_top_genes and non_negative:
            scratch = ad.AnnData(matrix, var=pd.DataFrame(index=pd.Index(genes)))
            sc.pp.highly_variable_genes(scratch, n_top_genes=n_top_genes, flavor="seurat")
            keep = scratch.var["highly_variable"].to_numpy()
            matrix = matrix[:, keep]
            genes = [gene for gene, kept in zip(genes, keep) if kept]
            logger.info("kept %d highly variable genes of %d", len(genes), len(var_names))
        dense = _dense(matrix)
        mean = dense.mean(axis=0)
        std = dense.std(axis=0)
        std[std == 0] = 1.0
        recipe = cls(genes=genes, layer=layer, normalise=normalise, mean=mean, std=std)
        return recipe, recipe._standardise(dense)

    @property
    def n_features(self) -> int:
        return len(self.genes)

    def transform(self, adata: ad.AnnData) -> np.ndarray:
        """Apply the saved recipe to new data; its genes must include the recipe's genes."""
        matrix = get_matrix(adata, self.layer)
        return self.transform_rows(matrix, self.gene_index(adata.var_names))

    def gene_index(self, var_names: pd.Index, align: bool = False) -> np.ndarray:
        """Positions of the recipe's genes in ``var_names``. A missing gene is a clear error,
        or, with ``align``, a warning naming it and position −1: :meth:`transform_rows` then
        gives it its training mean (0 after standardising), the least informative value."""
        index = var_names.get_indexer(self.genes)
        missing = [gene for gene, position in zip(self.genes, index) if position < 0]
        if missing:
            lacks = f"the data lacks {len(missing)} of the model's {len(self.genes)} genes"
            if not align:
                raise InputError(
                    f"{lacks} ({shown(missing)}); to align by name, use --align-genes "
                    "(align_genes=True in Python)"
                )
            if len(missing) == len(self.genes):
                raise InputError(f"{lacks}: no gene name in common, nothing to align")
            logger.warning("%s, set to their training mean: %s", lacks, shown(missing))
        return index

    def transform_rows(self, matrix: np.ndarray | sparse.spmatrix, index: np.ndarray) -> np.ndarray:
        """The recipe on a block of rows (all cells, or one chunk of a large file);
        ``index`` is :meth:`gene_index` of the block's columns (−1: gene absent)."""
        check_finite(matrix, f"layer {self.layer!r}" if self.layer else "X")
        if self.normalise:
            if not looks_like_counts(matrix):
                raise InputError("the model was trained on raw counts, but these values are not")
            matrix = _log_normalise(matrix)
        present = index >= 0
        if present.all():
            return self._standardise(_dense(matrix[:, index]))
        dense = np.empty((matrix.shape[0], len(self.genes)), dtype=np.float32)
        dense[:, present] = _dense(matrix[:, index[present]])
        dense[:, ~present] = self.mean[~present]
        return self._standardise(dense)

    def _standardise(self, dense: np.ndarray) -> np.ndarray:
        """(x − mean) / sd clipped at ±10, float32, with one temporary (large blocks)."""
        scaled = np.subtract(dense, self.mean, dtype=np.float32)
        scaled /= self.std
        return np.clip(scaled, -CLIP, CLIP, out=scaled)

    def to_dict(self) -> dict:
        return {
            "genes": self.genes,
            "layer": self.layer,
            "normalise": self.normalise,
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
        }

    @classmethod
    def from_dict(cls, config: dict) -> ExpressionPreprocessing:
        return cls(
            genes=list(config["genes"]),
            layer=config["layer"],
            normalise=bool(config["normalise"]),
            mean=np.asarray(config["mean"], dtype=np.float32),
            std=np.asarray(config["std"], dtype=np.float32),
        )
