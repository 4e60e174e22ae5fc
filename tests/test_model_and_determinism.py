import json
import os
import re
import shutil
import subprocess
import sys

import anndata as ad
import numpy as np
import pytest
from click.testing import CliRunner

import diffaug_bio as dab
from diffaug_bio import InputError
from diffaug_bio.cli import cli
from diffaug_bio.io import read_benchmark_folder


def test_embed_api_writes_obsm_and_uns_like_scanpy(pbmc):
    model = dab.tl.embed(pbmc, "simclr", epochs=2, dim=12, key_added="X_test")
    assert pbmc.obsm["X_test"].shape == (700, 12)
    assert pbmc.uns["diffaug"]["params"]["key_added"] == "X_test"
    assert pbmc.uns["diffaug"]["params"]["normalisation"] == "none"  # scaled: used as is
    assert isinstance(model, dab.EmbeddingModel) and model.training["epochs"] == 2


def test_gene_count_defaults_to_the_methods_and_an_explicit_one_wins(bladder):
    """DiffAug gains from 5,000 genes, the view-based methods lose (RESULTS.md): each
    method's own default applies unless the user names a count."""
    cells = bladder[:300].copy()  # the fixture's 3,000 genes
    dab.tl.embed(cells, "simclr", epochs=1, dim=8)
    assert cells.uns["diffaug"]["params"]["n_genes"] == 2000
    dab.tl.embed(cells, "diffaug", epochs=1, dim=8)
    assert cells.uns["diffaug"]["params"]["n_genes"] == 3000  # all: below diffaug's 5,000
    dab.tl.embed(cells, "diffaug", epochs=1, dim=8, n_top_genes=1500)
    assert cells.uns["diffaug"]["params"]["n_genes"] == 1500
    with pytest.raises(InputError, match="unknown method"):
        dab.tl.embed(cells, "nope", epochs=1)


def test_counts_become_pearson_residuals_unless_log1p_is_asked_for(bladder):
    """Every method measured best on Pearson residuals (RESULTS.md); the recorded name is the
    one the model was trained with, and the saved model reapplies it."""
    cells = bladder[:200].copy()
    pearson = dab.tl.embed(cells, "simclr", epochs=1, dim=8)
    assert cells.uns["diffaug"]["params"]["normalisation"] == "pearson"
    log1p = dab.tl.embed(cells, "simclr", epochs=1, dim=8, normalisation="log1p")
    assert cells.uns["diffaug"]["params"]["normalisation"] == "log1p"
    assert log1p.recipe.genes != pearson.recipe.genes  # chosen by residual variance instead
    np.testing.assert_allclose(log1p.embed(cells), cells.obsm["X_diffaug"], atol=1e-5)


def test_same_seed_same_embedding_different_seed_differs(bladder):
    first, second, other = bladder.copy(), bladder.copy(), bladder.copy()
    for adata, seed in ((first, 3), (second, 3), (other, 4)):
        dab.tl.embed(adata, epochs=2, seed=seed)
    np.testing.assert_array_equal(first.obsm["X_diffaug"], second.obsm["X_diffaug"])
    assert not np.allclose(first.obsm["X_diffaug"], other.obsm["X_diffaug"])


def test_batch_size_sets_the_training_step_and_is_recorded(pbmc):
    """The batch is also InfoNCE's set of negatives, so it changes what is learned."""
    default, larger = pbmc[:300].copy(), pbmc[:300].copy()
    dab.tl.embed(default, "simclr", epochs=2, dim=8)
    model = dab.tl.embed(larger, "simclr", epochs=2, dim=8, batch_size=150)
    assert default.uns["diffaug"]["params"]["batch_size"] == 256  # the cells' default
    assert larger.uns["diffaug"]["params"]["batch_size"] == 150
    assert model.training["batch_size"] == 150
    assert not np.allclose(default.obsm["X_diffaug"], larger.obsm["X_diffaug"])
    with pytest.raises(InputError, match="--batch-size must be at least 2, got 1"):
        dab.tl.embed(pbmc[:50].copy(), "simclr", epochs=1, batch_size=1)


@pytest.mark.parametrize("method", ["simclr", "du", "viewmaker", "clae"])
def test_every_method_is_reproducible_on_cpu(pbmc, method):
    """Regression: du's loss once indexed pairs out of a matrix, whose backward pass sums in a
    thread-dependent order; the same seed then gave embeddings 0.01 apart."""
    cells = pbmc[:300]
    first, second, other = (dab.tl.embed(cells.copy(), method, epochs=3, dim=8, seed=seed)
                            for seed in (5, 5, 6))  # fmt: skip
    np.testing.assert_array_equal(first.embed(cells), second.embed(cells))
    assert not np.allclose(first.embed(cells), other.embed(cells))


