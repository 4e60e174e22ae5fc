"""Files a command reads and writes: clear errors before any work, and atomic replacement
(a temporary file beside the target, renamed over it; outputs that belong together staged
and renamed together) so a crash never leaves a half-written output or a damaged input."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from .._errors import InputError, reason


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
    it) cannot be written; :func:`staged_writes` creates it once there is output."""
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
def atomic_replacement(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary file beside ``path``; when the block succeeds, rename it over ``path``.

    A crash or kill at any moment leaves either the old file or the new one, never a
    half-written file; the temporary file is removed on failure, and one left by a killed
    process (its name carries the process id) is removed by the next write to ``path``.
    A failure to write becomes one InputError naming ``path``.
    """
    path = Path(path)
    if path.is_symlink():  # replace the file the link points to, and keep the link
        path = path.resolve()
    path = check_writable(path)
    _remove_orphans(path)
    temporary = None
    try:
        descriptor, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp"
        )
        os.close(descriptor)
        yield temporary
        _take_mode(temporary, path)
        os.replace(temporary, path)
    except OSError as error:  # a full disk, a file system that refuses the file or the rename
        raise _cannot_write(path, "output", error) from error
    finally:
        if temporary is not None:  # gone once renamed
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)


@contextlib.contextmanager
def staged_writes(folder: str | os.PathLike, names: Sequence[str], what: str) -> Iterator[Path]:
    """Yield an empty staging folder inside ``folder`` for outputs that belong together (a
    model's files, ``train-dna``'s three outputs); when the block succeeds, each of ``names``
    (paths relative to ``folder``) replaces its namesake, or its namesake is removed when
    none was written (a generator left by an earlier model saved there).

    A failure while writing (a full disk, an interrupt) leaves ``folder`` as it was (or
    absent, if this write was to create it), never new outputs beside old ones. At the end
    each staged file first moves beside its target (a copy, where a symbolic link leads to
    another file system); only then are all renamed over their targets, which needs no
    space. Other files in ``folder`` are kept, a name that is a symbolic link keeps its
    link, and a replaced file keeps its permissions.
    Failures become one InputError naming ``folder`` and ``what`` was written.
    """
    folder = Path(folder)
    beside: dict[Path, Path] = {}  # staged files moved next to their targets, not yet renamed
    made: list[Path] = []  # folders this write created, removed again if it fails
    try:
        for name in names:  # found now, not after the first outputs are replaced
            if (folder / name).is_dir():
                raise InputError(f"{folder / name}: is a folder, where the {what} have a file")
        made = [missing for missing in (folder, *folder.parents) if not missing.exists()]
        folder.mkdir(parents=True, exist_ok=True)
        _remove_orphans(folder / "staging")
        staging = Path(
            tempfile.mkdtemp(dir=folder, prefix=f".staging.{os.getpid()}.", suffix=".tmp")
        )
        try:
            yield staging
            written = [name for name in names if (staging / name).exists()]
            for name in written:
                target = (folder / name).resolve()  # behind a link, as atomic_replacement
                target.parent.mkdir(parents=True, exist_ok=True)
                _remove_orphans(target)
                temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
                beside[target] = temporary
                shutil.move(staging / name, temporary)
                _take_mode(temporary, target)
            for target, temporary in beside.items():
                os.replace(temporary, target)
            beside.clear()
            for name in set(names) - set(written):
                (folder / name).unlink(missing_ok=True)  # a link itself, not what it leads to
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            for temporary in beside.values():
                temporary.unlink(missing_ok=True)
    except BaseException as error:
        for folder_made in made:  # deepest first, if empty: nothing of this write is kept
            with contextlib.suppress(OSError):
                folder_made.rmdir()
        if isinstance(error, OSError):
            raise _cannot_write(folder, what, error) from error
        raise


def _cannot_write(target: Path, what: str, error: OSError) -> InputError:
    """The one-line error for ``what`` that could not be written to ``target``: what the
    system said (``strerror``), else the library's first sentence."""
    return InputError(f"{target}: cannot write the {what} ({error.strerror or reason(error)})")


def _take_mode(temporary: str | os.PathLike, path: Path) -> None:
    """Give a replacement the permissions of the file it replaces (new files: the umask's)."""
    os.chmod(temporary, path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask())


def _remove_orphans(path: Path) -> None:
    """Delete temporary files (or staging folders) beside ``path`` whose writing process no
    longer exists."""
    for orphan in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = orphan.name.removeprefix(f".{path.name}.").split(".")[0]
        if pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                if orphan.is_dir():
                    shutil.rmtree(orphan)
                else:
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
