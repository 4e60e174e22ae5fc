"""Tools, scanpy style: functions that take data, train or apply a model, and annotate the data.

``embed`` works on an AnnData in place (``obsm`` + ``uns``) like ``sc.tl.pca``;
``train_dna`` / ``embed_dna`` do the same for DNA sequences; the ``*_file`` functions read
and write files. The CLI parses options, calls these and prints what they return.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from . import __version__, distributed
from ._errors import InputError, counted, naming, shown, whole_number
from .checkpoint import Checkpoints
from .evaluate import linear_probe, majority_fraction
from .io.expression import (
    DEFAULT_NORMALISATION,
    ExpressionPreprocessing,
    RowReadable,
    get_matrix,
    sample_rows,
)
from .io.files import check_output, staged_writes
from .io.genomic_benchmarks import load_dna_dataset
from .io.h5ad import (
    H5AD_SUFFIXES,
    BackedMatrix,
    read_h5ad,
    write_embedding_beside,
    write_h5ad_atomic,
)
from .io.kmers import DEFAULT_K, KmerEncoding
from .io.sequences import (
    FASTA_SUFFIXES,
    SequenceEncoding,
    SequenceSet,
    SequencesLike,
    one_hot_decode,
    read_sequence_file,
    write_fasta,
)
from .io.tables import read_feature_table, table_separator
from .methods import DEFAULT_METHOD, build_method, get_method
from .modality import DNA, DNA_KMERS, EXPRESSION
from .model import MODEL_FILES, EmbeddingModel, check_model_folder

__all__ = [
    "DEFAULT_KEY",
    "DNATrainingResult",
    "augment",
    "augment_file",
    "embed",
    "embed_dna",
    "embed_dna_file",
    "embed_file",
    "train_dna",
]

logger = logging.getLogger("diffaug_bio")

DEFAULT_KEY = "X_diffaug"
DEFAULT_BACKED_TRAIN_CELLS = 20_000
"""Cells sampled for training when a file is read backed: bounds the training matrix and
DiffAug's bank of generated positives (measured: benchmarks/RESULTS.md, scaling)."""


def _params(model: EmbeddingModel, **extra: object) -> dict:
    """How an embedding was made, for ``uns["diffaug"]["params"]`` (h5ad-safe values)."""
    params = {
        "version": __version__,
        **model.architecture(),
        **model.training,
        **extra,
    }
    return {key: value for key, value in params.items() if value is not None}


def _record_params(adata: ad.AnnData, model: EmbeddingModel, **extra: object) -> None:
    adata.uns["diffaug"] = _uns_record(_params(model, **extra), adata.uns.get("diffaug"))


def _written_embeddings(previous: object) -> dict:
    """The params of each obsm key this package wrote, from a file's ``uns["diffaug"]``
    (``previous``; anything but a mapping: none)."""
    return dict(previous.get("embeddings", {})) if isinstance(previous, Mapping) else {}


def _uns_record(params: dict, previous: object) -> dict:
    """``uns["diffaug"]``: ``params`` of the latest embedding and, for cells, the params of
    each obsm key written so far under ``embeddings``, so that a second ``--key-added``
    run does not erase how the first embedding was made."""
    record = {"params": params}
    key = params.get("key_added")
    if key is not None:
        record["embeddings"] = {**_written_embeddings(previous), key: params}
    return record


def _expression_params(
    model: EmbeddingModel, layer: str | None, key_added: str, train_cells: int | None
) -> dict:
    recipe = model.recipe
    return {"layer": layer, "key_added": key_added, "n_genes": len(recipe.genes),
            "counts_normalised": recipe.normalise, "normalisation": recipe.normalisation_name,
            "train_cells": train_cells}  # fmt: skip


def _warn_if_replacing(key: str, obsm_keys: Sequence[str], previous_uns: object) -> None:
    """Say so, before any training, when ``key`` names an obsm entry this package did not
    write (``--key-added X_pca``): scanpy replaces its keys silently, but here the name is
    the user's choice, and a mistaken one would lose another tool's embedding."""
    if key in obsm_keys and key not in _written_embeddings(previous_uns):
        logger.warning("obsm[%r] holds an embedding diffaug-bio did not write: it is replaced", key)