def test_dna_same_seed_same_embedding(nontata_dir):
    sequences = read_benchmark_folder(nontata_dir)
    runs = [dab.tl.train_dna(sequences, epochs=1, dim=8, seed=1) for _ in range(2)]
    np.testing.assert_array_equal(runs[0].adata.obsm["X_diffaug"], runs[1].adata.obsm["X_diffaug"])
    assert runs[0].metrics["linear_probe_accuracy"] == runs[1].metrics["linear_probe_accuracy"]


def test_saved_model_reproduces_embedding_and_refuses_other_genes(pbmc, tmp_path):
    model = dab.tl.embed(pbmc, epochs=1)
    model.save(tmp_path / "model")
    loaded = dab.EmbeddingModel.load(tmp_path / "model")
    np.testing.assert_allclose(loaded.embed(pbmc), pbmc.obsm["X_diffaug"], atol=1e-5)
    with pytest.raises(InputError, match="lacks 65 of the model's 765 genes"):
        loaded.embed(pbmc[:, 65:].copy())


def test_encoder_widths_are_saved_and_older_models_load_with_theirs(pbmc, tmp_path):
    model = dab.tl.embed(pbmc, "simclr", epochs=1)
    assert model.encoder.blocks[0][0].out_features == 256  # cells: (256, 128)
    assert list(pbmc.uns["diffaug"]["params"]["encoder_hidden"]) == [256, 128]
    loaded = dab.EmbeddingModel.load(model.save(tmp_path / "now"))
    assert loaded.encoder_hidden == (256, 128)
    np.testing.assert_allclose(loaded.embed(pbmc), pbmc.obsm["X_diffaug"], atol=1e-5)
    # a model from before the widths were recorded: (512, 256), with no key in its config
    older = dab.EmbeddingModel("expression", model.recipe, encoder_hidden=(512, 256))
    older.fit(model.prepare(pbmc), "simclr", epochs=1)
    older.save(tmp_path / "older")
    config_file = tmp_path / "older" / "config.json"
    config = json.loads(config_file.read_text())
    assert config.pop("encoder_hidden") == [512, 256]
    config_file.write_text(json.dumps(config))
    reloaded = dab.EmbeddingModel.load(tmp_path / "older")
    assert (
        reloaded.encoder_hidden
        == (512, 256)
        == (reloaded.encoder.blocks[0][0].out_features, reloaded.encoder.blocks[1][0].out_features)
    )
    np.testing.assert_allclose(reloaded.embed(pbmc), older.embed(pbmc), atol=1e-5)


def test_a_failed_weight_write_is_one_clear_error(pbmc, tmp_path, monkeypatch):
    model = dab.tl.embed(pbmc[:100].copy(), "simclr", epochs=1, dim=4)

    def full_disk(*args, **kwargs):  # what torch.save raises when the disk fills mid-write
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 4 vs 2")

    monkeypatch.setattr("diffaug_bio.model.torch.save", full_disk)
    with pytest.raises(InputError, match=r"model: cannot write the model \(.*is the disk full"):
        model.save(tmp_path / "model")


def test_weights_of_another_model_beside_a_config_are_refused(pbmc, tmp_path, monkeypatch):
    cells = pbmc[:100].copy()
    dab.tl.embed(cells, "simclr", epochs=1, dim=4, seed=0).save(tmp_path / "a")
    other = dab.tl.embed(cells, "simclr", epochs=1, dim=4, seed=1)  # the same shapes
    other.save(tmp_path / "b")
    shutil.copytree(tmp_path / "a", tmp_path / "mixed")
    shutil.copy(tmp_path / "b" / "encoder.pt", tmp_path / "mixed")  # was: loaded, other result
    with pytest.raises(InputError, match=r"mixed: encoder\.pt is not the file saved with config"):
        dab.EmbeddingModel.load(tmp_path / "mixed")

    real_replace = os.replace

    def interrupted_before_config(source, target):  # Ctrl-C between the renames of a save
        if str(target).endswith("config.json"):
            raise KeyboardInterrupt
        real_replace(source, target)

    monkeypatch.setattr("diffaug_bio.io.files.os.replace", interrupted_before_config)
    with pytest.raises(KeyboardInterrupt):
        other.save(tmp_path / "a")
    monkeypatch.undo()
    with pytest.raises(InputError, match=r"a: encoder\.pt is not the file saved with config\.json"):
        dab.EmbeddingModel.load(tmp_path / "a")  # torn: new weights, old config


