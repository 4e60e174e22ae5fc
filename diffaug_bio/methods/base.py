"""What a method is: a recipe of positive pairs (and the loss on them) for the shared trainer."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, fields
from typing import ClassVar, get_args, get_type_hints

import torch

from .._errors import InputError, real_number, whole_number
from ..contrastive.losses import LossFn, get_loss
from ..diffusion import ConditionalDiffusion
from ..io.expression import DEFAULT_N_TOP_GENES
from ..modality import Modality
from ..train import ContrastiveTrainer

COMMAND_LINE_OPTIONS = frozenset({"loss", "temperature", "warmup", "rounds", "replace_fraction",
                                  "noise_level", "guidance", "schedule", "process", "prior",
                                  "sigma", "epsilon"})  # fmt: skip
"""The method options the command line offers; the others are Python keywords only."""


def option_name(name: str) -> str:
    """How messages name a method option: by its flag (``--noise-level``) where the command
    line has one, else by the keyword a Python caller gave (``bank_size``)."""
    return "--" + name.replace("_", "-") if name in COMMAND_LINE_OPTIONS else name


@dataclass
class MethodOptions:
    """Options every method takes; a method's own options subclass this."""

    loss: str = "infonce"
    temperature: float | None = None
    """InfoNCE's temperature T, and DU's weight t = 1/(2T); None: ``INFONCE_TEMPERATURE``."""

    def __post_init__(self) -> None:
        hints = get_type_hints(type(self))
        for option in fields(self):  # int options are counts (whole, ≥ 1); floats numbers
            value, hint = getattr(self, option.name), hints[option.name]
            name = option_name(option.name)
            if int in (hint, *get_args(hint)) and value is not None:
                setattr(self, option.name, whole_number(name, value, 1))
            elif float in (hint, *get_args(hint)) and value is not None:
                setattr(self, option.name, real_number(name, value))
        if self.loss is not None:  # None: the method resolves it by modality (DiffAug)
            get_loss(self.loss, self.temperature)


class Method(ABC):
    """A contrastive method. Subclasses say how positives are made and call ``trainer.fit``.

    ``epochs`` is the total number of contrastive epochs the user asked for; a method that
    trains in rounds divides it between them.
    """

    name: ClassVar[str]
    Options: ClassVar[type[MethodOptions]] = MethodOptions
    diffusion: ConditionalDiffusion | None = None
    """A trained generator of positives, for methods that have one (saved with the model)."""
    supports_distributed: ClassVar[bool] = True
    """False for methods that train a second network outside the trainer's DDP wrapper."""
    n_top_genes: ClassVar[int] = DEFAULT_N_TOP_GENES
    """Highly variable genes the encoder sees by default (cells): the count each method was
    measured best with (benchmarks/RESULTS.md)."""

    def __init__(self, modality: Modality, **options: object):
        unknown = sorted(set(options) - set(self.Options.__dataclass_fields__))
        if unknown:
            names = ", ".join(option_name(option) for option in unknown)
            raise InputError(f"{names}: not an option of --method {self.name}")
        self.modality = modality
        self.options = self.Options(**options)

    @property
    def loss(self) -> LossFn:
        """The contrastive loss on (anchor representation, anchor head, positive head)."""
        return get_loss(self.options.loss, self.options.temperature)

    def params(self) -> dict:
        """The method's settings, recorded in ``uns["diffaug"]["params"]`` and the model config."""
        return {"method": self.name, **asdict(self.options)}

    @abstractmethod
    def fit(self, trainer: ContrastiveTrainer, data: torch.Tensor, epochs: int) -> None:
        """Train ``trainer``'s encoder on ``data`` (N, …) without labels."""
