"""Finding DNA training data: a Genomic Benchmarks name, a folder in its layout, or a file.

Cache layout (the genomic-benchmarks package's own): ``ROOT/NAME/{train,test}/CLASS/ID.txt``,
one sequence per file; class order is the sorted folder names.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

from .._errors import InputError, reason
from .sequences import SequenceSet, read_sequence_file

logger = logging.getLogger("diffaug_bio")

DEFAULT_CACHE = Path.home() / ".genomic_benchmarks"
SPLITS = ("train", "test")


def read_benchmark_folder(folder: str | os.PathLike) -> SequenceSet:
    """Read ``folder/{train,test}/CLASS/*.txt`` into one SequenceSet with labels and splits."""
    folder = Path(folder)
    missing = [split for split in SPLITS if not (folder / split).is_dir()]
    if missing:
        raise InputError(
            f"{folder}: not a Genomic Benchmarks folder (no {' or '.join(missing)}/ inside; "
            "expected NAME/{train,test}/CLASS/ID.txt)"
        )
    ids, sequences, labels, splits = [], [], [], []
    for split in SPLITS:
        classes = sorted(p.name for p in (folder / split).iterdir() if p.is_dir())
        if len(classes) < 2:
            raise InputError(
                f"{folder / split}: needs at least two class folders, found {len(classes)}"
            )
        for label in classes:
            for file in sorted((folder / split / label).glob("*.txt")):
                sequence = file.read_text().strip()
                if not sequence:
                    raise InputError(f"{file}: empty sequence")
                ids.append(f"{split}/{label}/{file.stem}")
                sequences.append(sequence)
                labels.append(label)
                splits.append(split)
    for split in SPLITS:
        if split not in splits:
            raise InputError(f"{folder / split}: holds no sequence files (*.txt)")
    train_classes = {label for label, split in zip(labels, splits) if split == "train"}
    test_classes = {label for label, split in zip(labels, splits) if split == "test"}
    if train_classes != test_classes:
        raise InputError(f"{folder}: train and test splits have different classes")
    return SequenceSet(ids, sequences, labels, splits)


def load_dna_dataset(dataset: str, gb_root: str | os.PathLike | None = None) -> SequenceSet:
    """Resolve ``dataset`` as a path (folder or sequence file) or a Genomic Benchmarks name.

    A name is looked up under ``gb_root``, then ``~/.genomic_benchmarks``, then downloaded
    through the genomic-benchmarks package when it is installed and the network answers.
    """
    path = Path(dataset).expanduser()
    if path.exists():
        return read_benchmark_folder(path) if path.is_dir() else read_sequence_file(path)
    if path.suffix or len(path.parts) > 1:  # a path, not a name: names have neither
        raise InputError(f"{dataset}: no such file or folder")
    roots = [Path(gb_root).expanduser()] if gb_root is not None else []
    roots.append(DEFAULT_CACHE)
    if gb_root is not None and not roots[0].is_dir():
        raise InputError(f"--gb-root {gb_root}: no such folder")
    for root in roots:
        if (root / dataset).is_dir():
            logger.info("reading Genomic Benchmarks dataset %s from %s", dataset, root)
            return read_benchmark_folder(root / dataset)
    return read_benchmark_folder(_download(dataset, roots))


def _download(name: str, searched: list[Path]) -> Path:
    where = " or ".join(str(root) for root in searched)
    how = (
        f"put it at {searched[0]}/{name}/{{train,test}}/CLASS/ID.txt (or pass --gb-root DIR), "
        "or give a folder, FASTA or CSV path"
    )
    try:
        from genomic_benchmarks.data_check import list_datasets
        from genomic_benchmarks.loc2seq import download_dataset
    except ImportError:
        raise InputError(
            f"dataset {name!r} not found under {where}, and the genomic-benchmarks package "
            f"is not installed to download it (pip install 'diffaug-bio[gb]'); {how}"
        ) from None
    known = list_datasets()
    if name not in known:
        raise InputError(
            f"{name!r} is neither a path nor a Genomic Benchmarks dataset "
            f"(known: {', '.join(sorted(known))})"
        )
    logger.info("downloading Genomic Benchmarks dataset %s to %s", name, DEFAULT_CACHE)
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(30)
    try:
        return Path(download_dataset(name, dest_path=DEFAULT_CACHE))
    except Exception as error:  # network failures surface as many exception types
        raise InputError(f"could not download dataset {name!r} ({reason(error)}); {how}") from error
    finally:
        socket.setdefaulttimeout(previous_timeout)
