"""DNA sequences: reading FASTA/FASTQ/CSV/one-hot files and the one-hot encoding rule.

Encoding rule (documented in the README):

* ``A C G T`` (any case; ``U`` reads as ``T``) become one-hot columns in that order;
* IUPAC ambiguity codes spread one unit evenly over the bases they stand for: ``N`` is
  ``(0.25, 0.25, 0.25, 0.25)``, ``R`` (A or G) is ``(0.5, 0, 0.5, 0)``, and so on;
* any other character is an error naming the record;
* every sequence is centred in a window of ``max_len`` positions: a longer one loses equal
  flanks (centre crop), a shorter one gets equal all-zero padding on both sides. Centring
  keeps a reverse complement centred too, and all-zero columns mean "no base here".
"""

from __future__ import annotations

import gzip
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from Bio import SeqIO

from .._errors import InputError, reason, whole_number
from .files import atomic_replacement, check_readable

logger = logging.getLogger("diffaug_bio")

ALPHABET = "ACGT"
FASTA_SUFFIXES = (".fa", ".fasta", ".fna", ".fas", ".ffn", ".seq")
IUPAC = {
    "A": "A", "C": "C", "G": "G", "T": "T", "U": "T",
    "R": "AG", "Y": "CT", "S": "CG", "W": "AT", "K": "GT", "M": "AC",
    "B": "CGT", "D": "AGT", "H": "ACT", "V": "ACG", "N": "ACGT",
}  # fmt: skip


def _lookup_table() -> np.ndarray:
    """A 256 × 4 table from ASCII byte to one-hot column; NaN rows mark invalid characters."""
    table = np.full((256, 4), np.nan, dtype=np.float32)
    for code, bases in IUPAC.items():
        column = np.zeros(4, dtype=np.float32)
        for base in bases:
            column[ALPHABET.index(base)] = 1.0 / len(bases)
        table[ord(code)] = column
        table[ord(code.lower())] = column
    return table


_TABLE = _lookup_table()
_CODE_OF_BASES = {frozenset(bases): code for code, bases in IUPAC.items() if code != "U"}


def sequence_positions(one_hot: torch.Tensor, keepdim: bool = True) -> torch.Tensor:
    """Where one-hot sequences ``(N, 4, L)`` have a letter (a base, or an ambiguity code's
    shares), not padding, which is all zero: boolean ``(N, 1, L)``, or ``(N, L)``."""
    return one_hot.sum(1, keepdim=keepdim) > 0


