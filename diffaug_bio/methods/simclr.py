"""SimCLR: two hand-designed views of each item are a positive pair (the baseline)."""

from __future__ import annotations

import torch

from ..contrastive.losses import info_nce
from ..train import ContrastiveTrainer, LossFn
from .base import Method


class SimCLR(Method):
    name = "simclr"

    @property
    def loss(self) -> LossFn:
        return info_nce

    def fit(self, trainer: ContrastiveTrainer, data: torch.Tensor, epochs: int) -> None:
        views = self.modality.hand_designed_views()

        def two_views(x: torch.Tensor, _index: torch.Tensor, generator: torch.Generator):
            return views(x, generator), views(x, generator)

        trainer.fit(data, two_views, epochs, desc="simclr")
