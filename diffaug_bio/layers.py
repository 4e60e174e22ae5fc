"""Small building blocks shared by encoders and denoisers."""

from __future__ import annotations

import math

import torch


def sinusoidal(positions: torch.Tensor, width: int) -> torch.Tensor:
    """Sinusoidal encodings ``(*shape, width)`` of ``positions`` (token positions or
    diffusion steps), as in the transformer and DDPM papers."""
    frequency = torch.exp(
        torch.arange(0, width, 2, device=positions.device, dtype=torch.float32)
        * (-math.log(1e4) / width)
    )
    angles = positions[..., None].float() * frequency
    return torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(-2)
