"""Decoupled uniformity and its kernel prior: losses by hand, the σ limits, the method."""

import math

import pytest
import torch
import torch.nn.functional as F

from diffaug_bio._errors import InputError
from diffaug_bio.contrastive.losses import (
    KernelPriorUniformity,
    decoupled_uniformity,
    get_loss,
    median_bandwidth,
    view_centroids,
)
from diffaug_bio.methods import build_method
from diffaug_bio.modality import EXPRESSION


def test_decoupled_uniformity_matches_hand_computation():
    centroids = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    # squared distances of the pairs (0,1), (0,2), (1,2): 1, 4, 5
    expected = math.log((math.exp(-2) + math.exp(-8) + math.exp(-10)) / 3)
    assert decoupled_uniformity(centroids, t=2.0).item() == pytest.approx(expected, rel=1e-6)
    by_default = math.log((math.exp(-1) + math.exp(-4) + math.exp(-5)) / 3)  # t = 1
    assert decoupled_uniformity(centroids).item() == pytest.approx(by_default, rel=1e-6)
    # spreading the centroids apart lowers the loss
    assert decoupled_uniformity(2 * centroids).item() < by_default


def test_a_temperature_sets_dus_weight_as_infonce_weighs_distances():
    """--temperature T gives DU t = 1/(2T) (InfoNCE's weight on squared distances between unit
    vectors); without it DU takes InfoNCE's default T = 0.5's, t = 1."""
    generator = torch.Generator().manual_seed(0)
    h1, h2 = torch.randn(6, 4, generator=generator), torch.randn(6, 4, generator=generator)
    index = torch.arange(6)
    centroids = view_centroids(h1, h2)
    at_quarter = get_loss("du", 0.25)(None, h1, h2, index).item()
    assert at_quarter == pytest.approx(decoupled_uniformity(centroids, t=2.0).item(), rel=1e-6)
    assert get_loss("du")(None, h1, h2, index).item() == pytest.approx(
        decoupled_uniformity(centroids, t=1.0).item(), rel=1e-6
    )
    assert at_quarter != pytest.approx(get_loss("du")(None, h1, h2, index).item(), rel=1e-3)


def test_view_centroids_average_the_views_on_the_sphere():
    h1 = torch.tensor([[3.0, 0.0]])
    h2 = torch.tensor([[0.0, 0.5]])
    torch.testing.assert_close(view_centroids(h1, h2), torch.tensor([[0.5, 0.5]]))


def test_kernel_prior_with_sigma_to_zero_is_plain_du():
    """K → I, so (K + λI)⁻¹K M = M / (1 + λ): plain DU on shrunk centroids, and exactly
    plain DU as λ → 0 too."""
    generator = torch.Generator().manual_seed(0)
    h1, h2 = torch.randn(8, 5, generator=generator), torch.randn(8, 5, generator=generator)
    prior = torch.randn(8, 3, generator=generator)
    index = torch.arange(8)
    centroids = view_centroids(h1, h2)
    narrow = KernelPriorUniformity(prior, sigma=1e-6, ridge=0.01)
    assert narrow(None, h1, h2, index).item() == pytest.approx(
        decoupled_uniformity(centroids / 1.01).item(), rel=1e-6
    )
    tiny_ridge = KernelPriorUniformity(prior, sigma=1e-6, ridge=1e-9)
    assert tiny_ridge(None, h1, h2, index).item() == pytest.approx(
        decoupled_uniformity(centroids).item(), rel=1e-6
    )


