"""Reading and writing ``.h5ad`` files safely: clear errors on bad files, atomic writes."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import anndata as ad
import h5py

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


def write_h5ad_atomic(adata: ad.AnnData, path: str | os.PathLike) -> None:
    """Write to a temporary file beside ``path`` and rename it into place.

    A crash or kill at any moment leaves either the old file or the new one, never a
    half-written file; the temporary file is removed on failure.
    """
    path = check_writable(path)
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    os.close(descriptor)
    try:
        adata.write_h5ad(temporary)
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask()
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
