import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
from scipy import sparse

from diffaug_bio import InputError
from diffaug_bio.io import ExpressionPreprocessing, read_h5ad
from diffaug_bio.io.expression import pearson_residuals


def test_raw_counts_are_log1p_normalised_and_hvg_selected_like_scanpy(bladder):
    recipe, x = ExpressionPreprocessing.fit(bladder, n_top_genes=2000, normalisation="log1p")
    assert recipe.normalisation == "log1p"
    assert len(recipe.genes) == 2000 and x.shape == (bladder.n_obs, 2000)

    expected = bladder.copy()
    sc.pp.normalize_total(expected, target_sum=1e4)
    sc.pp.log1p(expected)
    sc.pp.highly_variable_genes(expected, n_top_genes=2000, flavor="seurat")
    assert recipe.genes == list(expected.var_names[expected.var["highly_variable"]])
    log_values = expected[:, recipe.genes].X.toarray()
    standardised = (log_values - log_values.mean(0)) / np.where(
        log_values.std(0) == 0, 1, log_values.std(0)
    )
    np.testing.assert_allclose(x, np.clip(standardised, -10, 10), atol=1e-4)


def test_sparse_and_dense_input_give_the_same_matrix(bladder):
    dense = bladder.copy()
    dense.X = bladder.X.toarray()
    _, from_sparse = ExpressionPreprocessing.fit(bladder)
    _, from_dense = ExpressionPreprocessing.fit(dense)
    np.testing.assert_allclose(from_sparse, from_dense, atol=1e-4)


def test_every_gene_is_kept_below_n_top_genes_and_a_count_below_one_is_refused(bladder):
    recipe, x = ExpressionPreprocessing.fit(bladder, n_top_genes=5000)  # fixture: 3,000 genes
    assert recipe.genes == list(bladder.var_names) and x.shape == bladder.shape
    with pytest.raises(InputError, match="--n-top-genes must be at least 1, got 0"):
        ExpressionPreprocessing.fit(bladder, n_top_genes=0)


def test_processed_data_is_used_as_is(pbmc):
    recipe, x = ExpressionPreprocessing.fit(pbmc)
    assert not recipe.normalise
    assert recipe.genes == list(pbmc.var_names)  # 765 < 2000: every gene kept
    column_std = pbmc.X.std(0)
    np.testing.assert_allclose(
        x, np.clip((pbmc.X - pbmc.X.mean(0)) / column_std, -10, 10), atol=1e-4
    )


def test_layer_is_used_and_unknown_layer_is_named(bladder):
    bladder.layers["counts"] = bladder.X.copy()
    bladder.X = sparse.csr_matrix(bladder.X.shape, dtype=np.float32)
    recipe, x = ExpressionPreprocessing.fit(bladder, layer="counts")
    assert recipe.layer == "counts" and recipe.normalise and np.abs(x).sum() > 0
    with pytest.raises(InputError, match=r"unknown layer 'spliced'.*counts"):
        ExpressionPreprocessing.fit(bladder, layer="spliced")
    with pytest.raises(InputError, match=r"adata.raw is not a layer: .*raw.to_adata\(\)"):
        ExpressionPreprocessing.fit(bladder, layer="raw")


def test_transform_reproduces_fit_and_refuses_missing_genes(bladder):
    recipe, x = ExpressionPreprocessing.fit(bladder, n_top_genes=2000)
    restored = ExpressionPreprocessing.from_dict(recipe.to_dict())
    shuffled = bladder[:, np.random.default_rng(0).permutation(bladder.n_vars)].copy()
    np.testing.assert_allclose(restored.transform(shuffled), x, atol=1e-5)
    with pytest.raises(InputError, match="lacks 1000 of the model's 2000 genes"):
        restored.transform(
            bladder[:, [g for g in bladder.var_names if g not in recipe.genes[:1000]]]
        )


def test_non_finite_values_are_refused(pbmc):
    pbmc.X[3, 4] = np.nan
    with pytest.raises(InputError, match="1 NaN or infinite"):
        ExpressionPreprocessing.fit(pbmc)


