"""The Python API's arguments: what a notebook passes (NumPy integers from a parameter grid,
lists of sequences, a backed AnnData, a result object) works or gets one clear InputError,
and a failed save never leaves a half-replaced model behind."""

from __future__ import annotations

import json
import re
import sys

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
import torch

import diffaug_bio as dab
from diffaug_bio import InputError


@pytest.mark.parametrize(
    "options, message",
    [
        ({"seed": None}, "--seed must be a whole number, got None"),
        ({"seed": -1}, "--seed must be between 0 and 4294967295, got -1"),
        ({"dim": 0}, "--dim must be at least 2, got 0"),  # was: silently the default 50
        ({"epochs": 1.5}, "--epochs must be a whole number, got 1.5"),
        ({"n_top_genes": 0}, "--n-top-genes must be at least 1, got 0"),  # was: the default
        ({"train_cells": 0}, "--train-cells must be at least 2, got 0"),  # was: all cells
        ({"batch_size": "64"}, "--batch-size must be a whole number, got '64'"),
    ],
)
def test_bad_numbers_are_refused_with_the_option_named(pbmc, options, message):
    with pytest.raises(InputError, match=re.escape(message)):
        dab.tl.embed(pbmc, "simclr", **{"epochs": 1, "dim": 4, **options})


@pytest.mark.parametrize(
    "method, options, message",
    [
        ("diffaug", {"rounds": 1.5}, "--rounds must be a whole number, got 1.5"),  # TypeError
        ("diffaug", {"bank_size": 1.5}, "bank_size must be a whole number, got 1.5"),  # ran
        ("diffaug", {"sampling_steps": 0}, "sampling_steps must be at least 1, got 0"),
        ("diffaug", {"diffusion_epochs": 2.0}, "diffusion_epochs must be a whole number"),
        ("du", {"n_components": 2.5}, "n_components must be a whole number, got 2.5"),
        ("viewmaker", {"noise_dim": 0}, "noise_dim must be at least 1, got 0"),
    ],
)
def test_a_methods_counts_are_whole_numbers(pbmc, method, options, message):
    with pytest.raises(InputError, match=re.escape(message)):
        dab.tl.embed(pbmc, method, epochs=1, dim=4, **options)


def test_augment_and_the_kmer_length_check_their_numbers(pbmc, promoters_fasta):
    model = dab.tl.embed(pbmc, "diffaug", epochs=2, dim=4)
    with pytest.raises(InputError, match=re.escape("-n must be a whole number, got 1.5")):
        dab.tl.augment(pbmc, model, n=1.5)
    with pytest.raises(InputError, match=re.escape("--seed must be between 0 and 4294967295")):
        dab.tl.augment(pbmc, model, seed=-1)  # ran, as the CLI's --seed -1 did
    with pytest.raises(InputError, match=re.escape("--k must be a whole number, got 7.5")):
        dab.tl.train_dna(str(promoters_fasta), encoder="kmer", k=7.5, epochs=1)


def test_numpy_integers_work_as_python_ones_and_the_model_saves(pbmc, tmp_path):
    grid = np.arange(5)
    model = dab.tl.embed(pbmc, "simclr", epochs=grid[1], dim=grid[4], seed=grid[3],
                         batch_size=np.int64(64), temperature=np.float32(0.25))  # fmt: skip
    from_numpy = pbmc.obsm["X_diffaug"].copy()
    model.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["dim"] == 4 and config["training"]["seed"] == 3
    dab.tl.embed(pbmc, "simclr", epochs=1, dim=4, seed=3, batch_size=64, temperature=0.25)
    np.testing.assert_array_equal(pbmc.obsm["X_diffaug"], from_numpy)


def test_a_failed_save_leaves_the_saved_model_as_it_was(pbmc, tmp_path):
    dab.tl.embed(pbmc, "simclr", epochs=1, dim=4, seed=0).save(tmp_path / "m")
    before = {p.name: p.read_bytes() for p in (tmp_path / "m").iterdir()}
    other = dab.tl.embed(pbmc, "simclr", epochs=1, dim=4, seed=5)
    other.training["unsaveable"] = object()
    with pytest.raises(TypeError, match="cannot be saved in a model's config"):
        other.save(tmp_path / "m")
    assert {p.name: p.read_bytes() for p in (tmp_path / "m").iterdir()} == before


