"""Turning an AnnData matrix into encoder input, the same way at training and at reuse.

The rule, decided once at fit time and saved with a model:

* raw counts (every value a non-negative integer) are normalised in one of two ways
  (:data:`NORMALISATIONS`): ``log1p``, scanpy's ``normalize_total`` (10,000 per cell)
  then ``log1p``, the highly variable genes chosen by ``highly_variable_genes`` (flavour
  ``seurat``); or ``pearson``, analytic Pearson residuals of a negative binomial with
  θ = 100 (Lause et al. 2021; scanpy's ``experimental.pp``), the genes chosen by their
  residual variance, which removes sequencing depth instead of only rescaling it;
* anything else (log-normalised, scaled, negative values as in ``pbmc68k_reduced``) is
  used as is, the highly variable genes (flavour ``seurat``) kept if it is non-negative;
* "highly variable" applies with more genes than ``n_top_genes`` (default
  :data:`DEFAULT_N_TOP_GENES`);
* each kept gene is standardised to zero mean and unit variance (clipped at ±10), with
  the training data's mean and standard deviation.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
from scipy import sparse

from .._errors import InputError, counted, shown, whole_number
from .._utils import keeps_torch_threads

logger = logging.getLogger("diffaug_bio")

TARGET_SUM = 1e4
CLIP = 10.0
DEFAULT_N_TOP_GENES = 2000
"""Highly variable genes kept by default: scanpy's customary count. A method may ask for
more (``Method.n_top_genes``): DiffAug gains from 5,000, the view-based methods lose."""
NORMALISATIONS = ("log1p", "pearson")
"""How raw counts may be normalised; input that is not counts is used as it is."""
AS_IS = "none"
"""``--normalisation none``: the values are used as they are, even when they are integers
(a table of ages, scores or doses is not counts to normalise per row)."""
RECIPE_NORMALISATIONS = (*NORMALISATIONS, AS_IS)
INPUT_KINDS = ("counts", "fractional counts", "values", AS_IS)
"""What a recipe records of its training input (``ExpressionPreprocessing.input_kind``)."""
DEFAULT_NORMALISATION = "pearson"
"""Measured on mouse bladder (benchmarks/RESULTS.md): every method's kNN-15 is 2.4 (diffaug)
to 5.9 (simclr) points higher on Pearson residuals than on log1p."""
LOG_SCALE_LIMIT = float(np.log(np.finfo(np.float32).max))
"""Above e^88.7 float32 overflows: values this large are not log-scale, and scanpy's seurat
gene selection, which takes expm1 of them, fails on them."""
PEARSON_THETA = 100.0
"""The negative binomial's overdispersion in Pearson residuals (scanpy's default)."""
RESIDUAL_ROWS = 2048
"""Cells per step when residuals are computed, to bound the temporaries' memory."""
BLOCK_ROWS = 10_000
"""Cells per block when a matrix is prepared or embedded a block at a time."""

Matrix = np.ndarray | sparse.spmatrix
RowReadable = Matrix | Any
"""Anything with ``shape`` and row slicing: an array, a sparse matrix, a BackedMatrix."""


X_LAYER = "X"
"""``--layer X`` names ``adata.X`` itself: how a model trained on a layer is applied to a file
that keeps the same counts in X."""


def reads_x(layer: str | None) -> bool:
    """Whether ``layer`` names X (None, the default, or ``X_LAYER``)."""
    return layer is None or layer == X_LAYER


def matrix_name(layer: str | None) -> str:
    """How messages name the matrix read: ``X`` or ``layer 'NAME'``."""
    return "X" if reads_x(layer) else f"layer {layer!r}"


def unknown_layer(layer: str, available: Iterable[str]) -> InputError:
    listed = ", ".join(available) or "none"
    raw = ""
    if layer.lower() in {"raw", "raw.x"}:  # CELLxGENE files keep their counts in raw.X
        raw = "; adata.raw is not a layer: write adata.raw.to_adata() to a file and embed that"
    return InputError(
        f"unknown layer {layer!r} (layers in the file: {listed}; X is --layer X{raw})"
    )


