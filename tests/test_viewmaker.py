"""Viewmaker: the ℓ1 budget is spent exactly, views stay valid inputs, the viewmaker gets
reversed gradients (it maximises the loss), and one epoch trains end to end."""

import pytest
import torch

from diffaug_bio import InputError
from diffaug_bio.contrastive import info_nce
from diffaug_bio.contrastive.adversarial import (
    DNAViewmaker,
    ExpressionViewmaker,
    l1_budget,
    reverse_gradient,
    straight_through_substitutions,
)
from diffaug_bio.encoders import build_encoder, projection_head
from diffaug_bio.io import one_hot_encode
from diffaug_bio.io.sequences import one_hot_decode
from diffaug_bio.methods.viewmaker import Viewmaker
from diffaug_bio.modality import DNA, EXPRESSION
from diffaug_bio.train import ContrastiveTrainer, OptimiserConfig


def random_dna(n: int, max_len: int, seed: int = 0) -> torch.Tensor:
    """``n`` one-hot sequences of random lengths (so some have padding), one base masked N."""
    rng = torch.Generator().manual_seed(seed)
    lengths = torch.randint(max_len // 2, max_len + 1, (n,), generator=rng)
    sequences = ["".join("ACGT"[i] for i in torch.randint(0, 4, (int(k),), generator=rng))
                 for k in lengths]  # fmt: skip
    sequences[0] = "N" + sequences[0][1:]
    return torch.from_numpy(one_hot_encode(sequences, max_len=max_len))


def test_l1_budget_spends_exactly_epsilon_per_item():
    y = torch.randn(6, 4, 30) * torch.logspace(-2, 1, 6)[:, None, None]  # very different scales
    delta = l1_budget(y, 0.03)
    torch.testing.assert_close(delta.abs().mean((1, 2)), torch.full((6,), 0.03))

    mask = torch.ones(6, 1, 30)
    mask[:, :, 20:] = 0
    mask[1, :, :5] = 0
    delta = l1_budget(y, 0.03, mask)
    assert (delta * (1 - mask)).abs().max() == 0
    spent = delta.abs().sum((1, 2)) / (4 * mask.sum((1, 2)))
    torch.testing.assert_close(spent, torch.full((6,), 0.03))


@pytest.mark.parametrize("epsilon", [1e-4, 0.015, 0.05])
def test_dna_views_spend_the_budget_as_exact_substitutions(epsilon):
    """Each view changes exactly round(2 ε n) bases (at least one) of a sequence of n bases,
    stays a valid encoding and leaves padding alone; the two views differ (fresh noise)."""
    torch.manual_seed(0)
    x = random_dna(16, 60)
    padding = x.sum(1) == 0
    assert padding.any()
    maker = DNAViewmaker(epsilon=epsilon)
    expected = torch.round(2 * epsilon * (~padding).sum(1)).clamp_min(1)
    view_1, view_2 = maker(x, torch.arange(16), torch.Generator())
    for view in (view_1, view_2):
        changed = (view != x).any(1)
        assert torch.equal(changed.sum(1).float(), expected.float())
        assert not changed[padding].any()
        assert set(view.unique().tolist()) <= {0.0, 0.25, 1.0}  # bases, N, padding
        torch.testing.assert_close(view.sum(1), (~padding).float())
        assert (view.amax(1)[changed] == 1).all()  # a substitution writes a definite base
    assert not torch.equal(view_1, view_2)


def test_substitutions_follow_the_perturbation():
    """The columns where x + δ most prefers another base are the ones substituted."""
    x = torch.from_numpy(one_hot_encode(["AAAA"], max_len=4))
    delta = torch.zeros_like(x, requires_grad=True)
    with torch.no_grad():
        delta[0, 2, 1] = 3.0  # column 1 strongly prefers G
        delta[0, 3, 3] = 2.0  # column 3 prefers T, less strongly
    one = straight_through_substitutions(x, delta, torch.tensor([1]))
    assert one_hot_decode(one)[0] == "AGAA"
    one.sum().backward()  # straight through: the gradient of x + δ reaches δ
    torch.testing.assert_close(delta.grad, torch.ones_like(x))
    two = straight_through_substitutions(x, delta, torch.tensor([2]))
    assert one_hot_decode(two)[0] == "AGAT"


def test_expression_views_stay_in_the_per_gene_range():
    torch.manual_seed(0)
    data = torch.randn(64, 20)
    data[:, 0] = 0.0  # a constant gene cannot move
    viewmaker = ExpressionViewmaker(data.amin(0), data.amax(0), epsilon=2.0)
    view_1, view_2 = viewmaker(data, torch.arange(64), torch.Generator())
    for view in (view_1, view_2):
        assert (view >= data.amin(0)).all() and (view <= data.amax(0)).all()
        assert (view[:, 0] == 0).all()
        assert (view != data).any()


def test_viewmaker_gradient_is_reversed():
    """Gradients through the views are the negation of those through the plain perturbation,
    so the step that lowers the loss for the encoder raises it for the viewmaker."""
    torch.manual_seed(0)
    data = torch.randn(32, 12)
    viewmaker = ExpressionViewmaker(data.amin(0), data.amax(0), epsilon=0.2)
    target = torch.randn(32, 12)

    def grads(make_view) -> list[torch.Tensor]:
        viewmaker.zero_grad()
        view = make_view(data, torch.Generator().manual_seed(1))
        ((view - target) ** 2).sum().backward()
        return [p.grad.clone() for p in viewmaker.parameters()]

    reversed_ = grads(viewmaker.view)
    plain = grads(lambda x, g: viewmaker.perturb(x, viewmaker.perturbation(x, g)))
    assert any(g.abs().sum() > 0 for g in plain)
    for r, p in zip(reversed_, plain):
        torch.testing.assert_close(r, -p)

    x = torch.randn(5, requires_grad=True)
    reverse_gradient(x).sum().backward()
    assert torch.equal(x.grad, -torch.ones(5))


def test_viewmaker_step_raises_the_contrastive_loss():
    torch.manual_seed(0)
    data = torch.randn(64, 16)
    viewmaker = ExpressionViewmaker(data.amin(0), data.amax(0), epsilon=0.3)
    encoder = torch.nn.Linear(16, 8)
    optimiser = torch.optim.SGD(viewmaker.parameters(), lr=0.05)

    def loss() -> torch.Tensor:
        view_1, view_2 = viewmaker(data, torch.arange(64), torch.Generator().manual_seed(2))
        return info_nce(encoder(view_1), encoder(view_2))

    before = loss()
    before.backward()
    optimiser.step()  # minimising through the reversal maximises
    with torch.no_grad():
        assert loss() > before


def make_trainer(modality, n_features: int, method: Viewmaker) -> ContrastiveTrainer:
    encoder = build_encoder(modality.default_encoder, n_features, 8, modality.encoder_hidden)
    return ContrastiveTrainer(
        encoder,
        projection_head(8, hidden=16, out=8),
        method.loss,
        OptimiserConfig(batch_size=32),
        torch.device("cpu"),
        torch.Generator().manual_seed(0),
    )


@pytest.mark.parametrize(
    ("modality", "data"),
    [(EXPRESSION, torch.randn(64, 20)), (DNA, random_dna(64, 50))],
    ids=["expression", "dna"],
)
def test_viewmaker_trains_encoder_and_viewmaker_end_to_end(modality, data):
    torch.manual_seed(0)
    method = Viewmaker(modality)
    assert method.params()["epsilon"] == {"expression": 0.01, "dna": 0.015}[modality.name]
    trainer = make_trainer(modality, data.shape[1], method)
    encoder_before = [p.clone() for p in trainer.encoder.parameters()]
    method.fit(trainer, data, epochs=1)
    assert len(trainer.history) == 1 and torch.isfinite(torch.tensor(trainer.history)).all()
    assert any(not torch.equal(a, b) for a, b in zip(encoder_before, trainer.encoder.parameters()))
    assert all(p.grad is not None for p in method.viewmaker.parameters())


@pytest.mark.parametrize(
    ("options", "message"),
    [({"epsilon": 0.0}, "--epsilon must be > 0"), ({"noise_dim": 0}, "^noise_dim must")],
)
def test_bad_options_name_the_flag(options, message):
    with pytest.raises(InputError, match=message):
        Viewmaker(EXPRESSION, **options)
