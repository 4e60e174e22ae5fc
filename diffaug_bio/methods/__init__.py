"""Contrastive methods, by their ``--method`` name."""

from __future__ import annotations

from .._errors import InputError
from ..modality import Modality
from .base import Method
from .simclr import SimCLR

METHODS: dict[str, type[Method]] = {cls.name: cls for cls in (SimCLR,)}


def build_method(name: str, modality: Modality) -> Method:
    if name not in METHODS:
        raise InputError(f"unknown method {name!r}: choose {', '.join(sorted(METHODS))}")
    return METHODS[name](modality)


__all__ = ["METHODS", "Method", "SimCLR", "build_method"]
