"""The exceptions that mean "the user's input is wrong" or "training failed", not "the program is
broken", and the checks that raise them; light, so the command line loads them at once."""

from __future__ import annotations

import contextlib
import numbers
import operator
import os
import re
from collections.abc import Iterator, Sequence


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class InputError(ValueError):
    """Bad input or bad usage: the CLI prints the message on one line and exits with status 2."""


@contextlib.contextmanager
def naming(source: str | os.PathLike | None) -> Iterator[None]:
    """Prefix the InputErrors raised inside with ``source: `` (the file being worked on),
    unless they name it already, so that every message says which input is wrong. ``None``
    (in-memory data, no file to name) leaves them as they are."""
    try:
        yield
    except InputError as error:
        if source is None or str(source) in str(error):
            raise
        raise InputError(f"{source}: {error}") from error


def shown(names: Sequence[object], limit: int = 5) -> str:
    """The first ``limit`` names, comma-separated, with "…" when there are more: enough of a
    list for a one-line error message."""
    names = [str(name) for name in names]
    return ", ".join(names[:limit]) + (" …" if len(names) > limit else "")


def counted(count: int, noun: str, verbs: tuple[str, str] | None = None) -> str:
    """``"1 sequence"`` / ``"2 sequences"``, followed by the verb that agrees with it when
    ``verbs`` (singular, plural) is given: ``counted(n, "gene name", ("occurs", "occur"))``."""
    phrase = f"{count} {noun}" if count == 1 else f"{count} {noun}s"
    return phrase if verbs is None else f"{phrase} {verbs[count != 1]}"


def reason(error: BaseException) -> str:
    """The first sentence of a library exception's message, on one line (its type when it
    has none), to quote in an InputError. Not the first line: Biopython, for one, breaks
    lines mid-sentence; nor the whole: its advice names Python calls, not options."""
    text = " ".join(str(error).split())
    return re.split(r"(?<=\.) ", text, maxsplit=1)[0] or type(error).__name__


def real_number(name: str, value: object) -> float:
    """``value`` as a Python float (NumPy floats too, which JSON and ``uns`` would otherwise
    keep as NumPy scalars), or an InputError naming ``name``; strings, bools and None are
    refused."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    raise InputError(f"{name} must be a number, got {value!r}")


def whole_number(name: str, value: object, minimum: int, maximum: int | None = None) -> int:
    """``value`` as a Python int (NumPy integers too, so a parameter grid can be looped
    over), or an InputError naming ``name``; floats, strings and None are refused."""
    try:
        number = operator.index(value)
    except TypeError:
        raise InputError(f"{name} must be a whole number, got {value!r}") from None
    if number < minimum or (maximum is not None and number > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise InputError(f"{name} must be {bound}, got {number}")
    return number