def check_key(key_added: str) -> None:
    """Refuse an obsm key that would damage the written file: h5py reads "" as the obsm
    group itself and "/" as a path separator."""
    if not key_added or "/" in key_added:
        raise InputError(f"the obsm key must be a non-empty name without '/', got {key_added!r}")


def _load(
    model: EmbeddingModel | DNATrainingResult | str | os.PathLike, modality: str
) -> EmbeddingModel:
    """``model`` as an EmbeddingModel that reads ``modality``'s input: itself, a training
    result's, or loaded from its folder."""
    if isinstance(model, EmbeddingModel):
        if model.modality.reads != modality:
            raise InputError(f"a {model.modality.name} model cannot embed {modality} input")
        return model
    if isinstance(model, DNATrainingResult):
        return _load(model.model, modality)
    if not isinstance(model, str | os.PathLike):
        raise InputError(f"model: give an EmbeddingModel or a saved model's folder, not a "
                         f"{type(model).__name__}")  # fmt: skip
    return EmbeddingModel.load(model, modality)


def embed(
    adata: ad.AnnData,
    method: str = DEFAULT_METHOD,
    *,
    layer: str | None = None,
    key_added: str = DEFAULT_KEY,
    epochs: int | None = None,
    batch_size: int | None = None,
    dim: int | None = None,
    seed: int = 0,
    device: str = "auto",
    n_top_genes: int | None = None,
    normalisation: str | None = None,
    train_cells: int | None = None,
    model: EmbeddingModel | str | os.PathLike | None = None,
    align_genes: bool = False,
    checkpoints: Checkpoints | None = None,
    **method_options: object,
) -> EmbeddingModel:
    """Learn a contrastive embedding of the cells (or apply a saved ``model``).

    Writes ``adata.obsm[key_added]`` (float32, n_obs × dim) and ``adata.uns["diffaug"]``
    (``params`` of this run, also kept under ``embeddings[key_added]`` beside earlier keys'
    records);
    nothing else in ``adata`` changes. Returns the model, ready to ``save`` or reapply.
    ``n_top_genes``: highly variable genes the encoder sees (None: the method's count, 5,000
    for diffaug and 2,000 for the others; fewer genes in ``adata``: all of them).
    ``normalisation`` of raw counts: ``"pearson"`` (Pearson residuals, the default) or
    ``"log1p"`` (normalize_total + log1p); either, named, also reads non-integer counts (EM
    quantifiers, ambient-corrected); ``"none"`` uses the values as they are, integers too (a
    table of ages or doses). Input that is not counts is used as it is (naming
    ``"pearson"`` or ``"log1p"`` is then an error).
    ``train_cells``: train on a random sample of this many cells (None: all), embed all.
    ``epochs`` (None: 100), ``dim`` (None: 50), ``batch_size`` (None: 256, also the
    negatives per cell); ``seed`` fixes every random choice (same seed and thread count, same
    embedding on the CPU).
    ``align_genes`` (with ``model``): genes of the model missing from ``adata`` get their
    training mean, with a warning naming them, instead of an error. With ``model``,
    ``layer`` names where ``adata`` keeps what the model was trained on (None: where the
    training data kept it).
    ``checkpoints``: save training periodically / resume an interrupted run
    (``Checkpoints("run.ckpt", resume=True)``); the same seed then gives the same result.
    ``method_options`` go to the method, e.g. ``loss="tkernel"`` or ``rounds=3`` for diffaug.
    """
    check_key(key_added)
    if adata.isbacked and model is None:
        raise InputError(
            "a backed AnnData is not loaded to train on: use tl.embed_file(path, backed=True), "
            "which trains on a sample read block by block"
        )
    _warn_if_replacing(key_added, list(adata.obsm), adata.uns.get("diffaug"))
    if model is not None:
        _refuse_training_options(method=method, epochs=epochs, batch_size=batch_size, dim=dim,
                                 n_top_genes=n_top_genes, normalisation=normalisation,
                                 train_cells=train_cells, **method_options)  # fmt: skip
        model = _load(model, "expression")
        layer, train_cells = model.recipe.layer if layer is None else layer, None
    else:
        train_cells = _cells_to_train(train_cells, adata.n_obs)
        model = _train_expression(
            get_matrix(adata, layer), adata.var_names, layer, n_top_genes=n_top_genes,
            normalisation=normalisation, train_cells=train_cells, method=method, epochs=epochs,
            batch_size=batch_size, dim=dim, seed=seed, device=device, checkpoints=checkpoints,
            **method_options,
        )  # fmt: skip
    adata.obsm[key_added] = model.embed(adata, device, align_genes, layer)
    _record_params(adata, model, **_expression_params(model, layer, key_added, train_cells))
    return model


