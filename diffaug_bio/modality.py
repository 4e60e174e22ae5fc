"""What differs between the two data kinds, gathered in one place.

Everything else — training loop, losses, methods, the diffusion core — is shared; a method
asks the modality for what it needs: hand-designed views, warm-up positives, a denoiser
backbone and the map between data space and diffusion space.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ._errors import InputError
from .contrastive.views import (
    DNAViews,
    ExpressionViews,
    NeighbourMixup,
    PairMaker,
    ViewFn,
    two_views,
)
from .diffusion import ConvDenoiser, DiffusionSpace, MLPDenoiser, OneHotSpace, PrincipalSpace


@dataclass(frozen=True)
class Modality:
    name: str
    default_encoder: str
    default_dim: int
    default_epochs: int
    batch_size: int
    diffusion_epochs: int
    """DiffAug M-step epochs per round (a conv denoiser over 4 × L one-hot costs far more
    per item than an MLP over 50 principal components)."""
    guidance: float
    """DiffAug's default classifier-free guidance weight. Measured (benchmarks/RESULTS.md):
    w = 2 gains +0.3 / +0.7 kNN points on bladder / pbmc for ~15% more time; on non-TATA it
    gains +0.4 (within seed noise) for 24% more time, which takes train-dna past 10 minutes."""
    hand_designed_views: Callable[[], ViewFn]
    warmup_pairs: Callable[[torch.Tensor, int], PairMaker]
    """``(data, seed) -> pairs`` for DiffAug's warm-up E-step."""
    diffusion_space: Callable[[int], DiffusionSpace]
    """``n_features -> space`` (unfitted) in which the generator works."""
    denoiser: Callable[[int, int], nn.Module]
    """``(space dim, cond_dim) -> ε̂(x_t, t, z)`` network."""


EXPRESSION = Modality(
    name="expression",
    default_encoder="mlp",
    default_dim=50,
    default_epochs=100,
    batch_size=256,
    diffusion_epochs=40,
    guidance=2.0,
    hand_designed_views=ExpressionViews,
    warmup_pairs=lambda data, seed: NeighbourMixup(data, seed=seed),
    diffusion_space=PrincipalSpace,
    denoiser=lambda n_features, cond_dim: MLPDenoiser(n_features, cond_dim),
)
DNA = Modality(
    name="dna",
    default_encoder="cnn",
    default_dim=128,
    default_epochs=20,
    batch_size=128,
    diffusion_epochs=5,
    guidance=0.0,
    hand_designed_views=DNAViews,
    warmup_pairs=lambda data, seed: two_views(DNAViews()),
    diffusion_space=lambda n_features: OneHotSpace(),
    denoiser=lambda n_features, cond_dim: ConvDenoiser(cond_dim),
)
MODALITIES = {m.name: m for m in (EXPRESSION, DNA)}


def get_modality(name: str) -> Modality:
    if name not in MODALITIES:
        raise InputError(f"unknown modality {name!r}")
    return MODALITIES[name]
