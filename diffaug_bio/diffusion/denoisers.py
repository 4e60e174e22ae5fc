"""Conditional denoisers ε̂(x_t, t, z): the network of the diffusion core, one per data shape.

With the spaces (spaces.py) and the categorical process (DNA only), they are the parts of
the core a modality chooses (modality.py); the schedules, training and sampling are shared.

Both take the same conditioning: a time embedding plus a projection of the semantic
embedding z. The MLP adds it to every residual block's input (as the DiffAug reference
does); the sequence network applies it as FiLM (per-channel scale and shift).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import sinusoidal


class Conditioning(nn.Module):
    """(t, z) → one vector: an MLP on the sinusoidal step embedding plus an MLP on z."""

    def __init__(self, cond_dim: int, width: int):
        super().__init__()
        self.width = width
        self.time = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.cond = nn.Sequential(nn.Linear(cond_dim, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.time(sinusoidal(t, self.width)) + self.cond(z)


class MLPDenoiser(nn.Module):
    """Tabular denoiser: residual MLP blocks, the conditioning added to each block's input."""

    def __init__(self, n_features: int, cond_dim: int, width: int = 512, depth: int = 4):
        super().__init__()
        self.conditioning = Conditioning(cond_dim, width)
        self.inp = nn.Linear(n_features, width)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.LayerNorm(width), nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width)
            )
            for _ in range(depth)
        )
        self.out = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, n_features))

    def forward(self, x: torch.Tensor, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        condition = self.conditioning(t, z)
        h = self.inp(x)
        for block in self.blocks:
            h = h + block(h + condition)
        return self.out(h)


class ConvDenoiser(nn.Module):
    """Sequence denoiser over ``(N, 4, L)``: dilated residual conv blocks with FiLM
    conditioning; four blocks let each position see 65 bases around it, and the condition
    (the sequence's embedding z, with the timestep) carries what lies further away."""

    def __init__(self, cond_dim: int, width: int = 64, dilations: tuple[int, ...] = (1, 2, 4, 8)):
        super().__init__()
        self.conditioning = Conditioning(cond_dim, width)
        self.inp = nn.Conv1d(4, width, 5, padding=2)
        self.norms = nn.ModuleList(nn.GroupNorm(8, width) for _ in dilations)
        self.convs = nn.ModuleList(
            nn.Conv1d(width, width, 5, padding=2 * d, dilation=d) for d in dilations
        )
        self.films = nn.ModuleList(nn.Linear(width, 2 * width) for _ in dilations)
        self.out = nn.Conv1d(width, 4, 1)

    def forward(self, x: torch.Tensor, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        condition = self.conditioning(t, z)
        h = self.inp(x)
        for norm, conv, film in zip(self.norms, self.convs, self.films):
            scale, shift = film(condition)[..., None].chunk(2, dim=1)
            h = h + conv(F.silu(norm(h) * (1 + scale) + shift))
        return self.out(h)