def test_saving_a_model_without_generator_over_one_with_removes_the_old_generator(pbmc, tmp_path):
    dab.tl.embed(pbmc, "diffaug", epochs=2, dim=4).save(tmp_path / "m")
    assert (tmp_path / "m" / "diffusion.pt").exists()
    dab.tl.embed(pbmc, "simclr", epochs=1, dim=4).save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "encoder.pt"]
    with pytest.raises(InputError, match="no generator"):
        dab.tl.augment(pbmc, tmp_path / "m")


def test_a_saved_model_refuses_training_options_in_python(pbmc, tmp_path):
    model = dab.tl.embed(pbmc, "simclr", epochs=1, dim=4)
    with pytest.raises(InputError, match="without training: epochs, rounds apply only"):
        dab.tl.embed(pbmc, model=model, epochs=50, rounds=3)
    with pytest.raises(InputError, match="without training: method apply only"):
        dab.tl.embed(pbmc, "du", model=model)


def test_integer_gene_names_match_the_model(pbmc):
    """Names are compared as strings: integer names train and embed as their strings do."""
    dab.tl.embed(pbmc, "simclr", epochs=1, dim=4, seed=0)
    numbered = pbmc.copy()
    numbered.var_names = pd.Index(range(pbmc.n_vars))
    model = dab.tl.embed(numbered, "simclr", epochs=1, dim=4, seed=0)  # failed: genes "lacking"
    np.testing.assert_array_equal(numbered.obsm["X_diffaug"], pbmc.obsm["X_diffaug"])
    named = pbmc.copy()
    named.var_names = [str(i) for i in range(pbmc.n_vars)]
    np.testing.assert_array_equal(model.embed(named), pbmc.obsm["X_diffaug"])


def test_a_backed_anndata_points_to_embed_file_for_training_and_is_augmented(
    bladder_path, tmp_path
):
    backed = ad.read_h5ad(bladder_path, backed="r")
    with pytest.raises(InputError, match=re.escape("use tl.embed_file(path, backed=True)")):
        dab.tl.embed(backed, "simclr", epochs=1)
    model = dab.tl.embed(ad.read_h5ad(bladder_path), "diffaug", epochs=2, dim=4)
    dab.tl.embed(backed, model=model)  # applying a model reads it block by block
    assert backed.obsm["X_diffaug"].shape == (233, 4)
    assert dab.tl.augment(backed, model).n_obs == 233
    with pytest.raises(InputError, match="train_cells, epochs apply only to training"):
        dab.tl.embed_file(bladder_path, tmp_path / "o.h5ad", backed=True, model=model,
                          epochs=5, train_cells=100)  # fmt: skip
    assert not (tmp_path / "o.h5ad").exists()


def test_sequences_as_a_list_or_series_and_a_training_result_as_the_model(promoters_fasta):
    result = dab.tl.train_dna(str(promoters_fasta), encoder="kmer", k=3, epochs=1)
    records = dab.io.read_sequence_file(promoters_fasta)
    from_file = dab.tl.embed_dna(promoters_fasta, result).obsm["X_diffaug"]
    from_list = dab.tl.embed_dna(records.sequences, result.model)
    series = pd.Series(records.sequences, index=[f"r{i}" for i in range(len(records))])
    from_series = dab.tl.embed_dna(series, result.model)
    np.testing.assert_allclose(from_list.obsm["X_diffaug"], from_file, atol=1e-6)
    np.testing.assert_allclose(from_series.obsm["X_diffaug"], from_file, atol=1e-6)
    assert list(from_series.obs_names[:2]) == ["r0", "r1"]
    by_name = dict(zip(series.index, series))  # a dict, named by its keys (were the sequences)
    from_dict = dab.tl.embed_dna(by_name, result.model)
    np.testing.assert_allclose(from_dict.obsm["X_diffaug"], from_file, atol=1e-6)
    assert list(from_dict.obs_names) == list(series.index)
    with pytest.raises(InputError, match="give an EmbeddingModel or a saved model's folder"):
        dab.tl.embed_dna(records.sequences, {"not": "a model"})
    with pytest.raises(InputError, match="2 sequences but 1 ids"):
        dab.io.SequenceSet(["a"], ["ACGT", "ACGA"])


