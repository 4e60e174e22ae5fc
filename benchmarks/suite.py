"""The benchmark suite's importable core: datasets, one task per (dataset, method, seed), metrics.

Each task runs in a fresh child process (``run.py --task``) so that its wall time and peak
RSS are its own. Labels are used only to score embeddings, never to train them.
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data"
"""``../shared/data`` beside the repository, where the development machines keep it."""
DATA_FILES = {
    "mouse_bladder": "mouse_bladder_2100.h5ad",
    "nontata": "genomic_benchmarks/human_nontata_promoters",
}
"""The named datasets read from ``--data``, and where under it (pbmc68k_reduced ships with
scanpy)."""
PEERS_CELLS = ("pca50", "scvi")
"""``scvi`` runs only where scvi-tools is installed (``.[bench]``) and X holds raw counts."""
PEERS_DNA = ("kmer4", "kmer6", "kmer6:pca=128")
"""``kmerK``: logistic regression on every k-mer frequency; ``kmerK:pca=D``: on their first D
principal components fitted on the train split (the width of ``train-dna``'s embedding)."""


class TaskFailed(RuntimeError):
    """A task's child process ended with an error (its stderr's tail is the message)."""


@dataclass
class Task:
    dataset: str  # "mouse_bladder", "pbmc68k_reduced", "nontata", "cells:PATH:LABEL", "dna:PATH"
    method: str  # a package method spec ("diffaug", "diffaug:replace_fraction=0"), or a peer
    seed: int
    epochs: int | None
    data_root: str
    embedding_dir: str | None = None
    """Where to save the embedding and labels (``.npz``) for the figures; None: not saved."""
    max_sequences: int | None = None
    """DNA: use a random sample of this many sequences (their train/test split kept), the
    same sample for every method; None: all."""

    def embedding_path(self) -> Path | None:
        if self.embedding_dir is None:
            return None
        return Path(self.embedding_dir) / embedding_file(self.dataset, self.method)


def dataset_title(dataset: str) -> str:
    """A short name for tables and figures: ``cells:/x/lung.h5ad:cell_type`` -> ``lung``."""
    if ":" not in dataset:
        return dataset
    return Path(dataset.split(":")[1]).stem


def embedding_file(dataset: str, method: str) -> str:
    """A file name for one (dataset, method) embedding, safe for paths given in specs."""
    return re.sub(r"[^A-Za-z0-9_.=-]", "_", f"{dataset}__{method}") + ".npz"


def parse_method(spec: str) -> tuple[str, dict[str, object]]:
    """``"diffaug:replace_fraction=0;rounds=3"`` -> ``("diffaug", {...})``; JSON values."""
    name, _, settings = spec.partition(":")
    options: dict[str, object] = {}
    for setting in filter(None, settings.split(";")):
        key, _, value = setting.partition("=")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return name, options


def dataset_kind(dataset: str) -> str:
    return "dna" if dataset == "nontata" or dataset.startswith("dna:") else "cells"


def check_method(spec: str, kind: str) -> None:
    """Refuse a method spec the task would refuse (unknown method or option, a bad value),
    before any task runs; the peers are run by name."""
    from diffaug_bio import tl

    name, options = parse_method(spec)
    if re.fullmatch(r"kmer\d+", name):
        components = options.get("pca", 1)
        if set(options) - {"pca"} or type(components) is not int or components < 1:
            raise ValueError(f"{spec}: a k-mer peer takes one option, pca=<components ≥ 1>")
        return
    if name in PEERS_CELLS:
        return
    tl.check_method_options(name, kind, **options)


def _load_cells(task: Task):
    import scanpy as sc

    if task.dataset == "pbmc68k_reduced":
        return sc.datasets.pbmc68k_reduced(), "bulk_labels"
    if task.dataset == "mouse_bladder":
        return sc.read_h5ad(Path(task.data_root) / "mouse_bladder_2100.h5ad"), "cell_type"
    _, path, label = task.dataset.split(":", 2)
    return sc.read_h5ad(path), label


def _dna_path(task: Task) -> Path:
    if task.dataset == "nontata":
        return Path(task.data_root) / "genomic_benchmarks" / "human_nontata_promoters"
    return Path(task.dataset.split(":", 1)[1])


def scvi_applicable(dataset: str, data_root: str) -> bool:
    """scVI models raw counts; skip it without scvi-tools or on processed data (pbmc68k)."""
    import importlib.util

    from diffaug_bio.io.expression import get_matrix, looks_like_counts

    if dataset_kind(dataset) == "dna" or importlib.util.find_spec("scvi") is None:
        return False
    adata, _ = _load_cells(Task(dataset, "scvi", 0, None, data_root))
    return looks_like_counts(get_matrix(adata, None))


def scvi_embedding(adata, seed: int, epochs: int | None = None) -> np.ndarray:
    """scvi-tools defaults (10 latent dims; its own epoch rule unless ``epochs`` is given, as
    the smoke suite does) on the 2,000 HVG counts."""
    import scanpy as sc
    import scvi

    scvi.settings.seed = seed
    adata = adata.copy()
    adata.layers["counts"] = adata.X.copy()
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    sc.pp.highly_variable_genes(adata, n_top_genes=2000, flavor="seurat_v3", layer="counts")
    adata = adata[:, adata.var["highly_variable"]].copy()
    scvi.model.SCVI.setup_anndata(adata, layer="counts")
    model = scvi.model.SCVI(adata)
    model.train(max_epochs=epochs, accelerator="cpu", enable_progress_bar=False)
    return model.get_latent_representation()


def _save_embedding(task: Task, embedding: np.ndarray, labels: np.ndarray) -> None:
    path = task.embedding_path()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        labels = np.asarray(labels, dtype=str)  # not object dtype: loads without pickle
        np.savez_compressed(path, embedding=embedding.astype(np.float32), labels=labels)


def _throughput(model, data, n_items: int) -> float:
    """Inference items per second of a trained model on raw input, preparation included
    (what ``embed --model`` costs a user)."""
    start = time.perf_counter()
    model.embed(data, "cpu")
    return n_items / (time.perf_counter() - start)


def _cells_task(task: Task) -> dict[str, float]:
    from diffaug_bio import tl
    from diffaug_bio.baselines import pca_embedding
    from diffaug_bio.evaluate import knn_accuracy, label_silhouette, leiden_scores, logreg_accuracy

    adata, label = _load_cells(task)
    labels = adata.obs[label].astype(str).to_numpy()
    start = time.perf_counter()
    model = None
    method, options = parse_method(task.method)
    if method == "pca50":  # options too: "pca50:n_top_genes=5000" is the peer on more genes
        embedding = pca_embedding(adata, **options)
    elif method == "scvi":
        embedding = scvi_embedding(adata, task.seed, task.epochs)
    else:
        model = tl.embed(adata, method, epochs=task.epochs, seed=task.seed, device="cpu", **options)
        embedding = adata.obsm["X_diffaug"]
    metrics = {"train_seconds": time.perf_counter() - start}
    if model is not None:
        metrics["inference_items_per_s"] = _throughput(model, adata, adata.n_obs)
    _save_embedding(task, embedding, labels)
    leiden = leiden_scores(embedding, labels, seed=task.seed)
    return {
        "knn15_accuracy": knn_accuracy(embedding, labels),
        "logreg_accuracy": logreg_accuracy(embedding, labels),
        "leiden_ari": leiden["ari"],
        "leiden_nmi": leiden["nmi"],
        "silhouette": label_silhouette(embedding, labels, seed=task.seed),
        **metrics,
    }


def _dna_task(task: Task) -> dict[str, float]:
    from diffaug_bio import tl
    from diffaug_bio.baselines import kmer_frequencies, kmer_principal_components
    from diffaug_bio.evaluate import linear_probe
    from diffaug_bio.io import load_dna_dataset

    sequences = load_dna_dataset(str(_dna_path(task)))
    if task.max_sequences and len(sequences) > task.max_sequences:
        chosen = np.random.default_rng(0).choice(len(sequences), task.max_sequences, replace=False)
        sequences = sequences.subset(np.isin(np.arange(len(sequences)), chosen))
    labels = np.asarray(sequences.labels)
    start = time.perf_counter()
    method, options = parse_method(task.method)
    if method.startswith("kmer"):
        k = int(method[4:])
        train = tl.probe_splits(sequences, task.seed) == "train"  # the split train_dna uses
        if "pca" in options:
            embedding = kmer_principal_components(sequences.sequences, k, options["pca"], train)
        else:
            embedding = kmer_frequencies(sequences.sequences, k)
        accuracy = linear_probe(embedding[train], labels[train], embedding[~train], labels[~train])
        metrics = {"train_seconds": time.perf_counter() - start}
    else:
        result = tl.train_dna(sequences, method=method, epochs=task.epochs, seed=task.seed,
                              device="cpu", **options)  # fmt: skip
        accuracy = result.metrics["linear_probe_accuracy"]
        embedding = result.adata.obsm["X_diffaug"]
        metrics = {
            "train_seconds": time.perf_counter() - start,
            "inference_items_per_s": _throughput(result.model, sequences, len(sequences)),
        }
    _save_embedding(task, embedding, labels)
    return {"linear_probe_accuracy": accuracy, **metrics}


def run_task(task: Task) -> dict[str, float]:
    """Run one task in this process; add wall seconds and this process's peak RSS."""
    start = time.perf_counter()
    metrics = _dna_task(task) if dataset_kind(task.dataset) == "dna" else _cells_task(task)
    metrics["wall_s"] = time.perf_counter() - start
    metrics["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return metrics


def run_in_child(task: Task) -> dict[str, float]:
    """Run ``task`` in a fresh Python process (clean memory figures); return its metrics."""
    command = [sys.executable, str(HERE / "run.py"), "--task", json.dumps(asdict(task))]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    completed = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if completed.returncode != 0:
        raise TaskFailed(f"task {task} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])
