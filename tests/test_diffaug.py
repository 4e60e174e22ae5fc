"""DiffAug end to end: rounds really train the generator, generated positives are used,
the generator is saved with the model, and ``augment`` writes valid output."""

import json
import logging

import anndata as ad
import numpy as np
import pytest
import torch
from Bio import SeqIO
from click.testing import CliRunner

import diffaug_bio as dab
from diffaug_bio import InputError
from diffaug_bio.cli import cli
from diffaug_bio.io.expression import pearson_residuals
from diffaug_bio.methods import diffaug as diffaug_module
from diffaug_bio.methods.diffaug import DiffAug, with_generated
from diffaug_bio.modality import DNA, DNA_KMERS, EXPRESSION
from diffaug_bio.train import ContrastiveTrainer

FAST = {"rounds": 2, "diffusion_epochs": 2}


def test_with_generated_replaces_the_asked_share_of_positives():
    data = torch.zeros(1000, 3)
    bank = torch.stack([torch.ones(1000, 3), 2 * torch.ones(1000, 3)])  # two positives each

    def warmup(x, index, generator):
        return x, x - 1

    generator = torch.Generator().manual_seed(0)
    index = torch.arange(1000)
    pairs = with_generated(warmup, bank, 0.3, decode=lambda codes, items: codes)
    anchors, positives = pairs(data, index, generator)
    assert torch.equal(anchors, data)
    first, second = (positives == 1).all(1), (positives == 2).all(1)
    assert abs((first | second).float().mean().item() - 0.3) < 0.05
    assert abs(first.float().sum().item() / (first | second).sum().item() - 0.5) < 0.1
    assert (first | second | (positives == -1).all(1)).all()


def test_with_generated_takes_each_items_own_bank_row():
    """A batch holds items in any order: a generated positive is drawn from its item's own
    bank row (by item index), never from the row at the item's place in the batch."""
    items = torch.arange(50.0)[:, None].repeat(1, 3)
    bank = torch.stack([10 * items, 10 * items + 1])  # item i's two positives: 10 i, 10 i + 1
    index = torch.randperm(50, generator=torch.Generator().manual_seed(1))
    pairs = with_generated(lambda x, i, g: (x, x), bank, 1.0, decode=lambda codes, x: codes)
    _, positives = pairs(items[index], index, torch.Generator().manual_seed(0))
    own = positives[:, 0] - 10 * index
    assert set(own.tolist()) == {0.0, 1.0}  # both of each item's positives drawn, no other


@pytest.mark.parametrize(
    ("epochs", "rounds", "warmup_share", "plan"),
    [(100, 2, 0.5, (50, [25, 25])), (14, 2, 0.5, (7, [4, 3])), (5, 2, 0.5, (2, [2, 1])),
     (20, 2, 1.0, (18, [1, 1])), (10, 3, 0.0, (1, [3, 3, 3])), (2, 2, 0.5, (1, [1, 0])),
     (1, 2, 0.5, (1, [0, 0]))],
)  # fmt: skip
def test_the_epoch_plan_spends_exactly_the_epochs_asked(epochs, rounds, warmup_share, plan):
    """Warm-up and rounds add up to ``epochs`` (they used to round to 3 for 2, 6 for 5, 15
    for 14); the warm-up keeps one epoch and leaves each round one where it can."""
    assert DiffAug(EXPRESSION, rounds=rounds, warmup_share=warmup_share).epoch_plan(epochs) == plan


@pytest.mark.parametrize("epochs", [1, 5])
def test_a_run_trains_the_epochs_it_records_and_keeps_a_generator(pbmc, monkeypatch, epochs):
    trained = []
    original = ContrastiveTrainer.fit

    def counting(self, data, make_pair, run_epochs, desc, *args, **kwargs):
        trained.append(run_epochs)
        return original(self, data, make_pair, run_epochs, desc, *args, **kwargs)

    monkeypatch.setattr(ContrastiveTrainer, "fit", counting)
    adata = pbmc[:100].copy()
    model = dab.tl.embed(adata, "diffaug", epochs=epochs, dim=4, seed=0, diffusion_epochs=1)
    assert sum(trained) == epochs == adata.uns["diffaug"]["params"]["epochs"]
    assert model.diffusion is not None and model.diffusion.steps_done > 0  # augment can use it


