"""What differs between the data kinds — cells, one-hot DNA, DNA as k-mer counts — in one place.

Everything else — training loop, losses, methods, the diffusion core — is shared; a method
asks the modality for what it needs: hand-designed views, warm-up positives, a denoiser
backbone and the map between data space and diffusion space.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from ._errors import InputError
from .contrastive.views import (
    DNAViews,
    ExpressionViews,
    NeighbourMixup,
    NeighbourViews,
    PairMaker,
    ViewFn,
    two_views,
)
from .diffusion import (
    ConditionalDiffusion,
    ConvDenoiser,
    DiffusionSpace,
    MLPDenoiser,
    OneHotSpace,
    PrincipalSpace,
)
from .diffusion.schedules import Schedule
from .io import ExpressionPreprocessing, KmerEncoding, SequenceEncoding
from .io.sequences import one_hot_decode


def kmer_spectrum(one_hot: torch.Tensor, k: int = 4) -> np.ndarray:
    """k-mer frequencies of one-hot sequences: where DNA neighbours are looked for."""
    from .baselines import kmer_frequencies

    return kmer_frequencies(one_hot_decode(one_hot), k)


@dataclass(frozen=True)
class Modality:
    name: str
    reads: str
    """The input it embeds: "expression" (cells, an AnnData) or "dna" (sequences)."""
    recipe: type[ExpressionPreprocessing | SequenceEncoding | KmerEncoding]
    """The input recipe (raw input → encoder input), rebuilt by ``from_dict`` from a saved
    model's config."""
    default_encoder: str
    encoder_hidden: tuple[int, ...]
    """The MLP encoder's hidden widths (tabular data; the sequence encoders have their own
    shape). Saved with a model, which is rebuilt with them."""
    default_dim: int
    default_epochs: int
    batch_size: int
    diffusion_epochs: int
    """DiffAug M-step epochs per round (a conv denoiser over 4 × L one-hot costs far more
    per item than an MLP over 50 principal components)."""
    sampling_steps: int
    bank_size: int
    """DiffAug's DDIM steps per generated positive and positives generated per item each
    round: what generating the bank costs, measured per modality (benchmarks/RESULTS.md)."""
    categorical: bool
    """Data are one-hot categories, which the categorical (D3PM) process can diffuse."""
    hand_designed_views: Callable[[], ViewFn]
    warmup_recipes: dict[str, Callable[[torch.Tensor, int], PairMaker]]
    """DiffAug's warm-up positives by name: ``(data, seed) -> pairs``."""
    default_warmup: str
    diffaug_loss: str
    """DiffAug's contrastive loss when none is named: the one measured best on this data."""
    prior_features: Callable[[torch.Tensor], np.ndarray]
    """Per-item features whose principal components are a data-only prior (DU's "pca")."""
    diffusion_space: Callable[[int], DiffusionSpace]
    """``n_features -> space`` (unfitted) in which the generator works."""
    denoiser: Callable[[int, int, int], nn.Module]
    """``(space dim, cond_dim, width) -> ε̂(x_t, t, z)`` network."""
    denoiser_width: int
    """The denoiser's hidden width (saved with a model, which is rebuilt with it)."""
    legacy_encoder_hidden: tuple[int, ...]
    legacy_denoiser_width: int
    """The shapes of models saved before they were recorded."""
    writes_positives: bool = True
    """Whether generated positives can be written out as input data (``augment``)."""

    def new_diffusion(
        self,
        n_features: int,
        condition_dim: int,
        schedule: Schedule,
        width: int | None = None,
        **settings: float,
    ) -> ConditionalDiffusion:
        """An untrained generator of positives for this data: its diffusion space (to be fitted
        or loaded), a denoiser ``width`` wide (None: the modality's) conditioned on embeddings
        of ``condition_dim``; ``settings`` go to :class:`ConditionalDiffusion`."""
        space = self.diffusion_space(n_features)
        denoiser = self.denoiser(space.dim, condition_dim, width or self.denoiser_width)
        return ConditionalDiffusion(denoiser, schedule, space, **settings)


