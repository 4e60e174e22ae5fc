"""Checkpoints of a training run, and resuming one exactly where it stopped.

Training is a sequence of epochs — contrastive epochs, diffusion epochs, in whatever order a
method runs them. :meth:`Checkpoints.epochs` numbers them across the whole run and, every
``every_s`` seconds at an epoch's end, saves everything that changes during training: the
registered modules, optimisers, generators and counters, the global random states, and the
*memos* — values a method computed between epochs from the state of that moment (DiffAug's
embedding condition and bank of generated positives).

Resuming runs the same code again from the start. Epochs up to the checkpoint's are skipped,
memos are answered from the checkpoint instead of recomputed, and at the checkpoint's epoch
every registered state and random state is put back; from there on the run does exactly
what the interrupted one would have done, so on the CPU it ends with the same embedding.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from ._errors import InputError
from ._progress import progress
from .io.files import atomic_replacement

logger = logging.getLogger("diffaug_bio")

T = TypeVar("T")

DEFAULT_EVERY_S = 60.0


def data_digest(data: torch.Tensor) -> str:
    """A short hash of the training data, so a checkpoint is never resumed on other data."""
    return hashlib.blake2b(data.contiguous().numpy().tobytes(), digest_size=12).hexdigest()


@dataclass
class _Accessor:
    """How to read and restore one piece of training state."""

    get: Callable[[], Any]
    set: Callable[[Any], None]


class Checkpoints:
    """Periodic checkpoints of one training run in ``path`` (None: never written), and
    resumption from it when ``resume`` is set and the file exists."""

    def __init__(
        self,
        path: str | os.PathLike | None = None,
        every_s: float = DEFAULT_EVERY_S,
        resume: bool = False,
    ):
        self.path = path
        self.every_s = every_s
        self.resume = resume
        self._state: dict[str, _Accessor] = {}
        self._memos: dict[str, Any] = {}
        self._position = 0
        """Epochs of the run begun so far, over every training loop."""
        self._saved: dict | None = None
        """The checkpoint being resumed, until its epoch is reached."""
        self._last_save = time.monotonic()
        self._fingerprint: dict = {}

    def start(self, fingerprint: dict) -> None:
        """Begin a run described by ``fingerprint`` (settings, data digest); with ``resume``,
        load the checkpoint, refusing one that another run wrote."""
        self._fingerprint = fingerprint
        if not (self.resume and self.path and Path(self.path).exists()):
            if self.resume:
                # a warning, which -q keeps: a mistyped output path would otherwise start a
                # long run over without a word
                logger.warning("--resume: no checkpoint at %s; training from the start", self.path)
            return
        try:
            # weights_only: a file planted where a checkpoint is expected must not run code
            saved = torch.load(self.path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as error:  # what weights_only refuses
            raise InputError(
                f"{self.path}: holds more than a checkpoint's tensors and plain values (written "
                "by another program or an older diffaug-bio), so it is not read; delete it to "
                "train from the start"
            ) from error
        except Exception as error:
            raise InputError(f"{self.path}: cannot be read as a checkpoint ({error})") from error
        if saved.get("fingerprint") != fingerprint:
            different = sorted(
                key
                for key in fingerprint.keys() | saved.get("fingerprint", {}).keys()
                if fingerprint.get(key) != saved.get("fingerprint", {}).get(key)
            )
            raise InputError(
                f"{self.path}: the checkpoint belongs to another run (different "
                f"{', '.join(different)}); delete it or repeat that run's command"
            )
        self._saved = saved
        logger.info("resuming from %s (epoch %d of the run)", self.path, saved["position"])

    def register(self, name: str, thing: Any, restore: Callable[[Any], None] | None = None) -> None:
        """Track ``thing``'s state under ``name``: a module or optimiser (``state_dict``), a
        ``torch.Generator``, a list (its items), or with ``restore`` a getter callable."""
        if restore is not None:
            accessor = _Accessor(thing, restore)
        elif isinstance(thing, torch.Generator):
            accessor = _Accessor(thing.get_state, thing.set_state)
        elif isinstance(thing, list):
            accessor = _Accessor(lambda: list(thing), lambda items: _replace_items(thing, items))
        else:
            accessor = _Accessor(thing.state_dict, thing.load_state_dict)
        self._state[name] = accessor

    def memo(self, key: str, compute: Callable[[], T]) -> T:
        """``compute()``, remembered under ``key`` for the checkpoints; while replaying, the
        value the interrupted run computed (the model state it came from is gone). A key
        used again replaces its value, so a loop's memos do not pile up in checkpoints."""
        if self._saved is not None and key in self._saved["memos"]:
            value = self._saved["memos"][key]
        else:
            value = compute()
        self._memos[key] = value
        return value

    def skip(self, epochs: int) -> bool:
        """True when a resumed run had already finished the next ``epochs`` epochs: the caller
        then skips that whole stretch, including the work between its loops (a DiffAug round's
        bank), and the run's state is restored if the checkpoint was taken at its end."""
        if self._saved is None or self._position + epochs > self._saved["position"]:
            return False
        self._position += epochs
        if self._position == self._saved["position"]:
            self._restore()
        return True

    def epochs(self, count: int, desc: str) -> Iterator[int]:
        """The epochs ``0 … count-1`` of one training loop, with a progress bar: skipped while
        replaying up to the checkpoint, where the saved state is restored; a checkpoint is
        saved after an epoch when ``every_s`` seconds have passed since the last one."""
        for epoch in progress(range(count), desc=desc):
            self._position += 1
            if self._saved is not None:
                if self._position == self._saved["position"]:
                    self._restore()
                continue
            yield epoch
            if self.path is not None and time.monotonic() - self._last_save >= self.every_s:
                self._save()

    def remove(self) -> None:
        """Delete the checkpoint file (after the run's outputs are written)."""
        if self.path is not None:
            Path(self.path).unlink(missing_ok=True)

    def _save(self) -> None:
        checkpoint = {
            "fingerprint": self._fingerprint,
            "position": self._position,
            "state": {name: accessor.get() for name, accessor in self._state.items()},
            "memos": self._memos,
            "random": (torch.get_rng_state(), _numpy_random_state(), random.getstate()),
        }
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)  # train-dna's OUTDIR
        with atomic_replacement(self.path) as temporary:
            torch.save(checkpoint, temporary)
        self._last_save = time.monotonic()
        logger.debug("checkpoint at epoch %d of the run: %s", self._position, self.path)

    def _restore(self) -> None:
        saved, self._saved = self._saved, None
        if set(saved["state"]) != set(self._state):
            raise InputError(f"{self.path}: the checkpoint does not match this run's training")
        for name, value in saved["state"].items():
            self._state[name].set(value)
        torch_state, numpy_state, python_state = saved["random"]
        torch.set_rng_state(torch_state)
        _set_numpy_random_state(numpy_state)
        random.setstate(python_state)
        self._memos = dict(saved["memos"])
        self._last_save = time.monotonic()


def _replace_items(target: list, items: list) -> None:
    target[:] = items


def _numpy_random_state() -> tuple:
    """NumPy's global random state with its key array as a tensor: a NumPy array would need
    an unsafe (code-running) unpickler to be read back."""
    name, keys, position, has_gauss, cached = np.random.get_state()
    return name, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached


def _set_numpy_random_state(state: tuple) -> None:
    name, keys, position, has_gauss, cached = state
    np.random.set_state((name, keys.numpy().astype(np.uint32), position, has_gauss, cached))
