"""CSV / TSV feature tables (rows = samples, numeric columns = features) read as AnnData, so
bio-feature tables from outside single-cell work (proteomics, metabolomics, clinical panels)
go through the same ``embed`` as ``.h5ad`` files."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from .._errors import InputError, reason, shown
from .files import check_readable

TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
UNNAMED_FIRST = "Unnamed: 0"
"""What pandas calls a first column with an empty header, as ``DataFrame.to_csv`` writes
the index."""

logger = logging.getLogger("diffaug_bio")


def table_separator(path: str | os.PathLike) -> str | None:
    """The column separator of a feature table named ``path`` (``.gz`` allowed), or None
    when the name is not a table's."""
    suffixes = [suffix.lower() for suffix in Path(path).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    return TABLE_SUFFIXES.get(suffixes[-1]) if suffixes else None


def read_feature_table(
    path: str | os.PathLike,
    obs_columns: Sequence[str] = (),
    index_column: str | None = None,
) -> ad.AnnData:
    """One sample per row: ``obs_columns`` (and ``index_column``, the row names) become
    ``obs``, every other column must be numeric and becomes a feature of ``X`` (float32).
    A non-numeric column that is not named is an error naming it, never silently dropped. A
    first column with no header (``DataFrame.to_csv``'s index) gives the row names."""
    path = check_readable(path)
    separator = table_separator(path)
    if separator is None:
        raise InputError(f"{path}: not a feature table (expected .csv, .tsv or .tab, maybe .gz)")
    try:
        table = pd.read_csv(path, sep=separator)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot be read as a table ({reason(error)})") from error
    if index_column is None and len(table.columns) and table.columns[0] == UNNAMED_FIRST:
        index_column = UNNAMED_FIRST  # pandas' to_csv writes the row names so: not a feature
        logger.info("%s: the first column has no header: read as the sample names", path)
    named = [*obs_columns, *([index_column] if index_column else [])]
    unknown = [column for column in named if column not in table.columns]
    if unknown:
        raise InputError(f"{path}: no column {unknown[0]!r} (columns: {shown(table.columns)})")
    features = table.drop(columns=named)
    numeric = features.apply(pd.api.types.is_numeric_dtype)
    text = list(features.columns[~numeric.to_numpy(dtype=bool)])
    if text:
        raise InputError(
            f"{path}: column {text[0]!r} is not numeric; name annotation columns with "
            f"--obs-columns, the sample names with --index-column ({len(text)} non-numeric: "
            f"{shown(text)})"
        )
    if features.shape[0] == 0 or features.shape[1] == 0:
        raise InputError(
            f"{path}: empty feature table ({features.shape[0]} rows × {features.shape[1]} "
            "numeric columns)"
        )
    if index_column:
        names = table[index_column].astype(str)
        if names.duplicated().any():
            raise InputError(f"{path}: index column {index_column!r} has duplicate names")
    else:
        names = pd.Series(np.arange(len(table)).astype(str))
    obs = table[list(obs_columns)].set_axis(pd.Index(names.to_numpy()), axis=0)
    var = pd.DataFrame(index=pd.Index(features.columns.astype(str)))
    matrix = np.ascontiguousarray(features.to_numpy(dtype=np.float32))
    return ad.AnnData(matrix, obs=obs, var=var)
