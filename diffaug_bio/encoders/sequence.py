"""Sequence (DNA) encoders: variable-length one-hot ``(N, 4, L)`` → fixed-size embedding.

All-zero columns are padding (see :mod:`diffaug_bio.io.sequences`); both encoders pool only
over positions that hold a base, so padding does not dilute the embedding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..io.sequences import sequence_positions
from ..layers import sinusoidal


def _masked_mean(features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the last axis of ``features (N, C, L)`` where ``mask (N, 1, L)`` is 1."""
    return (features * mask).sum(-1) / mask.sum(-1).clamp_min(1.0)


class CNNEncoder(nn.Module):
    """A 1D CNN: four conv blocks, halving the length three times, then masked mean+max pooling."""

    def __init__(self, dim: int = 128, width: int = 64):
        super().__init__()
        channels = [4, width, width, 2 * width, 2 * width]
        kernels = [9, 7, 5, 3]
        self.convs = nn.ModuleList(
            nn.Conv1d(c_in, c_out, k, padding=k // 2)
            for c_in, c_out, k in zip(channels, channels[1:], kernels)
        )
        self.norms = nn.ModuleList(nn.BatchNorm1d(c) for c in channels[1:])
        self.out = nn.Linear(2 * channels[-1], dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = sequence_positions(x).float()
        h = x
        for depth, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            h = F.gelu(norm(conv(h))) * mask
            if depth < len(self.convs) - 1:  # pool bases only: padding never wins a max
                h = F.max_pool1d(h.masked_fill(mask == 0, float("-inf")), 2, ceil_mode=True)
                mask = F.max_pool1d(mask, 2, ceil_mode=True)
                h = h.masked_fill(mask == 0, 0.0)
        pooled_max = h.masked_fill(mask == 0, float("-inf")).amax(-1)
        pooled_max = torch.nan_to_num(pooled_max, neginf=0.0)
        return self.out(torch.cat([_masked_mean(h, mask), pooled_max], dim=1))


class TransformerEncoder(nn.Module):
    """A small transformer over k-mer-like tokens (a strided conv), with sinusoidal positions
    counted from the first base (so padding does not move them), a key-padding mask from the
    all-zero columns and masked mean pooling."""

    def __init__(
        self, dim: int = 128, width: int = 128, depth: int = 3, heads: int = 4, stride: int = 3
    ):
        super().__init__()
        self.stride = stride
        self.tokens = nn.Conv1d(4, width, kernel_size=2 * stride, stride=stride, padding=stride)
        layer = nn.TransformerEncoderLayer(
            width, heads, dim_feedforward=2 * width, dropout=0.0, batch_first=True,
            norm_first=True,
        )  # fmt: skip
        self.transformer = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (0, self.stride))  # so the last bases always start a token of their own
        tokens = self.tokens(x)  # (N, width, T)
        mask = F.max_pool1d(
            sequence_positions(x).float(), 2 * self.stride, self.stride, self.stride
        )[..., : tokens.shape[-1]]
        positions = (mask[:, 0].cumsum(-1) - 1).clamp_min(0)
        h = tokens.transpose(1, 2) + sinusoidal(positions, tokens.shape[1])
        h = self.transformer(h, src_key_padding_mask=mask[:, 0] == 0)
        h = self.norm(h).transpose(1, 2)
        return self.out(_masked_mean(h, mask))
