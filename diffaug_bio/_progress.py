"""Progress bars, switched off for the whole process by the CLI's ``--quiet``.

Kept apart from :mod:`diffaug_bio._utils` (which imports torch) because the command line sets
the switch before it knows whether a command will run or only print its help.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

_progress_enabled = True


def set_progress(enabled: bool) -> None:
    """Switch progress bars on or off for the whole process (the CLI's ``--quiet``)."""
    global _progress_enabled
    _progress_enabled = enabled


def progress_enabled() -> bool:
    return _progress_enabled


def _in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel, whose stderr shows bars but is no terminal."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return type(shell).__name__ == "ZMQInteractiveShell"


def progress(iterable: Iterable[T], desc: str, total: int | None = None) -> Iterator[T]:
    """A tqdm bar (a widget in Jupyter, through tqdm.auto) that stays silent when output goes
    to a file or a pipe, or when progress is off."""
    disable = not _progress_enabled or not (sys.stderr.isatty() or _in_notebook())
    yield from tqdm(iterable, desc=desc, total=total, disable=disable, leave=False)