def get_matrix(adata: ad.AnnData, layer: str | None) -> np.ndarray | sparse.spmatrix:
    """The matrix a user asked for: ``adata.X`` or ``adata.layers[layer]``."""
    if reads_x(layer):
        if adata.X is None:
            raise InputError("AnnData has no X matrix; name a layer with --layer")
        return adata.X
    if layer not in adata.layers:
        raise unknown_layer(layer, adata.layers.keys())
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


def check_normalisation(normalisation: str, choices: tuple[str, ...] = NORMALISATIONS) -> None:
    """Refuse a normalisation name this package does not know (the product and its peer)."""
    if normalisation not in choices:
        raise InputError(f"unknown normalisation {normalisation!r}: choose {' or '.join(choices)}")


def check_finite(matrix: np.ndarray | sparse.spmatrix, what: str) -> None:
    values = _values(matrix)
    if not np.isfinite(values).all():
        bad = int((~np.isfinite(values)).sum())
        raise InputError(f"{what} holds {bad} NaN or infinite values; clean them before embedding")


def check_values(
    matrix: np.ndarray | sparse.spmatrix, what: str, counts_expected: bool = True
) -> None:
    """Refuse what no recipe can use: NaN / inf, a matrix that is zero everywhere, and, where
    ``counts_expected``, negative values among integers (counts with an error in them: scaled
    or log data are not integers, so they pass)."""
    if 0 in matrix.shape:
        cells, genes = matrix.shape
        raise InputError(f"{what} is empty ({cells} cells × {genes} genes)")
    check_finite(matrix, what)
    values = _values(matrix)
    if not values.any():
        raise InputError(f"{what} is zero everywhere; there is nothing to embed")
    negative = values < 0
    if counts_expected and negative.any() and np.all(np.mod(values, 1) == 0):
        raise InputError(
            f"{what} holds negative values where counts are expected "
            f"({int(negative.sum())} values < 0, smallest {values.min():g})"
        )


def check_unique_genes(var_names: pd.Index) -> None:
    """Refuse repeated gene names: a model finds its genes by name."""
    repeated = var_names[var_names.duplicated()].unique()
    if len(repeated):
        names = counted(len(repeated), "gene name", ("occurs", "occur"))
        raise InputError(
            f"{names} more than once ({shown(list(repeated))}); make "
            "them unique first (adata.var_names_make_unique() in Python)"
        )


def looks_like_counts(matrix: np.ndarray | sparse.spmatrix) -> bool:
    """True when every stored value is a non-negative integer."""
    values = _values(matrix)
    return bool(values.size and values.min() >= 0 and np.all(np.mod(values, 1) == 0))


def may_be_fractional_counts(matrix: np.ndarray | sparse.spmatrix) -> bool:
    """Non-negative values beyond any log scale: counts that need not be integers (EM
    quantifiers such as alevin-fry or kallisto, ambient-corrected counts), which only the
    user can tell from CPM / TPM, so only an explicit normalisation reads them as counts."""
    values = _values(matrix)
    return bool(values.size and values.min() >= 0 and values.max() > LOG_SCALE_LIMIT)


@keeps_torch_threads
def _log_normalise(
    matrix: np.ndarray | sparse.spmatrix, rows: np.ndarray | None = None
) -> np.ndarray | sparse.spmatrix:
    """normalize_total (10,000) + log1p through scanpy, on a throw-away AnnData (``rows``:
    as :func:`_refuse_empty_cells` takes them)."""
    if sparse.issparse(matrix):
        matrix = sparse.csr_matrix(matrix, dtype=np.float32, copy=True)
    else:
        matrix = np.array(matrix, dtype=np.float32)
    _refuse_empty_cells(matrix, rows)
    scratch = ad.AnnData(matrix)
    sc.pp.normalize_total(scratch, target_sum=TARGET_SUM)
    sc.pp.log1p(scratch)
    return scratch.X


def _refuse_empty_cells(
    matrix: np.ndarray | sparse.spmatrix, rows: np.ndarray | None = None
) -> None:
    """Refuse cells without a count, naming their rows in the file: ``rows`` are the file's
    row numbers of the matrix's rows (a block or a sample of a large file; None: the same)."""
    empty = np.flatnonzero(np.asarray(matrix.sum(axis=1)).ravel() == 0)
    if len(empty):
        empty = empty if rows is None else rows[empty]
        raise InputError(
            f"{counted(len(empty), 'cell')} with no counts at all (row {shown(empty)}, counted "
            "from 0); filter them out first (sc.pp.filter_cells(adata, min_counts=1))"
        )


