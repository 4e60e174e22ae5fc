"""CLAE (Ho & Vasconcelos, NeurIPS 2020): SimCLR plus adversarial positives (REFERENCE.md §4).

Each batch's loss is ``L_CL(v1, v2) + α · L_CL(v1, x_adv)``, where ``x_adv`` is one step on
``v2`` up the gradient of the *batch* contrastive loss (so the perturbation couples every
sample: harder positives and harder negatives at once). Expression takes an FGSM step clipped
to the training data's per-gene range; DNA takes a HotFlip step (a few whole-base flips) so
the input stays a valid one-hot sequence. As in AdvProp, adversarial inputs go through
auxiliary BatchNorm layers, so their statistics do not pollute the clean ones that the saved
encoder keeps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._errors import InputError
from ..contrastive.adversarial import (
    attach_auxiliary_bn,
    auxiliary_bn,
    detach_auxiliary_bn,
    fgsm,
    hotflip,
)
from ..contrastive.views import two_views
from ..modality import Modality
from ..train import ContrastiveTrainer, Objective
from .base import Method, MethodOptions, option_name


def input_gradient(
    trainer: ContrastiveTrainer,
    z1: torch.Tensor,
    h1: torch.Tensor,
    view_2: torch.Tensor,
    index: torch.Tensor,
) -> torch.Tensor:
    """Gradient of the batch contrastive loss with respect to ``view_2`` alone, the anchors
    given by their (main-BN) representation ``z1`` and head output ``h1``.

    ``view_2`` runs through the auxiliary BNs: the attack targets the network that will see
    ``x_adv``. ``torch.autograd.grad`` leaves the parameters' ``.grad`` untouched."""
    view_2 = view_2.detach().requires_grad_(True)
    with auxiliary_bn(trainer.encoder, trainer.head):
        h2 = trainer.head(trainer.encoder(view_2))
    loss = trainer.loss(z1.detach(), h1.detach(), h2, index)
    (gradient,) = torch.autograd.grad(loss, view_2)
    return gradient


@dataclass
class CLAEOptions(MethodOptions):
    alpha: float = 1.0
    """Weight α of the adversarial term (0: plain SimCLR)."""
    epsilon: float = 0.03
    """FGSM step size for expression, in standardised units."""
    flip_rate: float = 0.02
    """Share of a DNA sequence's bases that HotFlip changes (at least one)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.alpha < 0:
            raise InputError(f"{option_name('alpha')} must be at least 0")
        if self.epsilon <= 0:
            raise InputError("--epsilon must be > 0")
        if not 0 < self.flip_rate <= 1:
            raise InputError(f"{option_name('flip_rate')} must lie in (0, 1]")


class CLAE(Method):
    name = "clae"
    supports_distributed = False  # its adversarial step runs the encoder outside DDP
    options: CLAEOptions

    Options = CLAEOptions

    def __init__(self, modality: Modality, **options: object):
        if modality.categorical and "epsilon" in options:  # else accepted and never read
            raise InputError(
                "--epsilon: clae on one-hot DNA flips bases (HotFlip, "
                f"{CLAEOptions.flip_rate:.0%} of them) instead of an FGSM step of size ε"
            )
        super().__init__(modality, **options)

    def objective(self, trainer: ContrastiveTrainer, data: torch.Tensor) -> Objective:
        """The batch loss ``L_CL(v1, v2) + α · L_CL(v1, x_adv)``; needs the auxiliary BNs
        attached. Clean views use the main BNs, ``x_adv`` the auxiliary ones; the anchors'
        representation is computed once (main BNs) and shared by both terms."""
        if not self.modality.categorical:  # tabular values: cells, k-mer counts
            low, high = data.amin(0).to(trainer.device), data.amax(0).to(trainer.device)

            def perturb(x: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
                return fgsm(x, gradient, self.options.epsilon, low, high)
        else:

            def perturb(x: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
                return hotflip(x, gradient, self.options.flip_rate)

        def loss(view_1: torch.Tensor, view_2: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
            z1 = trainer.encoder(view_1)
            h1 = trainer.head(z1)
            clean = trainer.loss(z1, h1, trainer.head(trainer.encoder(view_2)), index)
            x_adv = perturb(view_2.detach(), input_gradient(trainer, z1, h1, view_2, index))
            with auxiliary_bn(trainer.encoder, trainer.head):
                h_adv = trainer.head(trainer.encoder(x_adv))
            return clean + self.options.alpha * trainer.loss(z1, h1, h_adv, index)

        return loss

    def fit(self, trainer: ContrastiveTrainer, data: torch.Tensor, epochs: int) -> None:
        try:
            trainer.add_parameters(attach_auxiliary_bn(trainer.encoder, trainer.head))
            pairs = two_views(self.modality.hand_designed_views())
            trainer.fit(data, pairs, epochs, desc="clae", objective=self.objective(trainer, data))
        finally:
            detach_auxiliary_bn(trainer.encoder, trainer.head)
