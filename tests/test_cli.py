"""The command-line contract of DESIGN.md, through click's runner and the console script."""

import json
import shutil
import subprocess
import sys

import anndata as ad
import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from diffaug_bio.cli import cli
from diffaug_bio.model import EmbeddingModel


def run(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_embed_to_output_leaves_input_untouched(bladder_path, tmp_path, digest):
    source = shutil.copy(bladder_path, tmp_path / "cells.h5ad")
    before = digest(source)
    result = run("embed", source, "-o", tmp_path / "out.h5ad", "--epochs", "2", "--dim", "8")
    assert result.exit_code == 0, result.output
    assert digest(source) == before
    out = ad.read_h5ad(tmp_path / "out.h5ad")
    original = ad.read_h5ad(source)
    assert out.obsm["X_diffaug"].shape == (original.n_obs, 8)
    assert out.obsm["X_diffaug"].dtype == np.float32
    assert np.isfinite(out.obsm["X_diffaug"]).all()
    params = out.uns["diffaug"]["params"]
    assert params["method"] == "diffaug" and params["epochs"] == 2 and params["dim"] == 8
    # the defaults are recorded, the modality's resolved
    assert params["rounds"] == 2 and params["guidance"] == 0
    assert params["diffusion_epochs"] == 1  # 40 per round at 100 epochs, scaled to 2 epochs
    assert params["counts_normalised"] and params["n_genes"] == 3000  # all: < n_top_genes
    assert params["normalisation"] == "pearson"  # diffaug's default for counts
    # nothing else changes: X, obs and var are the input's
    assert (out.X != original.X).nnz == 0
    assert out.obs.equals(original.obs) and list(out.var_names) == list(original.var_names)
    assert set(out.obsm) == {"X_diffaug"} and set(out.uns) == {"diffaug"}


def test_embed_in_place_with_key_and_saved_model(bladder_path, tmp_path):
    source = shutil.copy(bladder_path, tmp_path / "cells.h5ad")
    result = run("embed", source, "--epochs", "1", "--key-added", "X_mine",
                 "--save-model", tmp_path / "model", "--schedule", "linear")  # fmt: skip
    assert result.exit_code == 0, result.output
    updated = ad.read_h5ad(source)
    assert updated.obsm["X_mine"].shape == (updated.n_obs, 50)
    assert updated.uns["diffaug"]["params"]["schedule"] == "linear"  # not the default
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left
    model = EmbeddingModel.load(tmp_path / "model")
    assert model.diffusion.schedule.kind == "linear"  # the generator is rebuilt as trained
    np.testing.assert_allclose(model.embed(updated), updated.obsm["X_mine"], atol=1e-5)

    reapplied = run("embed", source, "--model", tmp_path / "model", "-o", tmp_path / "again.h5ad",
                    "--key-added", "X_again")  # fmt: skip
    assert reapplied.exit_code == 0, reapplied.output
    again = ad.read_h5ad(tmp_path / "again.h5ad")
    np.testing.assert_allclose(again.obsm["X_again"], updated.obsm["X_mine"], atol=1e-5)
    records = again.uns["diffaug"]["embeddings"]  # each key keeps how it was made
    assert sorted(records) == ["X_again", "X_mine"] and records["X_mine"]["schedule"] == "linear"
    assert again.uns["diffaug"]["params"]["key_added"] == "X_again"  # the latest


def test_embed_in_place_keeps_the_files_compression(bladder_path, tmp_path):
    source = tmp_path / "cells.h5ad"
    ad.read_h5ad(bladder_path).write_h5ad(source, compression="gzip")
    result = run("embed", source, "--method", "simclr", "--epochs", "1", "--dim", "4")
    assert result.exit_code == 0, result.output
    with h5py.File(source) as file:  # rewritten by anndata, it came back uncompressed
        assert file["X/data"].compression == "gzip" and "X_diffaug" in file["obsm"]
    updated = ad.read_h5ad(source)
    assert updated.obsm["X_diffaug"].shape == (updated.n_obs, 4)
    assert updated.uns["diffaug"]["params"]["method"] == "simclr"


def test_a_run_from_python_leaves_logging_and_progress_as_they_were(bladder_path, tmp_path):
    import logging

    from diffaug_bio import _progress

    logger = logging.getLogger("diffaug_bio")
    before = (logger.level, logger.propagate, list(logger.handlers), _progress.progress_enabled())
    result = run("-q", "embed", bladder_path, "-o", tmp_path / "out.h5ad", "--method", "simclr",
                 "--epochs", "1", "--dim", "4")  # fmt: skip
    assert result.exit_code == 0, result.output
    # a notebook's own logging (and pytest's caplog) still hears the package afterwards
    after = (logger.level, logger.propagate, list(logger.handlers), _progress.progress_enabled())
    assert after == before


def test_train_dna_writes_three_outputs_and_embed_dna_reuses_the_model(
    nontata_dir, promoters_fasta, tmp_path
):
    out = tmp_path / "run"
    result = run("train-dna", "nontata_small", "--gb-root", nontata_dir.parent, "-o", out,
                 "--epochs", "2", "--dim", "16", "--batch-size", "32")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "linear-probe accuracy" in result.output
    embeddings = ad.read_h5ad(out / "embeddings.h5ad")
    assert embeddings.obsm["X_diffaug"].shape == (120, 16)
    assert embeddings.obs["split"].value_counts().to_dict() == {"train": 80, "test": 40}
    assert set(embeddings.obs["label"]) == {"negative", "positive"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_train"] == 80 and metrics["n_test"] == 40
    assert 0 <= metrics["linear_probe_accuracy"] <= 1 and metrics["majority_class_accuracy"] == 0.5
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["modality"] == "dna" and config["input"]["max_len"] == 251
    params = embeddings.uns["diffaug"]["params"]
    assert params["guidance"] == 0 and params["batch_size"] == 32  # the default; as given
    for key in ("modality", "encoder", "encoder_hidden", "dim"):  # uns and model agree
        assert list(np.atleast_1d(params[key])) == list(np.atleast_1d(config[key])), key

    fasta_out = tmp_path / "fasta.h5ad"
    reused = run("embed-dna", promoters_fasta, "--model", out / "model", "-o", fasta_out)
    assert reused.exit_code == 0, reused.output
    from_fasta = ad.read_h5ad(fasta_out)
    assert from_fasta.obsm["X_diffaug"].shape == (40, 16)
    # the FASTA holds test-split sequences: the model gives them the same embeddings
    by_id = {name.split("/")[-1]: i for i, name in enumerate(embeddings.obs_names)}
    rows = [by_id[name.split("_", 1)[1]] for name in from_fasta.obs_names]
    np.testing.assert_allclose(
        from_fasta.obsm["X_diffaug"], embeddings.obsm["X_diffaug"][rows], atol=1e-5
    )
    assert "cropped" not in reused.output
    longer = tmp_path / "longer.fa"
    longer.write_text(">long\n" + "ACGT" * 80 + "\n>short\nACGTACGT\n")  # window: 251
    cropped = run("embed-dna", longer, "--model", out / "model", "-o", tmp_path / "longer.h5ad")
    assert cropped.exit_code == 0, cropped.output
    assert "1 sequence is longer than the 251-base window (centre-cropped)" in cropped.output


def test_train_dna_transformer_on_a_csv_without_split(tmp_path, promoters_fasta):
    from diffaug_bio.io import read_sequence_file

    sequences = read_sequence_file(promoters_fasta)
    table = tmp_path / "seqs.csv"
    rows = ["seq,label"] + [
        f"{s[:120]},{i.split('_')[0]}" for s, i in zip(sequences.sequences, sequences.ids)
    ]
    table.write_text("\n".join(rows) + "\n")
    result = run(
        "train-dna", table, "--encoder", "transformer", "--epochs", "1", "-o", tmp_path / "run"
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert (
        metrics["encoder"] == "transformer" and metrics["n_test"] == 12 and metrics["n_train"] == 28
    )


def test_a_failed_demo_leaves_no_output_folder(tmp_path):
    result = run("demo", "-o", tmp_path / "demo", "--method", "du", "--prior", "diffaug",
                 "--epochs", "1")  # fmt: skip
    assert result.exit_code == 2 and "needs at least 2 epochs" in result.output
    assert not (tmp_path / "demo").exists()


def test_bare_command_shows_the_help_laid_out():
    result = run()
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert lines[0].startswith("Usage: ") and "Commands:" in lines
    assert any(line.split()[:1] == ["embed"] for line in lines)


def test_demo_writes_umap_and_prints_scores(tmp_path):
    result = run("demo", "-o", tmp_path, "--epochs", "2")
    assert result.exit_code == 0, result.output
    assert "kNN-15 accuracy" in result.output
    assert (tmp_path / "umap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert 0.1 < scores["knn15_accuracy"] <= 1 and scores["knn15_accuracy_pca50"] == pytest.approx(
        0.7914, abs=1e-3
    )
    assert ad.read_h5ad(tmp_path / "pbmc68k_reduced.h5ad").obsm["X_diffaug"].shape == (700, 50)


def test_installed_console_script(tmp_path):
    script = shutil.which("diffaug-bio") or str(
        __import__("pathlib").Path(sys.executable).parent / "diffaug-bio"
    )
    version = subprocess.run([script, "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and "diffaug-bio, version" in version.stdout
    missing = subprocess.run(
        [script, "embed", str(tmp_path / "nope.h5ad")], capture_output=True, text=True
    )
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        f"diffaug-bio: error: {tmp_path / 'nope.h5ad'}: no such file"
    ]


HEAVY = ("torch", "scanpy", "anndata", "sklearn")


def test_help_and_refused_options_answer_without_loading_torch_or_scanpy():
    """They load in about 7 s; a user asking for --help, or mistyping, should not wait."""
    script = f"""
import sys
from diffaug_bio.cli import cli
for args in (["--help"], ["--version"], ["embed", "--help"], ["train-dna", "--help"],
             ["embed-dna", "--help"], ["augment", "--help"], ["demo", "--help"],
             ["embed", "x.h5ad", "--method", "nope"], ["train-dna", "d", "--k", "2"]):
    try:
        cli.main(args, prog_name="diffaug-bio")
    except SystemExit as exit:
        print("status", exit.code)
print("loaded", sorted(name for name in {HEAVY!r} if name in sys.modules))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "loaded []"
    assert [line for line in lines if line.startswith("status")] == ["status 0"] * 7 + [
        "status 2"
    ] * 2
    assert sum(line.startswith("Usage: diffaug-bio") for line in lines) == 6
    assert "'nope' is not one of" in result.stderr and "--k" in result.stderr


def test_the_options_state_the_codes_choices_and_defaults():
    """The command line writes them out (importing them would load torch); they must not drift."""
    from diffaug_bio import cli as stated
    from diffaug_bio import tl
    from diffaug_bio.checkpoint import DEFAULT_EVERY_S
    from diffaug_bio.contrastive.losses import INFONCE_TEMPERATURE, LOSSES
    from diffaug_bio.diffusion.schedules import BETA_SCHEDULES, SCHEDULES
    from diffaug_bio.io.expression import DEFAULT_NORMALISATION, RECIPE_NORMALISATIONS
    from diffaug_bio.io.kmers import DEFAULT_K, K_RANGE
    from diffaug_bio.methods import METHODS, DiffAug, Method
    from diffaug_bio.methods.base import COMMAND_LINE_OPTIONS
    from diffaug_bio.methods.clae import CLAEOptions
    from diffaug_bio.methods.diffaug import DiffAugOptions
    from diffaug_bio.methods.du import PRIORS
    from diffaug_bio.modality import DNA, DNA_KMERS, EXPRESSION
    from diffaug_bio.model import SEED_MAX

    assert sorted(stated.METHODS) == sorted(METHODS) and stated.DEFAULT_METHOD == tl.DEFAULT_METHOD
    assert sorted(stated.LOSSES) == sorted(LOSSES)
    assert stated.INFONCE_TEMPERATURE == INFONCE_TEMPERATURE
    assert sorted(stated.BETA_SCHEDULES) == sorted(BETA_SCHEDULES)
    assert sorted(stated.PROCESSES) == sorted(SCHEDULES)
    assert stated.PRIORS == PRIORS
    assert stated.NORMALISATIONS == RECIPE_NORMALISATIONS
    assert stated.DEFAULT_NORMALISATION == DEFAULT_NORMALISATION
    others = {method.n_top_genes for name, method in METHODS.items() if name != "diffaug"}
    assert {"diffaug": DiffAug.n_top_genes, "others": Method.n_top_genes} == stated.N_TOP_GENES
    assert others == {Method.n_top_genes}
    for cells in (EXPRESSION, DNA_KMERS):
        assert stated.EPOCHS["cells"] == cells.default_epochs
        assert stated.BATCH_SIZE["cells"] == cells.batch_size
    assert (stated.EPOCHS["dna"], stated.BATCH_SIZE["dna"]) == (DNA.default_epochs, DNA.batch_size)
    diffaug_defaults = {name: getattr(DiffAugOptions, name) for name in stated.DIFFAUG_DEFAULTS}
    assert diffaug_defaults == stated.DIFFAUG_DEFAULTS
    assert {
        "cells and k-mers": EXPRESSION.diffaug_loss, "one-hot DNA": DNA.diffaug_loss
    } == stated.DIFFAUG_LOSS and DNA_KMERS.diffaug_loss == EXPRESSION.diffaug_loss  # fmt: skip
    assert CLAEOptions.flip_rate == stated.CLAE_FLIP_RATE
    assert stated.CHECKPOINT_EVERY_S == DEFAULT_EVERY_S
    assert stated.DEFAULT_KEY == tl.DEFAULT_KEY
    assert stated.BACKED_TRAIN_CELLS == tl.DEFAULT_BACKED_TRAIN_CELLS
    assert set(stated.METHOD_OPTIONS) == COMMAND_LINE_OPTIONS  # messages name these by flag
    assert (stated.DNA_ENCODERS, stated.FIT_ON) == (tl.DNA_ENCODERS, tl.FIT_ON)
    assert (stated.DEFAULT_K, stated.K_RANGE, stated.SEED_MAX) == (DEFAULT_K, K_RANGE, SEED_MAX)


@pytest.mark.parametrize(
    ("method", "extra"),
    [
        ("simclr", []),
        ("du", ["--prior", "pca"]),
        ("viewmaker", ["--epsilon", "0.02"]),
        ("clae", []),
    ],
)
def test_every_method_trains_both_modalities_from_the_cli(
    method, extra, bladder_path, nontata_dir, tmp_path
):
    cells = run("embed", bladder_path, "-o", tmp_path / "cells.h5ad", "--method", method,
                "--epochs", "2", "--dim", "8", *extra)  # fmt: skip
    assert cells.exit_code == 0, cells.output
    embedded = ad.read_h5ad(tmp_path / "cells.h5ad")
    embedding = embedded.obsm["X_diffaug"]
    assert np.isfinite(embedding).all() and embedding.std(0).min() > 0  # not collapsed
    params = embedded.uns["diffaug"]["params"]
    assert params["method"] == method
    for flag, value in zip(extra[::2], extra[1::2]):
        assert str(params[flag.removeprefix("--")]) == value

    for encoder in ("cnn", "kmer"):  # one-hot and tabular DNA take different paths
        out = tmp_path / encoder
        dna = run("train-dna", "nontata_small", "--gb-root", nontata_dir.parent, "-o", out,
                  "--encoder", encoder, "--method", method, "--epochs", "2", "--dim", "8",
                  *(["--k", "4"] if encoder == "kmer" else []), *extra)  # fmt: skip
        assert dna.exit_code == 0, dna.output
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["method"] == method and metrics["encoder"] == encoder
        assert 0 <= metrics["linear_probe_accuracy"] <= 1
        embedding = ad.read_h5ad(out / "embeddings.h5ad").obsm["X_diffaug"]
        assert np.isfinite(embedding).all() and embedding.std(0).min() > 0