def _refuse_training_options(method: str, **options: object) -> None:
    """Settings that only training reads, given with a saved model, which trains nothing."""
    given = [name for name, value in options.items() if value is not None]
    given += ["method"] if method != DEFAULT_METHOD else []
    if given:
        raise InputError(f"a saved model is applied without training: {', '.join(given)} "
                         "apply only to training")  # fmt: skip


def _cells_to_train(train_cells: int | None, n_cells: int) -> int | None:
    """The cells a run trains on, as recorded in ``uns``: None (all), or the request checked
    and capped at the number there are."""
    if train_cells is None:
        return None
    return min(whole_number("--train-cells", train_cells, 2), n_cells)


def _train_expression(
    matrix: RowReadable,
    var_names: pd.Index,
    layer: str | None = None,
    *,
    n_top_genes: int | None = None,
    normalisation: str | None = None,
    train_cells: int | None = None,
    method: str = DEFAULT_METHOD,
    epochs: int | None = None,
    batch_size: int | None = None,
    dim: int | None = None,
    seed: int = 0,
    device: str = "auto",
    checkpoints: Checkpoints | None = None,
    **method_options: object,
) -> EmbeddingModel:
    """Fit the input recipe and the encoder on all cells, or on ``train_cells`` of them
    (as :func:`_cells_to_train` gives it)."""
    n_cells = matrix.shape[0]
    n_train = train_cells or n_cells
    rows = None
    if n_train < n_cells or isinstance(matrix, BackedMatrix):  # read only the rows to train on
        rows, matrix = sample_rows(matrix, n_train, seed)
    if n_train < n_cells:
        logger.info("training on a random sample of %d of the %d cells", n_train, n_cells)
    recipe, prepared = ExpressionPreprocessing.fit_rows(
        matrix, var_names, layer,
        get_method(method).n_top_genes if n_top_genes is None else n_top_genes,
        normalisation or DEFAULT_NORMALISATION, counts_required=normalisation is not None,
        rows=rows,
    )  # fmt: skip
    model = EmbeddingModel.for_expression(recipe, dim)
    return model.fit(prepared, method, epochs, seed, device, checkpoints, batch_size,
                     **method_options)  # fmt: skip


def read_cells(
    path: str | os.PathLike, obs_columns: Sequence[str] = (), index_column: str | None = None
) -> ad.AnnData:
    """An ``.h5ad`` file, or a CSV / TSV feature table (see :func:`io.read_feature_table`)."""
    if isinstance(obs_columns, str):  # one column named
        obs_columns = [obs_columns]
    if table_separator(path) is not None:
        return read_feature_table(path, obs_columns, index_column)
    if obs_columns or index_column:
        raise InputError(f"{path}: --obs-columns / --index-column apply to CSV / TSV tables only")
    return read_h5ad(path)


def default_output(path: str | os.PathLike) -> Path:
    """Where ``embed`` writes without ``-o``: the ``.h5ad`` itself (replaced atomically), or
    for a feature table an ``.h5ad`` beside it (a table has no place for an embedding)."""
    path = Path(path)
    if table_separator(path) is None:
        return path
    stem = path.name.removesuffix(".gz").rsplit(".", 1)[0]
    output = path.with_name(stem + ".h5ad")
    if output.exists():  # another dataset's, or cells.tsv.gz's beside cells.csv: not replaced
        raise InputError(f"{output} exists already; name the output with -o (it may be "
                         "another dataset's, and is not replaced unasked)")  # fmt: skip
    return output