def bases_one_hot(indices: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Base indices ``(N, L)`` (0–3: A, C, G, T) as one-hot columns ``(N, 4, L)``."""
    return torch.nn.functional.one_hot(indices, len(ALPHABET)).permute(0, 2, 1).to(dtype)


@dataclass
class SequenceSet:
    """Sequences with optional labels and train/test split, as read from one source."""

    ids: list[str]
    sequences: list[str]
    labels: list[str] | None = None
    splits: list[str] | None = None

    def __post_init__(self) -> None:
        for name in ("ids", "labels", "splits"):
            values = getattr(self, name)
            if values is not None and len(values) != len(self.sequences):
                raise InputError(
                    f"{len(self.sequences)} sequences but {len(values)} {name}: one each"
                )

    @classmethod
    def of(cls, sequences: Sequence[str] | Mapping[str, str] | pd.Series) -> SequenceSet:
        """Bare sequences: a list (named seq0, seq1, …), or a dict or pandas Series (named by
        its keys or index)."""
        if isinstance(sequences, Mapping | pd.Series):
            named = list(sequences.items())
            return cls([str(name) for name, _ in named], [str(s) for _, s in named])
        return cls([f"seq{i}" for i in range(len(sequences))], [str(s) for s in sequences])

    def __len__(self) -> int:
        return len(self.sequences)

    @property
    def classes(self) -> list[str] | None:
        """Label order: sorted class names (the Genomic Benchmarks convention)."""
        return None if self.labels is None else sorted(set(self.labels))

    def subset(self, mask: np.ndarray) -> SequenceSet:
        keep = np.flatnonzero(mask)

        def pick(values: list[str] | None) -> list[str] | None:
            return None if values is None else [values[i] for i in keep]

        return SequenceSet(
            pick(self.ids), pick(self.sequences), pick(self.labels), pick(self.splits)
        )


def _columns(sequence: str, name: str) -> np.ndarray:
    """The one-hot columns (L, 4) of ``sequence``; a character outside the IUPAC alphabet is
    an error naming the record."""
    codes = np.frombuffer(sequence.encode("ascii", errors="replace"), dtype=np.uint8)
    columns = _TABLE[codes]
    invalid = np.isnan(columns[:, 0])
    if invalid.any():
        bad = sorted({sequence[i] for i in np.flatnonzero(invalid)})
        raise InputError(
            f"sequence {name} holds characters outside the IUPAC DNA alphabet: {''.join(bad)!r}"
        )
    return columns


def check_alphabet(sequences: SequenceSet) -> None:
    """Refuse a character outside the IUPAC alphabet, as one-hot encoding does: for readers
    (k-mer counting) that would otherwise skip it without a word."""
    for name, sequence in zip(sequences.ids, sequences.sequences):
        _columns(sequence, name)


def one_hot_encode(
    sequences: Sequence[str], max_len: int, ids: Sequence[str] | None = None
) -> np.ndarray:
    """Encode sequences as float32 ``(N, 4, max_len)`` by the module's rule (centred window)."""
    if max_len < 1:
        raise InputError(f"--max-len must be positive, got {max_len}")
    encoded = np.zeros((len(sequences), 4, max_len), dtype=np.float32)
    for row, sequence in enumerate(sequences):
        columns = _columns(sequence, ids[row] if ids is not None else f"#{row + 1}")
        start = max(0, (len(columns) - max_len) // 2)
        columns = columns[start : start + max_len]
        offset = (max_len - len(columns)) // 2
        encoded[row, :, offset : offset + len(columns)] = columns.T
    return encoded


def one_hot_decode(one_hot: np.ndarray | torch.Tensor) -> list[str]:
    """Decode ``(N, 4, L)`` back to strings: all-zero columns (padding) are dropped, exact
    one-hot columns give their base, even spreads give their IUPAC code, anything else its argmax.
    """
    if isinstance(one_hot, torch.Tensor):
        one_hot = one_hot.detach().cpu().numpy()
    one_hot = np.asarray(one_hot, dtype=np.float32)
    letters = np.array(list(ALPHABET))
    decoded = []
    for columns in one_hot.transpose(0, 2, 1):
        present = columns > 1e-6
        chars = letters[columns.argmax(axis=1)].astype(object)
        for position in np.flatnonzero(present.sum(axis=1) > 1):
            weights = columns[position][present[position]]
            if np.allclose(weights, weights[0], atol=1e-3):
                chars[position] = _CODE_OF_BASES[frozenset(letters[present[position]])]
        decoded.append("".join(chars[present.any(axis=1)]))
    return decoded


def write_fasta(sequences: SequenceSet, path: str | os.PathLike) -> None:
    """Write sequences as FASTA (60 columns), atomically (temporary file beside ``path``)."""
    with atomic_replacement(path) as temporary, open(temporary, "w") as handle:
        for name, sequence in zip(sequences.ids, sequences.sequences):
            lines = [sequence[i : i + 60] for i in range(0, len(sequence), 60)]
            handle.write(f">{name}\n" + "\n".join(lines) + "\n")


def _open_text(path: Path):
    return gzip.open(path, "rt") if path.suffix.lower() == ".gz" else open(path)


def _kind(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    last = suffixes[-1] if suffixes else ""
    if last in FASTA_SUFFIXES:
        return "fasta"
    if last in {".fq", ".fastq"}:
        return "fastq"
    if last in {".csv", ".tsv", ".txt"}:
        return "table"
    if last in {".pt", ".pth", ".npy"}:
        return "tensor"
    raise InputError(
        f"{path}: unknown sequence file type; use FASTA (.fa/.fasta), FASTQ (.fq/.fastq), "
        "CSV/TSV with a 'seq' column, or a one-hot tensor (.pt/.npy), optionally .gz"
    )


def read_sequence_file(path: str | os.PathLike) -> SequenceSet:
    """Read FASTA/FASTQ (plain or .gz), a CSV/TSV with ``seq[,label][,split][,id]`` columns,
    or a one-hot ``(N, 4, L)`` tensor saved with torch or NumPy."""
    path = check_readable(path)
    kind = _kind(path)
    try:
        if kind in {"fasta", "fastq"}:
            result = _read_seqio(path, kind)
        elif kind == "table":
            result = _read_table(path)
        else:
            result = _read_tensor(path)
    except InputError:
        raise
    except (OSError, ValueError, UnicodeDecodeError, EOFError, RuntimeError) as error:
        raise InputError(f"{path}: cannot be read as {kind} ({reason(error)})") from error
    if len(result) == 0:
        raise InputError(f"{path}: holds no sequences")
    empty = [name for name, sequence in zip(result.ids, result.sequences) if not sequence]
    if empty:
        raise InputError(f"{path}: {len(empty)} empty sequences (first: {empty[0]})")
    return result


def _read_seqio(path: Path, kind: str) -> SequenceSet:
    with _open_text(path) as handle:
        records = list(SeqIO.parse(handle, kind))
    return SequenceSet([r.id for r in records], [str(r.seq) for r in records])


def _read_table(path: Path) -> SequenceSet:
    separator = "\t" if ".tsv" in [s.lower() for s in path.suffixes] else ","
    # "id, seq, label" (spaces after the separators) is read as "id,seq,label"
    table = pd.read_csv(path, sep=separator, dtype=str, keep_default_na=False,
                        skipinitialspace=True)  # fmt: skip
    if "seq" not in table.columns:
        raise InputError(f"{path}: no 'seq' column (columns: {', '.join(map(str, table.columns))})")
    ids = table["id"].tolist() if "id" in table.columns else [f"seq{i}" for i in range(len(table))]
    labels = table["label"].str.strip().tolist() if "label" in table.columns else None
    if labels is not None and "" in labels:
        first = ids[labels.index("")]
        raise InputError(
            f"{path}: {labels.count('')} sequences have an empty label (first: {first}); label "
            "every sequence, or drop the label column to train without labels"
        )
    splits = None
    if "split" in table.columns:
        splits = table["split"].str.strip().str.lower().tolist()
        unknown = set(splits) - {"train", "test"}
        if unknown:
            raise InputError(f"{path}: split values must be train or test, found {sorted(unknown)}")
    return SequenceSet(ids, table["seq"].str.strip().tolist(), labels, splits)


def _read_tensor(path: Path) -> SequenceSet:
    if path.suffix.lower() == ".npy":
        array = np.load(path, allow_pickle=False)
    else:
        try:
            array = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # torch.load raises many types for what is not a tensor
            raise InputError(f"{path}: cannot be read as tensor ({reason(error)})") from error
        array = array.numpy() if isinstance(array, torch.Tensor) else np.asarray(array)
    if array.ndim != 3 or array.shape[1] != 4:
        raise InputError(f"{path}: a one-hot tensor must have shape (N, 4, L), got {array.shape}")
    sums = array.sum(axis=1)
    if (array < 0).any() or not np.all(np.isclose(sums, 1, atol=1e-3) | np.isclose(sums, 0)):
        raise InputError(f"{path}: columns must be one-hot (sum 1) or padding (sum 0)")
    sequences = one_hot_decode(array)
    return SequenceSet([f"seq{i}" for i in range(len(sequences))], sequences)


@dataclass
class SequenceEncoding:
    """The DNA counterpart of ExpressionPreprocessing: the window width every sequence is
    centred in (saved with a model so new sequences are encoded the same way)."""

    max_len: int

    @classmethod
    def fit(cls, sequences: SequenceSet, max_len: int | None = None) -> SequenceEncoding:
        """``max_len`` defaults to the longest sequence; longer ones are centre-cropped."""
        if max_len is None:
            max_len = max(len(s) for s in sequences.sequences)
        encoding = cls(max_len=whole_number("--max-len", max_len, 1))
        encoding.warn_cropped(sequences)
        return encoding

    @property
    def n_features(self) -> int:
        """0: the sequence encoders take one-hot windows of any length, no fixed count."""
        return 0

    def summary(self) -> dict:
        """How sequences became encoder input, as ``uns["diffaug"]["params"]`` records it."""
        return {"max_len": self.max_len}

    def warn_cropped(self, sequences: SequenceSet) -> None:
        """Say how many ``sequences`` lose their flanks to the window, if any do."""
        cropped = sum(len(s) > self.max_len for s in sequences.sequences)
        if cropped:
            logger.warning(
                "%d sequences longer than the %d-base window are centre-cropped",
                cropped, self.max_len,
            )  # fmt: skip

    def transform(self, sequences: SequenceSet) -> np.ndarray:
        return one_hot_encode(sequences.sequences, self.max_len, sequences.ids)

    def to_dict(self) -> dict:
        return {"alphabet": ALPHABET, "max_len": self.max_len, "window": "centred"}

    @classmethod
    def from_dict(cls, config: dict) -> SequenceEncoding:
        return cls(max_len=int(config["max_len"]))