def test_kernel_prior_merges_items_the_prior_cannot_tell_apart():
    """(K + λI)⁻¹K keeps the directions K resolves and drops those below λ: two tight prior
    clusters far apart (median bandwidth) — each cluster's centroids merge, while the
    difference between the clusters survives."""
    prior = torch.tensor([[0.0], [0.01], [0.02], [10.0], [10.01], [10.02]])
    loss = KernelPriorUniformity(prior)
    assert loss.sigma == pytest.approx(median_bandwidth(prior))
    centroids = F.normalize(torch.randn(6, 4, generator=torch.Generator().manual_seed(1)), dim=1)
    smoothed = loss.smoothing(torch.arange(6)) @ centroids
    for cluster in (slice(0, 3), slice(3, 6)):
        assert torch.pdist(smoothed[cluster]).max() < 0.05 * torch.pdist(centroids[cluster]).min()
    between = centroids[:3].mean(0) - centroids[3:].mean(0)
    smoothed_between = smoothed[:3].mean(0) - smoothed[3:].mean(0)
    torch.testing.assert_close(smoothed_between, between, atol=0.05, rtol=0.0)


def test_kernel_prior_weights_carry_no_gradient_and_follow_the_batch_index():
    prior = torch.randn(10, 2, generator=torch.Generator().manual_seed(2))
    loss = KernelPriorUniformity(prior, sigma=1.0)
    h1 = torch.randn(4, 3, requires_grad=True)
    h2 = torch.randn(4, 3)
    value = loss(None, h1, h2, torch.tensor([7, 1, 4, 9]))
    value.backward()
    assert h1.grad is not None and not loss.smoothing(torch.tensor([7, 1])).requires_grad
    # the batch's own prior vectors are used: reordering the batch permutes the weights
    swapped = loss.smoothing(torch.tensor([1, 7]))
    torch.testing.assert_close(swapped, loss.smoothing(torch.tensor([7, 1])).flip(0, 1))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"prior": "labels"}, "--prior must be one of"),
        ({"loss": "infonce"}, "always uses the du loss"),
        ({"sigma": 0.0}, "--sigma must be > 0"),
    ],
)
def test_du_rejects_bad_options(options, message):
    with pytest.raises(InputError, match=message):
        build_method("du", EXPRESSION, **options)


@pytest.mark.parametrize("prior", ["pca", "diffaug"])
def test_du_with_a_prior_trains_and_records_it(pbmc, prior, monkeypatch):
    from diffaug_bio import tl
    from diffaug_bio.methods import DiffAug

    prior_phases = []

    def cheap_diffaug(modality, **options):
        # a cheaper generator for the prior: the test is about the plumbing, not the quality
        prior_phases.append(DiffAug(modality, diffusion_epochs=2, **options))
        return prior_phases[-1]

    monkeypatch.setattr("diffaug_bio.methods.du.DiffAug", cheap_diffaug)
    adata = pbmc[:200].copy()
    weights = []
    original = KernelPriorUniformity.__init__

    def recording(self, *args):
        original(self, *args)
        weights.append(self.t)

    monkeypatch.setattr(KernelPriorUniformity, "__init__", recording)
    model = tl.embed(adata, method="du", prior=prior, epochs=2, dim=8, seed=0, temperature=1.0)
    assert weights == [0.5]  # t = 1/(2T) reaches the kernel-prior loss too
    if prior == "diffaug":  # and the DiffAug prior phase's own DU loss
        assert [phase.loss.keywords for phase in prior_phases] == [{"t": 0.5}]
    assert adata.obsm["X_diffaug"].shape == (adata.n_obs, 8)
    assert adata.uns["diffaug"]["params"]["prior"] == prior
    # the DiffAug prior's generator is conditioned on an encoder that DU then moves, so it is
    # not kept: such a model generates no positives, and augment says so
    assert model.diffusion is None
    with pytest.raises(InputError, match="no generator"):
        tl.augment(adata, model)


def test_diffaug_positives_scored_with_the_du_loss(pbmc):
    from diffaug_bio import tl

    adata = pbmc[:200].copy()
    model = tl.embed(adata, method="diffaug", loss="du", epochs=2, dim=8, diffusion_epochs=2)
    assert adata.uns["diffaug"]["params"]["loss"] == "du" and model.diffusion is not None
    assert model.training["final_loss"] < 0  # DU is a log of a mean of values below 1
