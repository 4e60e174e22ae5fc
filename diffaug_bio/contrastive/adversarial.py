"""Adversarial views: the building blocks of the viewmaker and CLAE methods.

A learned or gradient-guided perturbation of the input, kept a valid input: expression is
clipped to the per-gene data range; DNA changes by whole-base substitutions (a substitution
costs ℓ1 = 2 on one-hot columns), chosen where the perturbation or gradient gains most.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

from ..io.sequences import bases_one_hot, sequence_positions


def substitute_top_k(
    x: torch.Tensor, preference: torch.Tensor, count: torch.Tensor
) -> torch.Tensor:
    """``x (N, 4, L)`` with, in sequence i, the ``count[i]`` base columns of highest gain
    ``preference[b', l] − preference[b, l]`` switched to their best base ``b' ≠ b`` (the
    discrete step of HotFlip and of the DNA viewmaker). Padding never changes; a masked ``N``
    column gains against the mean preference and becomes a definite base if switched."""
    present = sequence_positions(x, keepdim=False)
    gain = preference - (preference * x).sum(1, keepdim=True)
    gain = gain.masked_fill(x == 1, float("-inf"))  # a base is not switched to itself
    best_gain, best_base = gain.max(1)
    best_gain = best_gain.masked_fill(~present, float("-inf"))
    count = count.minimum(present.sum(1))
    rank = best_gain.argsort(dim=1, descending=True, stable=True).argsort(dim=1)
    switch = (rank < count[:, None])[:, None, :]
    return torch.where(switch, bases_one_hot(best_base, x.dtype), x)


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
    soft = (x + delta) * sequence_positions(x)
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
        return sequence_positions(x).to(x.dtype)

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


class DualBatchNorm(nn.Module):
    """A BatchNorm with an auxiliary twin for adversarial inputs; ``use_auxiliary`` picks one."""

    def __init__(self, main: nn.BatchNorm1d):
        super().__init__()
        self.main = main
        self.auxiliary = copy.deepcopy(main)
        self.use_auxiliary = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.auxiliary if self.use_auxiliary else self.main)(x)


def _swap_children(module: nn.Module, swap: Callable[[nn.Module], nn.Module | None]) -> None:
    """Replace, in place, each descendant for which ``swap`` returns a module (not descending
    into it); descend into those for which it returns None."""
    for name, child in module.named_children():
        replacement = swap(child)
        if replacement is None:
            _swap_children(child, swap)
        else:
            setattr(module, name, replacement)


def attach_auxiliary_bn(*modules: nn.Module) -> nn.ModuleList:
    """Wrap every ``BatchNorm1d`` inside ``modules`` in a :class:`DualBatchNorm`, in place.

    Returns the auxiliary BNs, for the optimiser (which was built before they existed)."""

    def swap(child: nn.Module) -> nn.Module | None:
        if isinstance(child, DualBatchNorm):
            return child
        return DualBatchNorm(child) if isinstance(child, nn.BatchNorm1d) else None

    for module in modules:
        _swap_children(module, swap)
    return nn.ModuleList(
        dual.auxiliary for module in modules for dual in module.modules()
        if isinstance(dual, DualBatchNorm)
    )  # fmt: skip


def detach_auxiliary_bn(*modules: nn.Module) -> None:
    """Put the main BNs back in place of their :class:`DualBatchNorm`, so the state-dict keys
    are those of a plain encoder again (models are saved and loaded by state dict)."""
    for module in modules:
        _swap_children(module, lambda c: c.main if isinstance(c, DualBatchNorm) else None)


@contextmanager
def auxiliary_bn(*modules: nn.Module) -> Iterator[None]:
    """Inside the block, every :class:`DualBatchNorm` in ``modules`` uses its auxiliary BN."""
    duals = [m for module in modules for m in module.modules() if isinstance(m, DualBatchNorm)]
    for dual in duals:
        dual.use_auxiliary = True
    try:
        yield
    finally:
        for dual in duals:
            dual.use_auxiliary = False


def fgsm(
    x: torch.Tensor, gradient: torch.Tensor, epsilon: float, low: torch.Tensor, high: torch.Tensor
) -> torch.Tensor:
    """One FGSM step ``x + ε · sign(gradient)``, clipped per feature to ``[low, high]``."""
    return torch.minimum(torch.maximum(x + epsilon * gradient.sign(), low), high)


def hotflip(x: torch.Tensor, gradient: torch.Tensor, rate: float) -> torch.Tensor:
    """One HotFlip step on one-hot ``x (N, 4, L)``: in each sequence flip the
    ``k = max(1, round(rate · bases))`` positions with the highest first-order gain
    ``gradient[b', l] − gradient[b, l]``, each to its best base ``b' ≠ b``.

    Padding (all-zero columns) never changes; a masked ``N`` column counts as a base with no
    current letter (gain ``gradient[b', l] − mean_b gradient[b, l]``) and becomes one-hot if
    flipped."""
    count = (rate * sequence_positions(x, keepdim=False).sum(1)).round().clamp_min(1).long()
    return substitute_top_k(x, gradient, count)
