"""CLAE: the adversarial steps (HotFlip, FGSM), the auxiliary BatchNorm round trip and the
objective's value against a hand composition; plus a short end-to-end run per modality."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from diffaug_bio import InputError
from diffaug_bio.contrastive.adversarial import (
    DualBatchNorm,
    attach_auxiliary_bn,
    auxiliary_bn,
    detach_auxiliary_bn,
    fgsm,
    hotflip,
)
from diffaug_bio.contrastive.losses import get_loss
from diffaug_bio.contrastive.views import two_views
from diffaug_bio.encoders import CNNEncoder, MLPEncoder, projection_head
from diffaug_bio.methods.clae import CLAE, input_gradient
from diffaug_bio.modality import DNA, EXPRESSION
from diffaug_bio.train import ContrastiveTrainer, OptimiserConfig


def make_trainer(encoder: nn.Module, dim: int, batch_size: int = 32) -> ContrastiveTrainer:
    return ContrastiveTrainer(
        encoder,
        projection_head(dim, hidden=16, out=8),
        get_loss("infonce"),
        OptimiserConfig(batch_size=batch_size),
        torch.device("cpu"),
        torch.Generator().manual_seed(0),
    )


def one_hot(sequence: str, length: int) -> torch.Tensor:
    """(4, length): ACGT one-hot, N = 0.25 everywhere, padding after the sequence."""
    x = torch.zeros(4, length)
    for position, base in enumerate(sequence):
        if base == "N":
            x[:, position] = 0.25
        else:
            x["ACGT".index(base), position] = 1.0
    return x


def random_dna(n: int, length: int, generator: torch.Generator) -> torch.Tensor:
    bases = torch.randint(0, 4, (n, length), generator=generator)
    x = F.one_hot(bases, 4).permute(0, 2, 1).float()
    lengths = torch.randint(length // 2, length + 1, (n,), generator=generator)
    return x * (torch.arange(length)[None, :] < lengths[:, None])[:, None, :]


def test_hotflip_flips_the_highest_gain_positions_to_their_best_base():
    x = torch.stack([one_hot("ACGT", 5), one_hot("AANAA", 5)])
    gradient = torch.zeros(2, 4, 5)
    # sequence 0: gains A→C 3, C→T 1, G→A 0.5, T→* −10; the padding's huge gradient is ignored
    gradient[0, :, 0] = torch.tensor([0.0, 3, 0, 0])
    gradient[0, :, 1] = torch.tensor([0.0, 0, 0, 1])
    gradient[0, :, 2] = torch.tensor([4.5, 0, 4, 0])
    gradient[0, :, 3] = torch.tensor([0.0, 0, 0, 10])
    gradient[0, :, 4] = 100.0
    # sequence 1: N→T gains 6 − mean 3 = 3, A→C 2, the rest ≤ 0
    gradient[1, :, 1] = torch.tensor([0.0, 2, 0, 0])
    gradient[1, :, 2] = torch.tensor([1.0, 2, 3, 6])
    gradient[1, :, 3] = torch.tensor([0.0, 0, -1, 0])
    gradient[1, :, 4] = torch.tensor([1.0, 0, 0, 0])
    flipped = hotflip(x, gradient, rate=0.4)  # k = round(1.6) = round(2.0) = 2
    assert torch.equal(flipped[0], one_hot("CTGT", 5))
    assert torch.equal(flipped[1], one_hot("ACTAA", 5))


def test_hotflip_keeps_one_hot_and_padding_and_changes_exactly_k_positions():
    generator = torch.Generator().manual_seed(1)
    x = random_dna(16, 120, generator)
    gradient = torch.randn(x.shape, generator=generator)
    flipped = hotflip(x, gradient, rate=0.05)
    present = x.sum(1) > 0
    assert (flipped.permute(0, 2, 1)[~present] == 0).all()  # padding stays padding
    assert torch.equal(flipped.sum(1), present.float())  # one-hot where there is a base
    assert set(flipped.unique().tolist()) <= {0.0, 1.0}
    changed = (flipped != x).any(1)
    k = (0.05 * present.sum(1)).round().clamp_min(1)
    assert torch.equal(changed.sum(1), k.long())
    # every flipped position gains at least as much as any position left alone
    gain = (gradient * (flipped - x)).sum(1)
    best = (gradient - (gradient * x).sum(1, keepdim=True)).masked_fill(x == 1, -torch.inf)
    best = best.amax(1)
    for i in range(len(x)):
        assert torch.allclose(gain[i][changed[i]], best[i][changed[i]])
        assert best[i][changed[i]].min() >= best[i][present[i] & ~changed[i]].max()


def test_fgsm_step_is_signed_gradient_clipped_to_the_data_range():
    x = torch.tensor([[0.0, 1.0, -1.0]])
    gradient = torch.tensor([[2.0, -0.5, 0.0]])
    low, high = torch.tensor([-1.0, -1.0, -1.0]), torch.tensor([0.02, 1.0, 1.0])
    assert torch.equal(fgsm(x, gradient, 0.03, low, high), torch.tensor([[0.02, 0.97, -1.0]]))


def test_input_gradient_leaves_parameter_gradients_untouched():
    torch.manual_seed(0)
    trainer = make_trainer(MLPEncoder(6, 4, hidden=(8,)), 4)
    attach_auxiliary_bn(trainer.encoder, trainer.head)
    view_1, view_2 = torch.randn(10, 6), torch.randn(10, 6)
    z1 = trainer.encoder(view_1)
    gradient = input_gradient(trainer, z1, trainer.head(z1), view_2, torch.arange(10))
    assert gradient.shape == view_2.shape and gradient.abs().sum() > 0
    assert all(p.grad is None for p in [*trainer.encoder.parameters(), *trainer.head.parameters()])


def test_auxiliary_bn_round_trip_keeps_state_dict_keys_and_sees_adversarial_batches():
    torch.manual_seed(0)
    data = torch.randn(64, 12)
    trainer = make_trainer(MLPEncoder(12, 4, hidden=(16,)), 4)
    keys = list(trainer.encoder.state_dict())
    auxiliary = attach_auxiliary_bn(trainer.encoder, trainer.head)
    assert len(auxiliary) == 2  # one BN in the encoder, one in the head
    trainer.add_parameters(auxiliary)
    before = [p.detach().clone() for p in auxiliary.parameters()]
    method = CLAE(EXPRESSION)
    pairs = two_views(EXPRESSION.hand_designed_views())
    trainer.fit(data, pairs, 1, desc="test", objective=method.objective(trainer, data))
    duals = [m for m in trainer.encoder.modules() if isinstance(m, DualBatchNorm)]
    assert duals
    for dual in duals:
        assert not torch.allclose(dual.main.running_mean, dual.auxiliary.running_mean)
    assert all(not torch.equal(a, p) for a, p in zip(before, auxiliary.parameters()))
    detach_auxiliary_bn(trainer.encoder, trainer.head)
    assert list(trainer.encoder.state_dict()) == keys
    assert not any(isinstance(m, DualBatchNorm) for m in trainer.head.modules())


def test_objective_equals_clean_plus_alpha_times_adversarial_loss():
    torch.manual_seed(0)
    data = torch.randn(64, 12)
    trainer = make_trainer(MLPEncoder(12, 4, hidden=(16,)), 4)
    attach_auxiliary_bn(trainer.encoder, trainer.head)
    method = CLAE(EXPRESSION, alpha=0.5, epsilon=0.1)
    view_1, view_2, index = data[:16] + 0.1, data[:16] - 0.1, torch.arange(16)
    value = method.objective(trainer, data)(view_1, view_2, index)

    encoder, head, loss = trainer.encoder, trainer.head, trainer.loss
    clean = trainer.pair_loss(view_1, view_2, index)
    z1 = encoder(view_1)
    h1 = head(z1)
    attacked = view_2.clone().requires_grad_(True)
    with auxiliary_bn(encoder, head):
        (gradient,) = torch.autograd.grad(loss(z1, h1, head(encoder(attacked)), index), attacked)
        x_adv = torch.clamp(view_2 + 0.1 * gradient.sign(), data.amin(0), data.amax(0))
        adversarial = loss(z1, h1, head(encoder(x_adv)), index)
    assert not torch.equal(x_adv, view_2)
    assert torch.allclose(value, clean + 0.5 * adversarial, atol=1e-6)


@pytest.mark.parametrize("modality", [EXPRESSION, DNA])
def test_clae_trains_end_to_end_and_leaves_a_plain_encoder(modality):
    generator = torch.Generator().manual_seed(0)
    if modality is EXPRESSION:
        data, encoder = torch.randn(64, 20, generator=generator), MLPEncoder(20, 8, (16,))
    else:
        data, encoder = random_dna(64, 60, generator), CNNEncoder(8, width=8)
    trainer = make_trainer(encoder, 8)
    keys = list(encoder.state_dict())
    start = [p.detach().clone() for p in encoder.parameters()]
    CLAE(modality).fit(trainer, data, epochs=1)
    assert len(trainer.history) == 1 and torch.isfinite(torch.tensor(trainer.history[0]))
    assert list(encoder.state_dict()) == keys
    assert any(not torch.equal(a, p) for a, p in zip(start, encoder.parameters()))


def test_auxiliary_bn_is_removed_even_when_training_fails(monkeypatch):
    trainer = make_trainer(MLPEncoder(6, 4, hidden=(8,)), 4)

    def fail(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(trainer, "fit", fail)
    with pytest.raises(RuntimeError, match="boom"):
        CLAE(EXPRESSION).fit(trainer, torch.randn(8, 6), epochs=1)
    modules = [*trainer.encoder.modules(), *trainer.head.modules()]
    assert not any(isinstance(m, DualBatchNorm) for m in modules)


@pytest.mark.parametrize(
    ("options", "flag"),
    [({"alpha": -1}, "^alpha must"), ({"epsilon": 0}, "--epsilon"),
     ({"flip_rate": 0}, "^flip_rate must"), ({"flip_rate": 1.5}, "^flip_rate must"),
     ({"rounds": 2}, "--rounds")],
)  # fmt: skip
def test_bad_options_are_input_errors_naming_the_option(options, flag):
    """By its flag where the command line has one, else by its Python keyword."""
    with pytest.raises(InputError, match=flag):
        CLAE(DNA, **options)


def test_epsilon_is_refused_where_clae_flips_bases_instead():
    assert CLAE(EXPRESSION, epsilon=0.05).options.epsilon == 0.05  # FGSM on tabular values
    with pytest.raises(InputError, match=r"--epsilon: clae on one-hot DNA flips bases \(HotFlip"):
        CLAE(DNA, epsilon=0.05)  # was accepted and never read
