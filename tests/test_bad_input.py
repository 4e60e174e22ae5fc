"""Issue 8's list of bad inputs: each ends with exit status 2, one line on stderr naming the
problem and the file or option, no traceback, the input byte-for-byte unchanged and no
output written."""

from __future__ import annotations

import errno
import os
import shutil
import sys
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from scipy import sparse

import diffaug_bio as dab
from diffaug_bio.cli import cli

MISSING_DEVICE = "mps" if torch.cuda.is_available() else "cuda"
"""A device ``--device`` names that this machine lacks (none has both)."""


def cells_file(path: Path, matrix, layers: dict | None = None) -> Path:
    matrix = np.asarray(matrix, dtype=np.float32)
    adata = ad.AnnData(matrix, layers=layers)
    adata.obs_names = [f"c{i}" for i in range(adata.n_obs)]
    adata.var_names = [f"g{j}" for j in range(adata.n_vars)]
    adata.write_h5ad(path)
    return path


def counts(n_cells: int = 40, n_genes: int = 30, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).poisson(3, (n_cells, n_genes)).astype(np.float32)


def make_inputs(tmp: Path, bladder_path: Path, nontata_dir: Path) -> dict[str, Path]:
    """Every bad input of the list, written under ``tmp``; returns name → path."""
    files: dict[str, Path] = {}
    truncated = bladder_path.read_bytes()
    (tmp / "truncated.h5ad").write_bytes(truncated[: len(truncated) // 2])
    files["truncated"] = tmp / "truncated.h5ad"
    files["no_cells"] = cells_file(tmp / "no_cells.h5ad", np.zeros((0, 5)))
    files["no_genes"] = cells_file(tmp / "no_genes.h5ad", np.zeros((5, 0)))
    with_nan = counts()
    with_nan[3, 4] = np.nan
    files["nan"] = cells_file(tmp / "nan.h5ad", with_nan)
    with_inf = counts()
    with_inf[0, 0] = np.inf
    files["inf"] = cells_file(tmp / "inf.h5ad", with_inf)
    negative = counts()
    negative[1, 1] = -2
    files["negative_counts"] = cells_file(
        tmp / "negative_counts.h5ad", counts(), layers={"counts": negative}
    )
    zero_cell = counts()
    zero_cell[7] = 0
    files["zero_cell"] = cells_file(tmp / "zero_cell.h5ad", zero_cell)
    files["all_zero"] = cells_file(tmp / "all_zero.h5ad", np.zeros((40, 30)))
    files["log_values"] = cells_file(tmp / "log_values.h5ad", np.log1p(counts()))
    files["one_cell"] = cells_file(tmp / "one_cell.h5ad", counts(1))
    files["not_log"] = cells_file(tmp / "not_log.h5ad", counts() * 37.5)  # normalised, no log
    files["constant"] = cells_file(tmp / "constant.h5ad", np.full((40, 30), 1.5))
    one_cell = ad.read_h5ad(bladder_path)[:1].X.toarray()
    files["identical"] = cells_file(tmp / "identical.h5ad", np.tile(one_cell, (233, 1)))
    repeated = ad.read_h5ad(cells_file(tmp / "repeated_genes.h5ad", counts()))
    repeated.var_names = ["g0", "g0", *repeated.var_names[2:]]
    repeated.write_h5ad(tmp / "repeated_genes.h5ad")
    files["repeated_genes"] = tmp / "repeated_genes.h5ad"
    (tmp / "cells.csv").write_text("a,b\n1,2\n3,4\n5,7\n")
    files["table"] = tmp / "cells.csv"
    (tmp / "annotated.csv").write_text("a,b\n1,2\n3,4\n5,7\n")
    files["table_beside_h5ad"] = tmp / "annotated.csv"
    cells_file(tmp / "annotated.h5ad", counts())  # another dataset, named alike
    (tmp / "run_with_a_file" / "model").parent.mkdir()
    (tmp / "run_with_a_file" / "model").write_text("not a folder\n")
    files["run_with_a_file"] = tmp / "run_with_a_file"
    (tmp / "bad.pt").write_text("hello\n")
    files["not_a_tensor"] = tmp / "bad.pt"
    (tmp / "empty_label.csv").write_text("seq,label\nACGTACGTAA,0\nACGTTTGCAA,\nACGGGTACCA,1\n")
    files["empty_label"] = tmp / "empty_label.csv"
    (tmp / "na_sequence.csv").write_text("seq,label\nACGTACGTAA,a\nNA,b\nACGGGTACCA,a\n")
    files["na_sequence"] = tmp / "na_sequence.csv"  # R's write.csv marks a missing one NA
    (tmp / "commented.fa").write_text("; a comment\n>s1\nACGTACGT\n")
    files["commented"] = tmp / "commented.fa"
    (tmp / "empty.fa").write_text("")
    files["empty_fasta"] = tmp / "empty.fa"
    (tmp / "not_iupac.fa").write_text(">s1\nACGTACGT\n>s2\nACGTXACGT\n")
    files["not_iupac"] = tmp / "not_iupac.fa"
    (tmp / "empty_seq.fa").write_text(">s1\nACGTACGT\n>s2\n\n>s3\nACGT\n")
    files["empty_sequence"] = tmp / "empty_seq.fa"
    one_class = tmp / "one_class"
    for split in ("train", "test"):
        shutil.copytree(nontata_dir / split / "positive", one_class / split / "positive")
    files["one_class"] = one_class
    no_test = tmp / "no_test"
    shutil.copytree(nontata_dir / "train", no_test / "train")
    files["no_test"] = no_test
    (tmp / "short.fa").write_text(">long\nACGTACGTAC\n>short\nACG\n")
    files["short_sequence"] = tmp / "short.fa"
    (tmp / "tiny.fa").write_text(">long\nACGTACGTAC\n>tiny\nAC\n")
    files["tiny_sequence"] = tmp / "tiny.fa"
    (tmp / "same.fa").write_text(">a\nACGTACGTAC\n>b\nACGTACGTAC\n>c\nACGTACGTAC\n")
    files["same_sequences"] = tmp / "same.fa"
    (tmp / "no_4mers.fa").write_text(">a\nACG\n>b\nCGT\n>c\nGTA\n>d\nTAC\n")
    files["no_4mers"] = tmp / "no_4mers.fa"
    (tmp / "no_seq.csv").write_text("sequence,label\nACGT,0\nACGA,1\n")
    files["no_seq_column"] = tmp / "no_seq.csv"
    return files


CASES = {
    "missing file": (["embed", "{tmp}/missing.h5ad"], "missing.h5ad: no such file"),
    "truncated h5ad": (["embed", "{truncated}"], "truncated.h5ad: cannot be read as AnnData"),
    "0 cells": (["embed", "{no_cells}"], "no_cells.h5ad: empty AnnData (0 cells"),
    "0 genes": (["embed", "{no_genes}"], "no_genes.h5ad: empty AnnData (5 cells × 0 genes)"),
    "NaN": (["embed", "{nan}"], "nan.h5ad: X holds 1 NaN or infinite values"),
    "inf": (["embed", "{inf}"], "inf.h5ad: X holds 1 NaN or infinite values"),
    "negative counts": (
        ["embed", "{negative_counts}", "--layer", "counts"],
        "negative_counts.h5ad: layer 'counts' holds negative values where counts are expected",
    ),
    "unknown layer": (["embed", "{bladder}", "--layer", "spliced"], "unknown layer 'spliced'"),
    "all-zero cell": (
        ["embed", "{zero_cell}"],
        "zero_cell.h5ad: 1 cell with no counts at all",
    ),
    "all-zero matrix": (["embed", "{all_zero}"], "all_zero.h5ad: X is zero everywhere"),
    "a normalisation of values that are not counts": (
        ["embed", "{log_values}", "--normalisation", "pearson"],
        "log_values.h5ad: --normalisation pearson needs raw counts, and X is not",
    ),
    "one cell": (
        ["embed", "{one_cell}"],
        "one_cell.h5ad: contrastive training needs at least 2 items, got 1",
    ),
    "fasta without records": (
        ["train-dna", "{empty_fasta}", "-o", "{tmp}/run"],
        "empty.fa: holds no sequences",
    ),
    "not IUPAC": (
        ["train-dna", "{not_iupac}", "-o", "{tmp}/run"],
        "not_iupac.fa: sequence s2 holds characters outside the IUPAC DNA",
    ),
    "empty sequence": (
        ["train-dna", "{empty_sequence}", "-o", "{tmp}/run"],
        "empty_seq.fa: 1 empty sequence (first: s2)",
    ),
    "unknown benchmark offline": (
        ["train-dna", "no_such_dataset", "--gb-root", "{tmp}", "-o", "{tmp}/run"],
        "no_such_dataset",
    ),
    "method option checked before the dataset is looked up": (
        ["train-dna", "no_such_dataset", "--method", "simclr", "--rounds", "2", "-o", "{tmp}/r"],
        "--rounds: not an option of --method simclr",
    ),
    "method option checked before the file is read": (
        ["embed", "{truncated}", "--method", "simclr", "--rounds", "2"],
        "--rounds: not an option of --method simclr",
    ),
    "benchmark with one class": (
        ["train-dna", "{one_class}", "-o", "{tmp}/run"],
        "one_class/train: needs at least two class folders, found 1",
    ),
    "benchmark without test": (
        ["train-dna", "{no_test}", "-o", "{tmp}/run"],
        "no_test: not a Genomic Benchmarks folder (no test/ inside",
    ),
    "csv without seq": (
        ["train-dna", "{no_seq_column}", "-o", "{tmp}/run"],
        "no_seq.csv: no 'seq' column",
    ),
    "sequence without a k-mer": (
        ["train-dna", "{short_sequence}", "--encoder", "kmer", "-o", "{tmp}/run"],
        "short.fa: 1 sequence holds no 7-mer of A/C/G/T",
    ),
    "--max-len for k-mers": (
        ["train-dna", "{promoters}", "--encoder", "kmer", "--max-len", "100", "-o", "{tmp}/run"],
        "--max-len sets the one-hot window of cnn / transformer encoders",
    ),
    "augment with a k-mer model": (
        ["augment", "{promoters}", "--model", "{kmer_model}", "-o", "{tmp}/augmented.fa"],
        "k-mer spectra, which do not decode to sequences",
    ),
    "k-mer model for cells": (
        ["embed", "{bladder}", "--model", "{kmer_model}", "-o", "{tmp}/o.h5ad"],
        "holds a model for dna-kmer data, but expression input",
    ),
    "model of the other modality": (
        ["embed-dna", "{promoters}", "--model", "{cells_model}", "-o", "{tmp}/o.h5ad"],
        "holds a model for expression data, but dna input",
    ),
    "model with other genes": (
        ["embed", "{bladder}", "--model", "{cells_model}", "-o", "{tmp}/o.h5ad"],
        "bladder_small.h5ad: the data lacks 30 of the model's 30 genes",
    ),
    "output folder missing": (
        ["embed", "{bladder}", "-o", "{tmp}/no/such/dir/o.h5ad"],
        "o.h5ad: output folder",
    ),
    "epochs 0": (["embed", "{bladder}", "--epochs", "0"], "--epochs"),
    "categorical process on cells": (
        ["embed", "{bladder}", "--process", "categorical"],
        "needs one-hot data",
    ),
    "temperature for a loss without one": (
        ["embed", "{bladder}", "--loss", "tkernel", "--temperature", "0.3"],
        "--temperature applies to --loss infonce or du, not tkernel",
    ),
    "empty obsm key (in place)": (
        ["embed", "{bladder}", "--key-added", ""],
        "the obsm key must be a non-empty name without '/', got ''",
    ),
    "obsm key with a slash (backed)": (
        ["embed", "{bladder}", "--backed", "--key-added", "a/b", "-o", "{tmp}/o.h5ad"],
        "got 'a/b'",
    ),
    "table written over itself": (
        ["embed", "{table}", "-o", "{table}"],
        "cells.csv: the output is written as an .h5ad file; its name must end in .h5ad",
    ),
    "embed-dna output named as FASTA": (
        ["embed-dna", "{promoters}", "--model", "{kmer_model}", "-o", "{tmp}/o.fa"],
        "o.fa: the output is written as an .h5ad file",
    ),
    "augment a missing file onto an existing one": (
        ["augment", "{tmp}/missing.fa", "--model", "{kmer_model}", "-o", "{promoters}"],
        "missing.fa: no such file",
    ),
    "augment over its own input": (
        ["augment", "{promoters}", "--model", "{kmer_model}", "-o", "{promoters}"],
        "promoters_small.fa: is the input file; write the output to another file",
    ),
    "augmented cells named as FASTA": (
        ["augment", "{bladder}", "--model", "{cells_model}", "-o", "{tmp}/a.fa"],
        "a.fa: the output is written as an .h5ad file",
    ),
    "augmented sequences named as .h5ad": (
        ["augment", "{promoters}", "--model", "{kmer_model}", "-o", "{tmp}/a.h5ad"],
        "a.h5ad: the output is written as FASTA; its name must end in .fa, .fasta",
    ),
    "a layer for sequences": (
        ["augment", "{promoters}", "--model", "{kmer_model}", "--layer", "X", "-o", "{tmp}/a.fa"],
        "--layer and --align-genes apply to cells (.h5ad), not sequences",
    ),
    "characters outside IUPAC, k-mer encoder": (
        ["train-dna", "{not_iupac}", "--encoder", "kmer", "--k", "3", "-o", "{tmp}/run"],
        "not_iupac.fa: sequence s2 holds characters outside the IUPAC DNA alphabet: 'X'",
    ),  # the k-mer path counted around them without a word
    "characters outside IUPAC, k-mer model": (
        ["embed-dna", "{not_iupac}", "--model", "{kmer_model}", "-o", "{tmp}/o.h5ad"],
        "not_iupac.fa: sequence s2 holds characters outside the IUPAC DNA alphabet: 'X'",
    ),
    "characters outside IUPAC in a sequence longer than the window": (
        ["embed-dna", "{not_iupac}", "--model", "{one_hot_model}", "-o", "{tmp}/o.h5ad"],
        "sequence s2 holds characters outside the IUPAC DNA alphabet",
    ),  # the crop warning came first, a second line
    "a sequence shorter than the model's k": (
        ["embed-dna", "{tiny_sequence}", "--model", "{kmer_model}", "-o", "{tmp}/o.h5ad"],
        "ambiguous bases only): tiny; remove them (the model's k is fixed)",
    ),  # advised "lower --k", which embed-dna does not take
    "damaged model weights": (
        ["embed-dna", "{promoters}", "--model", "{damaged_model}", "-o", "{tmp}/o.h5ad"],
        "encoder.pt: cannot be read as model weights",
    ),
    "repeated gene names": (
        ["embed", "{repeated_genes}", "-o", "{tmp}/o.h5ad"],
        "repeated_genes.h5ad: 1 gene name occurs more than once (g0)",
    ),
    "repeated gene names with a model": (
        ["embed", "{repeated_genes}", "--model", "{cells_model}", "-o", "{tmp}/o.h5ad"],
        "1 gene name occurs more than once (g0)",
    ),
    "no variation between cells": (
        ["embed", "{constant}"],
        "constant.h5ad: all 40 cells are the same in the 30 genes used",
    ),
    "no variation between sequences, k-mer encoder": (
        ["train-dna", "{same_sequences}", "--encoder", "kmer", "--k", "3", "-o", "{tmp}/run"],
        "same.fa: all 3 sequences have the same 3-mer counts; there is nothing to embed",
    ),  # said "cells" and "genes"
    "no variation between cells, log1p": (
        ["embed", "{identical}", "--normalisation", "log1p", "--epochs", "1"],
        "identical.h5ad: all 233 cells are the same in the",
    ),  # float32 rounding left sds of ~1e-6: a NaN loss blamed on --temperature, or for
    # simclr one point for every cell
    "no variation between sequences, one-hot encoder": (
        ["train-dna", "{same_sequences}", "-o", "{tmp}/run"],
        "same.fa: all 3 sequences are the same; there is nothing to embed",
    ),  # trained, and gave one point for every sequence
    "a DU prior that cannot tell sequences apart": (
        [
            "train-dna",
            "{no_4mers}",
            "--method",
            "du",
            "--prior",
            "pca",
            "--epochs",
            "2",
            "-o",
            "{tmp}/run",
        ],
        "--prior pca: most items have the same prior features",
    ),  # no sequence has a 4-mer: a NaN loss blamed on --temperature
    "neighbours that cannot be found": (
        ["train-dna", "{no_4mers}", "--warmup", "neighbours", "--epochs", "1", "-o", "{tmp}/run"],
        "every item has the same features to find neighbours in",
    ),  # neighbours drawn by chance, behind a leaked sklearn warning
    "values not on a log scale, with genes to choose": (
        ["embed", "{not_log}", "--n-top-genes", "10"],
        "not_log.h5ad: the values of X reach 375: not a log scale, which choosing highly "
        "variable genes assumes; run sc.pp.log1p on them, give raw counts (--layer; non-integer "
        "counts with --normalisation pearson or log1p), or keep all 30 features with "
        "--n-top-genes 30",
    ),  # scanpy's expm1 overflowed: an internal error
    "raw counts used as they are, with genes to choose": (
        ["embed", "{bladder}", "--normalisation", "none", "--n-top-genes", "10"],
        "the values of X reach 303: not a log scale, which choosing highly variable genes "
        "assumes; used as they are (--normalisation none): run sc.pp.log1p on them, or let raw "
        "counts be normalised (leave out --normalisation none), or keep all 3000 features with "
        "--n-top-genes 3000",
    ),  # advised raw counts, which it was given
    "not a tensor": (
        ["embed-dna", "{not_a_tensor}", "--model", "{kmer_model}", "-o", "{tmp}/o.h5ad"],
        "bad.pt: cannot be read as tensor",
    ),
    "empty label": (
        ["train-dna", "{empty_label}", "-o", "{tmp}/run"],
        "empty_label.csv: 1 sequence has an empty or missing (NA) label (first: seq1)",
    ),
    "missing sequence": (
        ["train-dna", "{na_sequence}", "-o", "{tmp}/run"],
        "na_sequence.csv: 1 sequence is missing (None, NaN or NA): seq1",
    ),  # was trained on as the sequence "NA"
    "FASTA with a comment before the first record": (
        ["train-dna", "{commented}", "-o", "{tmp}/run"],
        "commented.fa: cannot be read as fasta (This FASTA file contains comments at the "
        "beginning of the file, which are not allowed by the 'fasta' parser.)",
    ),
    "a mistyped sequence file": (
        ["train-dna", "{tmp}/sequences.fa", "-o", "{tmp}/run"],
        "sequences.fa: no such file or folder",
    ),
    "training options with a saved model": (
        ["embed", "{bladder}", "--model", "{cells_model}", "--epochs", "5", "--dim", "3"],
        "--model applies a saved model without training: --epochs, --dim apply only to training",
    ),
    "resume with a saved model": (
        ["embed", "{bladder}", "--model", "{cells_model}", "--resume", "-o", "{tmp}/o.h5ad"],
        "--resume applies only to training",
    ),
    "negative seed": (
        ["embed", "{bladder}", "--seed", "-1", "-o", "{tmp}/o.h5ad"],
        "Invalid value for '--seed': -1 is not in the range 0<=x<=4294967295",
    ),
    "a device this machine lacks": (
        ["embed", "{bladder}", "--device", MISSING_DEVICE, "-o", "{tmp}/o.h5ad"],
        f"Invalid value for '--device': --device {MISSING_DEVICE} was asked for",
    ),
    "a model folder that cannot be made": (  # refused before training writes the output
        [
            "embed",
            "{bladder}",
            "--method",
            "simclr",
            "--epochs",
            "1",
            "--save-model",
            "{bladder}/model",
            "-o",
            "{tmp}/o.h5ad",
        ],
        "bladder_small.h5ad/model: not writable",
    ),
    "a table's default output is another file": (
        ["embed", "{table_beside_h5ad}", "--method", "simclr", "--epochs", "1"],
        "annotated.h5ad exists already; name the output with -o",
    ),
    "a file where train-dna writes its model": (
        ["train-dna", "{promoters}", "--epochs", "1", "-o", "{run_with_a_file}"],
        "run_with_a_file/model: exists and is not a folder",
    ),
    "unwritable output": (
        ["embed", "{bladder}", "-o", "{bladder}/inside.h5ad"],
        "inside.h5ad",
    ),
    "augment with a model that has no generator": (  # the model named, not the input
        ["augment", "{bladder}", "--model", "{cells_model}", "-o", "{tmp}/more.h5ad"],
        "cells_model: this model has no generator",
    ),
}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, request):
    tmp = tmp_path_factory.mktemp("bad")
    data = Path(request.config.rootpath) / "tests" / "data"
    files = make_inputs(tmp, data / "bladder_small.h5ad", data / "nontata_small")
    model_data = ad.read_h5ad(cells_file(tmp / "model_cells.h5ad", counts()))
    dab.tl.embed(model_data, "simclr", epochs=1, dim=4).save(tmp / "cells_model")
    files["cells_model"] = tmp / "cells_model"
    kmers = dab.tl.train_dna(str(data / "promoters_small.fa"), encoder="kmer", k=3, epochs=1)
    files["kmer_model"] = kmers.model.save(tmp / "kmer_model")  # diffaug: has a generator
    one_hot = dab.tl.train_dna(str(data / "promoters_small.fa"), method="simclr", max_len=8,
                               dim=4, epochs=1)  # fmt: skip
    files["one_hot_model"] = one_hot.model.save(tmp / "one_hot_model")  # an 8-base window
    damaged = shutil.copytree(tmp / "kmer_model", tmp / "damaged_model")
    weights = (damaged / "encoder.pt").read_bytes()
    (damaged / "encoder.pt").write_bytes(weights[:1000])  # a truncated copy
    files["damaged_model"] = damaged
    return tmp, files


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_exits_2_with_one_line_and_leaves_files_alone(
    case, inputs, bladder_path, promoters_fasta, monkeypatch, digest
):
    tmp, files = inputs
    monkeypatch.setitem(sys.modules, "genomic_benchmarks", None)  # offline, no package
    monkeypatch.setattr("diffaug_bio.io.genomic_benchmarks.DEFAULT_CACHE", tmp / "cache")
    args, message = CASES[case]
    names = {"tmp": tmp, "bladder": bladder_path, "promoters": promoters_fasta, **files}
    args = [a.format(**names) for a in args]
    watched = [Path(a) for a in args if Path(a).is_file()]
    before = {path: digest(path) for path in watched}
    outputs_before = set(tmp.rglob("*"))

    quiet = CliRunner().invoke(cli, ["-q", *args])
    result = CliRunner().invoke(cli, args)

    assert quiet.exit_code == result.exit_code == 2, result.output
    lines = quiet.output.strip().splitlines()  # with -q: only the error line
    assert len(lines) == 1 and message in lines[0], lines
    assert lines[0].startswith("diffaug-bio: error: ")
    errors = [line for line in result.output.splitlines() if "error" in line]
    assert errors == lines and "Traceback" not in result.output
    assert {path: digest(path) for path in watched} == before
    assert set(tmp.rglob("*")) == outputs_before  # nothing half-written left behind


def test_repeated_genes_are_one_error_without_anndatas_warning(tmp_path):
    path = cells_file(tmp_path / "repeated.h5ad", counts())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        repeated = ad.read_h5ad(path)
        repeated.var_names = ["g0", "g0", *repeated.var_names[2:]]
        repeated.write_h5ad(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # shown each time, as in a fresh process
        with pytest.raises(dab.InputError, match=r"gene name occurs more than once \(g0\)"):
            dab.tl.embed_file(path, tmp_path / "o.h5ad", method="simclr", epochs=1)
    assert [str(w.message) for w in caught if "not unique" in str(w.message)] == []


def test_repeated_cell_names_are_one_warning_of_the_package(tmp_path, caplog):
    path = cells_file(tmp_path / "repeated.h5ad", counts())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        repeated = ad.read_h5ad(path)
        repeated.obs_names = ["c0", "c0", *repeated.obs_names[2:]]
        repeated.write_h5ad(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        adata = dab.io.read_h5ad(path)
    assert adata.n_obs == 40
    assert [str(w.message) for w in caught if "not unique" in str(w.message)] == []
    assert "1 cell name occurs more than once (c0)" in caplog.text


def test_fewer_cells_than_a_batch_still_train(tmp_path):
    """Policy: a dataset smaller than one batch is one (smaller) batch, not an error."""
    path = cells_file(tmp_path / "few.h5ad", counts(12))
    result = CliRunner().invoke(cli, ["embed", str(path), "--method", "simclr", "--epochs", "2"])
    assert result.exit_code == 0, result.output
    embedding = ad.read_h5ad(path).obsm["X_diffaug"]
    assert embedding.shape == (12, 50) and np.isfinite(embedding).all()


def test_sparse_input_with_nan_is_caught_too(tmp_path):
    matrix = sparse.random(30, 20, density=0.3, format="csr", dtype=np.float32, random_state=0)
    matrix.data[0] = np.nan
    adata = ad.AnnData(matrix)
    with pytest.raises(dab.InputError, match="NaN or infinite"):
        dab.tl.embed(adata, "simclr", epochs=1)


def test_a_non_finite_loss_stops_training_with_a_hint(bladder_path, tmp_path, monkeypatch, digest):
    from diffaug_bio.contrastive import losses

    du = losses.LOSSES["du"]  # diffaug's default loss
    monkeypatch.setitem(losses.LOSSES, "du", lambda *a: du(*a) * float("nan"))
    before = digest(bladder_path)
    result = CliRunner().invoke(
        cli, ["-q", "embed", str(bladder_path), "-o", str(tmp_path / "o.h5ad"), "--epochs", "2"]
    )
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "diffaug-bio: error: the training loss became NaN or infinite; try a higher "
        "--temperature (the loss divides by it) or check the input for extreme values"
    ]
    assert digest(bladder_path) == before and not (tmp_path / "o.h5ad").exists()


@pytest.mark.parametrize("backed", [[], ["--backed"]])
def test_a_model_that_cannot_be_saved_leaves_an_input_updated_in_place_as_it_was(
    bladder_path, tmp_path, monkeypatch, digest, backed
):
    """--save-model is written before the .h5ad: a disk that fills while the model is saved
    must not end in exit 2 with the input already changed."""
    cells = Path(shutil.copy(bladder_path, tmp_path / "cells.h5ad"))
    before = digest(cells)

    def full_disk(self, folder):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(dab.EmbeddingModel, "write_files", full_disk)
    args = ["embed", str(cells), *backed, "--method", "simclr", "--epochs", "1", "--dim", "4"]
    result = CliRunner().invoke(cli, ["-q", *args, "--save-model", str(tmp_path / "model")])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()  # the model named, not the input
    assert lines == [f"diffaug-bio: error: {tmp_path / 'model'}: cannot write the model (No space "
                     "left on device)"]  # fmt: skip
    assert digest(cells) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cells.h5ad"]


def test_non_finite_outputs_of_a_model_are_refused_not_written(pbmc, tmp_path, digest):
    """Weights damaged or edited into NaN (in a model saved before weights were hashed, or
    saved so) gave an all-NaN obsm and exit 0; augment wrote NaN cells."""
    cells = pbmc[:100].copy()
    model = dab.tl.embed(cells, "diffaug", epochs=2, dim=4)
    assert model.embed(cells[:0].copy()).shape == (0, 4)  # no items: nothing to refuse
    with torch.no_grad():
        for weight in model.diffusion.parameters():
            weight.fill_(float("nan"))
    with pytest.raises(dab.InputError, match=r"^200 of 200 generated positives are not finite"):
        model.augment(cells, n=2)
    with torch.no_grad():
        next(model.encoder.parameters()).fill_(float("nan"))
    model.save(tmp_path / "model")
    path = tmp_path / "cells.h5ad"
    cells.write_h5ad(path)
    before = digest(path)
    result = CliRunner().invoke(cli, ["-q", "embed", str(path), "--model", str(tmp_path / "model")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"diffaug-bio: error: {path}: 100 of 100 embeddings are not finite (NaN or infinite): the "
        "model's weights hold such values, or the input's values are too large for float32"
    ]
    assert digest(path) == before


def test_a_dna_generator_of_nan_is_refused_though_its_argmax_looks_like_bases(
    promoters_fasta, tmp_path
):
    """The per-position argmax decoded NaN codes into valid-looking sequences, written with
    exit 0; the codes are now checked before decoding."""
    model = dab.tl.train_dna(str(promoters_fasta), max_len=8, dim=4, epochs=2, rounds=1).model
    with torch.no_grad():
        for weight in model.diffusion.parameters():
            weight.fill_(float("nan"))
    model.save(tmp_path / "model")
    out = tmp_path / "positives.fa"
    result = CliRunner().invoke(
        cli, ["-q", "augment", str(promoters_fasta), "--model", str(tmp_path / "model"),
              "-n", "2", "-o", str(out)],
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"diffaug-bio: error: {promoters_fasta}: 80 of 80 generated positives are not finite "
        "(NaN or infinite): the model's weights hold such values, or the input's values are "
        "too large for float32"
    ]
    assert not out.exists()
