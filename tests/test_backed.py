"""Large files: block-wise preparation, sampled training and ``embed --backed``, which never
loads the matrix and writes obsm into an atomic copy of the file."""

import shutil

import anndata as ad
import numpy as np
import pytest
from click.testing import CliRunner
from scipy import sparse

import diffaug_bio as dab
from diffaug_bio.cli import cli
from diffaug_bio.io.expression import row_blocks, sample_rows
from diffaug_bio.io.h5ad import BackedMatrix


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.mark.parametrize("as_sparse", [True, False])
def test_sample_rows_reads_the_chosen_rows_block_by_block(as_sparse, monkeypatch):
    monkeypatch.setattr("diffaug_bio.io.expression.BLOCK_ROWS", 7)
    dense = np.arange(50 * 3, dtype=np.float32).reshape(50, 3)
    matrix = sparse.csr_matrix(dense) if as_sparse else dense
    assert [start for start, _ in row_blocks(matrix)] == list(range(0, 50, 7))
    chosen, rows = sample_rows(matrix, 20, seed=1)
    assert len(set(chosen)) == 20 and np.all(np.diff(chosen) > 0)
    rows = rows.toarray() if as_sparse else rows
    np.testing.assert_array_equal(rows, dense[chosen])
    other, _ = sample_rows(matrix, 20, seed=2)
    assert not np.array_equal(chosen, other)


def test_embedding_block_by_block_equals_all_at_once(bladder, monkeypatch):
    model = dab.tl.embed(bladder, "simclr", epochs=1, dim=8, seed=0)
    whole = bladder.obsm["X_diffaug"]
    monkeypatch.setattr("diffaug_bio.io.expression.BLOCK_ROWS", 50)  # 233 cells: 5 blocks
    np.testing.assert_allclose(model.embed(bladder), whole, atol=1e-5)


def test_training_on_a_sample_embeds_every_cell(bladder):
    dab.tl.embed(bladder, "simclr", epochs=1, dim=8, seed=0, train_cells=100)
    assert bladder.obsm["X_diffaug"].shape == (bladder.n_obs, 8)
    assert np.isfinite(bladder.obsm["X_diffaug"]).all()
    assert bladder.uns["diffaug"]["params"]["train_cells"] == 100


@pytest.mark.parametrize("train_cells", [50, 233])  # row 200 outside / inside the sample
def test_a_cell_without_counts_is_named_by_its_row_in_the_file(
    bladder, tmp_path, monkeypatch, train_cells
):
    bladder.X = bladder.X.toarray()
    bladder.X[200] = 0
    bladder.write_h5ad(tmp_path / "cells.h5ad")
    monkeypatch.setattr("diffaug_bio.io.expression.BLOCK_ROWS", 50)  # row 200: a later block
    with pytest.raises(
        dab.InputError, match=r"cells.h5ad: 1 cell with no counts at all \(row 200,"
    ):
        dab.tl.embed_file(tmp_path / "cells.h5ad", tmp_path / "out.h5ad", backed=True,
                          train_cells=train_cells, method="simclr", epochs=1, dim=4)  # fmt: skip


def test_embed_backed_writes_a_copy_with_obsm_and_leaves_input_untouched(
    bladder_path, tmp_path, digest
):
    source = shutil.copy(bladder_path, tmp_path / "cells.h5ad")
    before = digest(source)
    out = tmp_path / "out.h5ad"
    result = run("embed", source, "--backed", "--train-cells", "150", "--method", "simclr",
                 "--epochs", "1", "--dim", "8", "--n-top-genes", "2500", "-o", out,
                 "--save-model", tmp_path / "m")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert digest(source) == before
    written, original = ad.read_h5ad(out), ad.read_h5ad(source)
    embedding = written.obsm["X_diffaug"]
    assert embedding.shape == (original.n_obs, 8) and embedding.dtype == np.float32
    params = written.uns["diffaug"]["params"]
    assert params["train_cells"] == 150 and params["counts_normalised"]
    # an explicit count reaches the backed path (simclr's own default is 2,000)
    assert params["method"] == "simclr" and params["n_genes"] == 2500
    assert (written.X != original.X).nnz == 0 and written.obs.equals(original.obs)
    # the saved model reapplied in memory gives the same embedding: same recipe, same blocks
    model = dab.EmbeddingModel.load(tmp_path / "m")
    np.testing.assert_allclose(model.embed(original), embedding, atol=1e-5)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_embed_backed_in_place_with_a_model_and_a_layer(bladder, tmp_path):
    counts = bladder.X.copy()
    bladder.layers["counts"] = counts
    bladder.X = sparse.csr_matrix(np.log1p(counts.toarray()))  # X no longer counts
    bladder.obsm["X_diffaug"] = np.zeros((bladder.n_obs, 2), np.float32)  # replaced
    path = tmp_path / "cells.h5ad"
    bladder.write_h5ad(path)
    result = run("embed", path, "--backed", "--layer", "counts", "--method", "simclr",
                 "--epochs", "1", "--dim", "8", "--save-model", tmp_path / "m")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "obsm['X_diffaug'] holds an embedding diffaug-bio did not write" in result.output
    first = ad.read_h5ad(path)
    assert first.obsm["X_diffaug"].shape == (bladder.n_obs, 8)
    assert first.uns["diffaug"]["params"]["layer"] == "counts"
    assert first.uns["diffaug"]["params"]["counts_normalised"]  # the layer, not X, was read
    np.testing.assert_array_equal(first.layers["counts"].toarray(), counts.toarray())
    result = run("embed", path, "--backed", "--model", tmp_path / "m", "--key-added", "X_again")
    assert result.exit_code == 0, result.output
    assert "did not write" not in result.output
    second = ad.read_h5ad(path)
    np.testing.assert_allclose(second.obsm["X_again"], first.obsm["X_diffaug"], atol=1e-5)
    records = second.uns["diffaug"]["embeddings"]  # the first run's record is kept
    assert sorted(records) == ["X_again", "X_diffaug"]
    assert records["X_diffaug"]["method"] == "simclr" and "train_cells" in records["X_diffaug"]


