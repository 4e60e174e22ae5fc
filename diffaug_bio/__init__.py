"""diffaug-bio: contrastive embeddings of DNA and cells, with diffusion-generated positives.

Layered like scanpy: :mod:`diffaug_bio.io` reads and writes data, :mod:`diffaug_bio.tl`
trains and applies embedding models, :mod:`diffaug_bio.pl` draws them,
:mod:`diffaug_bio.evaluate` scores embeddings.
"""

__version__ = "0.1.0"

from . import evaluate, io, pl, tl
from ._errors import InputError
from .checkpoint import Checkpoints
from .model import EmbeddingModel

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