def embed_file(
    path: str | os.PathLike,
    output: str | os.PathLike | None = None,
    *,
    backed: bool = False,
    layer: str | None = None,
    key_added: str = DEFAULT_KEY,
    train_cells: int | None = None,
    model: EmbeddingModel | str | os.PathLike | None = None,
    align_genes: bool = False,
    obs_columns: Sequence[str] = (),
    index_column: str | None = None,
    device: str = "auto",
    save_model: str | os.PathLike | None = None,
    **options: object,
) -> EmbeddingModel:
    """:func:`embed` from an ``.h5ad`` file or a CSV / TSV feature table to ``output``
    (default: :func:`default_output`; an ``.h5ad`` is replaced atomically). ``backed=True``
    (``.h5ad`` only) never loads the matrix: the model trains on a random sample of
    ``train_cells`` cells (default 20,000) read block by block, every cell is embedded a
    block at a time, and ``obsm`` / ``uns`` are written into a copy of the file, so memory
    stays flat as the number of cells grows. ``save_model``: a folder to save the model in
    (checked first), before ``output`` is written, so a model that cannot be saved leaves
    an input updated in place as it was. ``options`` go to :func:`embed`. Returns the model
    (trained, or ``model`` loaded)."""
    check_key(key_added)
    if save_model is not None:
        check_model_folder(save_model)
    destination = Path(output) if output is not None else default_output(path)
    fitted = _load(model, "expression") if model is not None else None
    if fitted is None:  # a mistyped method option fails before the file is read
        check_method_options(options.get("method", DEFAULT_METHOD), "cells", **options)
    check_output(destination, "an .h5ad file", H5AD_SUFFIXES)  # an .h5ad may be its own output
    with naming(path):
        if backed:
            fitted, embedding, uns_record = _embed_backed(
                path, layer, key_added, train_cells, fitted, align_genes, device, **options
            )
        else:
            adata = read_cells(path, obs_columns, index_column)
            if fitted is None:
                get_matrix(adata, layer)  # fail on an unknown layer before any work
            rows, columns = ("samples", "features") if table_separator(path) else ("cells", "genes")
            logger.info("read %s: %d %s × %d %s", path, adata.n_obs, rows, adata.n_vars, columns)
            fitted = embed(adata, layer=layer, key_added=key_added, train_cells=train_cells,
                           model=fitted, align_genes=align_genes, device=device,
                           **options)  # fmt: skip
            embedding = adata.obsm[key_added]

            def uns_record(previous: Any) -> dict:  # embed has made it
                return adata.uns["diffaug"]

    if not distributed.is_main():
        return fitted
    if save_model is not None:  # first: a model that cannot be saved leaves the input alone
        fitted.save(save_model)
        logger.info("saved the model to %s", save_model)
    if table_separator(path):  # (never backed)
        write_h5ad_atomic(adata, destination)
    else:  # a copy of the file with the two new elements: its compression, chunks and any
        # element this anndata version would rewrite differently stay as they were
        write_embedding_beside(path, destination, key_added, embedding, uns_record)
    return fitted


def _embed_backed(
    path: str | os.PathLike,
    layer: str | None,
    key_added: str,
    train_cells: int | None,
    fitted: EmbeddingModel | None,
    align_genes: bool,
    device: str,
    **options: object,
) -> tuple[EmbeddingModel, np.ndarray | None, Callable[[Any], dict] | None]:
    """:func:`embed_file` with ``backed=True``, up to the write: the matrix is read a block
    at a time. Returns the model and, for the process that writes, the embedding and
    ``uns["diffaug"]``'s record as :func:`write_embedding_beside` takes it."""
    if table_separator(path) is not None:
        raise InputError(f"{path}: --backed reads .h5ad files; a table is read whole")
    if fitted is not None:  # nothing is trained; read where the training data kept it
        # refused as embed refuses them; the seed has a default, so embed lets it pass too
        training = {k: v for k, v in options.items() if k not in ("seed", "checkpoints")}
        method = training.pop("method", DEFAULT_METHOD)
        _refuse_training_options(method, train_cells=train_cells, **training)
        layer, train_cells = fitted.recipe.layer if layer is None else layer, None
    with BackedMatrix(path, layer) as matrix:
        logger.info("opened %s backed: %d cells × %d genes", path, *matrix.shape)
        _warn_if_replacing(key_added, matrix.obsm_keys, matrix.uns_diffaug)
        if fitted is None:
            requested = DEFAULT_BACKED_TRAIN_CELLS if train_cells is None else train_cells
            train_cells = _cells_to_train(requested, matrix.shape[0])
            fitted = _train_expression(matrix, matrix.var_names, layer, train_cells=train_cells,
                                       device=device, **options)  # fmt: skip
        if not distributed.is_main():  # the other ranks only helped to train
            return fitted, None, None
        embedding = fitted.embed(matrix, device, align_genes)
    params = _params(fitted, **_expression_params(fitted, layer, key_added, train_cells))
    return fitted, embedding, lambda previous: _uns_record(params, previous)