def test_layer_x_applies_a_model_trained_on_a_layer_to_counts_in_x(bladder, tmp_path):
    layered = bladder.copy()  # training file: counts in a layer, X log-transformed
    layered.layers["counts"] = layered.X.copy()
    layered.X = sparse.csr_matrix(np.log1p(layered.X.toarray()))
    layered.write_h5ad(tmp_path / "layered.h5ad")
    plain = tmp_path / "plain.h5ad"  # a new file keeping the same counts in X
    bladder.write_h5ad(plain)
    result = run("embed", tmp_path / "layered.h5ad", "--layer", "counts", "--method", "simclr",
                 "--epochs", "1", "--dim", "4", "--save-model", tmp_path / "m")  # fmt: skip
    assert result.exit_code == 0, result.output
    trained = ad.read_h5ad(tmp_path / "layered.h5ad").obsm["X_diffaug"]
    refused = run("embed", plain, "--model", tmp_path / "m", "-o", tmp_path / "o.h5ad")
    assert refused.exit_code == 2 and "X is --layer X" in refused.output
    for backed in ([], ["--backed"]):
        out = tmp_path / f"out{len(backed)}.h5ad"
        result = run("embed", plain, "--model", tmp_path / "m", "--layer", "X", *backed, "-o", out)
        assert result.exit_code == 0, result.output
        np.testing.assert_allclose(ad.read_h5ad(out).obsm["X_diffaug"], trained, atol=1e-5)


def test_backed_needs_cells_as_rows(bladder, tmp_path, digest):
    bladder.X = sparse.csc_matrix(bladder.X)
    path = tmp_path / "csc.h5ad"
    bladder.write_h5ad(path)
    before = digest(path)
    result = run("embed", path, "--backed", "--epochs", "1")
    assert result.exit_code == 2
    assert "CSC" in result.output and "--backed" in result.output
    assert digest(path) == before


def test_backed_reader_reports_unknown_layer_and_shape(bladder_path):
    with BackedMatrix(bladder_path) as matrix:
        assert matrix.shape == (233, 3000) and len(matrix.var_names) == 3000
        assert sparse.issparse(matrix[0:10]) and matrix[0:10].shape == (10, 3000)
    with pytest.raises(dab.InputError, match="unknown layer 'counts'"):
        BackedMatrix(bladder_path, "counts")


@pytest.mark.parametrize("backed", [False, True])
def test_in_place_through_a_symbolic_link_updates_the_file_it_points_to(
    bladder_path, tmp_path, backed
):
    """Data managed by DVC / DataLad / git-annex are links: the link must survive, and the
    file behind it must get the embedding."""
    target = shutil.copy(bladder_path, tmp_path / "target.h5ad")
    link = tmp_path / "link.h5ad"
    link.symlink_to(target)
    result = run("embed", link, "--method", "simclr", "--epochs", "1", "--dim", "4",
                 *(["--backed"] if backed else []))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert ad.read_h5ad(target).obsm["X_diffaug"].shape == (233, 4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.h5ad", "target.h5ad"]


@pytest.mark.parametrize("backed", [False, True])
def test_params_record_the_cells_trained_on_not_a_larger_request(bladder_path, tmp_path, backed):
    """233 cells: the backed default of 20,000, or any larger request, trains on all 233."""
    out = tmp_path / "out.h5ad"
    extra = ["--backed"] if backed else ["--train-cells", "5000"]
    result = run("embed", bladder_path, "--method", "simclr", "--epochs", "1", "--dim", "4",
                 "-o", out, *extra)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert ad.read_h5ad(out).uns["diffaug"]["params"]["train_cells"] == 233


@pytest.mark.parametrize("backed", [False, True])
def test_a_saved_model_reads_counts_from_the_layer_named_for_new_data(bladder, tmp_path, backed):
    """A model trained on counts in X applied to a file that keeps its counts in a layer
    (scverse's habit): --layer names it, and the embedding is the one of the same counts."""
    trained = tmp_path / "trained.h5ad"
    bladder.write_h5ad(trained)
    result = run("embed", trained, "--method", "simclr", "--epochs", "1", "--dim", "4",
                 "--save-model", tmp_path / "m")  # fmt: skip
    assert result.exit_code == 0, result.output
    reference = ad.read_h5ad(trained).obsm["X_diffaug"]
    moved = bladder.copy()
    moved.layers["counts"] = moved.X.copy()
    moved.X = sparse.csr_matrix(np.log1p(moved.X.toarray()))
    path = tmp_path / "moved.h5ad"
    moved.write_h5ad(path)
    mode = ["--backed"] if backed else []
    refused = run("-q", "embed", path, "--model", tmp_path / "m", *mode)
    assert refused.exit_code == 2
    assert "the model was trained on raw counts (X), and X does not hold counts" in refused.output
    assert "--layer" in refused.output
    result = run("embed", path, "--model", tmp_path / "m", "--layer", "counts", *mode)
    assert result.exit_code == 0, result.output
    written = ad.read_h5ad(path)
    np.testing.assert_allclose(written.obsm["X_diffaug"], reference, atol=1e-5)
    assert written.uns["diffaug"]["params"]["layer"] == "counts"
