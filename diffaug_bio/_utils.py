"""Small shared helpers: seeding, device choice, progress bars."""

from __future__ import annotations

import contextlib
import logging
import random
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

import numpy as np
import torch
from tqdm.auto import tqdm

from ._errors import InputError

logger = logging.getLogger("diffaug_bio")

T = TypeVar("T")

_progress_enabled = True


def set_progress(enabled: bool) -> None:
    """Switch progress bars on or off for the whole process (the CLI's ``--quiet``)."""
    global _progress_enabled
    _progress_enabled = enabled


def progress(iterable: Iterable[T], desc: str, total: int | None = None) -> Iterator[T]:
    """A tqdm bar that stays silent when output is not a terminal or when progress is off."""
    disable = not _progress_enabled or not sys.stderr.isatty()
    yield from tqdm(iterable, desc=desc, total=total, disable=disable, leave=False)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a torch generator for explicit sampling."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def mixed_precision(device: torch.device) -> contextlib.AbstractContextManager:
    """bfloat16 autocast for training on CUDA GPUs that support it natively — matmuls and
    convolutions at half width, losses and reductions kept in float32 by autocast, no loss
    scaling needed; full precision everywhere else (CPU results stay exactly reproducible)."""
    # emulated bf16 (pre-Ampere GPUs) is slower than float32, not faster
    if device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def resolve_device(name: str = "auto") -> torch.device:
    """Map ``auto|cpu|cuda|mps`` to a torch device; ``auto`` prefers cuda, then mps, then cpu."""
    name = name.lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for, but torch sees no CUDA GPU")
    if name == "mps" and not torch.backends.mps.is_available():
        raise InputError("--device mps was asked for, but torch sees no Apple MPS device")
    if name not in {"cpu", "cuda", "mps"}:
        raise InputError(f"unknown device {name!r}: choose auto, cpu, cuda or mps")
    return torch.device(name)
