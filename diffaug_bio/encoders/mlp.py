"""The tabular (expression) encoder."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import nn


def mlp_block(n_in: int, n_out: int) -> nn.Sequential:
    """Linear → BatchNorm → LeakyReLU(0.1). The reference DiffAug encoder normalises after
    the activation; this order is the one every benchmark in RESULTS.md measured."""
    return nn.Sequential(nn.Linear(n_in, n_out), nn.BatchNorm1d(n_out), nn.LeakyReLU(0.1))


class MLPEncoder(nn.Module):
    """Cells × genes → fixed-size embedding z (no activation on z); ``hidden`` widths in
    between (the modality's default: :attr:`~diffaug_bio.modality.Modality.encoder_hidden`)."""

    def __init__(self, n_features: int, dim: int, hidden: Sequence[int]):
        super().__init__()
        widths = [n_features, *hidden]
        self.blocks = nn.Sequential(*(mlp_block(a, b) for a, b in pairwise(widths)))
        self.out = nn.Linear(widths[-1], dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.blocks(x))
