"""diffaug-bio: contrastive embeddings of DNA and cells, with diffusion-generated positives.

Layered like scanpy: :mod:`diffaug_bio.io` reads and writes data, :mod:`diffaug_bio.tl`
trains and applies embedding models, :mod:`diffaug_bio.pl` draws them,
:mod:`diffaug_bio.evaluate` scores embeddings.

The layers are imported on first use (as SciPy does its submodules): torch and scanpy take
seconds to load, and ``diffaug-bio --help`` or a mistyped option should not wait for them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._errors import InputError

__version__ = "0.1.0"

if TYPE_CHECKING:
    from . import evaluate, io, pl, tl
    from .checkpoint import Checkpoints
    from .model import EmbeddingModel

_LAZY = {
    "evaluate": ".evaluate",
    "io": ".io",
    "pl": ".pl",
    "tl": ".tl",
    "Checkpoints": ".checkpoint",
    "EmbeddingModel": ".model",
}
"""Public names loaded on first access, and the module each comes from."""


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(_LAZY[name], __name__)
    value = module if module.__name__ == f"{__name__}.{name}" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "Checkpoints",
    "EmbeddingModel",
    "InputError",
    "__version__",
    "evaluate",
    "io",
    "pl",
    "tl",
]