@dataclass
class DNATrainingResult:
    """What ``train_dna`` produces; :meth:`save` writes the three outputs of ``train-dna``."""

    model: EmbeddingModel
    adata: ad.AnnData
    metrics: dict = field(default_factory=dict)

    def save(self, outdir: str | os.PathLike) -> Path:
        """Write ``embeddings.h5ad``, ``model/`` and ``metrics.json`` into ``outdir``, together:
        a failed write (a value JSON cannot hold, a full disk) leaves ``outdir`` as it was,
        not new embeddings beside an earlier run's model."""
        metrics = json.dumps(self.metrics, indent=1)  # before a folder is made
        check_model_folder(Path(outdir) / "model")
        outputs = ["embeddings.h5ad", *(f"model/{name}" for name in MODEL_FILES), "metrics.json"]
        with staged_writes(outdir, outputs, "outputs") as staging:
            self.adata.write_h5ad(staging / "embeddings.h5ad")
            self.model.write_files(staging / "model")
            (staging / "metrics.json").write_text(metrics)
        return Path(outdir)


def probe_splits(sequences: SequenceSet, seed: int) -> np.ndarray:
    """The train/test split of the linear probe: the given split; else a stratified 70/30
    split drawn with ``seed`` when labels exist; else all train."""
    if sequences.splits is not None:
        return np.asarray(sequences.splits)
    splits = np.full(len(sequences), "train", dtype=object)
    labels = sequences.labels
    if labels is not None and len(set(labels)) > 1:
        counts = pd.Series(labels).value_counts()
        stratify = labels if counts.min() >= 2 else None
        _, test = train_test_split(np.arange(len(labels)), test_size=0.3, random_state=seed,
                                   stratify=stratify)  # fmt: skip
        splits[test] = "test"
        logger.info("no split given: a stratified 70/30 train/test split was drawn (seed %d)", seed)
    return splits


def unique_ids(sequences: SequenceSet) -> pd.Index:
    """The sequences' ids as names that tell them apart: a repeated id gets anndata's
    suffix (``id``, ``id-1``, …), with a warning, so each output row points to one record."""
    ids = pd.Index(sequences.ids, dtype=str)
    if ids.has_duplicates:
        repeated = ids[ids.duplicated()].unique()
        logger.warning(
            "%s more than once (%s); their repeats are named ID-1, ID-2, … in the output",
            counted(len(repeated), "sequence id", ("occurs", "occur")), shown(list(repeated)),
        )  # fmt: skip
    return ad.utils.make_index_unique(ids)


def sequences_adata(
    sequences: SequenceSet, embedding: np.ndarray, key: str = DEFAULT_KEY
) -> ad.AnnData:
    """An AnnData with one row per sequence, ``obsm[key]`` and obs ``label`` / ``split``."""
    obs = pd.DataFrame(index=unique_ids(sequences))
    obs["label"] = pd.Categorical(sequences.labels if sequences.labels is not None
                                  else [None] * len(sequences))  # fmt: skip
    if sequences.splits is not None:
        obs["split"] = pd.Categorical(sequences.splits, categories=["train", "test"])
    return ad.AnnData(obs=obs, obsm={key: embedding})


DNA_ENCODERS = ("cnn", "transformer", "kmer")
FIT_ON = ("train", "all")
"""The sequences ``train_dna``'s encoder learns from (labels are never used): the train
split, or every sequence, test split included — as ``embed`` learns from every cell."""


