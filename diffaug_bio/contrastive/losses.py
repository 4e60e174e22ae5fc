"""Contrastive losses. Each takes ``(z1, h1, h2, index)``: the representation of the anchors,
the projection-head outputs of the anchors and of their positives (row i of h2 is the
positive of row i of h1; the other rows act as negatives), and the batch's item indices,
which only a loss with a per-item prior (:class:`KernelPriorUniformity`) looks at."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from .._errors import InputError

INFONCE_TEMPERATURE = 0.5
"""Measured on mouse bladder against 0.2, 0.3 and 1.0 (benchmarks/RESULTS.md)."""


def info_nce(
    h1: torch.Tensor, h2: torch.Tensor, temperature: float = INFONCE_TEMPERATURE
) -> torch.Tensor:
    """NT-Xent (SimCLR): each of the 2N views must pick its partner among the other 2N − 1."""
    h = F.normalize(torch.cat([h1, h2]), dim=1)
    logits = h @ h.T / temperature
    logits.fill_diagonal_(float("-inf"))
    n = h1.shape[0]
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(h.device)
    return F.cross_entropy(logits, partner)


def student_t_similarity(squared_distance: torch.Tensor, nu: float) -> torch.Tensor:
    """``S_ν(d) = 2π C(ν)² (1 + d/ν)^−(ν+1)`` with ``C(ν) = Γ((ν+1)/2) / (√(νπ) Γ(ν/2))``
    (REFERENCE.md §1): heavy-tailed for small ν, close to a Gaussian kernel for large ν."""
    log_c = math.lgamma((nu + 1) / 2) - 0.5 * math.log(nu * math.pi) - math.lgamma(nu / 2)
    log_scale = math.log(2 * math.pi) + 2 * log_c
    return torch.exp(log_scale - (nu + 1) * torch.log1p(squared_distance / nu))


def t_kernel_loss(
    z1: torch.Tensor,
    h1: torch.Tensor,
    h2: torch.Tensor,
    nu_representation: float = 100.0,
    nu_head: float = 0.01,
    eps: float = 1e-5,
) -> torch.Tensor:
    """The DiffAug reference's soft loss: a two-way cross-entropy between anchor–anchor
    similarities P in representation space (a fixed target, detached) and anchor–positive
    similarities Q in head space.

    Kept as the reference states it, and measured poor: with ν = 0.01, Q can never exceed
    ``2π C(0.01)² ≈ 0.016`` while ``P_ii ≈ 1``, so the loss pulls every head distance to 0;
    as P comes from the (detached) representation itself, P's off-diagonal then rises too
    and the embedding collapses (mouse bladder kNN-15 53%, InfoNCE 89%; RESULTS.md).
    """
    p = student_t_similarity(torch.cdist(z1, z1).pow(2), nu_representation).detach()
    q = student_t_similarity(torch.cdist(h1, h2).pow(2), nu_head)
    return -(p * torch.log(q + eps) + (1 - p) * torch.log(1 - q + eps)).mean()


def uniformity_weight(temperature: float | None = None) -> float:
    """DU's t for an InfoNCE temperature T (None: :data:`INFONCE_TEMPERATURE`). InfoNCE's
    negatives term is log Σ exp(cos / T), and cos = 1 − d²/2 between unit vectors, so it
    weighs squared distances by 1/(2T): DU at t = 1/(2T) spreads the points as InfoNCE at T
    does. So one ``--temperature`` sets both losses, and its default gives t = 1, not Wang &
    Isola's t = 2 (InfoNCE's T = 0.25), which the reference uses: on mouse bladder t = 1 kept
    t = 2's Leiden ARI for +0.6 kNN-15 under DiffAug, +1.25 on simclr's views (RESULTS.md)."""
    return 1 / (2 * (INFONCE_TEMPERATURE if temperature is None else temperature))


UNIFORMITY_WEIGHT = uniformity_weight()
"""DU's t without ``--temperature``: 1."""