def test_read_h5ad_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_h5ad(tmp_path / "missing.h5ad")
    not_hdf5 = tmp_path / "cells.h5ad"
    not_hdf5.write_text("cell,gene\n")
    with pytest.raises(InputError, match="not an HDF5 file"):
        read_h5ad(not_hdf5)
    empty = tmp_path / "empty.h5ad"
    ad.AnnData(np.zeros((0, 5), np.float32)).write_h5ad(empty)
    with pytest.raises(InputError, match="empty AnnData"):
        read_h5ad(empty)


def test_pearson_residuals_by_default_and_their_genes_are_scanpys(bladder, monkeypatch):
    monkeypatch.setattr("diffaug_bio.io.expression.RESIDUAL_ROWS", 50)  # several blocks
    recipe, x = ExpressionPreprocessing.fit(bladder, n_top_genes=1000)
    assert recipe.normalisation == "pearson" and recipe.normalise
    expected = bladder.copy()
    sc.experimental.pp.highly_variable_genes(expected, flavor="pearson_residuals", n_top_genes=1000)
    assert recipe.genes == list(expected.var_names[expected.var["highly_variable"]])
    expected = expected[:, recipe.genes].copy()
    sc.experimental.pp.normalize_pearson_residuals(expected)
    residuals = pearson_residuals(
        bladder[:, recipe.genes].X, recipe.gene_fraction, recipe.residual_clip
    )
    np.testing.assert_allclose(residuals, expected.X, atol=1e-4)
    standardised = (expected.X - expected.X.mean(0)) / expected.X.std(0)
    np.testing.assert_allclose(x, np.clip(standardised, -10, 10), atol=1e-3)


def test_pearson_recipe_scales_new_cells_by_the_training_shares(bladder):
    recipe, x = ExpressionPreprocessing.fit(bladder, n_top_genes=1000, normalisation="pearson")
    restored = ExpressionPreprocessing.from_dict(recipe.to_dict())
    # a few cells alone are scaled as they were among all: the shares are the training data's
    np.testing.assert_allclose(restored.transform(bladder[:10]), x[:10], atol=1e-5)
    # a gene the data lacks gets its training mean (0 standardised); the others stay finite
    kept = [gene for gene in bladder.var_names if gene != recipe.genes[0]]
    aligned = restored.transform_rows(
        bladder[:, kept].X, restored.gene_index(pd.Index(kept), align=True)
    )
    assert np.isfinite(aligned).all() and np.allclose(aligned[:, 0], 0)
    assert np.corrcoef(aligned[:, 1:].ravel(), x[:, 1:].ravel())[0, 1] > 0.99


def test_a_normalisation_needs_counts_and_a_known_name(bladder, pbmc):
    with pytest.raises(InputError, match="--normalisation pearson needs raw counts, and X is not"):
        ExpressionPreprocessing.fit_rows(
            pbmc.X, pbmc.var_names, normalisation="pearson", counts_required=True
        )
    recipe, _ = ExpressionPreprocessing.fit(pbmc)  # the default is not an error: used as is
    assert recipe.normalisation is None
    with pytest.raises(InputError, match="unknown normalisation 'sctransform'"):
        ExpressionPreprocessing.fit(bladder, normalisation="sctransform")
    empty = bladder.copy()
    empty.X = bladder.X.toarray()
    empty.X[5] = 0
    with pytest.raises(InputError, match=r"1 cell with no counts at all \(row 5, counted from 0\)"):
        ExpressionPreprocessing.fit(empty, normalisation="pearson")


def test_a_model_saved_before_pearson_residuals_reads_as_log1p(bladder):
    recipe, x = ExpressionPreprocessing.fit(bladder, n_top_genes=500, normalisation="log1p")
    old = recipe.to_dict()
    for key in ("normalisation", "gene_fraction", "residual_clip"):
        del old[key]
    old["normalise"] = True
    restored = ExpressionPreprocessing.from_dict(old)
    assert restored.normalisation == "log1p"
    np.testing.assert_allclose(restored.transform(bladder), x, atol=1e-5)