def train_dna(
    dataset: str | os.PathLike | SequenceSet,
    *,
    gb_root: str | os.PathLike | None = None,
    encoder: str = "cnn",
    method: str = DEFAULT_METHOD,
    epochs: int | None = None,
    batch_size: int | None = None,
    dim: int | None = None,
    seed: int = 0,
    device: str = "auto",
    max_len: int | None = None,
    k: int | None = None,
    fit_on: str = "train",
    checkpoints: Checkpoints | None = None,
    **method_options: object,
) -> DNATrainingResult:
    """Train a sequence encoder without labels, embed every sequence and score a linear
    probe (fit on train-split embeddings, accuracy on the test split).

    ``encoder``: ``cnn`` or ``transformer`` on one-hot windows of ``max_len`` bases, or
    ``kmer``: an MLP on each sequence's k-mer counts (``k``, default 7), trained as cells
    are. ``fit_on``: the encoder learns from the ``train`` split or from ``all`` sequences.
    ``batch_size``: sequences per training step (None: 128; 256 for ``kmer``).
    ``epochs`` / ``dim`` (None): 20 / 128 for one-hot encoders, 100 / 50 for ``kmer``.
    ``checkpoints``: as for :func:`embed`.

    Returns a :class:`DNATrainingResult`: ``.model`` (an :class:`EmbeddingModel` for
    :func:`embed_dna` / :func:`augment`), ``.adata`` (every sequence, ``obs["split"]`` and
    ``obs["label"]``, ``obsm["X_diffaug"]``) and ``.metrics`` (split sizes, ``train_seconds``,
    ``linear_probe_accuracy``: None without labels, a test split or two classes in the train
    split); ``.save(outdir)`` writes them."""
    start = time.perf_counter()
    if encoder not in DNA_ENCODERS:
        raise InputError(f"unknown DNA encoder {encoder!r}: choose cnn, transformer or kmer")
    if fit_on not in FIT_ON:
        raise InputError(f"fit_on must be train or all, not {fit_on!r}")
    if encoder == "kmer" and max_len is not None:
        raise InputError("--max-len sets the one-hot window of cnn / transformer encoders; "
                         "--encoder kmer counts k-mers over whole sequences")  # fmt: skip
    if encoder != "kmer" and k is not None:
        raise InputError("--k is the k-mer length of --encoder kmer")
    # a mistyped method option fails here, not after the sequences are read and encoded
    build_method(method, DNA_KMERS if encoder == "kmer" else DNA, **method_options)
    with naming(None if isinstance(dataset, SequenceSet) else dataset):
        if not isinstance(dataset, SequenceSet):
            dataset = load_dna_dataset(str(dataset), gb_root)
        splits = probe_splits(dataset, seed)
        dataset = SequenceSet(dataset.ids, dataset.sequences, dataset.labels, list(splits))
        train = splits == "train"
        fitted = train if fit_on == "train" else np.ones(len(dataset), dtype=bool)
        if fitted.sum() < 2:
            raise InputError(f"{fitted.sum()} training sequences; training needs at least 2")
        model = _dna_model(dataset.subset(fitted), encoder, dim, max_len, k)
        prepared = model.prepare(dataset)  # every sequence checked before training starts
        probed = _probe_possible(dataset, train)
    logger.info("read %d sequences (%d train); the encoder learns from %s (%d)", len(dataset),
                train.sum(), "the train split" if fit_on == "train" else "all of them",
                fitted.sum())  # fmt: skip
    model.fit(prepared[fitted], method, epochs, seed, device, checkpoints,
              batch_size=batch_size, **method_options)  # fmt: skip
    embedding = model.embed(prepared, device)
    adata = sequences_adata(dataset, embedding)
    _record_params(adata, model, fit_on=fit_on, **model.recipe.summary())
    metrics: dict = {
        "method": method,
        "encoder": encoder,
        "fit_on": fit_on,
        "n_fit": int(fitted.sum()),
        "n_train": int(train.sum()),
        "n_test": int((~train).sum()),
        "train_seconds": round(time.perf_counter() - start, 2),
        "linear_probe_accuracy": None,
    }
    if probed:
        labels = np.asarray(dataset.labels)
        metrics["classes"] = dataset.classes
        metrics["linear_probe_accuracy"] = linear_probe(
            embedding[train], labels[train], embedding[~train], labels[~train]
        )
        metrics["majority_class_accuracy"] = majority_fraction(labels[~train])
        logger.info(
            "linear-probe accuracy on the test split: %.4f", metrics["linear_probe_accuracy"]
        )
    return DNATrainingResult(model, adata, metrics)


def check_method_options(method: str, kind: str = "cells", /, **options: object) -> None:
    """Refuse an unknown ``method``, an option it does not take or a bad value, before any
    data is read. ``options`` as :func:`embed` (``kind="cells"``) or :func:`train_dna`
    (``"dna"``) takes them: those it names are its own, the rest go to the method."""
    function = train_dna if kind == "dna" else embed
    method_options = {key: value for key, value in options.items()
                      if key not in inspect.signature(function).parameters}  # fmt: skip
    modality = EXPRESSION
    if kind == "dna":
        modality = DNA_KMERS if options.get("encoder") == "kmer" else DNA
    build_method(method, modality, **method_options)