def pearson_residuals(
    counts: np.ndarray | sparse.spmatrix, gene_fraction: np.ndarray, clip: float
) -> np.ndarray:
    """Analytic Pearson residuals (x − μ) / √(μ + μ²/θ), μ = the cell's total × the gene's
    share of all counts, clipped at ±``clip``. scanpy's ``normalize_pearson_residuals``
    computes the shares from the matrix it is given; here they are the training data's,
    saved with the model, so new cells are scaled exactly as the training cells were."""
    residuals = counts.toarray() if sparse.issparse(counts) else np.array(counts)
    residuals = residuals.astype(np.float32, copy=False)  # a copy of the input either way
    totals = residuals.sum(axis=1, keepdims=True)
    for start in range(0, len(residuals), RESIDUAL_ROWS):  # temporaries of one block only
        rows = slice(start, start + RESIDUAL_ROWS)
        expected = totals[rows] * gene_fraction[None, :]
        spread = np.sqrt(expected + expected**2 / PEARSON_THETA)
        residuals[rows] -= expected
        np.divide(residuals[rows], spread, out=residuals[rows], where=spread > 0)
        residuals[rows][spread == 0] = 0  # nothing expected: a gene without training counts
    return np.clip(residuals, -clip, clip, out=residuals)


def _keep_highly_variable(
    matrix: np.ndarray | sparse.spmatrix, genes: list[str], scored: ad.AnnData
) -> tuple[np.ndarray | sparse.spmatrix, list[str]]:
    """The columns that scanpy flagged in ``scored.var["highly_variable"]``."""
    keep = scored.var["highly_variable"].to_numpy()
    logger.info("kept %d highly variable genes of %d", int(keep.sum()), len(genes))
    return matrix[:, keep], [gene for gene, kept in zip(genes, keep) if kept]


def _dense(matrix: np.ndarray | sparse.spmatrix) -> np.ndarray:
    if sparse.issparse(matrix):
        return matrix.toarray().astype(np.float32, copy=False)
    return np.ascontiguousarray(matrix, dtype=np.float32)  # one layout: same sums, same result


