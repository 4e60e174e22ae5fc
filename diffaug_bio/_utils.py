"""Small shared helpers: seeding, thread and random-state keeping, device choice."""

from __future__ import annotations

import contextlib
import functools
import logging
import random
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import numpy as np
import torch

from ._errors import InputError

logger = logging.getLogger("diffaug_bio")

P = ParamSpec("P")
R = TypeVar("R")


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a torch generator for explicit sampling."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def keeps_torch_threads(function: Callable[P, R]) -> Callable[P, R]:
    """Decorate a function that calls scanpy: torch's thread count comes back after it.

    The first parallel numba function of a process (scanpy's ``normalize_total``, gene
    selection, neighbours) starts numba's OpenMP threads, which raises the OpenMP thread
    count torch follows to every core: under ``OMP_NUM_THREADS=1`` — and under torchrun,
    which sets it to 1 per process — training ran on two threads here, two ranks on two
    cores each."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        threads = torch.get_num_threads()
        try:
            return function(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)

    return wrapper


def keeps_global_random_state(function: Callable[P, R]) -> Callable[P, R]:
    """Decorate a function that calls :func:`seed_everything`: the caller's Python, NumPy and
    torch (CPU) random states come back after it, so training in a notebook does not restart
    the user's own ``np.random`` or ``torch.rand`` streams."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        python_state, numpy_state = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            try:
                return function(*args, **kwargs)
            finally:
                random.setstate(python_state)
                np.random.set_state(numpy_state)

    return wrapper


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