def test_augment_takes_sequences_as_embed_dna_does(promoters_fasta):
    result = dab.tl.train_dna(str(promoters_fasta), max_len=8, dim=4, epochs=2, rounds=1)
    sequences = dab.io.read_sequence_file(promoters_fasta).sequences[:5]
    from_list = dab.tl.augment(sequences, result.model, n=2)  # was: "give it sequences"
    from_set = dab.tl.augment(dab.io.SequenceSet.of(sequences), result.model, n=2)
    assert from_list.sequences == from_set.sequences and len(from_list) == 10
    assert from_list.ids[:2] == ["seq0-aug0", "seq1-aug0"]
    named = dab.tl.augment(dict(zip("ab", sequences[:2])), result.model)
    assert named.ids == ["a-aug0", "b-aug0"]


def test_numpy_float_options_are_recorded_as_python_floats(pbmc):
    model = dab.tl.embed(pbmc, "diffaug", epochs=2, dim=4, noise_level=np.float32(0.25))
    params = pbmc.uns["diffaug"]["params"]
    assert type(params["noise_level"]) is float and params["noise_level"] == 0.25
    json.dumps(params)  # was: "Object of type float32 is not JSON serializable"
    assert model.training["noise_level"] == 0.25
    with pytest.raises(InputError, match=re.escape("--noise-level must be a number, got '0.4'")):
        dab.tl.embed(pbmc, "diffaug", epochs=1, noise_level="0.4")  # was: a TypeError


def test_float16_counts_embed_as_the_same_values_in_float32(bladder):
    half = bladder[:60].copy()
    half.X = (half.X.toarray() * 40).astype(np.float16)  # gene totals past float16's 65504
    single = half.copy()
    single.X = half.X.astype(np.float32)
    for adata in (half, single):
        dab.tl.embed(adata, "simclr", epochs=1, dim=4, n_top_genes=100)
    assert np.isfinite(half.obsm["X_diffaug"]).all()  # was: NaN gene shares, then an error
    np.testing.assert_array_equal(half.obsm["X_diffaug"], single.obsm["X_diffaug"])


def test_prepared_input_of_the_wrong_width_is_named(pbmc):
    model = dab.tl.embed(pbmc, "simclr", epochs=1, dim=4)
    with pytest.raises(InputError, match=r"items × 765 features, got \(5, 10\)"):
        model.embed(np.zeros((5, 10)))
    assert model.embed(np.zeros((5, 765), dtype=np.int64)).shape == (5, 4)


def test_umap_takes_one_key_and_names_what_is_missing(pbmc, tmp_path):
    path = dab.pl.umap(pbmc, "bulk_labels", tmp_path / "u.png")  # pbmc ships X_umap
    assert path.stat().st_size > 0
    with pytest.raises(InputError, match="not found: nope"):
        dab.pl.umap(pbmc, ["bulk_labels", "nope"], tmp_path / "v.png")
    with pytest.raises(InputError, match="output folder"):
        dab.pl.umap(pbmc, "bulk_labels", tmp_path / "missing" / "u.png")
    del pbmc.obsm["X_umap"]
    with pytest.raises(InputError, match=re.escape("run sc.tl.umap(adata) first")):
        dab.pl.umap(pbmc, "bulk_labels", tmp_path / "w.png")


def test_training_leaves_the_callers_random_streams_where_they_were(pbmc):
    np.random.seed(7)
    torch.manual_seed(7)
    expected = np.random.rand(), torch.rand(1).item()
    np.random.seed(7)
    torch.manual_seed(7)
    model = dab.tl.embed(pbmc, "simclr", epochs=1, dim=4, seed=3)  # seeds every generator
    assert (np.random.rand(), torch.rand(1).item()) == expected  # were restarted at seed 3
    again = pbmc.copy()
    dab.tl.embed(again, "simclr", epochs=1, dim=4, seed=3)
    np.testing.assert_array_equal(again.obsm["X_diffaug"], pbmc.obsm["X_diffaug"])
    assert repr(model) == (
        "EmbeddingModel(expression: 765 features → mlp encoder → 4 dims; simclr, 1 epoch)"
    )