def test_a_model_trained_on_log_values_refuses_raw_counts(bladder):
    log_data = bladder.copy()
    sc.pp.normalize_total(log_data)
    sc.pp.log1p(log_data)
    recipe, x = ExpressionPreprocessing.fit(log_data, n_top_genes=500)
    assert recipe.normalisation is None and recipe.input_kind == "values"
    restored = ExpressionPreprocessing.from_dict(recipe.to_dict())
    np.testing.assert_allclose(restored.transform(log_data), x, atol=1e-5)
    with pytest.raises(InputError, match="trained on values that are not raw counts"):
        restored.transform(bladder)  # counts straight from the aligner
    legacy = recipe.to_dict()
    del legacy["input_kind"]  # saved before the kind was recorded: not checked
    assert ExpressionPreprocessing.from_dict(legacy).transform(bladder).shape == x.shape


def test_normalisation_none_uses_integer_tables_as_they_are(bladder):
    table = bladder[:, :20].copy()
    table.X = table.X.toarray()
    table.X[:, 0] -= 3  # negative integers: a difference, not a count with an error in it
    recipe, x = ExpressionPreprocessing.fit(table, normalisation="none")
    assert recipe.normalisation is None and recipe.input_kind == "none"
    floats = table.copy()
    floats.X = floats.X + 0.5
    assert recipe.transform(floats).shape == (table.n_obs, 20)  # taken as it comes, unchecked
    values = np.asarray(table.X, dtype=np.float64)
    expected = (values - values.mean(axis=0)) / np.where(
        values.std(axis=0) > 0, values.std(axis=0), 1
    )
    np.testing.assert_allclose(x, np.clip(expected, -10, 10), atol=1e-4)
    with pytest.raises(InputError, match="negative values where counts are expected"):
        ExpressionPreprocessing.fit(table)  # detected as counts, as before


def test_named_normalisation_reads_fractional_counts(bladder, caplog):
    fractional = bladder.copy()
    fractional.X = fractional.X.astype(np.float32)
    fractional.X.data[::50] += 0.5  # EM-quantified counts are not all integers
    recipe, x = ExpressionPreprocessing.fit_rows(
        fractional.X,
        fractional.var_names,
        n_top_genes=500,
        normalisation="log1p",
        counts_required=True,
    )
    assert recipe.normalisation == "log1p" and recipe.input_kind == "fractional counts"
    np.testing.assert_allclose(recipe.transform(fractional), x, atol=1e-5)
    recipe, _ = ExpressionPreprocessing.fit_rows(
        fractional.X, fractional.var_names, normalisation="pearson", counts_required=True
    )
    assert recipe.normalisation == "pearson"
    unnamed, _ = ExpressionPreprocessing.fit(fractional, n_top_genes=5000)
    assert unnamed.normalisation is None  # only the user can tell them from CPM
    log_data = bladder.copy()
    sc.pp.normalize_total(log_data)
    sc.pp.log1p(log_data)
    with pytest.raises(InputError, match="needs raw counts"):  # log values are not counts
        ExpressionPreprocessing.fit_rows(
            log_data.X, log_data.var_names, normalisation="log1p", counts_required=True
        )


def test_n_top_genes_on_scaled_data_says_all_genes_are_kept(pbmc, caplog):
    with caplog.at_level("WARNING", logger="diffaug_bio"):
        recipe, _ = ExpressionPreprocessing.fit(pbmc, n_top_genes=100)
    assert recipe.n_features == pbmc.n_vars
    assert "all 765 features are kept" in caplog.text


def test_genes_without_a_dispersion_are_one_warning_of_the_package(bladder, caplog):
    two_cells = bladder[:2]  # most genes are detected in one of them, or in neither
    with caplog.at_level("WARNING", logger="diffaug_bio"), warnings.catch_warnings():
        warnings.simplefilter("error")  # was scanpy's own UserWarning, printed under -q too
        recipe, _ = ExpressionPreprocessing.fit_rows(
            two_cells.X, two_cells.var_names, n_top_genes=2000, normalisation="log1p"
        )
    assert f"only {recipe.n_features} of the 3000 genes could be ranked" in caplog.text
    assert 0 < recipe.n_features < 2000