def _probe_possible(dataset: SequenceSet, train: np.ndarray) -> bool:
    """Whether the linear probe can be scored: labels of two classes or more, a test split,
    and two classes or more among the train split's labels. Said before training, not
    found after it; given labels ask for a score, so each reason not to score one is
    warned of (a metrics.json with an accuracy of null would not say why)."""
    if dataset.labels is None:
        return False
    if len(dataset.classes) < 2:
        logger.warning("every sequence has the label %r: no linear probe is scored (it needs "
                       "two classes)", dataset.labels[0])  # fmt: skip
        return False
    if not (~train).any():
        logger.warning("no sequence is in the test split: no linear probe is scored")
        return False
    classes = {label for label, kept in zip(dataset.labels, train) if kept}
    if len(classes) < 2:
        logger.warning("the train split holds one class (%s): no linear probe is scored",
                       ", ".join(map(repr, sorted(classes))) or "none")  # fmt: skip
        return False
    return True


def _dna_model(
    sequences: SequenceSet, encoder: str, dim: int | None, max_len: int | None, k: int | None
) -> EmbeddingModel:
    """An untrained DNA model whose input recipe is fitted on ``sequences``."""
    if encoder == "kmer":
        recipe, _ = KmerEncoding.fit(sequences, DEFAULT_K if k is None else k)
        logger.info("sequences read as counts of their %d %d-mers", recipe.n_features, recipe.k)
        return EmbeddingModel.for_kmers(recipe, dim)
    encoding = SequenceEncoding.fit(sequences, max_len)
    logger.info("sequences one-hot encoded in a window of %d bp", encoding.max_len)
    return EmbeddingModel.for_dna(encoding, encoder, dim)


def embed_dna(
    sequences: str | os.PathLike | SequenceSet | SequencesLike,
    model: EmbeddingModel | str | os.PathLike,
    device: str = "auto",
) -> ad.AnnData:
    """Embed sequences with a saved DNA model (or its folder): a FASTA/FASTQ/CSV/TSV/TXT
    path, a SequenceSet, or what :meth:`SequenceSet.of` takes (a list of sequences or
    SeqRecords, a dict / pandas Series of them by name, a DataFrame with a ``seq`` column).
    Returns an AnnData of the sequences (obs_names their ids) with ``obsm["X_diffaug"]`` and
    ``uns["diffaug"]["params"]``."""
    model = _load(model, "dna")
    if not isinstance(sequences, SequenceSet | str | os.PathLike):  # a list, a Series
        sequences = SequenceSet.of(sequences)
    with naming(None if isinstance(sequences, SequenceSet) else sequences):
        if not isinstance(sequences, SequenceSet):
            sequences = read_sequence_file(sequences)
        if not len(sequences):
            raise InputError("no sequences to embed")
        adata = sequences_adata(sequences, model.embed(sequences, device))
        # after embed checked every sequence: errors come alone
        model.recipe.warn_cropped(sequences)
    _record_params(adata, model, **model.recipe.summary())
    return adata


def embed_dna_file(
    path: str | os.PathLike,
    output: str | os.PathLike,
    model: EmbeddingModel | str | os.PathLike,
    device: str = "auto",
) -> ad.AnnData:
    """:func:`embed_dna` of a sequence file, written atomically to ``output`` (an .h5ad);
    returns the embedded AnnData."""
    check_output(output, "an .h5ad file", H5AD_SUFFIXES)
    adata = embed_dna(path, model, device)
    if distributed.is_main():  # launched by torchrun: rank 0 writes
        write_h5ad_atomic(adata, output)
    return adata


