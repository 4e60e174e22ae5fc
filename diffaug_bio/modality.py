"""What differs between the two data kinds, gathered in one place.

Everything else — training loop, losses, methods, diffusion core — is shared; a method asks
the modality for what it needs (its hand-designed views, its default encoder).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from ._errors import InputError
from .contrastive.views import DNAViews, ExpressionViews

ViewFn = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclass(frozen=True)
class Modality:
    name: str
    default_encoder: str
    default_dim: int
    default_epochs: int
    batch_size: int
    hand_designed_views: Callable[[], ViewFn]


EXPRESSION = Modality(
    name="expression",
    default_encoder="mlp",
    default_dim=50,
    default_epochs=100,
    batch_size=256,
    hand_designed_views=ExpressionViews,
)
DNA = Modality(
    name="dna",
    default_encoder="cnn",
    default_dim=128,
    default_epochs=20,
    batch_size=128,
    hand_designed_views=DNAViews,
)
MODALITIES = {m.name: m for m in (EXPRESSION, DNA)}


def get_modality(name: str) -> Modality:
    if name not in MODALITIES:
        raise InputError(f"unknown modality {name!r}")
    return MODALITIES[name]