def test_diffaug_trains_generator_every_round_and_saves_it(bladder, tmp_path):
    model = dab.tl.embed(bladder, "diffaug", epochs=4, seed=0, **FAST)
    params = bladder.uns["diffaug"]["params"]
    assert params["method"] == "diffaug" and params["rounds"] == 2
    assert np.isfinite(bladder.obsm["X_diffaug"]).all()
    batches = int(np.ceil(bladder.n_obs / 256))
    assert model.diffusion.steps_done == FAST["rounds"] * FAST["diffusion_epochs"] * batches
    model.save(tmp_path / "model")
    loaded = dab.EmbeddingModel.load(tmp_path / "model")
    for saved, restored in zip(model.diffusion.state_dict().values(),
                               loaded.diffusion.state_dict().values()):  # fmt: skip
        torch.testing.assert_close(saved, restored)
    np.testing.assert_allclose(loaded.embed(bladder), bladder.obsm["X_diffaug"], atol=1e-5)
    # the denoiser is rebuilt at the width it was saved with; models saved before the width
    # was recorded get the width every one of them had (512 for cells)
    config = json.loads((tmp_path / "model" / "config.json").read_text())["diffusion"]
    assert config["denoiser_width"] == 256 == loaded.diffusion.denoiser.conditioning.width
    del config["denoiser_width"]
    assert loaded._new_diffusion(config).denoiser.conditioning.width == 512


def test_each_round_refits_the_generator_to_the_current_encoder_and_renews_the_bank(
    pbmc, monkeypatch
):
    """Round 2's M-step is conditioned on embeddings of the encoder round 1 trained (not on
    round 1's), and round 2 draws from a freshly generated bank."""
    conditions, banks = [], []
    fit = dab.diffusion.ConditionalDiffusion.fit
    pairs = diffaug_module.with_generated

    def recording_fit(self, data, condition, *args, **kwargs):
        conditions.append(condition.clone())
        return fit(self, data, condition, *args, **kwargs)

    def recording_pairs(warmup, bank, *args):
        banks.append(bank.clone())
        return pairs(warmup, bank, *args)

    monkeypatch.setattr(dab.diffusion.ConditionalDiffusion, "fit", recording_fit)
    monkeypatch.setattr(diffaug_module, "with_generated", recording_pairs)
    dab.tl.embed(pbmc[:100].copy(), "diffaug", epochs=4, dim=4, seed=0, **FAST)
    assert len(conditions) == len(banks) == FAST["rounds"]
    assert not torch.allclose(conditions[0], conditions[1])  # the encoder moved in round 1
    assert not torch.allclose(banks[0], banks[1])


def test_diffaug_same_seed_same_embedding(pbmc):
    first, second = pbmc.copy(), pbmc.copy()
    for adata in (first, second):
        dab.tl.embed(adata, "diffaug", epochs=3, seed=5, **FAST)
    np.testing.assert_array_equal(first.obsm["X_diffaug"], second.obsm["X_diffaug"])


def test_guidance_trains_the_generator_with_dropped_conditions_and_is_kept(pbmc, tmp_path):
    plain, guided = pbmc.copy(), pbmc.copy()
    plain_model = dab.tl.embed(plain, "diffaug", epochs=3, seed=5, **FAST)
    guided_model = dab.tl.embed(guided, "diffaug", epochs=3, seed=5, guidance=2.0, **FAST)
    # off by default: the generator then never learns the unconditional p(x) it would need
    assert plain.uns["diffaug"]["params"]["guidance"] == 0
    assert plain_model.diffusion.condition_dropout == 0
    assert guided.uns["diffaug"]["params"]["guidance"] == 2
    assert guided_model.diffusion.condition_dropout > 0
    # guided positives are other positives, so the encoder learns another embedding
    assert not np.allclose(plain.obsm["X_diffaug"], guided.obsm["X_diffaug"])
    guided_model.save(tmp_path / "model")  # augment samples with the weight it trained with
    loaded = dab.EmbeddingModel.load(tmp_path / "model")
    assert loaded.training["guidance"] == 2 and loaded.diffusion.condition_dropout > 0


