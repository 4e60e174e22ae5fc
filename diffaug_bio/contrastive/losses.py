"""Contrastive losses. Each takes ``(z1, h1, h2)``: the representation of the anchors, and the
projection-head outputs of the anchors and of their positives (row i of h2 is the positive
of row i of h1); the other rows act as negatives."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from .._errors import InputError


def info_nce(h1: torch.Tensor, h2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
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


LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
LOSSES: dict[str, LossFn] = {
    "infonce": lambda z1, h1, h2: info_nce(h1, h2),
    "tkernel": t_kernel_loss,
}


def get_loss(name: str) -> LossFn:
    if name not in LOSSES:
        raise InputError(f"unknown loss {name!r}: choose {', '.join(LOSSES)}")
    return LOSSES[name]
