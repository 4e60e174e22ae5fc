"""Viewmaker networks (Tamkin et al., ICLR 2021): positives made by a learned adversary.

A small stochastic generator (fresh noise channels at several depths) outputs ``y``; the view
is ``x + δ`` with ``δ = ε · tanh(y) / mean|tanh(y)|``, so every item spends exactly the ℓ1
budget ε (mean absolute perturbation per element). The encoder minimises the contrastive loss
over two such views while the viewmaker maximises it; a gradient-reversal layer on δ gives
this minimax in one backward pass and one optimiser step (REFERENCE.md §3).

Expression views are clipped to each gene's range in the training data. DNA views stay valid
sequences: a substitution costs ℓ1 = 2, so the budget buys ``k = round(2 ε n)`` substitutions
in a sequence of n bases, and each view makes exactly those k, at the columns where ``x + δ``
most prefers another base (straight-through: the forward pass is the substituted sequence, the
backward pass the gradient of ``x + δ``). A plain argmax of ``x + δ`` was tried first and never
changed a base: the generator spreads the budget thinly (max |δ| ≈ 0.05 where a flip needs
≈ 1). Perturbing the first-layer embedding instead would tie the method to one encoder; the
substitutions keep the encoder's input space and work for the CNN and the transformer alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._errors import InputError
from ..contrastive.adversarial import DNAViewmaker, ExpressionViewmaker, ViewmakerNet
from ..contrastive.views import PairMaker
from ..modality import Modality
from ..train import ContrastiveTrainer
from .base import Method, MethodOptions

DEFAULT_EPSILON = {"tabular": 0.01, "one-hot": 0.015}
"""ℓ1 budget per kind of data. Tabular (standardised genes), measured with the views on,
seed 0 unless noted: mouse bladder kNN-15 86.6 / 85.0 / 80.8 / 74.9% at ε = 0.01 / 0.02 /
0.05 (the paper's value for sensors) / 0.1, pbmc68k_reduced 79.2 / 79.6 / 79.5% at
0.01 / 0.02 / 0.05 (3 seeds) — a larger budget only hurts. For one-hot DNA a substitution
costs ℓ1 = 2, so 0.015 buys round(2 × 0.015 × 251) = 8 substitutions in a 251-bp promoter
(3%, near the 3.75% of bases the hand-designed views change)."""


@dataclass
class ViewmakerOptions(MethodOptions):
    epsilon: float | None = None
    """ℓ1 budget: mean |δ| per element of an item (None: the modality's default)."""
    noise_dim: int = 8
    """Fresh noise features (expression) or channels (DNA) concatenated at each depth."""
    on_views: bool = True
    """Perturb two hand-designed views of the item rather than the item itself (the paper's
    viewmaker + expert views). Measured on pbmc68k_reduced, seed 0: kNN-15 80.6% against
    70.4% for the viewmaker alone, which stayed at 68-70% for any ε from 0.01 to 0.2."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.epsilon is not None and not self.epsilon > 0:
            raise InputError("--epsilon must be > 0")


class Viewmaker(Method):
    name = "viewmaker"
    supports_distributed = False  # its view generator is trained outside DDP
    options: ViewmakerOptions

    Options = ViewmakerOptions

    def __init__(self, modality: Modality, **options: object):
        super().__init__(modality, **options)
        if self.options.epsilon is None:  # recorded resolved, in params and config
            self.options.epsilon = DEFAULT_EPSILON["one-hot" if modality.categorical else "tabular"]
        self.viewmaker: ViewmakerNet | None = None
        """The trained adversary after :meth:`fit` (not saved with the model)."""

    def build(self, data: torch.Tensor) -> ViewmakerNet:
        """A fresh viewmaker for ``data`` (tabular data clip to their per-feature range)."""
        if self.modality.categorical:
            return DNAViewmaker(self.options.epsilon, self.options.noise_dim)
        return ExpressionViewmaker(
            data.amin(0), data.amax(0), self.options.epsilon, self.options.noise_dim
        )

    def fit(self, trainer: ContrastiveTrainer, data: torch.Tensor, epochs: int) -> None:
        self.viewmaker = self.build(data).to(trainer.device)
        trainer.add_parameters(self.viewmaker)
        pairs: PairMaker = self.viewmaker
        if self.options.on_views:
            hand_designed = self.modality.hand_designed_views()
            viewmaker = self.viewmaker

            def pairs(x: torch.Tensor, index: torch.Tensor, generator: torch.Generator):
                view_1 = viewmaker.view(hand_designed(x, generator), generator)
                return view_1, viewmaker.view(hand_designed(x, generator), generator)

        trainer.fit(data, pairs, epochs, desc="viewmaker")
