"""Forward processes and their few-step reverse samplers: how signal is lost and regained.

* :class:`GaussianSchedule` — ``q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I)`` in a continuous
  space (principal components of expression; DNA one-hot scaled to [−1, 1]); ε-prediction
  loss, deterministic DDIM sampling.
* :class:`CategoricalSchedule` — D3PM with uniform transitions (Austin et al. 2021) for
  one-hot data: ``q(x_t | x_0) = Cat(ᾱ_t x_0 + (1 − ᾱ_t)/K)``; x̂0-prediction
  cross-entropy loss, ancestral sampling through the posterior ``q(x_s | x_t, x̂0)``.

Both use the same ᾱ_t (from the linear or cosine β) and the same interface — ``loss`` and
``sample`` take a ``predict(x_t, t)`` callable — so the diffusion model is one for both.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

Predict = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``(x_t, t) -> network output`` (ε̂ for Gaussian, x̂0 logits for categorical)."""


def linear_betas(timesteps: int, start: float = 1e-4, end: float = 2e-2) -> torch.Tensor:
    """DDPM's linear schedule (Ho et al. 2020; the DiffAug reference uses it with T = 1000).
    ``start`` and ``end`` are T = 1000's; for another T they scale by 1000/T (as Nichol &
    Dhariwal 2021 do), so the chain still ends in noise: unscaled, T = 100 would end with
    a third of the signal left."""
    scale = 1000 / timesteps
    betas = torch.linspace(scale * start, scale * end, timesteps, dtype=torch.float64)
    return betas.clamp(max=0.999)


def cosine_betas(timesteps: int, offset: float = 0.008) -> torch.Tensor:
    """The cosine schedule (Nichol & Dhariwal 2021): ᾱ_t follows cos², gentler at both ends."""
    steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
    alpha_bar = torch.cos((steps + offset) / (1 + offset) * math.pi / 2) ** 2
    return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=0.999)


BETA_SCHEDULES = {"linear": linear_betas, "cosine": cosine_betas}


