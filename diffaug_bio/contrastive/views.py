"""Positive pairs: hand-designed views (the SimCLR baseline's augmentations, one set per
modality) and the neighbour-based pair makers of DiffAug's warm-up.

A view function takes a batch (already on the training device) and a torch generator and
returns a randomly augmented copy; two calls give the two views of a positive pair. A pair
maker returns both members of each pair at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .._errors import InputError
from ..io.sequences import bases_one_hot, sequence_positions

ViewFn = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
"""``(batch, generator) -> augmented batch``."""

PairMaker = Callable[
    [torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]
]
"""``(batch, batch_indices, generator) -> (anchors, positives)``: a batch's positive pairs."""


@dataclass
class ExpressionViews:
    """Gene masking (a random ``mask_rate`` of genes set to the gene mean, i.e. 0 after
    standardisation) plus Gaussian noise of standard deviation ``noise``."""

    mask_rate: float = 0.3
    noise: float = 0.2

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        keep = torch.rand(x.shape, generator=generator) >= self.mask_rate
        noise = torch.randn(x.shape, generator=generator) * self.noise
        return x * keep.to(x.device) + noise.to(x.device)


@dataclass
class DNAViews:
    """Reverse complement (p = 0.5), a shift of up to ``max_shift`` positions (zero-filled),
    base substitutions and masking (position set to ``N``) at rate ``mask_rate``. Every
    view stays a valid encoding. A substitution draws one of the four bases at random for
    a position, at rate ``substitution_rate``; as a quarter of draws give the base back, the
    share of bases that change is 3/4 of it (3.75% at the default 0.05)."""

    max_shift: int = 10
    substitution_rate: float = 0.05
    mask_rate: float = 0.02

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, _, length = x.shape
        flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
        # reverse complement: reverse positions, and A<->T, C<->G is reversing the channel axis
        x = torch.where(flip[:, None, None], x.flip(1, 2), x)
        x = shift(x, torch.randint(-self.max_shift, self.max_shift + 1, (n,), generator=generator))
        present = sequence_positions(x)
        draw = torch.rand(n, 1, length, generator=generator).to(x.device)
        random_base = torch.randint(0, 4, (n, length), generator=generator).to(x.device)
        substituted = bases_one_hot(random_base, x.dtype)
        x = torch.where((draw < self.substitution_rate) & present, substituted, x)
        masked = draw > 1 - self.mask_rate
        return torch.where(masked & present, torch.full_like(x, 0.25), x)


def shift(x: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Shift each sequence of ``x (N, 4, L)`` right by ``offsets[i]`` (left if negative),
    filling the vacated positions with padding (all-zero columns)."""
    length = x.shape[-1]
    source = torch.arange(length)[None, :] - offsets[:, None]  # (N, L)
    valid = ((source >= 0) & (source < length)).to(x.device)
    gathered = x.gather(2, source.clamp(0, length - 1).to(x.device)[:, None, :].expand(-1, 4, -1))
    return gathered * valid[:, None, :]


def principal_components(
    features: np.ndarray, n_components: int = 50, seed: int = 0, if_all_same: str = ""
) -> np.ndarray:
    """The top ``n_components`` principal components of ``features`` (n, n_components).
    Features the same for every item have no components (PCA would divide by a variance of
    0): they are refused with the InputError ``if_all_same``, the caller's advice."""
    from sklearn.decomposition import PCA

    if (features == features[0]).all():
        raise InputError(if_all_same or "every item has the same features: no components")
    n_components = min(n_components, *features.shape)
    return PCA(n_components, random_state=seed).fit_transform(features)


def nearest_neighbours(
    features: np.ndarray, n_neighbors: int = 10, n_components: int = 50, seed: int = 0
) -> torch.Tensor:
    """Each item's ``n_neighbors`` nearest neighbours (itself left out) in the top
    ``n_components`` principal components of ``features``, found once with scikit-learn."""
    from sklearn.neighbors import NearestNeighbors

    same = (
        "every item has the same features to find neighbours in (for DNA its 4-mer spectrum, "
        "empty in sequences under 4 bases); use --warmup views"
    )  # every item equally near: neighbours would be drawn by chance
    reduced = principal_components(features, n_components, seed, if_all_same=same)
    n_neighbors = min(n_neighbors, len(features) - 1)
    # kneighbors() without a query leaves each point out of its own neighbours
    _, neighbours = NearestNeighbors(n_neighbors=n_neighbors).fit(reduced).kneighbors()
    return torch.from_numpy(neighbours)


class _NeighbourPositives:
    """Pair makers whose positive draws on one of the anchor's ``n_neighbors`` nearest
    neighbours (found once, in ``features`` space)."""

    def __init__(self, data: torch.Tensor, features: np.ndarray, n_neighbors: int, seed: int):
        self.data = data
        self.neighbours = nearest_neighbours(features, n_neighbors, seed=seed)

    def _neighbour(
        self, x: torch.Tensor, index: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """One random neighbour of each item of the batch, on the batch's device."""
        pick = torch.randint(0, self.neighbours.shape[1], (len(index),), generator=generator)
        return self.data[self.neighbours[index, pick]].to(x.device)


class NeighbourMixup(_NeighbourPositives):
    """DiffAug's warm-up positives: ``x⁺ = α x + (1 − α) x_nb`` with ``α ~ U(0, 1)`` and
    ``x_nb`` one of the ``n_neighbors`` nearest neighbours of x in PCA space."""

    def __init__(self, data: torch.Tensor, n_neighbors: int = 10, seed: int = 0):
        super().__init__(data, data.reshape(len(data), -1).numpy(), n_neighbors, seed)

    def __call__(
        self, x: torch.Tensor, index: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        neighbour = self._neighbour(x, index, generator)
        alpha = torch.rand(len(index), *([1] * (x.dim() - 1)), generator=generator).to(x.device)
        return x, alpha * x + (1 - alpha) * neighbour


class NeighbourViews(_NeighbourPositives):
    """The mixup's analogue for data that cannot be averaged (sequences): the positive is a
    hand-designed view of one of the anchor's ``n_neighbors`` nearest neighbours in
    ``features`` space (for a random ``share`` of anchors), else of the anchor itself."""

    def __init__(
        self,
        data: torch.Tensor,
        features: np.ndarray,
        view: ViewFn,
        share: float = 0.5,
        n_neighbors: int = 10,
        seed: int = 0,
    ):
        super().__init__(data, features, n_neighbors, seed)
        self.view = view
        self.share = share

    def __call__(
        self, x: torch.Tensor, index: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        neighbour = self._neighbour(x, index, generator)
        use = (torch.rand(len(index), generator=generator) < self.share).to(x.device)
        source = torch.where(use.view(-1, *([1] * (x.dim() - 1))), neighbour, x)
        return self.view(x, generator), self.view(source, generator)


def two_views(view: ViewFn) -> PairMaker:
    """The SimCLR pair: two independent draws of a hand-designed view of each item."""

    def pairs(x: torch.Tensor, _index: torch.Tensor, generator: torch.Generator):
        return view(x, generator), view(x, generator)

    return pairs
