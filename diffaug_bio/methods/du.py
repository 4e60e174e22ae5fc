"""Decoupled uniformity with a kernel prior (Dufumier et al., ICML 2023).

Two hand-designed views per item; the loss spreads the view centroids apart on the sphere
(no positive term). With a prior, each centroid is first smoothed over the items whose prior
vectors are close (:class:`~diffaug_bio.contrastive.losses.KernelPriorUniformity`), so the
embedding inherits the prior's neighbourhoods. Priors come only from the data or from an
unsupervised model, never from labels:

- ``"pca"``: the top principal components of the modality's prior features
  (expression values; DNA k-mer spectra);
- ``"diffaug"``: the bridge between the two methods — DiffAug trains the encoder for
  ``prior_share`` of the epochs, and its embedding is the prior for the
  decoupled-uniformity epochs that follow (its generator is dropped: see ``DU.fit``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from .._errors import InputError
from ..contrastive.losses import KernelPriorUniformity, uniformity_weight
from ..contrastive.views import principal_components, two_views
from ..train import ContrastiveTrainer, embed
from .base import Method, MethodOptions, option_name
from .diffaug import DiffAug

logger = logging.getLogger("diffaug_bio")

PRIORS = ("none", "pca", "diffaug")


@dataclass
class DUOptions(MethodOptions):
    loss: str = "du"
    prior: str = "none"
    """Kernel prior: "none" (plain DU), "pca" or "diffaug" (see the module docstring)."""
    sigma: float | None = None
    """RBF bandwidth on the prior vectors; None: the median pairwise distance."""
    ridge: float = 0.01
    """λ in ``(K + λI)⁻¹ K``."""
    prior_share: float = 0.5
    """prior "diffaug": the share of the epochs DiffAug trains before DU takes over."""
    n_components: int = 50
    """prior "pca": principal components kept."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.loss != "du":
            raise InputError("--method du always uses the du loss (try --loss du with "
                             "another method)")  # fmt: skip
        if self.prior not in PRIORS:
            raise InputError(f"--prior must be one of: {', '.join(PRIORS)}")
        if self.sigma is not None and self.sigma <= 0:
            raise InputError("--sigma must be > 0")
        if self.ridge <= 0:
            raise InputError(f"{option_name('ridge')} must be > 0")
        if not 0 < self.prior_share < 1:
            raise InputError(f"{option_name('prior_share')} must lie in (0, 1)")


_SAME_PRIOR = (
    "--prior {prior}: most items have the same prior features (the kernel's bandwidth σ, "
    "their median distance, is 0), so the prior cannot tell them apart; use --prior none"
)


class DU(Method):
    name = "du"
    options: DUOptions

    Options = DUOptions

    def fit(self, trainer: ContrastiveTrainer, data: torch.Tensor, epochs: int) -> None:
        options = self.options
        views = two_views(self.modality.hand_designed_views())
        if options.prior == "none":
            trainer.fit(data, views, epochs, desc="du")
            return
        if options.prior == "pca":
            seed = int(torch.randint(2**31 - 1, (1,), generator=trainer.generator))
            features = self.modality.prior_features(data)
            same = _SAME_PRIOR.format(prior="pca")
            prior = torch.from_numpy(
                principal_components(features, options.n_components, seed, if_all_same=same)
            )
            du_epochs = epochs
        else:
            prior_epochs = min(epochs - 1, max(1, round(epochs * options.prior_share)))
            if prior_epochs < 1:
                raise InputError("--prior diffaug needs at least 2 epochs")
            # the temperature asked for weighs both phases' losses (cells: DU in each)
            diffaug = DiffAug(self.modality, temperature=options.temperature)
            trainer.loss = diffaug.loss
            # its generator is not kept: conditioned on the encoder as the prior left it,
            # which DU's epochs then move, it would generate off-condition positives
            diffaug.fit(trainer, data, prior_epochs)
            prior = trainer.checkpoints.memo(
                "du prior", lambda: torch.from_numpy(embed(trainer.encoder, data, trainer.device))
            )
            du_epochs = epochs - prior_epochs
        trainer.loss = KernelPriorUniformity(
            prior, options.sigma, options.ridge, uniformity_weight(options.temperature)
        )
        if not trainer.loss.sigma > 0:  # the median distance: most items share one prior point
            raise InputError(_SAME_PRIOR.format(prior=options.prior))
        logger.debug("du: %s prior, σ = %.4g", options.prior, trainer.loss.sigma)
        trainer.fit(data, views, du_epochs, desc=f"du ({options.prior} prior)")
