"""Gaussian noise schedules: how much signal survives at each diffusion step.

Both modalities diffuse in a continuous space: expression values as they are, DNA one-hot
scaled to [−1, 1] (see :mod:`diffaug_bio.modality`). The forward process is
``q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I)``.
"""

from __future__ import annotations

import math

import torch


def linear_betas(timesteps: int, start: float = 1e-4, end: float = 2e-2) -> torch.Tensor:
    """DDPM's linear schedule (Ho et al. 2020; the DiffAug reference uses it with T = 1000)."""
    return torch.linspace(start, end, timesteps, dtype=torch.float64)


def cosine_betas(timesteps: int, offset: float = 0.008) -> torch.Tensor:
    """The cosine schedule (Nichol & Dhariwal 2021): ᾱ_t follows cos², gentler at both ends."""
    steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
    alpha_bar = torch.cos((steps + offset) / (1 + offset) * math.pi / 2) ** 2
    return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=0.999)


BETA_SCHEDULES = {"linear": linear_betas, "cosine": cosine_betas}


class GaussianSchedule:
    """ᾱ_t for t = 0 … T−1, the forward process and the DDIM update."""

    def __init__(self, timesteps: int = 1000, kind: str = "linear"):
        if kind not in BETA_SCHEDULES:
            raise ValueError(f"unknown schedule {kind!r}: choose {', '.join(BETA_SCHEDULES)}")
        self.timesteps = timesteps
        self.kind = kind
        betas = BETA_SCHEDULES[kind](timesteps)
        self.alpha_bar = torch.cumprod(1 - betas, dim=0).float()

    def _alpha_bar(self, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """ᾱ_t shaped to broadcast over a batch like ``like``."""
        values = self.alpha_bar.to(like.device)[t]
        return values.view(-1, *([1] * (like.dim() - 1)))

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Draw x_t ~ q(x_t | x_0) with the given standard-normal ``noise``."""
        alpha_bar = self._alpha_bar(t, x0)
        return alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise

    def predict_x0(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        alpha_bar = self._alpha_bar(t, x_t)
        return (x_t - (1 - alpha_bar).sqrt() * eps) / alpha_bar.sqrt()

    def predict_eps(self, x_t: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        alpha_bar = self._alpha_bar(t, x_t)
        return (x_t - alpha_bar.sqrt() * x0) / (1 - alpha_bar).sqrt()

    def ddim_step(self, x0: torch.Tensor, eps: torch.Tensor, t_next: torch.Tensor) -> torch.Tensor:
        """Deterministic DDIM (η = 0) move to step ``t_next`` given predicted x̂0 and ε̂;
        ``t_next < 0`` means "all the way to the data", returning x̂0."""
        if int(t_next[0]) < 0:
            return x0
        alpha_bar = self._alpha_bar(t_next, x0)
        return alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * eps

    def ddim_timesteps(self, t_start: int, steps: int) -> list[int]:
        """``steps`` evenly spaced steps from ``t_start`` down to 0 (descending, distinct)."""
        steps = max(1, min(steps, t_start + 1))
        grid = torch.linspace(t_start, 0, steps).round().long().tolist()
        return sorted(set(grid), reverse=True)