class Schedule:
    """ᾱ_t for t = 0 … T−1 (the share of signal left at step t) and the sampler's step grid."""

    process: str

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

    def start_step(self, level: float) -> int:
        """The step t* = ⌊level·T⌋ that partial noising starts from, within 0 … T−1."""
        return max(0, min(self.timesteps - 1, int(level * self.timesteps)))

    def ddim_timesteps(self, t_start: int, steps: int) -> list[int]:
        """``steps`` evenly spaced steps from ``t_start`` down to 0 (descending, distinct)."""
        steps = max(1, min(steps, t_start + 1))
        grid = torch.linspace(t_start, 0, steps).round().long().tolist()
        return sorted(set(grid), reverse=True)

    def loss(
        self, predict: Predict, x0: torch.Tensor, t: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """The training loss at steps ``t`` (one per item)."""
        raise NotImplementedError

    def sample(
        self,
        predict: Predict,
        x0: torch.Tensor,
        t_start: int,
        steps: int,
        generator: torch.Generator,
        clip: tuple[float, float],
    ) -> torch.Tensor:
        """Partial noising: noise ``x0`` to ``t_start``, then ``steps`` reverse steps to data.
        ``clip`` is the range of the training codes."""
        raise NotImplementedError


class GaussianSchedule(Schedule):
    """The Gaussian forward process, its ε-prediction loss and the DDIM update."""

    process = "gaussian"

    MIN_START_ALPHA_BAR = 5e-3
    """Sampling never starts where less signal is left than this. ε-prediction recovers x̂0
    as (x_t − √(1 − ᾱ) ε̂) / √ᾱ, so the network's error is magnified by 1/√ᾱ: ~20,000× at
    the cosine schedule's last step (ᾱ = 2.4e-9), at most ~14× from here on. Measured on
    mouse bladder (benchmarks/RESULTS.md), kNN-15 with positives started from step 950 /
    953 (level 1 now) / 978 / 999 of the cosine schedule: 93.2 / 93.0 / 92.4 / 91.5%."""

    def start_step(self, level: float) -> int:
        """:meth:`Schedule.start_step`, capped at the last step whose ᾱ is at least
        ``MIN_START_ALPHA_BAR`` (T = 1000: step 953 of the cosine schedule, 722 of the linear)."""
        usable = int((self.alpha_bar >= self.MIN_START_ALPHA_BAR).sum()) - 1
        return min(super().start_step(level), max(0, usable))

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

    def loss(self, predict, x0, t, generator):
        # the reference's 0.01 factor is left out: AdamW's steps do not depend on the
        # loss's scale (the gradient clip at 1.0 was not reached in a measured pbmc run)
        noise = torch.randn(x0.shape, generator=generator).to(x0.device)
        return F.mse_loss(predict(self.q_sample(x0, t, noise), t), noise)

    def sample(self, predict, x0, t_start, steps, generator, clip):
        noise = torch.randn(x0.shape, generator=generator).to(x0.device)
        x = self.q_sample(x0, torch.full((len(x0),), t_start, device=x0.device), noise)
        timesteps = self.ddim_timesteps(t_start, steps)
        for t, t_next in zip(timesteps, [*timesteps[1:], -1]):
            t_batch = torch.full((len(x),), t, device=x.device)
            x0_hat = self.predict_x0(x, t_batch, predict(x, t_batch)).clamp(*clip)
            eps = self.predict_eps(x, t_batch, x0_hat)  # consistent with the clip
            x = self.ddim_step(x0_hat, eps, torch.full_like(t_batch, t_next))
        return x.clamp(*clip)


class CategoricalSchedule(Schedule):
    """D3PM with uniform transitions over the K = channel-axis categories of one-hot codes.

    Codes are one-hot scaled to [−1, 1] (as :class:`~diffaug_bio.diffusion.OneHotSpace`
    gives them), so either process runs in the same space; an all-(−1) column (padding) has
    no category: it stays padding at every step, so the denoiser sees where a sequence ends
    (as under the Gaussian process), and adds nothing to the loss. The network predicts x̂0
    logits.
    """

    process = "categorical"

    @staticmethod
    def _categories(codes: torch.Tensor) -> torch.Tensor:
        return (codes + 1) / 2

    def _draw(
        self, probabilities: torch.Tensor, x0: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """One category per position from ``probabilities (N, K, L)`` → codes in [−1, 1],
        at the positions ``x0`` has (its padding stays padding)."""
        n, k, length = probabilities.shape
        flat = probabilities.permute(0, 2, 1).reshape(-1, k).clamp(min=1e-8).cpu()
        drawn = torch.multinomial(flat, 1, generator=generator).view(n, length)
        return self._padded_like(x0, 2 * F.one_hot(drawn, k).permute(0, 2, 1).to(x0) - 1)

    @staticmethod
    def _padded_like(x0: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """``codes`` with ``x0``'s padding columns (all −1) put back."""
        return torch.where((x0 == -1).all(1, keepdim=True), x0, codes)

    def q_probabilities(self, x0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``q(x_t | x_0) = ᾱ_t x_0 + (1 − ᾱ_t)/K`` for one-hot (or soft, e.g. N) ``x0``."""
        alpha_bar = self._alpha_bar(t, x0)
        return alpha_bar * x0 + (1 - alpha_bar) / x0.shape[1]

    def loss(self, predict, x0, t, generator):
        categories = self._categories(x0)
        x_t = self._draw(self.q_probabilities(categories, t), x0, generator)
        log_p = F.log_softmax(predict(x_t, t), dim=1)
        # soft targets: N spreads over its bases, padding (no category) contributes nothing
        return -(categories * log_p).sum(1).mean()

    def sample(self, predict, x0, t_start, steps, generator, clip):
        k = x0.shape[1]
        t_first = torch.full((len(x0),), t_start, device=x0.device)
        x = self._draw(self.q_probabilities(self._categories(x0), t_first), x0, generator)
        timesteps = self.ddim_timesteps(t_start, steps)
        for t, s in zip(timesteps, [*timesteps[1:], -1]):
            t_batch = torch.full((len(x),), t, device=x.device)
            x0_probabilities = F.softmax(predict(x, t_batch), dim=1)
            if s < 0:
                decoded = 2 * F.one_hot(x0_probabilities.argmax(1), k).permute(0, 2, 1).to(x) - 1
                return self._padded_like(x0, decoded)
            # q(x_s | x_t, x̂0) ∝ q(x_t | x_s) · q(x_s | x̂0); q(x_s | x0) is linear in x0,
            # so averaging over the predicted x0 distribution is exact
            keep = self._alpha_bar(t_batch, x) / self._alpha_bar(torch.full_like(t_batch, s), x)
            from_x_t = keep * self._categories(x) + (1 - keep) / k
            from_x0 = self.q_probabilities(x0_probabilities, torch.full_like(t_batch, s))
            x = self._draw(from_x_t * from_x0, x0, generator)
        return x


SCHEDULES: dict[str, type[Schedule]] = {
    "gaussian": GaussianSchedule,
    "categorical": CategoricalSchedule,
}


def make_schedule(process: str, timesteps: int = 1000, kind: str = "linear") -> Schedule:
    """The schedule of forward ``process`` ("gaussian" or "categorical")."""
    if process not in SCHEDULES:
        raise ValueError(f"unknown diffusion process {process!r}: choose {', '.join(SCHEDULES)}")
    return SCHEDULES[process](timesteps, kind)
