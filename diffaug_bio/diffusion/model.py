"""The conditional diffusion model shared by both modalities: training and positive generation.

It learns p(x | z) — data given its semantic embedding — with the schedule's loss (DDPM's
ε-prediction for the Gaussian process, x̂0 cross-entropy for the categorical one), and
generates a positive for an anchor x by *partial noising*: noise x to step t* = ⌊level·T⌋,
then denoise with a few reverse steps conditioned on the anchor's z. A low
level keeps the positive near its anchor; the conditioning pulls it towards data that share
the anchor's semantics. This replaces the reference's 1000-step chains (REFERENCE.md §1,
defect 6).
"""

from __future__ import annotations

import copy
import logging

import torch
from torch import nn

from .. import distributed
from .._utils import mixed_precision
from ..checkpoint import Checkpoints
from .schedules import Schedule
from .spaces import DiffusionSpace

CPU_NETWORK_NUMBERS = 2**17
"""Code numbers per denoiser call when sampling on the CPU. Measured (benchmarks/RESULTS.md):
a block of 1,024 one-hot sequences gives the DNA denoiser activations (64 channels × 251
positions each) that outgrow the caches, and calls of 64–128 sequences run 2.3× faster per
sequence with the same output; a block of cells' 50-number codes stays one call."""

logger = logging.getLogger("diffaug_bio")


