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

from abc import ABC, abstractmethod
from dataclasses import dataclass
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

from .._errors import InputError
from ..contrastive.views import substitute_top_k
from ..modality import Modality
from ..train import ContrastiveTrainer
from .base import Method, MethodOptions

DEFAULT_EPSILON = {"expression": 0.05, "dna": 0.015}
"""ℓ1 budget per modality: 0.05 for standardised expression (the paper's value for sensors);
for one-hot DNA a substitution costs ℓ1 = 2, so 0.015 buys round(2 × 0.015 × 251) = 8
substitutions in a 251-bp promoter (3%, near the hand-designed views' 5%)."""


@dataclass
class ViewmakerOptions(MethodOptions):
    epsilon: float | None = None
    """ℓ1 budget: mean |δ| per element of an item (None: the modality's default)."""
    noise_dim: int = 8
    """Fresh noise features (expression) or channels (DNA) concatenated at each depth."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.epsilon is not None and not self.epsilon > 0:
            raise InputError("--epsilon must be > 0")
        if self.noise_dim < 1:
            raise InputError("--noise-dim must be at least 1")


class _ReverseGradient(torch.autograd.Function):
    """Identity forward, negated gradient backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return -grad


def reverse_gradient(x: torch.Tensor) -> torch.Tensor:
    """``x`` unchanged, but whatever minimises a loss through it maximises that loss."""
    return _ReverseGradient.apply(x)