@dataclass
class ExpressionPreprocessing:
    """The fitted recipe from an AnnData to a float32 cells × genes encoder input."""

    genes: list[str]
    layer: str | None = None
    normalisation: str | None = None
    """One of NORMALISATIONS for raw counts; None: the input is used as it is."""
    input_kind: str | None = None
    """What the training input was: "counts", "fractional counts" or "values" (neither), which
    new input must match; "none" (taken as it was, unchecked: ``--normalisation none``); None
    for models saved before it was recorded."""
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    std: np.ndarray = field(default_factory=lambda: np.ones(0, np.float32))
    gene_fraction: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    """``pearson``: each gene's share of the training cells' counts."""
    residual_clip: float = 0.0
    """``pearson``: residuals are clipped at ±√(training cells), as scanpy does."""

    @classmethod
    def fit(
        cls,
        adata: ad.AnnData,
        layer: str | None = None,
        n_top_genes: int = DEFAULT_N_TOP_GENES,
        normalisation: str = DEFAULT_NORMALISATION,
    ) -> tuple[ExpressionPreprocessing, np.ndarray]:
        """Choose normalisation, genes and scaling from ``adata``; return recipe and output."""
        return cls.fit_rows(
            get_matrix(adata, layer), adata.var_names, layer, n_top_genes, normalisation
        )

    @classmethod
    def fit_rows(
        cls,
        matrix: np.ndarray | sparse.spmatrix,
        var_names: pd.Index,
        layer: str | None = None,
        n_top_genes: int = DEFAULT_N_TOP_GENES,
        normalisation: str = DEFAULT_NORMALISATION,
        source: str | None = None,
        counts_required: bool = False,
        rows: np.ndarray | None = None,
    ) -> tuple[ExpressionPreprocessing, np.ndarray]:
        """:meth:`fit` on a matrix of cells (all of them, or a sample of a large file) whose
        columns are ``var_names``, taken from ``layer`` (None: X). ``normalisation``: how
        raw counts are normalised (``"none"``: not at all); other input is used as it is, or
        refused with ``counts_required`` (the user asked for a normalisation), which also
        reads non-integer values beyond a log scale as (fractional) counts. ``source`` names
        the matrix in messages (default: the layer, or X), ``rows`` its rows' numbers in the
        file (a sample's; None: all rows)."""
        n_top_genes = whole_number("--n-top-genes", n_top_genes, 1)
        check_normalisation(normalisation, RECIPE_NORMALISATIONS)
        check_unique_genes(var_names)
        source = source or matrix_name(layer)
        check_values(matrix, source, counts_expected=normalisation != AS_IS)
        if normalisation == AS_IS:
            logger.info("%s used as it is (--normalisation none)", source)
            return cls._fit_values(matrix, var_names, layer, n_top_genes, None, AS_IS)
        kind = "counts" if looks_like_counts(matrix) else "values"
        if kind == "values" and counts_required and may_be_fractional_counts(matrix):
            kind = "fractional counts"
        if kind == "values":
            if counts_required:
                raise InputError(
                    f"--normalisation {normalisation} needs raw counts, and {source} is not "
                    "(its values are not all non-negative integers, nor beyond a log scale)"
                )
            logger.info("%s is not raw counts: values used as they are", source)
            return cls._fit_values(matrix, var_names, layer, n_top_genes, None, kind)
        if normalisation == "pearson":
            logger.info("%s holds raw %s: Pearson residuals", source, kind)
            return cls._fit_pearson(matrix, var_names, layer, n_top_genes, kind, rows)
        logger.info("%s holds raw %s: normalize_total(1e4) + log1p", source, kind)
        normalised = _log_normalise(matrix, rows)
        return cls._fit_values(normalised, var_names, layer, n_top_genes, "log1p", kind)

    @classmethod
    @keeps_torch_threads
    def _fit_values(
        cls,
        matrix: np.ndarray | sparse.spmatrix,
        var_names: pd.Index,
        layer: str | None,
        n_top_genes: int,
        normalisation: str | None,
        input_kind: str,
    ) -> tuple[ExpressionPreprocessing, np.ndarray]:
        """Highly variable genes (seurat flavour) of normalised or as-is values, standardised."""
        genes = list(map(str, var_names))
        non_negative = _values(matrix).min(initial=0) >= 0
        if len(genes) > n_top_genes and not non_negative:
            logger.warning(
                "%s holds negative values (scaled data?): all %d features are kept, as "
                "highly variable genes are chosen on non-negative values only",
                matrix_name(layer), len(genes),
            )  # fmt: skip
        if len(genes) > n_top_genes and non_negative:
            largest = _values(matrix).max(initial=0)
            if largest > LOG_SCALE_LIMIT:
                remedies = (
                    "used as they are (--normalisation none): run sc.pp.log1p on them, or let "
                    "raw counts be normalised (leave out --normalisation none)"
                    if input_kind == AS_IS
                    else "run sc.pp.log1p on them, give raw counts (--layer; non-integer counts "
                    "with --normalisation pearson or log1p)"
                )
                raise InputError(
                    f"the values of {matrix_name(layer)} reach {largest:.4g}: not a log scale, "
                    f"which choosing highly variable genes assumes; {remedies}, or keep all "
                    f"{len(genes)} features with --n-top-genes {len(genes)}"
                )
            scratch = ad.AnnData(matrix, var=pd.DataFrame(index=pd.Index(genes)))
            with warnings.catch_warnings():  # said once below, as the package's warning
                warnings.filterwarnings("ignore", "`n_top_genes` > number of normalized")
                warnings.filterwarnings("ignore", "invalid value encountered in log")
                sc.pp.highly_variable_genes(scratch, n_top_genes=n_top_genes, flavor="seurat")
            if (found := int(scratch.var["highly_variable"].sum())) < n_top_genes:
                logger.warning(
                    "only %d of the %d genes could be ranked by their dispersion (few cells, "
                    "or genes detected in one cell only); keeping those %d", found, len(genes),
                    found,
                )  # fmt: skip
            matrix, genes = _keep_highly_variable(matrix, genes, scratch)
        recipe = cls(genes=genes, layer=layer, normalisation=normalisation, input_kind=input_kind)
        return recipe, recipe._fit_scaling(_dense(matrix))

    @classmethod
    @keeps_torch_threads
    def _fit_pearson(
        cls,
        counts: np.ndarray | sparse.spmatrix,
        var_names: pd.Index,
        layer: str | None,
        n_top_genes: int,
        input_kind: str,
        rows: np.ndarray | None,
    ) -> tuple[ExpressionPreprocessing, np.ndarray]:
        """Genes of highest Pearson residual variance (scanpy), their residuals standardised."""
        _refuse_empty_cells(counts, rows)
        genes = list(map(str, var_names))
        if len(genes) > n_top_genes:
            scratch = ad.AnnData(
                sparse.csr_matrix(counts, dtype=np.float32),
                var=pd.DataFrame(index=pd.Index(genes)),
            )
            with warnings.catch_warnings():  # fractional counts were asked for by name
                warnings.filterwarnings("ignore", "`flavor='pearson_residuals'` expects raw")
                sc.experimental.pp.highly_variable_genes(
                    scratch, flavor="pearson_residuals", n_top_genes=n_top_genes,
                    theta=PEARSON_THETA,
                )  # fmt: skip
            counts, genes = _keep_highly_variable(counts, genes, scratch)
        totals = np.asarray(counts.sum(axis=0, dtype=np.float64)).ravel()  # float16 overflows
        recipe = cls(
            genes=genes, layer=layer, normalisation="pearson", input_kind=input_kind,
            gene_fraction=(totals / totals.sum()).astype(np.float32),
            residual_clip=float(np.sqrt(counts.shape[0])),
        )  # fmt: skip
        residuals = pearson_residuals(counts, recipe.gene_fraction, recipe.residual_clip)
        return recipe, recipe._fit_scaling(residuals)

    def _fit_scaling(self, dense: np.ndarray) -> np.ndarray:
        """Learn each gene's mean and sd from ``dense``; return it standardised."""
        self.mean = dense.mean(axis=0)
        self.std = dense.std(axis=0)
        # the sd alone misses identical cells whose float32 mean rounds (sd ~1e-5, not 0);
        # the exact comparison, an n × genes temporary, only where every sd is that small
        nearly_constant = self.std.max(initial=0) < 1e-3
        if len(dense) > 1 and nearly_constant and (dense == dense[0]).all():
            raise InputError(
                f"all {len(dense)} cells are the same in the {len(self.genes)} genes used; "
                "there is nothing to embed"
            )
        self.std[self.std == 0] = 1.0
        return self._standardise(dense)

    @property
    def normalisation_name(self) -> str:
        """What ``uns`` records: the normalisation applied, or "none" (values as they are)."""
        return self.normalisation or AS_IS

    @property
    def normalise(self) -> bool:
        """Whether the model reads raw counts (and normalises them)."""
        return self.normalisation is not None

    @property
    def n_features(self) -> int:
        return len(self.genes)

    def transform(
        self, adata: ad.AnnData, layer: str | None = None, align: bool = False
    ) -> np.ndarray:
        """Apply the saved recipe to new data, read from ``layer`` (None: the one the recipe
        was fitted on); its genes must include the recipe's (``align``: see
        :meth:`gene_index`)."""
        layer = self.layer if layer is None else layer
        index = self.gene_index(adata.var_names, align)
        return self.transform_rows(get_matrix(adata, layer), index, matrix_name(layer))

    def gene_index(self, var_names: pd.Index, align: bool = False) -> np.ndarray:
        """Positions of the recipe's genes in ``var_names``. A missing gene is a clear error,
        or, with ``align``, a warning naming it and position −1: :meth:`transform_rows` then
        gives it its training mean (0 after standardising), the least informative value."""
        var_names = pd.Index(var_names.astype(str))  # the recipe keeps names as strings
        check_unique_genes(var_names)
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

    def transform_rows(
        self,
        matrix: np.ndarray | sparse.spmatrix,
        index: np.ndarray,
        source: str | None = None,
        first_row: int = 0,
    ) -> np.ndarray:
        """The recipe on a block of rows (all cells, or one chunk of a large file);
        ``index`` is :meth:`gene_index` of the block's columns (−1: gene absent); ``source``
        names the matrix in messages (default: the layer the recipe was fitted on), and
        ``first_row`` the block's first row in it."""
        source = source or matrix_name(self.layer)
        check_finite(matrix, source)
        self._check_kind(matrix, source)
        rows = np.arange(first_row, first_row + matrix.shape[0])
        if self.normalisation == "log1p":
            matrix = _log_normalise(matrix, rows)
        present = index >= 0
        columns = matrix[:, index[present]]
        if self.normalisation == "pearson":
            _refuse_empty_cells(matrix, rows)
            values = pearson_residuals(columns, self._shares(present), self.residual_clip)
        else:
            values = _dense(columns)
        if present.all():
            return self._standardise(values)
        dense = np.empty((matrix.shape[0], len(self.genes)), dtype=np.float32)
        dense[:, present] = values
        dense[:, ~present] = self.mean[~present]
        return self._standardise(dense)

    def _check_kind(self, matrix: np.ndarray | sparse.spmatrix, source: str) -> None:
        """Refuse input of another kind than the training input's: the recipe would run on
        it without an error and give a meaningless embedding (counts read as log values)."""
        trained_on = matrix_name(self.layer)
        if self.normalise:
            counts = looks_like_counts(matrix) or (
                self.input_kind == "fractional counts" and may_be_fractional_counts(matrix)
            )
            if not counts:
                raise InputError(
                    f"the model was trained on raw counts ({trained_on}), and {source} does "
                    "not hold counts; name the layer that does with --layer"
                )
        elif self.input_kind == "values" and looks_like_counts(matrix) and _values(matrix).any():
            raise InputError(
                f"the model was trained on values that are not raw counts ({trained_on}: "
                f"log-normalised, scaled or a table's), and {source} holds raw counts; give "
                "the values it was trained on (--layer), normalised the same way"
            )

    def _shares(self, present: np.ndarray) -> np.ndarray:
        """The training shares of the genes present; with some absent, rescaled to sum to one,
        so that a cell's expected counts still add up to its total."""
        if present.all():
            return self.gene_fraction
        return self.gene_fraction[present] / self.gene_fraction[present].sum()

    def _standardise(self, dense: np.ndarray) -> np.ndarray:
        """(x − mean) / sd clipped at ±10, float32, with one temporary (large blocks)."""
        scaled = np.subtract(dense, self.mean, dtype=np.float32)
        scaled /= self.std
        return np.clip(scaled, -CLIP, CLIP, out=scaled)

    def to_dict(self) -> dict:
        return {
            "genes": self.genes,
            "layer": self.layer,
            "normalisation": self.normalisation,
            "input_kind": self.input_kind,
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "gene_fraction": self.gene_fraction.tolist(),
            "residual_clip": self.residual_clip,
        }

    @classmethod
    def from_dict(cls, config: dict) -> ExpressionPreprocessing:
        """The saved recipe; values it could not have saved (a config edited by hand) are a
        ValueError, as a silently different recipe would give a different embedding."""
        normalisation = config.get("normalisation")
        if normalisation not in (*NORMALISATIONS, None):
            raise ValueError(f"normalisation {normalisation!r} is not one of {NORMALISATIONS}")
        if config.get("input_kind") not in (*INPUT_KINDS, None):
            raise ValueError(f"input_kind {config['input_kind']!r} is not one of {INPUT_KINDS}")
        if not len(config["genes"]) == len(config["mean"]) == len(config["std"]):
            raise ValueError("genes, mean and std differ in length")
        return cls(
            genes=list(config["genes"]),
            layer=config["layer"],
            # models saved before Pearson residuals hold only "normalise": log1p or nothing
            normalisation=config.get("normalisation", "log1p" if config.get("normalise") else None),
            input_kind=config.get("input_kind"),
            mean=np.asarray(config["mean"], dtype=np.float32),
            std=np.asarray(config["std"], dtype=np.float32),
            gene_fraction=np.asarray(config.get("gene_fraction", []), dtype=np.float32),
            residual_clip=float(config.get("residual_clip", 0.0)),
        )