EXPRESSION = Modality(
    name="expression",
    reads="expression",
    recipe=ExpressionPreprocessing,
    default_encoder="mlp",
    # measured (RESULTS.md): level with (512, 256) in 55–73% of the training time — bladder
    # and pbmc kNN-15 +0.02 / +0.03, ARI +0.003 (ten seeds); non-TATA k-mer-7 probe +0.3 on
    # the train split, −0.1 with --fit-on all (three seeds)
    encoder_hidden=(256, 128),
    default_dim=50,
    default_epochs=100,
    batch_size=256,
    diffusion_epochs=40,
    # bladder (log1p era): 2 steps lower and noisier (90.8 ± 1.0 against 91.2 ± 0.5%) for
    # 13 s of 80 saved, 10 steps no better; a bank of 8 level with 4
    sampling_steps=5,
    bank_size=4,
    categorical=False,
    hand_designed_views=ExpressionViews,
    warmup_recipes={
        "neighbours": lambda data, seed: NeighbourMixup(data, seed=seed),
        "views": lambda data, seed: two_views(ExpressionViews()),
    },
    default_warmup="neighbours",
    # measured (RESULTS.md): decoupled uniformity at t = 1 against InfoNCE — mouse bladder
    # best Leiden ARI +0.07 (9 of 10 seeds) at level kNN-15, pbmc level; the k-mer path's
    # probe +0.33 (3 of 3 seeds)
    diffaug_loss="du",
    prior_features=lambda data: data.numpy(),
    diffusion_space=PrincipalSpace,
    denoiser=MLPDenoiser,
    # measured (RESULTS.md): on mouse bladder 256 is as good as 512 (kNN-15 91.5 vs 91.1%)
    # for a quarter less time (84 vs 113 s, within the 90 s budget); on pbmc 512 is better
    # (80.6 vs 79.5%): a trade-off, see RESULTS.md
    denoiser_width=256,
    legacy_encoder_hidden=(512, 256),
    legacy_denoiser_width=512,
)
DNA = Modality(
    name="dna",
    reads="dna",
    recipe=SequenceEncoding,
    default_encoder="cnn",
    encoder_hidden=(),
    default_dim=128,
    default_epochs=20,
    batch_size=128,
    diffusion_epochs=5,
    # non-TATA, three seeds on one machine: probe 82.32% against 81.73% with 5 steps and a
    # bank of 4 (higher on every seed), in 18% less time (284 against 346 s)
    sampling_steps=2,
    bank_size=2,
    categorical=True,
    hand_designed_views=DNAViews,
    warmup_recipes={
        "views": lambda data, seed: two_views(DNAViews()),
        "neighbours": lambda data, seed: NeighbourViews(
            data, kmer_spectrum(data), DNAViews(), seed=seed
        ),
    },
    default_warmup="views",
    # measured (RESULTS.md): decoupled uniformity at t = 1 probed 0.16 under InfoNCE on
    # non-TATA (five seeds, inside their spread), so InfoNCE stays
    diffaug_loss="infonce",
    prior_features=kmer_spectrum,
    diffusion_space=lambda n_features: OneHotSpace(),
    denoiser=lambda n_features, cond_dim, width: ConvDenoiser(cond_dim, width),
    denoiser_width=64,
    legacy_encoder_hidden=(),
    legacy_denoiser_width=64,
)
DNA_KMERS = replace(
    EXPRESSION, name="dna-kmer", reads="dna", recipe=KmerEncoding, writes_positives=False
)
"""Sequences read as k-mer count vectors (:class:`~diffaug_bio.io.KmerEncoding`): tabular
data, so the cells' training pieces apply unchanged — MLP encoder, neighbour-mixup
warm-up, principal-space diffusion. On non-TATA promoters (benchmarks/RESULTS.md): 88.1%
fitted on every sequence; 82.8% on the train split alone (the CNN on one-hot: 81.7%).
Positives stay k-mer spectra, which do not decode to sequences: ``augment`` cannot write them."""
MODALITIES = {m.name: m for m in (EXPRESSION, DNA, DNA_KMERS)}


def get_modality(name: str) -> Modality:
    if name not in MODALITIES:
        raise InputError(f"unknown modality {name!r}")
    return MODALITIES[name]
