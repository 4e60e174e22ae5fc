"""Contrastive losses between anchors and their positives."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce(h1: torch.Tensor, h2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """NT-Xent (SimCLR): each of the 2N views must pick its partner among the other 2N − 1."""
    h = F.normalize(torch.cat([h1, h2]), dim=1)
    logits = h @ h.T / temperature
    logits.fill_diagonal_(float("-inf"))
    n = h1.shape[0]
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(h.device)
    return F.cross_entropy(logits, partner)