def decoupled_uniformity(centroids: torch.Tensor, t: float = UNIFORMITY_WEIGHT) -> torch.Tensor:
    """``L_DU = log( 2/(n(n−1)) Σ_{i<j} exp(−t ‖μ_i − μ_j‖²) )`` (Dufumier et al., 2023).

    No positive term: spreading the centroids apart rewards large centroid norms, which on
    the sphere means the views of an item agree.

    Distances come from the Gram matrix and pairs i < j from a mask, not from indexing
    the pairs out: the backward pass of such indexing accumulates in a thread-dependent
    order on the CPU, which made the same seed give different embeddings."""
    n = len(centroids)
    norms = centroids.pow(2).sum(1)
    squared = (norms[:, None] + norms[None, :] - 2 * centroids @ centroids.T).clamp_min(0)
    upper = torch.ones(n, n, dtype=torch.bool, device=centroids.device).triu(1)
    exponents = torch.where(upper, -t * squared, float("-inf"))
    return torch.logsumexp(exponents.flatten(), dim=0) - math.log(n * (n - 1) / 2)


def view_centroids(h1: torch.Tensor, h2: torch.Tensor) -> torch.Tensor:
    """``μ_i = mean_v f(x_i^(v))`` with f on the unit sphere."""
    return (F.normalize(h1, dim=1) + F.normalize(h2, dim=1)) / 2


def median_bandwidth(prior: torch.Tensor, sample: int = 2000, seed: int = 0) -> float:
    """σ by the median heuristic: the median pairwise distance between prior vectors
    (on a random sample of at most ``sample`` of them)."""
    generator = torch.Generator().manual_seed(seed)
    if len(prior) > sample:
        prior = prior[torch.randperm(len(prior), generator=generator)[:sample]]
    distances = torch.pdist(prior.float())
    return float(distances.median()) if len(distances) else 1.0


class KernelPriorUniformity:
    """Decoupled uniformity on kernel-smoothed centroids (Dufumier et al., 2023):
    ``K_ij = exp(−‖z_i − z_j‖² / 2σ²)`` on the batch's prior vectors z,
    ``M̂ = (K + λI)⁻¹ K M`` with the weights detached, then ``L_DU(M̂)``.

    σ → 0 makes K = I, so M̂ = M / (1 + λ): plain DU on slightly shrunk centroids; σ → ∞
    smooths every centroid towards the batch mean, hence the median-distance default.
    The prior must not be an evaluation label: :class:`~diffaug_bio.methods.DU` only builds
    it from the data (PCA) or from an unsupervised model (DiffAug)."""

    def __init__(
        self,
        prior: torch.Tensor,
        sigma: float | None = None,
        ridge: float = 0.01,
        t: float = UNIFORMITY_WEIGHT,
    ):
        self.prior = prior.float()
        self.sigma = median_bandwidth(self.prior) if sigma is None else sigma
        self.ridge = ridge
        self.t = t

    def smoothing(self, index: torch.Tensor) -> torch.Tensor:
        z = self.prior[index.cpu()]
        kernel = torch.exp(-torch.cdist(z, z).pow(2) / (2 * self.sigma**2))
        regularised = kernel + self.ridge * torch.eye(len(z))
        return torch.linalg.solve(regularised, kernel)

    def __call__(self, z1, h1, h2, index) -> torch.Tensor:
        weights = self.smoothing(index).to(h1.device, h1.dtype)
        return decoupled_uniformity(weights @ view_centroids(h1, h2), self.t)


LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
LOSSES: dict[str, LossFn] = {
    "infonce": lambda z1, h1, h2, index, temperature=INFONCE_TEMPERATURE: info_nce(
        h1, h2, temperature
    ),
    "tkernel": lambda z1, h1, h2, index: t_kernel_loss(z1, h1, h2),
    "du": lambda z1, h1, h2, index, t=UNIFORMITY_WEIGHT: decoupled_uniformity(
        view_centroids(h1, h2), t
    ),
}


def get_loss(name: str, temperature: float | None = None) -> LossFn:
    """The loss called ``name``; ``temperature`` overrides InfoNCE's, or sets DU's t to
    :func:`uniformity_weight` of it."""
    if name not in LOSSES:
        raise InputError(f"unknown loss {name!r}: choose {', '.join(LOSSES)}")
    if temperature is None:
        return LOSSES[name]
    if name == "tkernel":
        raise InputError("--temperature applies to --loss infonce or du, not tkernel")
    if temperature <= 0:
        raise InputError(f"--temperature must be positive, got {temperature}")
    if name == "du":
        return functools.partial(LOSSES[name], t=uniformity_weight(temperature))
    return functools.partial(LOSSES[name], temperature=temperature)