def l1_budget(y: torch.Tensor, epsilon: float, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Project generator output ``y (N, …)`` onto the per-item ℓ1 sphere: ``ε · tanh(y) /
    mean|tanh(y)|``, the mean over each item's elements where ``mask`` (broadcastable to ``y``)
    is nonzero; δ is zero elsewhere. Each item's mean |δ| is then exactly ``epsilon``."""
    bounded = torch.tanh(y)
    if mask is None:
        mask = torch.ones_like(y)
    mask = mask.to(y.dtype).expand_as(y)
    bounded = bounded * mask
    dims = tuple(range(1, y.dim()))
    count = mask.sum(dims, keepdim=True).clamp_min(1.0)
    mean = (bounded.abs().sum(dims, keepdim=True) / count).clamp_min(1e-12)
    return epsilon * bounded / mean


def straight_through_substitutions(
    x: torch.Tensor, delta: torch.Tensor, count: torch.Tensor
) -> torch.Tensor:
    """Forward: ``x`` with ``count[i]`` substitutions where δ most prefers another base;
    backward: the gradient of ``x + δ`` (on bases; padding gets none)."""
    hard = substitute_top_k(x, delta, count)
    soft = (x + delta) * (x.sum(1, keepdim=True) > 0)
    return hard + (soft - soft.detach())  # exactly ``hard`` forward (x - x == 0)


def _noise(generator: torch.Generator, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    return torch.randn(shape, generator=generator).to(like.device, like.dtype)


class ViewmakerNet(nn.Module, ABC):
    """A PairMaker with parameters: ``(x, index, generator) -> (view_1, view_2)``, each view
    with fresh noise and a gradient-reversed perturbation (so the trainer's step maximises
    the loss for this network)."""

    def __init__(self, epsilon: float, noise_dim: int):
        super().__init__()
        self.epsilon = epsilon
        self.noise_dim = noise_dim

    @abstractmethod
    def perturbation(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """δ for the batch ``x``, on the ℓ1 sphere of radius ε."""

    @abstractmethod
    def perturb(self, x: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        """The valid input nearest ``x + δ`` (clipped, or one-hot), differentiable in δ."""

    def view(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.perturb(x, reverse_gradient(self.perturbation(x, generator)))

    def forward(
        self, x: torch.Tensor, index: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.view(x, generator), self.view(x, generator)


class ExpressionViewmaker(ViewmakerNet):
    """An MLP over (cell, noise), noise re-injected before every layer; views are clipped to
    the per-gene range ``[lower, upper]`` of the training data."""

    def __init__(
        self,
        lower: torch.Tensor,
        upper: torch.Tensor,
        epsilon: float,
        noise_dim: int = 8,
        hidden: int = 256,
    ):
        super().__init__(epsilon, noise_dim)
        self.register_buffer("lower", lower.float())
        self.register_buffer("upper", upper.float())
        widths = [lower.numel(), hidden, hidden, lower.numel()]
        self.layers = nn.ModuleList(
            nn.Linear(n_in + noise_dim, n_out) for n_in, n_out in pairwise(widths)
        )

    def perturbation(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        h = x
        for depth, layer in enumerate(self.layers):
            h = layer(torch.cat([h, _noise(generator, (len(x), self.noise_dim), x)], 1))
            if depth < len(self.layers) - 1:
                h = F.leaky_relu(h, 0.1)
        return l1_budget(h, self.epsilon)

    def perturb(self, x: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x + delta, self.lower, self.upper)


class DNAViewmaker(ViewmakerNet):
    """A length-preserving 1D CNN over (one-hot, noise channels), noise re-injected before
    every conv; δ lives on bases only, and spends the budget as exactly
    ``round(2 ε n_bases)`` (at least one) substitutions per sequence."""

    def __init__(self, epsilon: float, noise_dim: int = 8, width: int = 64):
        super().__init__(epsilon, noise_dim)
        channels = [4, width, width, 4]
        kernels = [9, 5, 5]
        self.convs = nn.ModuleList(
            nn.Conv1d(c_in + noise_dim, c_out, k, padding=k // 2)
            for c_in, c_out, k in zip(channels, channels[1:], kernels)
        )

    @staticmethod
    def bases(x: torch.Tensor) -> torch.Tensor:
        """``(N, 1, L)`` float: 1 where a column holds a base (or N), 0 on padding."""
        return (x.sum(1, keepdim=True) > 0).to(x.dtype)

    def perturbation(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        mask = self.bases(x)
        n, _, length = x.shape
        h = x
        for depth, conv in enumerate(self.convs):
            h = conv(torch.cat([h, _noise(generator, (n, self.noise_dim, length), x)], 1))
            if depth < len(self.convs) - 1:
                h = F.gelu(h) * mask
        return l1_budget(h, self.epsilon, mask)

    def substitutions(self, x: torch.Tensor) -> torch.Tensor:
        """Substitutions per sequence the ℓ1 budget buys (each costs ℓ1 = 2 of 4 ε n)."""
        n_bases = self.bases(x).sum((1, 2))
        return torch.round(2 * self.epsilon * n_bases).clamp_min(1).long()

    def perturb(self, x: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        return straight_through_substitutions(x, delta, self.substitutions(x))


class Viewmaker(Method):
    name = "viewmaker"
    options: ViewmakerOptions

    Options = ViewmakerOptions

    def __init__(self, modality: Modality, **options: object):
        super().__init__(modality, **options)
        if self.options.epsilon is None:  # recorded resolved, in params and config
            self.options.epsilon = DEFAULT_EPSILON[modality.name]
        self.viewmaker: ViewmakerNet | None = None
        """The trained adversary after :meth:`fit` (not saved with the model)."""

    def build(self, data: torch.Tensor) -> ViewmakerNet:
        """A fresh viewmaker for ``data`` (expression clips to its per-gene range)."""
        if self.modality.name == "dna":
            return DNAViewmaker(self.options.epsilon, self.options.noise_dim)
        return ExpressionViewmaker(
            data.amin(0), data.amax(0), self.options.epsilon, self.options.noise_dim
        )

    def fit(self, trainer: ContrastiveTrainer, data: torch.Tensor, epochs: int) -> None:
        self.viewmaker = self.build(data).to(trainer.device)
        trainer.add_parameters(self.viewmaker)
        trainer.fit(data, self.viewmaker, epochs, desc="viewmaker")