def test_temperature_changes_the_embedding_and_is_recorded(pbmc):
    default, cooler = pbmc.copy(), pbmc.copy()
    dab.tl.embed(default, "simclr", epochs=2, seed=1)
    dab.tl.embed(cooler, "simclr", epochs=2, seed=1, temperature=0.2)
    assert cooler.uns["diffaug"]["params"]["temperature"] == 0.2
    assert not np.allclose(default.obsm["X_diffaug"], cooler.obsm["X_diffaug"])


def test_diffaug_scores_cells_and_kmers_with_decoupled_uniformity_at_t_1_one_hot_dna_infonce():
    """DiffAug's default loss is the one measured best per modality (RESULTS.md): DU at
    t = 1/(2 · 0.5) for cells and k-mer counts, InfoNCE for one-hot DNA; hand-designed views
    keep InfoNCE, and a loss or temperature given wins."""
    from diffaug_bio.contrastive.losses import decoupled_uniformity, info_nce, view_centroids
    from diffaug_bio.methods import build_method

    generator = torch.Generator().manual_seed(0)
    z, h1, h2 = (torch.randn(6, 4, generator=generator) for _ in range(3))
    index = torch.arange(6)

    def loss_of(method: str, modality=EXPRESSION, **options) -> float:
        return build_method(method, modality, **options).loss(z, h1, h2, index).item()

    du_at = {t: decoupled_uniformity(view_centroids(h1, h2), t=t).item() for t in (1.0, 2.0)}
    infonce = info_nce(h1, h2, 0.5).item()
    assert loss_of("diffaug") == pytest.approx(du_at[1.0], rel=1e-6)
    assert loss_of("diffaug", DNA_KMERS) == pytest.approx(du_at[1.0], rel=1e-6)
    assert loss_of("diffaug", DNA) == pytest.approx(infonce)
    assert loss_of("diffaug", temperature=0.25) == pytest.approx(du_at[2.0], rel=1e-6)
    assert loss_of("diffaug", loss="infonce") == pytest.approx(infonce)
    assert loss_of("diffaug", DNA, loss="du") == pytest.approx(du_at[1.0], rel=1e-6)
    assert loss_of("simclr") == pytest.approx(infonce)
    # recorded resolved, so a saved model says which loss trained it
    assert build_method("diffaug", DNA).params()["loss"] == "infonce"
    assert build_method("diffaug", EXPRESSION).params()["loss"] == "du"
    with pytest.raises(InputError, match="--temperature must be positive"):
        build_method("diffaug", EXPRESSION, temperature=-1.0)


def test_unknown_option_for_a_method_is_a_clear_error(pbmc):
    with pytest.raises(InputError, match="--rounds: not an option of --method simclr"):
        dab.tl.embed(pbmc, "simclr", epochs=1, rounds=2)


