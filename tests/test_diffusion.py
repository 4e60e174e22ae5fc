"""The shared diffusion core: forward process, learning, conditioning, DNA validity."""

import pytest
import torch

from diffaug_bio.diffusion import (
    CategoricalSchedule,
    ConditionalDiffusion,
    GaussianSchedule,
    MLPDenoiser,
    OneHotSpace,
    PrincipalSpace,
)
from diffaug_bio.io import one_hot_encode
from diffaug_bio.modality import DNA


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_forward_process_matches_the_schedule(kind):
    schedule = GaussianSchedule(1000, kind)
    generator = torch.Generator().manual_seed(0)
    x0 = torch.tensor([[1.5, -2.0, 0.0]]).expand(20000, 3)
    for step in (0, 250, 999):
        t = torch.full((len(x0),), step)
        x_t = schedule.q_sample(x0, t, torch.randn(x0.shape, generator=generator))
        alpha_bar = schedule.alpha_bar[step]
        torch.testing.assert_close(x_t.mean(0), alpha_bar.sqrt() * x0[0], atol=0.03, rtol=0)
        torch.testing.assert_close(x_t.var(0), (1 - alpha_bar).expand(3), atol=0.03, rtol=0.05)
    assert schedule.alpha_bar[0] > 0.99 and schedule.alpha_bar[-1] < 0.01
    assert torch.all(schedule.alpha_bar[1:] < schedule.alpha_bar[:-1])


def test_the_linear_schedule_ends_in_noise_whatever_the_number_of_steps():
    """DDPM's β range is T = 1000's; scaled by 1000/T, a shorter chain still ends in noise
    (unscaled, T = 100 kept a third of the signal at its last step)."""
    for steps in (20, 100, 1000):
        assert GaussianSchedule(steps, "linear").alpha_bar[-1] < 0.01
    ddpm = torch.cumprod(1 - torch.linspace(1e-4, 2e-2, 1000, dtype=torch.float64), 0).float()
    torch.testing.assert_close(GaussianSchedule(1000, "linear").alpha_bar, ddpm)


def test_ddim_timesteps_descend_from_t_star_to_zero():
    schedule = GaussianSchedule(1000)
    assert schedule.ddim_timesteps(300, 4) == [300, 200, 100, 0]
    assert schedule.ddim_timesteps(2, 10) == [2, 1, 0]


def _two_clusters(n: int = 512, generator=None):
    """Points around (+3, +3, …) and (−3, −3, …), with a 2-d condition naming the cluster."""
    labels = torch.randint(0, 2, (n,), generator=generator)
    centres = torch.where(labels[:, None] == 1, 3.0, -3.0).expand(n, 8)
    points = centres + 0.3 * torch.randn(n, 8, generator=generator)
    condition = torch.nn.functional.one_hot(labels, 2).float()
    return points, condition


