"""SimCLR: two hand-designed views of each item are a positive pair (the baseline)."""

from __future__ import annotations

import torch

from ..contrastive.views import two_views
from ..train import ContrastiveTrainer
from .base import Method


class SimCLR(Method):
    name = "simclr"

    def fit(self, trainer: ContrastiveTrainer, data: torch.Tensor, epochs: int) -> None:
        trainer.fit(data, two_views(self.modality.hand_designed_views()), epochs, desc="simclr")
