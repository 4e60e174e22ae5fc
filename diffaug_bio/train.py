"""The one contrastive training loop, shared by every method and both modalities.

A method decides *which* positive pairs to show (hand-designed views, neighbour mixups,
diffusion samples); the trainer owns the encoder, projection head, optimiser and loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from . import distributed
from ._errors import TrainingDiverged
from ._utils import mixed_precision
from .checkpoint import Checkpoints
from .contrastive.losses import LossFn
from .contrastive.views import PairMaker

logger = logging.getLogger("diffaug_bio")


Objective = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""``(view_1, view_2, batch_indices) -> loss``."""


@dataclass
class OptimiserConfig:
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    grad_clip: float = 10.0


class PairNetwork(nn.Module):
    """``(view_1, view_2) -> (z1, head(z1), head(z2))``: one step's forward pass."""

    def __init__(self, encoder: nn.Module, head: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(
        self, view_1: torch.Tensor, view_2: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        z1 = self.encoder(view_1)
        return z1, self.head(z1), self.head(self.encoder(view_2))


class ContrastiveTrainer:
    """Encoder + projection head + AdamW, trained on pairs that a method supplies."""

    def __init__(
        self,
        encoder: nn.Module,
        head: nn.Module,
        loss: LossFn,
        config: OptimiserConfig,
        device: torch.device,
        generator: torch.Generator,
        checkpoints: Checkpoints | None = None,
    ):
        self.encoder = encoder.to(device)
        self.head = head.to(device)
        self.network = distributed.wrap(PairNetwork(self.encoder, self.head))
        """The encoder and head as one module, so DistributedDataParallel sees one forward
        pass per step (it wraps them when several processes train)."""
        self.loss = loss
        self.config = config
        self.device = device
        self.generator = generator
        parameters = [*self.encoder.parameters(), *self.head.parameters()]
        self.optimiser = torch.optim.AdamW(
            parameters, lr=config.lr, weight_decay=config.weight_decay, foreach=True
        )
        self.history: list[float] = []
        self.checkpoints = checkpoints or Checkpoints()
        """Every epoch of the run (this trainer's and the diffusion model's) goes through it."""
        for name, thing in (("encoder", self.encoder), ("head", self.head),
                            ("optimiser", self.optimiser), ("generator", generator),
                            ("history", self.history)):  # fmt: skip
            self.checkpoints.register(name, thing)

    def pair_loss(
        self, view_1: torch.Tensor, view_2: torch.Tensor, index: torch.Tensor
    ) -> torch.Tensor:
        """The contrastive loss of a batch of positive pairs; under torchrun, of the global
        batch (every rank's pairs gathered, so all of them are negatives)."""
        z1, h1, h2 = self.network(view_1, view_2)
        return self.loss(*distributed.gather_together(z1, h1, h2, index))

    def add_parameters(self, module: nn.Module) -> None:
        """Let the optimiser also step ``module`` (a view generator trained through the loss,
        e.g. with reversed gradients); it is not part of the saved encoder."""
        self.optimiser.add_param_group({"params": list(module.parameters())})
        self.checkpoints.register(f"parameter group {len(self.optimiser.param_groups)}", module)

    def fit(
        self,
        data: torch.Tensor,
        make_pair: PairMaker,
        epochs: int,
        desc: str,
        objective: Objective | None = None,
    ) -> None:
        """Run ``epochs`` passes over ``data`` (kept on the CPU; batches move to the device).

        ``objective(view_1, view_2, index)`` gives a batch's loss; by default
        :meth:`pair_loss` (a method that adds terms, like CLAE, passes its own)."""
        objective = objective or self.pair_loss
        self.encoder.train()
        self.head.train()
        view_generator = distributed.rank_generator(self.generator)
        for _ in self.checkpoints.epochs(epochs, desc):
            total = 0.0
            batches = distributed.global_batches(
                len(data), self.config.batch_size, self.generator, merge_ragged=True
            )
            for index in map(distributed.shard, batches):
                view_1, view_2 = make_pair(data[index].to(self.device), index, view_generator)
                with mixed_precision(self.device):
                    loss = objective(view_1, view_2, index)
                if not torch.isfinite(loss):
                    raise TrainingDiverged(
                        "the training loss became NaN or infinite; try a higher --temperature "
                        "(the loss divides by it) or check the input for extreme values"
                    )
                self.optimiser.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(
                    [*self.encoder.parameters(), *self.head.parameters()], self.config.grad_clip
                )
                self.optimiser.step()
                total += loss.item()
            self.history.append(total / len(batches))
        if self.history:  # (empty while a resumed run skips its first loops)
            logger.debug("%s: final loss %.4f", desc, self.history[-1])


@torch.no_grad()
def embed(
    encoder: nn.Module, data: torch.Tensor, device: torch.device, batch_size: int = 2048
) -> np.ndarray:
    """Embed ``data`` in evaluation mode, batch by batch; float32 NumPy (n, dim). In full
    precision on every device (one forward pass costs little), so a saved model applied
    later, on the CPU say, gives the embedding its training run wrote, not a bf16 one."""
    encoder.eval()
    chunks = [encoder(batch.to(device)).float().cpu() for batch in data.split(batch_size)]
    return torch.cat(chunks).numpy()
