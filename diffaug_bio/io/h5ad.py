"""Reading and writing ``.h5ad`` files safely: clear errors on bad files, atomic writes."""

from __future__ import annotations

import logging
import os
import shutil
import warnings
from collections.abc import Callable
from typing import Any

import anndata as ad
import h5py
import numpy as np
import pandas as pd
from scipy import sparse

from .._errors import InputError, counted, reason, shown
from .expression import matrix_name, reads_x, unknown_layer
from .files import atomic_replacement, check_readable

logger = logging.getLogger("diffaug_bio")

H5AD_SUFFIXES = (".h5ad",)


def read_h5ad(path: str | os.PathLike, backed: bool = False) -> ad.AnnData:
    """Read an ``.h5ad`` file; anything that is not a readable AnnData becomes one InputError."""
    path = check_readable(path)
    if not h5py.is_hdf5(path):
        raise InputError(f"{path}: not an HDF5 file, so not an .h5ad file")
    try:
        with warnings.catch_warnings():  # repeated genes are refused later, in one clear line
            warnings.filterwarnings("ignore", "Variable names are not unique", UserWarning)
            warnings.filterwarnings("ignore", "Observation names are not unique", UserWarning)
            adata = ad.read_h5ad(path, backed="r" if backed else None)
    except Exception as error:  # h5py/anndata raise many types for damaged files
        raise InputError(f"{path}: cannot be read as AnnData ({reason(error)})") from error
    if not adata.obs_names.is_unique:  # embedded all the same; said once, as the package
        repeated = adata.obs_names[adata.obs_names.duplicated()].unique()
        logger.warning("%s: %s more than once (%s); obsm rows follow the file's order", path,
                       counted(len(repeated), "cell name", ("occurs", "occur")),
                       shown(list(repeated)))  # fmt: skip
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise InputError(f"{path}: empty AnnData ({adata.n_obs} cells × {adata.n_vars} genes)")
    return adata


class BackedMatrix:
    """X or one layer of an ``.h5ad`` file, read a block of rows at a time, never whole.

    anndata's own ``backed="r"`` mode keeps X on disk but loads every layer into memory, so
    the matrix is opened here through h5py and :func:`anndata.io.sparse_dataset`.
    """

    def __init__(self, path: str | os.PathLike, layer: str | None = None):
        path = check_readable(path)
        if not h5py.is_hdf5(path):
            raise InputError(f"{path}: not an HDF5 file, so not an .h5ad file")
        self.path = path
        self.layer = layer
        try:
            self._file = h5py.File(path, "r")
            self.var_names = pd.Index(ad.io.read_elem(self._file["var"]).index.astype(str))
        except Exception as error:
            raise InputError(f"{path}: cannot be read as AnnData ({reason(error)})") from error
        element = self._element(layer)
        encoding = element.attrs.get("encoding-type", "array")
        if encoding == "csc_matrix":
            raise InputError(
                f"{path}: {matrix_name(layer)} is stored by genes (CSC); "
                "backed reading needs cells as rows — rewrite it as CSR or dense, or drop --backed"
            )
        self._matrix = element if encoding == "array" else ad.io.sparse_dataset(element)
        self.shape: tuple[int, int] = tuple(int(n) for n in self._matrix.shape)
        if 0 in self.shape:
            cells, genes = self.shape
            raise InputError(f"{path}: empty AnnData ({cells} cells × {genes} genes)")

    @property
    def obsm_keys(self) -> list[str]:
        return list(self._file["obsm"]) if "obsm" in self._file else []

    @property
    def uns_diffaug(self) -> Any:
        """The file's ``uns["diffaug"]`` (None if it has none)."""
        return ad.io.read_elem(self._file["uns/diffaug"]) if "uns/diffaug" in self._file else None

    def _element(self, layer: str | None) -> h5py.Dataset | h5py.Group:
        if reads_x(layer):
            if "X" not in self._file:
                raise InputError(f"{self.path}: AnnData has no X matrix; name a layer with --layer")
            return self._file["X"]
        layers = self._file.get("layers", {})
        if layer not in layers:
            raise unknown_layer(layer, layers.keys())
        return layers[layer]

    def __getitem__(self, rows: slice) -> np.ndarray | sparse.csr_matrix:
        """A block of cells as a NumPy array (dense storage) or CSR matrix."""
        return self._matrix[rows]

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> BackedMatrix:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_h5ad_atomic(adata: ad.AnnData, path: str | os.PathLike) -> None:
    """Write ``adata`` to ``path`` atomically (temporary file + rename)."""
    with atomic_replacement(path) as temporary:
        adata.write_h5ad(temporary)


def write_embedding_beside(
    source: str | os.PathLike,
    destination: str | os.PathLike,
    key: str,
    embedding: np.ndarray,
    uns_record: Callable[[Any], dict],
) -> None:
    """``destination`` = ``source`` plus ``obsm[key]`` and ``uns["diffaug"]``, without loading
    ``source``: the file is copied, the two elements are written into the copy through h5py,
    and the copy is renamed into place (``source`` is only read, even when it is
    ``destination``). ``uns_record(previous)`` gives the new ``uns["diffaug"]`` from the
    file's own (None if it has none)."""
    with atomic_replacement(destination) as temporary:
        shutil.copyfile(source, temporary)
        with h5py.File(temporary, "r+") as file:
            previous = ad.io.read_elem(file["uns/diffaug"]) if "uns/diffaug" in file else None
            for group, name, value in (
                ("obsm", key, embedding),
                ("uns", "diffaug", uns_record(previous)),
            ):
                if group not in file:
                    ad.io.write_elem(file, group, {})
                if name in file[group]:
                    del file[group][name]
                ad.io.write_elem(file[group], name, value)