def _fit_two_clusters(schedule):
    """A small generator trained on :func:`_two_clusters` with ``schedule``; returns it, its
    loss history and the generator of random numbers, to draw samples with."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    points, condition = _two_clusters(generator=generator)
    space = PrincipalSpace(8, 8).fit(points)  # a rotation and a scale: lossless for 8-d data
    model = ConditionalDiffusion(MLPDenoiser(8, 2, width=64, depth=2), schedule, space)
    history = model.fit(points, condition, 150, generator, torch.device("cpu"), batch_size=128)
    return model, history, generator


@pytest.fixture(scope="module")
def trained_two_cluster_model():
    model, history, _ = _fit_two_clusters(GaussianSchedule(200))
    return model, history


def test_denoiser_loss_falls_on_two_clusters(trained_two_cluster_model):
    _, history = trained_two_cluster_model
    assert sum(history[-10:]) / 10 < 0.5 * sum(history[:3]) / 3


def test_samples_follow_their_condition(trained_two_cluster_model):
    model, _ = trained_two_cluster_model
    generator = torch.Generator().manual_seed(1)
    start = torch.zeros(200, 8)  # from pure noise: level 1.0 forgets the anchor entirely
    for cluster, centre in ((0, -3.0), (1, 3.0)):
        condition = torch.nn.functional.one_hot(torch.full((200,), cluster), 2).float()
        samples = model.generate(start, condition, 1.0, 20, generator, torch.device("cpu"))
        assert abs(samples.mean().item() - centre) < 0.6
        assert (samples.mean(1).sign() == (1 if centre > 0 else -1)).float().mean() > 0.95


def test_sampling_from_pure_noise_under_the_cosine_schedule_follows_the_condition():
    """At the cosine schedule's last step ᾱ = 2.4e-9: x̂0 recovered from ε̂ magnified the
    network's error ~20,000×, and samples from level 1.0 strayed from their condition's
    cluster (on mouse bladder 99.5% of the first x̂0's numbers fell outside the codes'
    range). Sampling now starts at the last step with ᾱ ≥ 5e-3."""
    schedule = GaussianSchedule(1000, "cosine")
    assert schedule.start_step(1.0) == 953 and schedule.start_step(0.5) == 500
    assert schedule.alpha_bar[953] >= 5e-3 > schedule.alpha_bar[954]
    assert CategoricalSchedule(1000, "cosine").start_step(1.0) == 999  # x̂0 predicted directly
    model, _, generator = _fit_two_clusters(schedule)
    for cluster, centre in ((0, -3.0), (1, 3.0)):
        condition = torch.nn.functional.one_hot(torch.full((200,), cluster), 2).float()
        samples = model.generate(torch.zeros(200, 8), condition, 1.0, 5, generator,
                                 torch.device("cpu"))  # fmt: skip
        assert (samples.mean(1).sign() == (1 if centre > 0 else -1)).float().mean() > 0.95
        assert (samples - centre).abs().mean() < 0.6  # uncapped: 1.02 and 0.87


def test_partial_noising_keeps_positives_near_their_anchor(trained_two_cluster_model):
    model, _ = trained_two_cluster_model
    generator = torch.Generator().manual_seed(2)
    anchors, condition = _two_clusters(100, generator)
    near = model.generate(anchors, condition, 0.1, 5, generator, torch.device("cpu"))
    far = model.generate(anchors, condition, 0.9, 5, generator, torch.device("cpu"))
    assert (near - anchors).norm(dim=1).mean() < (far - anchors).norm(dim=1).mean()
    assert (near.mean(1).sign() == anchors.mean(1).sign()).all()


def test_partial_noising_draws_noise_so_positives_vary_with_the_seed(trained_two_cluster_model):
    """Sampling noises the anchor to step ⌊level·T⌋ before the (deterministic) DDIM steps:
    two generators give two different positives per anchor, neither of them the anchor."""
    model, _ = trained_two_cluster_model
    anchors, condition = _two_clusters(100, torch.Generator().manual_seed(3))
    cpu = torch.device("cpu")
    positives = [
        model.generate(anchors, condition, 0.5, 5, torch.Generator().manual_seed(seed), cpu)
        for seed in (4, 5)
    ]
    assert ((positives[0] - positives[1]).norm(dim=1) > 0.05).all()
    for positive in positives:
        assert ((positive - anchors).norm(dim=1) > 0.05).all()
        assert (positive.mean(1).sign() == anchors.mean(1).sign()).all()  # still the cluster's


@pytest.mark.parametrize("schedule", [GaussianSchedule(100), CategoricalSchedule(100)])
def test_dna_samples_decode_to_valid_one_hot_and_keep_padding(schedule):
    generator = torch.Generator().manual_seed(0)
    anchors = torch.from_numpy(one_hot_encode(["ACGTACGGTACCA" * 3, "GGCATTAC" * 2], max_len=48))
    space = OneHotSpace().fit(anchors)
    assert (space.low, space.high) == (-1, 1)
    model = ConditionalDiffusion(DNA.denoiser(4, 6, DNA.denoiser_width), schedule, space)
    condition = torch.randn(2, 6, generator=generator)
    model.fit(anchors, condition, 3, generator, torch.device("cpu"))
    generated = model.generate(anchors, condition, 0.5, 4, generator, torch.device("cpu"))
    column_sums = generated.sum(1)
    torch.testing.assert_close(column_sums, (anchors.sum(1) > 0).float())  # one base or padding
    assert set(generated.unique().tolist()) == {0.0, 1.0}


@pytest.mark.parametrize("guidance", [0.0, 2.0])
def test_sampling_on_the_cpu_in_smaller_network_calls_gives_the_same_positives(
    monkeypatch, guidance
):
    """On the CPU the DNA denoiser runs faster in calls of about 128 sequences than on a
    block of 1,024 (RESULTS.md); the calls must split items, timesteps and conditions alike."""
    generator = torch.Generator().manual_seed(0)
    bases = torch.randint(0, 4, (10, 48), generator=generator).tolist()
    anchors = torch.from_numpy(one_hot_encode(["".join("ACGT"[b] for b in s) for s in bases], 48))
    model = ConditionalDiffusion(
        DNA.denoiser(4, 6, DNA.denoiser_width), GaussianSchedule(100), OneHotSpace().fit(anchors)
    )
    condition = torch.randn(10, 6, generator=generator)
    calls, forward = [], model.ema.forward

    def counted(x: torch.Tensor, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        calls.append(len(x))
        return forward(x, t, z)

    monkeypatch.setattr(model.ema, "forward", counted)

    def positives(numbers_per_call: int) -> torch.Tensor:
        monkeypatch.setattr("diffaug_bio.diffusion.model.CPU_NETWORK_NUMBERS", numbers_per_call)
        return model.generate(anchors, condition, 0.5, 3, torch.Generator().manual_seed(1),
                              torch.device("cpu"), guidance, decode=False)  # fmt: skip

    whole = positives(10**9)
    passes = 3 * (2 if guidance else 1)  # steps, each twice under guidance
    assert calls == [10] * passes
    calls.clear()
    split = positives(3 * 4 * 48)  # three sequences' codes per call
    assert calls == [3, 3, 3, 1] * passes
    torch.testing.assert_close(split, whole)


def test_principal_space_decodes_onto_the_manifold_without_the_anchor_residual():
    generator = torch.Generator().manual_seed(0)
    data = torch.randn(300, 40, generator=generator) @ torch.randn(40, 40, generator=generator)
    space = PrincipalSpace(40, n_components=5).fit(data)
    codes = space.encode(data)
    decoded = space.decode(codes, data)
    # a round trip lands on the rank-5 reconstruction: re-encoding gives the same codes ...
    torch.testing.assert_close(space.encode(decoded), codes, atol=1e-4, rtol=1e-4)
    assert torch.linalg.matrix_rank(decoded - space.mean, atol=1e-3) == 5
    # ... and nothing of the anchor's own off-manifold detail leaks into the positive
    torch.testing.assert_close(space.decode(codes, torch.zeros_like(data)), decoded)


def test_guidance_pulls_samples_harder_towards_their_condition():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    points, condition = _two_clusters(generator=generator)
    space = PrincipalSpace(8, 8).fit(points)
    denoiser = MLPDenoiser(8, 2, width=64, depth=2)
    model = ConditionalDiffusion(denoiser, GaussianSchedule(200), space, condition_dropout=0.3)
    model.fit(points, condition, 150, generator, torch.device("cpu"), batch_size=128)
    # anchors in the −3 cluster, conditioned on the +3 cluster, noised halfway
    anchors = torch.full((300, 8), -3.0)
    towards_plus = torch.nn.functional.one_hot(torch.ones(300, dtype=torch.long), 2).float()
    cpu = torch.device("cpu")
    plain = model.generate(anchors, towards_plus, 0.5, 10, torch.Generator().manual_seed(1), cpu)
    guided = model.generate(
        anchors, towards_plus, 0.5, 10, torch.Generator().manual_seed(1), cpu, guidance=3.0
    )
    assert guided.mean() > plain.mean() + 0.3
    # with the condition dropped the model has learned p(x): both clusters come out
    unconditioned = model.generate(
        torch.zeros(400, 8), torch.zeros(400, 2), 1.0, 20, torch.Generator().manual_seed(2), cpu
    )
    share_plus = (unconditioned.mean(1) > 0).float().mean().item()
    assert 0.2 < share_plus < 0.8


def test_categorical_forward_process_keeps_a_base_with_probability_alpha_bar():
    schedule = CategoricalSchedule(1000)
    generator = torch.Generator().manual_seed(0)
    # 20,000 positions of A, one of N (spread evenly), as ±1 codes
    x0 = 2 * torch.tensor([[1.0], [0.0], [0.0], [0.0]]).expand(4, 20000)[None] - 1
    soft = torch.full((1, 4, 20000), 0.25) * 2 - 1
    for step in (0, 250, 999):
        t = torch.full((1,), step)
        alpha_bar = schedule.alpha_bar[step]
        expected = alpha_bar * torch.tensor([1.0, 0, 0, 0]) + (1 - alpha_bar) / 4
        drawn = schedule._draw(schedule.q_probabilities((x0 + 1) / 2, t), x0, generator)
        frequencies = (drawn + 1) / 2
        torch.testing.assert_close(frequencies.mean(2)[0], expected, atol=0.015, rtol=0)
        n_frequencies = (
            schedule._draw(schedule.q_probabilities((soft + 1) / 2, t), soft, generator) + 1
        ) / 2
        torch.testing.assert_close(
            n_frequencies.mean(2)[0], torch.full((4,), 0.25), atol=0.015, rtol=0
        )


def test_the_categorical_process_keeps_padding_where_the_denoiser_sees_it():
    """Padding has no base to keep or lose: it stays padding in every x_t the denoiser is
    shown, in training and in sampling, as under the Gaussian process (a drawn base there
    would hide where the sequence ends)."""
    schedule = CategoricalSchedule(1000, "cosine")
    generator = torch.Generator().manual_seed(0)
    anchors = torch.from_numpy(one_hot_encode(["ACGTACGTAC", "GGCATTACGTACGTAC"], max_len=20))
    codes = OneHotSpace().fit(anchors).encode(anchors)
    padding = (codes == -1).all(1)
    assert padding.sum().item() == 10 + 4
    shown = []

    def predict(x_t, t):
        shown.append(x_t)
        return torch.randn(x_t.shape, generator=generator)

    for step in (0, 500, 999):
        schedule.loss(predict, codes, torch.full((2,), step), generator)
    sampled = schedule.sample(predict, codes, 999, 3, generator, (-1, 1))
    assert len(shown) == 3 + 3
    for x in [*shown, sampled]:
        assert ((x == -1).all(1) == padding).all()  # padding there, a base everywhere else
        assert ((x == 1).sum(1) == ~padding).all()


def test_categorical_generator_learns_and_follows_its_condition():
    """Two kinds of sequence — A/T-rich and G/C-rich — each with its condition: the
    generator's loss falls, and from pure noise it writes the kind it is conditioned on."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    kinds = torch.randint(0, 2, (256,), generator=generator)
    pick = torch.randint(0, 2, (256, 32), generator=generator)
    bases = torch.where(kinds[:, None] == 1, torch.tensor([1, 2])[pick], torch.tensor([0, 3])[pick])
    sequences = torch.nn.functional.one_hot(bases, 4).permute(0, 2, 1).float()
    condition = torch.nn.functional.one_hot(kinds, 2).float()
    model = ConditionalDiffusion(
        DNA.denoiser(4, 2, DNA.denoiser_width), CategoricalSchedule(100), OneHotSpace()
    )
    history = model.fit(sequences, condition, 30, generator, torch.device("cpu"), batch_size=64)
    assert sum(history[-3:]) / 3 < 0.8 * sum(history[:2]) / 2
    for kind, rich in ((0, [0, 3]), (1, [1, 2])):
        wanted = torch.nn.functional.one_hot(torch.full((50,), kind), 2).float()
        samples = model.generate(sequences[:50], wanted, 1.0, 10, generator, torch.device("cpu"))
        assert samples[:, rich].sum(1).mean() > 0.9  # share of positions from the right pair