def test_progress_bars_show_in_jupyter_whose_stderr_is_no_terminal(monkeypatch):
    from diffaug_bio import _progress

    class ZMQInteractiveShell:  # the Jupyter kernel's shell, by name
        pass

    shown = []
    monkeypatch.setattr(_progress, "tqdm", lambda iterable, **kwargs: shown.append(kwargs) or [])
    monkeypatch.setattr("sys.stderr.isatty", lambda: False)
    list(_progress.progress(range(3), "epochs"))
    ipython = type("IPython", (), {"get_ipython": staticmethod(ZMQInteractiveShell)})
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    list(_progress.progress(range(3), "epochs"))
    assert [kwargs["disable"] for kwargs in shown] == [True, False]


def test_umap_colours_by_genes_kept_only_in_raw_as_scanpy_does(pbmc, tmp_path):
    subset = pbmc[:, :700].copy()  # raw keeps all 765 genes
    gene = subset.raw.var_names[-1]
    assert gene not in subset.var_names
    assert dab.pl.umap(subset, gene, tmp_path / "raw.png").stat().st_size > 0


def test_embed_file_checks_method_options_before_reading_the_file(tmp_path):
    unreadable = tmp_path / "cells.h5ad"
    unreadable.write_bytes(b"not an h5ad")  # reading it would fail first
    with pytest.raises(InputError, match="--rounds: not an option of --method simclr"):
        dab.tl.embed_file(unreadable, method="simclr", rounds=2)
    with pytest.raises(InputError, match=r"^bank_size must be a whole number"):
        dab.tl.embed_file(unreadable, backed=True, bank_size=1.5)
    with pytest.raises(InputError, match="not an HDF5 file"):  # valid options: then the file
        dab.tl.embed_file(unreadable, method="simclr", epochs=1, temperature=0.3)


def test_umap_warns_when_the_picture_is_not_of_the_embedding(pbmc, tmp_path, caplog):
    cells = pbmc[:200].copy()  # ships X_umap, from neighbours of X_pca
    dab.tl.embed(cells, "simclr", epochs=1, dim=4)
    dab.pl.umap(cells, "bulk_labels", tmp_path / "stale.png")
    assert "comes from neighbours of X_pca / X, not of X_diffaug" in caplog.text
    caplog.clear()
    sc.pp.neighbors(cells, use_rep="X_diffaug")
    sc.tl.umap(cells)
    dab.pl.umap(cells, "bulk_labels", tmp_path / "fresh.png")
    assert "comes from neighbours" not in caplog.text


def test_augmenting_nothing_is_one_clear_error(pbmc):
    model = dab.tl.embed(pbmc[:50].copy(), epochs=2, dim=4)  # diffaug: has a generator
    with pytest.raises(InputError, match="no cells to augment"):
        dab.tl.augment(pbmc[:0].copy(), model)  # was an IndexError in the noise schedule
    with pytest.raises(InputError, match="no sequences to augment"):
        dab.tl.augment([], model)


def test_a_key_another_tool_wrote_is_replaced_with_a_warning(pbmc, caplog):
    scanpy_pca = pbmc.obsm["X_pca"].copy()
    dab.tl.embed(pbmc, "simclr", epochs=1, dim=4, key_added="X_pca")
    assert "obsm['X_pca'] holds an embedding diffaug-bio did not write" in caplog.text
    assert pbmc.obsm["X_pca"].shape == (pbmc.n_obs, 4) != scanpy_pca.shape
    caplog.clear()
    dab.tl.embed(pbmc, "simclr", epochs=1, dim=4, key_added="X_pca")  # now its own: no warning
    dab.tl.embed(pbmc, "simclr", epochs=1, dim=4, key_added="X_new")
    assert "did not write" not in caplog.text
