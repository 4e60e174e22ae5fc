"""Reading and writing ``.h5ad`` files safely: clear errors on bad files, atomic writes."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
from scipy import sparse

from .._errors import InputError


def check_readable(path: str | os.PathLike) -> Path:
    """Return ``path`` as a Path if it names an existing regular file, else raise InputError."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a file")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: permission denied")
    return path


def read_h5ad(path: str | os.PathLike, backed: bool = False) -> ad.AnnData:
    """Read an ``.h5ad`` file; anything that is not a readable AnnData becomes one InputError."""
    path = check_readable(path)
    if not h5py.is_hdf5(path):
        raise InputError(f"{path}: not an HDF5 file, so not an .h5ad file")
    try:
        adata = ad.read_h5ad(path, backed="r" if backed else None)
    except Exception as error:  # h5py/anndata raise many types for damaged files
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InputError(f"{path}: cannot be read as AnnData ({reason})") from error
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
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise InputError(f"{path}: cannot be read as AnnData ({reason})") from error
        element = self._element(layer)
        encoding = element.attrs.get("encoding-type", "array")
        if encoding == "csc_matrix":
            raise InputError(
                f"{path}: {'layer ' + repr(layer) if layer else 'X'} is stored by genes (CSC); "
                "backed reading needs cells as rows — rewrite it as CSR or dense, or drop --backed"
            )
        self._matrix = element if encoding == "array" else ad.io.sparse_dataset(element)
        self.shape: tuple[int, int] = tuple(int(n) for n in self._matrix.shape)
        if 0 in self.shape:
            cells, genes = self.shape
            raise InputError(f"{path}: empty AnnData ({cells} cells × {genes} genes)")

    def _element(self, layer: str | None) -> h5py.Dataset | h5py.Group:
        if layer is None:
            if "X" not in self._file:
                raise InputError(f"{self.path}: AnnData has no X matrix; name a layer with --layer")
            return self._file["X"]
        layers = self._file.get("layers", {})
        if layer not in layers:
            available = ", ".join(layers.keys()) or "none"
            raise InputError(f"unknown layer {layer!r} (layers in the file: {available})")
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


def check_writable(path: str | os.PathLike) -> Path:
    """Fail early, before any training, if ``path`` cannot be written."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InputError(f"{path}: output folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise InputError(f"{path}: not writable")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a file name")
    return path


def check_output_folder(folder: str | os.PathLike) -> Path:
    """Fail early if ``folder`` (created with its parents if missing) cannot be written."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder}: exists and is not a folder")
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise InputError(f"{folder}: not writable")
    return folder


@contextlib.contextmanager
def _atomic_replacement(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary file beside ``path``; when the block succeeds, rename it over ``path``.

    A crash or kill at any moment leaves either the old file or the new one, never a
    half-written file; the temporary file is removed on failure.
    """
    path = check_writable(path)
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    os.close(descriptor)
    try:
        yield temporary
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask()
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def write_h5ad_atomic(adata: ad.AnnData, path: str | os.PathLike) -> None:
    """Write ``adata`` to ``path`` atomically (temporary file + rename)."""
    with _atomic_replacement(path) as temporary:
        adata.write_h5ad(temporary)


def write_embedding_beside(
    source: str | os.PathLike,
    destination: str | os.PathLike,
    key: str,
    embedding: np.ndarray,
    params: dict,
) -> None:
    """``destination`` = ``source`` plus ``obsm[key]`` and ``uns["diffaug"]``, without loading
    ``source``: the file is copied, the two elements are written into the copy through h5py,
    and the copy is renamed into place (``source`` is only read, even when it is
    ``destination``)."""
    with _atomic_replacement(destination) as temporary:
        shutil.copyfile(source, temporary)
        with h5py.File(temporary, "r+") as file:
            for group, name, value in (
                ("obsm", key, embedding),
                ("uns", "diffaug", {"params": params}),
            ):
                if group not in file:
                    ad.io.write_elem(file, group, {})
                if name in file[group]:
                    del file[group][name]
                ad.io.write_elem(file[group], name, value)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