def augment(
    data: ad.AnnData | SequenceSet | Sequence[str] | Mapping[str, str] | str | os.PathLike,
    model: EmbeddingModel | str | os.PathLike,
    n: int = 1,
    seed: int = 0,
    device: str = "auto",
    *,
    layer: str | None = None,
    align_genes: bool = False,
) -> ad.AnnData | SequenceSet:
    """``n`` generated positives per input item from a DiffAug model.

    Cells → an AnnData over the model's genes, values on the scale the model was trained on
    (log1p-normalised, Pearson residuals, or the input's own, named in
    ``uns["diffaug"]["params"]["normalisation"]``; points of its 50-component principal
    manifold, so without cell-level noise outside it), obs copied from the source cell plus
    ``source`` and ``copy``.
    Sequences (a path, a SequenceSet, or sequences as :func:`embed_dna` takes them) → a
    SequenceSet of valid A/C/G/T sequences named ``ID-augK``.
    ``layer`` and ``align_genes`` (cells) read the input as :func:`embed` does with a model.
    Each positive is conditioned on the trained encoder's embedding of its source; the
    generator last learned from the embeddings at the start of the final round, which the
    round's contrastive epochs then moved a little (on pbmc68k_reduced, mean cosine 0.98).
    """
    if not isinstance(data, ad.AnnData | SequenceSet | str | os.PathLike):  # a list, a Series
        data = SequenceSet.of(data)
    source = data if isinstance(data, str | os.PathLike) else None
    with naming(source):
        if isinstance(data, str | os.PathLike):
            data = read_h5ad(data) if _holds_cells(data) else read_sequence_file(data)
    if isinstance(data, ad.AnnData) and data.isbacked:
        data = data.to_memory()  # the positives are built in memory anyway
    if (data.n_obs if isinstance(data, ad.AnnData) else len(data)) == 0:
        kind = "cells" if isinstance(data, ad.AnnData) else "sequences"
        raise InputError(f"no {kind} to augment")  # the file readers say so for the CLI
    if isinstance(data, SequenceSet) and (layer is not None or align_genes):
        raise InputError("--layer and --align-genes apply to cells (.h5ad), not sequences")
    with naming(model if isinstance(model, str | os.PathLike) else None):
        model = _load(model, "expression" if isinstance(data, ad.AnnData) else "dna")
        model.check_generates()  # named after the model folder, not the input
    with naming(source):
        generated = model.augment(
            data, n, seed, device, align_genes=align_genes, layer=layer
        ).numpy()
    if isinstance(data, SequenceSet):
        model.recipe.warn_cropped(data)  # after the sequences were checked: errors come alone
    copies = np.repeat(np.arange(n), len(data) if isinstance(data, SequenceSet) else data.n_obs)
    if isinstance(data, SequenceSet):
        sources, ids = np.tile(np.arange(len(data)), n), unique_ids(data)
        names = [f"{ids[i]}-aug{k}" for i, k in zip(sources, copies)]
        return SequenceSet(names, one_hot_decode(generated))
    recipe = model.recipe
    replaced = [column for column in ("source", "copy") if column in data.obs]
    if replaced:
        logger.warning("augment writes its own obs %s over the input's column of that name",
                       " and ".join(map(repr, replaced)))  # fmt: skip
    obs = pd.concat([data.obs] * n)
    obs = obs.assign(source=obs.index.astype(str), copy=copies)
    obs.index = [f"{name}-aug{k}" for name, k in zip(obs["source"], copies)]
    values = generated * recipe.std + recipe.mean
    augmented = ad.AnnData(values.astype(np.float32), obs=obs, var=pd.DataFrame(index=recipe.genes))
    _record_params(augmented, model, normalisation=recipe.normalisation_name)
    return augmented


def _holds_cells(path: str | os.PathLike) -> bool:
    """Whether :func:`augment` reads ``path`` as cells (an .h5ad) or as sequences."""
    return Path(path).name.lower().endswith(H5AD_SUFFIXES)


def augment_file(
    path: str | os.PathLike,
    output: str | os.PathLike,
    model: EmbeddingModel | str | os.PathLike,
    n: int = 1,
    seed: int = 0,
    device: str = "auto",
    *,
    layer: str | None = None,
    align_genes: bool = False,
) -> int:
    """:func:`augment` from a file to ``output``, an .h5ad for cells or FASTA for sequences,
    written atomically; returns the number of generated positives."""
    if _holds_cells(path):
        check_output(output, "an .h5ad file", H5AD_SUFFIXES, source=path)
    else:
        check_output(output, "FASTA", FASTA_SUFFIXES, source=path)
    generated = augment(path, model, n, seed, device, layer=layer, align_genes=align_genes)
    if not distributed.is_main():  # launched by torchrun: rank 0 writes
        return len(generated)
    if isinstance(generated, SequenceSet):
        write_fasta(generated, output)
    else:
        write_h5ad_atomic(generated, output)
    return len(generated)
