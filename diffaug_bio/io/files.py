"""Files a command reads and writes: clear errors before any work, and atomic replacement
(a temporary file beside the target, renamed over it) so a crash never leaves a half-written
output or a damaged input."""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

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


def check_output(
    path: str | os.PathLike,
    kind: str,
    suffixes: Sequence[str],
    source: str | os.PathLike | None = None,
) -> Path:
    """:func:`check_writable`, and two mistakes caught before any work: an output whose name
    promises another format than the ``kind`` written (``suffixes``: the names that fit it),
    and an output that is the input ``source`` itself, which writing would destroy."""
    path = check_writable(path)
    if not path.name.lower().endswith(tuple(suffixes)):
        endings = ", ".join(suffixes)
        raise InputError(f"{path}: the output is written as {kind}; its name must end in {endings}")
    if (
        source is not None
        and path.exists()
        and Path(source).exists()
        and os.path.samefile(path, source)
    ):
        raise InputError(f"{path}: is the input file; write the output to another file")
    return path


def check_output_folder(folder: str | os.PathLike) -> Path:
    """Fail early, before any work, if ``folder`` (or, when missing, the nearest folder above
    it) cannot be written; :func:`make_output_folder` creates it once there is output."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder}: exists and is not a folder")
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise InputError(f"{folder}: not writable")
    return folder


def make_output_folder(folder: str | os.PathLike) -> Path:
    """``folder``, created with its parents if missing; an InputError if that fails."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"{folder}: cannot create the output folder ({error.strerror})") from error
    return folder


@contextlib.contextmanager
def atomic_replacement(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary file beside ``path``; when the block succeeds, rename it over ``path``.

    A crash or kill at any moment leaves either the old file or the new one, never a
    half-written file; the temporary file is removed on failure, and one left by a killed
    process (its name carries the process id) is removed by the next write to ``path``.
    """
    path = Path(path)
    if path.is_symlink():  # replace the file the link points to, and keep the link
        path = path.resolve()
    path = check_writable(path)
    _remove_orphans(path)
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp"
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


def _remove_orphans(path: Path) -> None:
    """Delete temporary files beside ``path`` whose writing process no longer exists."""
    for orphan in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = orphan.name.removeprefix(f".{path.name}.").split(".")[0]
        if pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                orphan.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through :func:`atomic_replacement` (JSON scores, metrics)."""
    with atomic_replacement(path) as temporary:
        Path(temporary).write_text(text)
