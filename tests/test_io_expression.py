import anndata as ad
import numpy as np
import pytest
import scanpy as sc
from scipy import sparse

from diffaug_bio import InputError
from diffaug_bio.io import ExpressionPreprocessing, read_h5ad


def test_raw_counts_are_normalised_and_hvg_selected_like_scanpy(bladder):
    recipe, x = ExpressionPreprocessing.fit(bladder, n_top_genes=2000)
    assert recipe.normalise
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
    with pytest.raises(InputError, match="n_top_genes must be at least 1"):
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
