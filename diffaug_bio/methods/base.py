"""What a method is: a recipe of positive pairs (and the loss on them) for the shared trainer."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch

from ..modality import Modality
from ..train import ContrastiveTrainer, LossFn


class Method(ABC):
    """A contrastive method. Subclasses say how positives are made and call ``trainer.fit``.

    ``epochs`` is the total number of contrastive epochs the user asked for; a method that
    trains in rounds divides it between them.
    """

    name: ClassVar[str]

    def __init__(self, modality: Modality):
        self.modality = modality

    @property
    @abstractmethod
    def loss(self) -> LossFn:
        """The contrastive loss on (head output of view 1, head output of view 2)."""

    @abstractmethod
    def fit(self, trainer: ContrastiveTrainer, data: torch.Tensor, epochs: int) -> None:
        """Train ``trainer``'s encoder on ``data`` (N, …) without labels."""

    def params(self) -> dict:
        """The method's settings, recorded in ``uns["diffaug"]["params"]`` and the model config."""
        return {"method": self.name}
