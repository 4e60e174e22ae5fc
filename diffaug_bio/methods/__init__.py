"""Contrastive methods, by their ``--method`` name."""

from __future__ import annotations

from .._errors import InputError
from ..modality import Modality
from .base import Method, MethodOptions
from .clae import CLAE
from .diffaug import DiffAug
from .du import DU
from .simclr import SimCLR
from .viewmaker import Viewmaker

METHODS: dict[str, type[Method]] = {cls.name: cls for cls in (DiffAug, SimCLR, DU, Viewmaker, CLAE)}
DEFAULT_METHOD = DiffAug.name


def get_method(name: str) -> type[Method]:
    if name not in METHODS:
        raise InputError(f"unknown method {name!r}: choose {', '.join(sorted(METHODS))}")
    return METHODS[name]


def build_method(name: str, modality: Modality, **options: object) -> Method:
    return get_method(name)(modality, **options)


__all__ = [
    "CLAE",
    "DEFAULT_METHOD",
    "DU",
    "METHODS",
    "DiffAug",
    "Method",
    "MethodOptions",
    "SimCLR",
    "Viewmaker",
    "build_method",
    "get_method",
]
