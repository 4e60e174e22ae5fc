"""Beyond AnnData: CSV / TSV feature tables through `embed`; saved models aligned by gene name."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import diffaug_bio as dab
from diffaug_bio import InputError
from diffaug_bio.cli import cli
from diffaug_bio.io.tables import read_feature_table


def run(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.mark.parametrize("suffix", [".csv", ".tsv.gz"])
def test_a_feature_table_embeds_like_the_same_matrix_in_an_h5ad(pbmc, tmp_path, suffix):
    cells = pbmc[:300].copy()
    table = cells.to_df()
    table.insert(0, "cell", cells.obs_names)
    table["bulk_labels"] = cells.obs["bulk_labels"].to_numpy()
    path = tmp_path / f"cells{suffix}"
    table.to_csv(path, sep="\t" if ".tsv" in suffix else ",", index=False)
    before = path.read_bytes()

    result = run("embed", path, "--method", "simclr", "--epochs", "2", "--dim", "8",
                 "--obs-columns", "bulk_labels", "--index-column", "cell")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert path.read_bytes() == before
    written = ad.read_h5ad(tmp_path / "cells.h5ad")  # beside the table, suffixes stripped
    assert list(written.obs_names) == list(cells.obs_names)
    assert list(written.var_names) == list(cells.var_names)
    assert list(written.obs["bulk_labels"]) == list(cells.obs["bulk_labels"])

    dab.tl.embed(cells, "simclr", epochs=2, dim=8)  # the same matrix, straight from AnnData
    np.testing.assert_allclose(written.obsm["X_diffaug"], cells.obsm["X_diffaug"], atol=1e-5)


def test_a_table_written_by_pandas_with_its_index_reads_the_index_as_row_names(tmp_path):
    values = np.random.default_rng(0).random((6, 3))
    frame = pd.DataFrame(values, columns=["a", "b", "c"], index=[f"s{i}" for i in range(6)])
    frame.to_csv(tmp_path / "named.csv")  # the index as a first column with no header
    pd.DataFrame(values, columns=["a", "b", "c"]).to_csv(tmp_path / "numbered.csv")
    for name, rows in (("named", list(frame.index)), ("numbered", [str(i) for i in range(6)])):
        adata = read_feature_table(tmp_path / f"{name}.csv")
        assert list(adata.var_names) == ["a", "b", "c"]  # the row number was a feature
        assert list(adata.obs_names) == rows
        np.testing.assert_allclose(adata.X, values, rtol=1e-6)


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("g1,g2\nx,1\n", [], "column 'g1' is not numeric"),
        ("id,g1\na,1\n", ["--obs-columns", "tissue"], "no column 'tissue'"),
        ("id,tissue\na,liver\n", ["--index-column=id", "--obs-columns=tissue"], "empty"),
        ("", [], "cannot be read as a table"),
        ("g1,g2\n1,2\n3,4\n", ["--backed"], "--backed reads .h5ad files"),
        ("id,g1\na,1\na,2\n", ["--index-column", "id"], "duplicate names"),
    ],
)
def test_bad_tables_give_one_line_and_status_2(tmp_path, content, args, message):
    path = tmp_path / "table.csv"
    path.write_text(content)
    result = run("embed", path, *args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert not (tmp_path / "table.h5ad").exists()


def test_align_genes_fills_missing_genes_with_their_training_mean(pbmc, tmp_path):
    model = dab.tl.embed(pbmc, "simclr", epochs=1, dim=8)
    model.save(tmp_path / "model")
    recipe = model.recipe
    shuffled = pbmc[:, np.random.default_rng(0).permutation(pbmc.n_vars)[:700]].copy()
    missing = [g for g in recipe.genes if g not in set(shuffled.var_names)]
    assert len(missing) == 65

    with pytest.raises(InputError, match=r"lacks 65 of the model's 765 genes.*--align-genes"):
        dab.tl.embed(shuffled.copy(), model=model)
    dab.tl.embed(shuffled, model=model, align_genes=True)

    filled = pbmc.copy()  # what alignment promises: absent genes at their training mean
    where = filled.var_names.get_indexer(missing)
    filled.X[:, where] = recipe.mean[[recipe.genes.index(gene) for gene in missing]]
    np.testing.assert_allclose(shuffled.obsm["X_diffaug"], model.embed(filled), atol=1e-5)

    result = run("embed", tmp_path / "shuffled.h5ad", "--model", tmp_path / "model")
    assert result.exit_code == 2
    shuffled.write_h5ad(tmp_path / "shuffled.h5ad")
    aligned = run("embed", tmp_path / "shuffled.h5ad", "--model", tmp_path / "model",
                  "--align-genes", "-o", tmp_path / "out.h5ad")  # fmt: skip
    assert aligned.exit_code == 0, aligned.output
    assert "lacks 65 of the model's 765 genes, set to their training mean" in aligned.output
    np.testing.assert_allclose(
        ad.read_h5ad(tmp_path / "out.h5ad").obsm["X_diffaug"],
        shuffled.obsm["X_diffaug"],
        atol=1e-5,
    )


def test_align_genes_needs_a_model_and_a_gene_in_common(pbmc, tmp_path, bladder):
    assert "give --model DIR too" in run("embed", tmp_path / "x.h5ad", "--align-genes").output
    model = dab.tl.embed(pbmc, "simclr", epochs=1, dim=8)
    with pytest.raises(InputError, match="no gene name in common"):
        model.embed(bladder, align_genes=True)


def test_align_genes_works_on_a_backed_file_too(bladder, bladder_path, tmp_path):
    model = dab.tl.embed(bladder.copy(), "simclr", epochs=1, dim=8)
    fewer = bladder[:, [g for g in bladder.var_names if g != model.recipe.genes[0]]].copy()
    fewer.write_h5ad(tmp_path / "fewer.h5ad")
    dab.tl.embed_file(tmp_path / "fewer.h5ad", tmp_path / "out.h5ad", backed=True, model=model,
                      align_genes=True)  # fmt: skip
    in_memory = fewer.copy()
    dab.tl.embed(in_memory, model=model, align_genes=True)
    np.testing.assert_allclose(
        ad.read_h5ad(tmp_path / "out.h5ad").obsm["X_diffaug"],
        in_memory.obsm["X_diffaug"],
        atol=1e-5,
    )