class ConditionalDiffusion(nn.Module):
    """A denoiser, its exponential moving average, a noise schedule and the (fitted) space
    the data are diffused in. ``fit`` and ``generate`` take and return data, not codes."""

    def __init__(
        self,
        denoiser: nn.Module,
        schedule: Schedule,
        space: DiffusionSpace,
        # the reference's 0.9999 acts the same: the warm-up (decay below) stays under 0.999
        # for the first ~9,000 steps, and default runs take under 1,000
        ema_decay: float = 0.999,
        condition_dropout: float = 0.0,
    ):
        super().__init__()
        self.space = space
        self.denoiser = denoiser
        # the EMA starts as a copy of the denoiser (the reference initialised it independently)
        self.ema = copy.deepcopy(denoiser).requires_grad_(False)
        self.schedule = schedule
        self.ema_decay = ema_decay
        self.condition_dropout = condition_dropout
        """Share of training pairs whose z is zeroed, so the denoiser also learns p(x) and
        sampling can use classifier-free guidance."""
        self.steps_done = 0
        self.optimiser = torch.optim.AdamW(self.denoiser.parameters(), lr=1e-3, foreach=True)

    def register_state(self, checkpoints: Checkpoints) -> None:
        """Put what training changes (weights, EMA, optimiser, step count) in the run's
        checkpoints; before the first epoch, so a resumed run can restore it at any point."""
        checkpoints.register("diffusion", self)
        checkpoints.register("diffusion optimiser", self.optimiser)
        checkpoints.register("diffusion steps", lambda: self.steps_done, self._set_steps)

    def config(self) -> dict:
        """What, besides the denoiser's shape, rebuilds this model (saved with it)."""
        return {
            "process": self.schedule.process,
            "timesteps": self.schedule.timesteps,
            "schedule": self.schedule.kind,
            "ema_decay": self.ema_decay,
            "condition_dropout": self.condition_dropout,
            "denoiser_width": self.denoiser.conditioning.width,
        }

    def loss(
        self,
        x0: torch.Tensor,
        z: torch.Tensor,
        generator: torch.Generator,
        denoiser: nn.Module | None = None,
    ) -> torch.Tensor:
        """The schedule's loss at a uniformly drawn step, conditioned on z (detached).
        ``denoiser``: the network to train, if not ``self.denoiser`` itself (its DDP wrapper)."""
        denoiser = denoiser or self.denoiser
        t = torch.randint(0, self.schedule.timesteps, (len(x0),), generator=generator)
        keep = torch.rand(len(z), 1, generator=generator) >= self.condition_dropout
        z = z.detach() * keep.to(z.device)
        return self.schedule.loss(
            lambda x_t, t: denoiser(x_t, t, z), x0, t.to(x0.device), generator
        )

    @torch.no_grad()
    def _update_ema(self) -> None:
        # warm-up of the decay so that a short training run still moves the average
        decay = min(self.ema_decay, (1 + self.steps_done) / (10 + self.steps_done))
        averages, currents = list(self.ema.parameters()), list(self.denoiser.parameters())
        torch._foreach_lerp_(averages, currents, 1 - decay)

    def fit(
        self,
        data: torch.Tensor,
        condition: torch.Tensor,
        epochs: int,
        generator: torch.Generator,
        device: torch.device,
        batch_size: int = 256,
        checkpoints: Checkpoints | None = None,
    ) -> list[float]:
        """The M-step: train on (x, z) pairs; the encoder that made z stays frozen. Under
        torchrun each rank trains on its shard of every batch, gradients averaged by DDP.
        ``checkpoints``: the run's (its epochs are part of the run's checkpoints)."""
        self.to(device).train()
        data = torch.cat([self.space.encode(batch.to(device)).cpu() for batch in data.split(4096)])
        checkpoints = checkpoints or Checkpoints()
        network = distributed.wrap(self.denoiser)
        noise_generator = distributed.rank_generator(generator)
        history = []
        for _ in checkpoints.epochs(epochs, "diffusion"):
            total = 0.0
            batches = distributed.global_batches(len(data), batch_size, generator)
            for index in map(distributed.shard, batches):
                x0, z = data[index].to(device), condition[index].to(device)
                with mixed_precision(device):
                    loss = self.loss(x0, z, noise_generator, network)
                self.optimiser.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(self.denoiser.parameters(), 1.0)
                self.optimiser.step()
                self._update_ema()
                self.steps_done += 1
                total += loss.item()
            history.append(total / len(batches))
        self.eval()
        if history:
            logger.debug("diffusion: final loss %.4f", history[-1])
        return history

    def _set_steps(self, steps: int) -> None:
        self.steps_done = steps

    @torch.no_grad()
    def generate(
        self,
        anchors: torch.Tensor,
        condition: torch.Tensor,
        level: float,
        steps: int,
        generator: torch.Generator,
        device: torch.device,
        guidance: float = 0.0,
        batch_size: int = 1024,
        decode: bool = True,
    ) -> torch.Tensor:
        """Positives for ``anchors``: encode, noise to step ⌊level·T⌋, ``steps`` reverse steps
        with the EMA denoiser conditioned on ``condition``, decode. Returns data on the CPU
        (``decode=False``: the codes in the diffusion space — for cells 50 numbers instead
        of 2,000 — to be decoded later by ``space.decode(codes, anchors)``).

        ``guidance`` w > 0 (classifier-free guidance; needs ``condition_dropout`` > 0 in
        training) uses ``out = out(z) + w·(out(z) − out(∅))`` on the network's output (ε̂ or
        x̂0 logits): samples pulled harder towards what distinguishes the anchor's z."""
        self.to(device).eval()
        t_start = self.schedule.start_step(level)
        clip = (float(self.space.low), float(self.space.high))
        outputs = []
        for anchor, z in zip(anchors.split(batch_size), condition.split(batch_size)):
            anchor, z = anchor.to(device), z.to(device)

            def predict(x: torch.Tensor, t: torch.Tensor, z: torch.Tensor = z) -> torch.Tensor:
                out = self._ema_in_calls(x, t, z)
                if guidance:
                    out = out + guidance * (out - self._ema_in_calls(x, t, torch.zeros_like(z)))
                return out

            codes = self.schedule.sample(
                predict, self.space.encode(anchor), t_start, steps, generator, clip
            )
            outputs.append((self.space.decode(codes, anchor) if decode else codes).cpu())
        return torch.cat(outputs)

    def _ema_in_calls(self, x: torch.Tensor, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The EMA denoiser's output for a block of codes; on the CPU computed in calls of at
        most ``CPU_NETWORK_NUMBERS`` code numbers (the same output, faster)."""
        per_call = len(x)
        if x.device.type == "cpu":
            per_call = max(1, CPU_NETWORK_NUMBERS // x[0].numel())
        calls = zip(x.split(per_call), t.split(per_call), z.split(per_call))
        return torch.cat([self.ema(*inputs) for inputs in calls])