def test_augment_cells_writes_generated_cells_on_the_models_genes(pbmc, tmp_path):
    pbmc.write_h5ad(tmp_path / "pbmc.h5ad")
    runner = CliRunner()
    trained = runner.invoke(cli, ["embed", str(tmp_path / "pbmc.h5ad"), "--method", "diffaug",
                                  "--epochs", "3", "--rounds", "1", "--save-model",
                                  str(tmp_path / "model")])  # fmt: skip
    assert trained.exit_code == 0, trained.output
    out = tmp_path / "aug.h5ad"
    result = runner.invoke(cli, ["augment", str(tmp_path / "pbmc.h5ad"), "--model",
                                 str(tmp_path / "model"), "-n", "2", "-o", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    generated = ad.read_h5ad(out)
    assert generated.shape == (1400, pbmc.n_vars)
    assert list(generated.var_names) == list(pbmc.var_names)
    assert np.isfinite(generated.X).all()
    assert list(generated.obs["copy"].value_counts().sort_index()) == [700, 700]
    first = generated.obs_names[0]
    source = generated.obs.loc[first, "source"]
    assert generated.obs.loc[first, "bulk_labels"] == pbmc.obs.loc[source, "bulk_labels"]
    # positives stay near their source cell: closer to it than to a random other cell
    own = np.linalg.norm(generated.X[:700] - pbmc.X, axis=1)
    other = np.linalg.norm(generated.X[:700] - pbmc.X[::-1], axis=1)
    assert np.median(own) < np.median(other)
    assert not np.allclose(generated.X[:700], generated.X[700:])  # two draws, not one twice
    assert generated.uns["diffaug"]["params"]["normalisation"] == "none"  # pbmc: used as read


def test_augment_cells_of_counts_writes_pearson_residuals(bladder, caplog, monkeypatch):
    monkeypatch.setattr(logging.getLogger("diffaug_bio"), "propagate", True)  # the CLI's off
    model = dab.tl.embed(bladder, "diffaug", epochs=3, rounds=1, n_top_genes=500)
    bladder.obs["source"] = "lab A"  # a user's column of the name augment writes
    generated = dab.tl.augment(bladder, model, n=1)
    assert "its own obs 'source' over the input's column" in caplog.text
    assert list(generated.obs["source"]) == list(bladder.obs_names)
    assert generated.uns["diffaug"]["params"]["normalisation"] == "pearson"
    recipe = model.recipe
    residuals = pearson_residuals(
        bladder[:, recipe.genes].X, recipe.gene_fraction, recipe.residual_clip
    )
    # on the residuals' scale, each generated cell nearer its source than another cell
    own = np.linalg.norm(generated.X - residuals, axis=1)
    other = np.linalg.norm(generated.X - residuals[::-1], axis=1)
    assert np.median(own) < np.median(other)


def test_augment_reads_a_layer_and_aligns_genes_as_embed_does(bladder, tmp_path):
    model = dab.tl.embed(bladder, "diffaug", epochs=2, rounds=1, dim=4, n_top_genes=300)
    model.save(tmp_path / "model")
    moved = bladder.copy()  # the counts kept in a layer, X log-transformed
    moved.layers["counts"], moved.X = moved.X.copy(), np.log1p(moved.X)
    moved.write_h5ad(tmp_path / "moved.h5ad")
    bladder.write_h5ad(tmp_path / "plain.h5ad")
    missing = model.recipe.genes[0]
    bladder[:, bladder.var_names != missing].copy().write_h5ad(tmp_path / "lacking.h5ad")

    def augment(name, *options):
        out = tmp_path / f"{name}.augmented.h5ad"
        args = [str(tmp_path / f"{name}.h5ad"), "--model", str(tmp_path / "model"), "-o", out]
        return CliRunner().invoke(cli, ["augment", *args, "--seed", "3", *options]), out

    plain, plain_out = augment("plain")
    assert plain.exit_code == 0, plain.output
    refused, _ = augment("moved")  # X holds no counts: the layer must be named
    assert refused.exit_code == 2 and "name the layer that does with --layer" in refused.output
    from_layer, layer_out = augment("moved", "--layer", "counts")
    assert from_layer.exit_code == 0, from_layer.output
    np.testing.assert_array_equal(ad.read_h5ad(layer_out).X, ad.read_h5ad(plain_out).X)
    lacking, _ = augment("lacking")
    assert lacking.exit_code == 2 and "use --align-genes" in lacking.output
    aligned, aligned_out = augment("lacking", "--align-genes")
    assert aligned.exit_code == 0, aligned.output
    assert f"set to their training mean: {missing}" in aligned.output
    generated = ad.read_h5ad(aligned_out)
    assert list(generated.var_names) == list(model.recipe.genes)
    assert np.isfinite(generated.X).all()


def test_augment_dna_writes_valid_fasta(nontata_dir, promoters_fasta, tmp_path):
    runner = CliRunner()
    run = tmp_path / "run"
    trained = runner.invoke(
        cli, ["train-dna", str(nontata_dir), "--method", "diffaug", "--epochs", "2", "--rounds",
              "1", "--process", "categorical", "-o", str(run)]
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    # the saved generator is reloaded with its own (categorical) process
    config = json.loads((run / "model" / "config.json").read_text())
    assert config["diffusion"]["process"] == "categorical"
    out = tmp_path / "aug.fa"
    result = runner.invoke(
        cli,
        ["augment", str(promoters_fasta), "--model", str(run / "model"), "-n", "3", "-o", str(out)],
    )
    assert result.exit_code == 0, result.output
    records = list(SeqIO.parse(out, "fasta"))
    assert len(records) == 120
    assert all(set(str(r.seq)) <= set("ACGT") and len(r.seq) == 251 for r in records)
    assert records[0].id.endswith("-aug0") and records[-1].id.endswith("-aug2")
    first, second = records[:40], records[40:80]  # each source's -aug0, then its -aug1
    sources = [record.id.removesuffix("-aug0") for record in first]
    assert sources == [record.id.removesuffix("-aug1") for record in second]
    assert sum(a.seq != b.seq for a, b in zip(first, second)) > 30  # independent draws


def test_repeated_sequence_ids_get_distinct_names_in_every_output(
    nontata_dir, promoters_fasta, tmp_path
):
    run = tmp_path / "run"
    trained = CliRunner().invoke(cli, ["train-dna", "nontata_small", "--gb-root",
                                       str(nontata_dir.parent), "--epochs", "1", "--dim", "4",
                                       "--max-len", "32", "-o", str(run)])  # fmt: skip
    assert trained.exit_code == 0, trained.output
    repeated = tmp_path / "same.fa"
    records = promoters_fasta.read_text().split(">")[1:4]
    repeated.write_text("".join(">same\n" + r.split("\n", 1)[1] for r in records))
    out = tmp_path / "same.augmented.fa"
    result = CliRunner().invoke(cli, ["augment", str(repeated), "--model", str(run / "model"),
                                      "-n", "2", "-o", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "1 sequence id occurs more than once (same)" in result.output
    names = [record.id for record in SeqIO.parse(out, "fasta")]
    assert names == ["same-aug0", "same-1-aug0", "same-2-aug0",
                     "same-aug1", "same-1-aug1", "same-2-aug1"]  # fmt: skip
    embedded = dab.tl.embed_dna(repeated, run / "model")
    assert list(embedded.obs_names) == ["same", "same-1", "same-2"]


def test_augment_needs_a_diffaug_model(pbmc, tmp_path):
    dab.tl.embed(pbmc, "simclr", epochs=1).save(tmp_path / "model")
    with pytest.raises(InputError, match="no generator"):
        dab.tl.augment(pbmc, tmp_path / "model")


# 2 epochs: warm-up 1, round 1 one epoch (one positive), round 2 none (its M-step only)
@pytest.mark.parametrize(("epochs", "generated"), [(2, 1), (12, 2 * 3), (30, 2 * 4)])
def test_a_round_generates_at_most_one_positive_per_epoch(bladder, monkeypatch, epochs, generated):
    calls = []
    original = dab.diffusion.ConditionalDiffusion.generate

    def counting(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(dab.diffusion.ConditionalDiffusion, "generate", counting)
    dab.tl.embed(bladder, "diffaug", epochs=epochs, dim=8, seed=0, diffusion_epochs=1)
    assert len(calls) == generated  # Σ over rounds of min(bank_size 4, the round's epochs)


def test_generation_settings_default_per_modality_and_a_given_one_wins(
    promoters_fasta, bladder, monkeypatch
):
    """One-hot DNA generates 2 positives per item and round in 2 DDIM steps (its bank costs
    a conv network per step), cells 4 in 5; what is recorded is what ran."""
    steps = []
    original = dab.diffusion.ConditionalDiffusion.generate

    def recording(self, anchors, condition, level, sampling_steps, *args, **kwargs):
        steps.append(sampling_steps)
        return original(self, anchors, condition, level, sampling_steps, *args, **kwargs)

    monkeypatch.setattr(dab.diffusion.ConditionalDiffusion, "generate", recording)
    dna = dab.tl.train_dna(str(promoters_fasta), max_len=8, dim=4, epochs=14, seed=0,
                           diffusion_epochs=1)  # fmt: skip
    assert steps == [2] * 2 * 2  # rounds of 4 and 3 epochs, each a bank of 2 (was 4) in 2 steps
    assert (dna.model.training["sampling_steps"], dna.model.training["bank_size"]) == (2, 2)
    steps.clear()
    dab.tl.embed(bladder, "diffaug", epochs=14, dim=8, seed=0, diffusion_epochs=1)
    assert steps == [5] * (4 + 3)  # rounds of 4 and 3 epochs after 7 of warm-up
    params = bladder.uns["diffaug"]["params"]
    assert (params["sampling_steps"], params["bank_size"]) == (5, 4)
    steps.clear()
    dab.tl.train_dna(str(promoters_fasta), max_len=8, dim=4, epochs=14, seed=0,
                     diffusion_epochs=1, sampling_steps=3, bank_size=3)  # fmt: skip
    assert steps == [3] * 2 * 3