def test_a_saved_model_embeds_without_its_generator_which_only_augment_reads(pbmc, tmp_path):
    """``embed --model`` read ``diffusion.pt``, which only ``augment`` uses: a model folder
    without it (shared as its encoder, or with a damaged generator) could not embed."""
    cells = pbmc[:100].copy()
    model = dab.tl.embed(cells, "diffaug", epochs=2, dim=4)
    model.save(tmp_path / "m")
    positives = dab.EmbeddingModel.load(tmp_path / "m").augment(cells, n=2, seed=3)
    np.testing.assert_array_equal(positives.numpy(), model.augment(cells, n=2, seed=3).numpy())
    (tmp_path / "m" / "diffusion.pt").write_bytes(b"damaged")
    cells.write_h5ad(tmp_path / "cells.h5ad")
    result = CliRunner().invoke(
        cli, ["-q", "embed", str(tmp_path / "cells.h5ad"), "--model", str(tmp_path / "m")]
    )
    assert result.exit_code == 0, result.output
    embedded = ad.read_h5ad(tmp_path / "cells.h5ad").obsm["X_diffaug"]
    np.testing.assert_allclose(embedded, cells.obsm["X_diffaug"], atol=1e-5)
    (tmp_path / "m" / "diffusion.pt").unlink()
    loaded = dab.EmbeddingModel.load(tmp_path / "m")
    np.testing.assert_allclose(loaded.embed(cells), cells.obsm["X_diffaug"], atol=1e-5)
    with pytest.raises(InputError, match=r"m/diffusion\.pt: cannot be read as model weights"):
        loaded.augment(cells)


@pytest.mark.parametrize(
    ("edit", "error"),
    [
        (lambda c: {k: v for k, v in c.items() if k != "dim"}, "KeyError: 'dim'"),
        (lambda c: {**c, "dim": 8}, "RuntimeError: Error"),
        (lambda c: {**c, "input": {**c["input"], "mean": "x"}}, "ValueError"),
        (lambda c: {**c, "training": None}, "TypeError"),
        (lambda c: {**c, "input": {**c["input"], "normalisation": "sct"}}, "ValueError: norm"),
    ],
)
def test_a_config_edited_by_hand_is_one_clear_error(pbmc, tmp_path, edit, error):
    dab.tl.embed(pbmc[:100].copy(), "simclr", epochs=1, dim=4).save(tmp_path / "m")
    config_file = tmp_path / "m" / "config.json"
    config = json.loads(config_file.read_text())
    config_file.write_text(json.dumps(edit(config)))
    unusable = re.escape(f"config, or weights that do not fit it ({error}")
    with pytest.raises(InputError, match=unusable):  # each was an internal error
        dab.tl.embed(pbmc[:100].copy(), model=tmp_path / "m")
    for text, message in [
        (b"[1, 2]", "unknown model format 'list'"),
        (b'{"format": "\xff"}', "unreadable model config"),
    ]:
        config_file.write_bytes(text)
        with pytest.raises(InputError, match=message):
            dab.EmbeddingModel.load(tmp_path / "m")
    with pytest.raises(InputError, match="nowhere: no such model folder"):
        dab.EmbeddingModel.load(tmp_path / "nowhere")


def test_a_model_is_not_saved_over_the_users_own_config(pbmc, tmp_path):
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "config.json").write_text('{"my": "settings"}')
    model = dab.tl.embed(pbmc[:100].copy(), "simclr", epochs=1, dim=4)
    with pytest.raises(InputError, match=r"config\.json: exists and is not a diffaug-bio model's"):
        model.save(tmp_path / "project")
    assert (tmp_path / "project" / "config.json").read_text() == '{"my": "settings"}'
    model.save(tmp_path / "project" / "model")  # a model's own folder is overwritten
    model.save(tmp_path / "project" / "model")
    untrained = dab.EmbeddingModel.for_expression(model.recipe, 4)
    with pytest.raises(InputError, match="not trained yet"):
        untrained.save(tmp_path / "new" / "model")
    assert not (tmp_path / "new").exists()  # was left behind, empty


def test_loading_a_model_of_the_other_modality_is_refused(pbmc, nontata_dir, tmp_path):
    dab.tl.embed(pbmc, epochs=1).save(tmp_path / "cells")
    with pytest.raises(InputError, match="holds a model for expression data, but dna input"):
        dab.tl.embed_dna(nontata_dir.parent / "promoters_small.fa", tmp_path / "cells")
    with pytest.raises(InputError, match="not a diffaug-bio model"):
        dab.EmbeddingModel.load(tmp_path)


def test_the_thread_count_omp_num_threads_gives_holds_through_scanpys_numba_code(bladder_path):
    # the first parallel numba call of a process (scanpy's normalize_total, gene selection)
    # raised OpenMP's thread count to every core, and torch's with it: a fresh process, as a
    # CLI run or a torchrun rank (torchrun sets OMP_NUM_THREADS=1) is
    code = (
        "import scanpy as sc, torch\n"
        "from diffaug_bio.io.expression import ExpressionPreprocessing\n"
        f"cells = sc.read_h5ad({str(bladder_path)!r})\n"
        "ExpressionPreprocessing.fit(cells, n_top_genes=500, normalisation='log1p')\n"
        "print(torch.get_num_threads())\n"
    )
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "2"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=environment, check=True)  # fmt: skip
    assert result.stdout.split()[-1] == "1"  # was 2: training ran on two threads
