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

import csv
import gzip
import itertools
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from Bio import SeqIO
from Bio.Seq import MutableSeq, Seq
from Bio.SeqRecord import SeqRecord

from .._errors import InputError, counted, naming, reason, shown, whole_number
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


SequencesLike = Iterable[str | Seq | SeqRecord] | Mapping[str, str] | pd.Series | pd.DataFrame
"""Sequences in memory as :meth:`SequenceSet.of` takes them."""


@dataclass
class SequenceSet:
    """Sequences with optional labels and train/test split, as read from one source.

    Checked when made, whatever made it: a missing sequence (None, NaN, pandas' NA) or an
    empty one is refused, not read as the letters "nan" or as pure padding; a Bio.Seq
    becomes its letters. Labels are kept as text, so that 0 and "0" are one class and the
    class names can be written as JSON; a missing or empty label is refused rather than
    becoming a class of its own. Splits are ``train`` or ``test`` (any case)."""

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
        self.ids = [str(name) for name in self.ids]
        self.sequences = [_text(value, name) for name, value in zip(self.ids, self.sequences)]
        missing = [name for name, value in zip(self.ids, self.sequences) if value is None]
        if missing:
            missing_count = counted(len(missing), "sequence", ("is", "are"))
            raise InputError(f"{missing_count} missing (None, NaN or NA): {shown(missing)}")
        empty = [name for name, sequence in zip(self.ids, self.sequences) if not sequence]
        if empty:
            raise InputError(f"{counted(len(empty), 'empty sequence')} (first: {empty[0]})")
        if self.labels is not None:
            labels = ["" if _missing(label) else str(label).strip() for label in self.labels]
            unlabelled = [name for name, label in zip(self.ids, labels) if not label]
            if unlabelled:
                without_label = counted(len(unlabelled), "sequence", ("has", "have"))
                raise InputError(
                    f"{without_label} an empty or missing (NA) label (first: "
                    f"{unlabelled[0]}); label every sequence, or give no labels to train "
                    "without them"
                )
            self.labels = labels
        if self.splits is not None:
            self.splits = ["" if _missing(split) else str(split).strip().lower()
                           for split in self.splits]  # fmt: skip
            unknown = set(self.splits) - {"train", "test"}
            if unknown:
                raise InputError(f"split values must be train or test, found {sorted(unknown)}")

    @classmethod
    def of(cls, sequences: SequencesLike) -> SequenceSet:
        """Sequences named: a list (seq0, seq1, …; a SeqRecord by its id), a dict or pandas
        Series (by its keys or index), or a DataFrame with a ``seq`` column and optionally
        ``id``, ``label`` and ``split``, as a CSV file has them (without ``id``, named by its
        index)."""
        if isinstance(sequences, pd.DataFrame):
            return _from_table(sequences)
        if isinstance(sequences, str | bytes):  # would be read as one sequence per letter
            raise InputError("give a list of sequences, not one string")
        if isinstance(sequences, Mapping | pd.Series):
            named = list(sequences.items())
        else:
            named = [(item.id, item.seq) if isinstance(item, SeqRecord) else (f"seq{i}", item)
                     for i, item in enumerate(sequences)]  # fmt: skip
        return cls([str(name) for name, _ in named], [sequence for _, sequence in named])

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


def _missing(value: object) -> bool:
    """Whether ``value`` is None, NaN or pandas' NA: what a table or Series leaves empty."""
    return pd.api.types.is_scalar(value) and bool(pd.isna(value))


def _text(value: object, name: str) -> str | None:
    """A sequence's letters (a Bio.Seq's too), or None when it is missing; any other type is
    an error naming the record, not its ``str()`` read as letters."""
    if isinstance(value, str):
        return value
    if isinstance(value, Seq | MutableSeq):
        return str(value)
    if _missing(value):
        return None
    raise InputError(
        f"sequence {name} is a {type(value).__name__}: give sequences as text (str), "
        "Bio.Seq or Bio.SeqRecord objects, or a DataFrame with a 'seq' column"
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


def _memory_bytes() -> int | None:
    """This machine's physical memory, where the system says (POSIX); None elsewhere."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def one_hot_encode(
    sequences: Sequence[str], max_len: int, ids: Sequence[str] | None = None
) -> np.ndarray:
    """Encode sequences as float32 ``(N, 4, max_len)`` by the module's rule (centred window)."""
    if max_len < 1:
        raise InputError(f"--max-len must be positive, got {max_len}")
    needed, memory = len(sequences) * 4 * max_len * np.float32().itemsize, _memory_bytes()
    if memory is not None and needed > memory:  # np.zeros would not fail: the OS kills later
        raise InputError(
            f"one-hot encoding {len(sequences)} sequences in a window of {max_len} bp needs "
            f"{needed / 2**30:.3g} GiB, more than this machine's {memory / 2**30:.3g} GiB of "
            "memory: pass a smaller --max-len"
        )
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


def _suffixes(path: Path) -> list[str]:
    return [s.lower() for s in path.suffixes if s.lower() != ".gz"]


def _kind(path: Path) -> str:
    suffixes = _suffixes(path)
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
        "CSV/TSV with a 'seq' column, a .txt of one sequence a line, or a one-hot tensor "
        "(.pt/.npy), optionally .gz"
    )


def read_sequence_file(path: str | os.PathLike) -> SequenceSet:
    """Read FASTA/FASTQ (plain or .gz), a CSV/TSV with ``seq[,label][,split][,id]`` columns,
    a .txt holding either such a table (tab, comma or semicolon separated) or one sequence a
    line, or a one-hot ``(N, 4, L)`` tensor saved with torch or NumPy."""
    path = check_readable(path)
    kind = _kind(path)
    with naming(path):
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
            raise InputError(
                f"{path}: cannot be read as {kind} ({reason(error)}){_misnamed(path, kind)}"
            ) from error
    if len(result) == 0:
        raise InputError(f"{path}: holds no sequences")
    return result


_MARKED = {">": ("fasta", "FASTA", ".fa or .fasta"), "@": ("fastq", "FASTQ", ".fq or .fastq")}
"""A file's first character → the format it marks, its name, the suffixes to give it."""


def _misnamed(path: Path, kind: str) -> str:
    """Advice, when a file that failed to read as ``kind`` starts as FASTA or FASTQ records
    do, to name it so (Biopython's own error, about comments, does not say)."""
    try:
        with _open_text(path) as handle:
            first = handle.read(4096).lstrip()[:1]
    except (OSError, ValueError, EOFError):
        return ""
    marked = _MARKED.get(first)
    if marked is None or marked[0] == kind:
        return ""
    return f"; it looks like {marked[1]}: name it {marked[2]}"


def _read_seqio(path: Path, kind: str) -> SequenceSet:
    with _open_text(path) as handle:
        records = list(SeqIO.parse(handle, kind))
    return SequenceSet([r.id for r in records], [str(r.seq) for r in records])


TXT_LAYOUT = (
    "a .txt file holds one sequence a line, or a table with a header line naming a 'seq' "
    "column, separated by tabs, commas or semicolons"
)


def _table_layout(path: Path) -> tuple[str, bool]:
    """A sequence table's separator, and whether its first line is a header. The suffix
    says it for .csv and .tsv (header required); a .txt says neither, so its separator is
    sniffed among tab, comma and semicolon (csv.Sniffer, over its first lines), and a .txt
    of one column is bare sequences, one a line, unless its first line is the header seq."""
    suffixes = _suffixes(path)
    if ".tsv" in suffixes:
        return "\t", True
    if suffixes[-1] != ".txt":
        return ",", True
    with _open_text(path) as handle:
        sample = "".join(itertools.islice(handle, 50))
    try:
        return csv.Sniffer().sniff(sample, delimiters=",\t;").delimiter, True
    except csv.Error:  # no separator used the same number of times on every line
        pass
    if any(separator in sample for separator in ",\t;"):
        raise InputError(f"{path}: cannot tell how its columns are separated; {TXT_LAYOUT}")
    first = next((line.strip() for line in sample.splitlines() if line.strip()), "")
    if first == "seq":
        return ",", True
    hint = _misnamed(path, "table")
    if hint:
        raise InputError(f"{path}: not a table of sequences{hint}")
    letters = np.frombuffer(first.encode("ascii", "replace"), np.uint8)
    if np.isnan(_TABLE[letters]).any():  # outside the IUPAC alphabet: a header, but whose?
        raise InputError(
            f"{path}: the first line is neither a sequence nor the header 'seq'; {TXT_LAYOUT}"
        )
    return ",", False


def _read_table(path: Path) -> SequenceSet:
    separator, header = _table_layout(path)
    # "id, seq, label" (spaces after the separators) is read as "id,seq,label"; pandas'
    # missing-value markers (NA, NaN, an empty field) are missing, except in ids
    try:
        table = pd.read_csv(path, sep=separator, header=0 if header else None,
                            names=None if header else ["seq"], skipinitialspace=True,
                            dtype=dict.fromkeys(("seq", "label", "split"), str),
                            converters={"id": str})  # fmt: skip
    except pd.errors.EmptyDataError:  # nothing, not even a header
        return SequenceSet([], [])
    table.index = pd.Index([f"seq{i}" for i in range(len(table))])
    return _from_table(table)


def _from_table(table: pd.DataFrame) -> SequenceSet:
    """The sequences of a table's ``seq`` column, with its ``label``, ``split`` and ``id``
    columns if it has them (else named by its index)."""
    if "seq" not in table.columns:
        raise InputError(
            f"no 'seq' column (columns: {shown(table.columns)}); a table needs a header line "
            "naming a 'seq' column, and optionally label, split and id"
        )
    ids = table["id"] if "id" in table.columns else table.index
    sequences = [value.strip() if isinstance(value, str) else value for value in table["seq"]]
    labels, splits = (table[name].tolist() if name in table.columns else None
                      for name in ("label", "split"))  # fmt: skip
    return SequenceSet([str(name) for name in ids], sequences, labels, splits)


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


OUTLIER_FACTOR = 10
"""How many times the length 95% of the sequences stay within the longest may be before a
default window (the longest sequence) is warned of."""


@dataclass
class SequenceEncoding:
    """The DNA counterpart of ExpressionPreprocessing: the window width every sequence is
    centred in (saved with a model so new sequences are encoded the same way)."""

    max_len: int

    @classmethod
    def fit(cls, sequences: SequenceSet, max_len: int | None = None) -> SequenceEncoding:
        """``max_len`` defaults to the longest sequence; longer ones are centre-cropped.

        A default window that a few sequences stretch far beyond the rest (over
        ``OUTLIER_FACTOR`` times the length 95% of them stay within) is kept, since every
        base may be wanted, but warned of: every other sequence is then mostly padding,
        and the encoder's memory and time grow with the window, so one 200 kb sequence among
        100 bp ones ends in running out of memory. The warning names the --max-len that
        fits the rest. An array that cannot fit at all is refused by :func:`one_hot_encode`.
        """
        if max_len is None:
            lengths = np.array([len(s) for s in sequences.sequences])
            max_len = int(lengths.max())
            typical = int(np.percentile(lengths, 95, method="lower"))
            if max_len > OUTLIER_FACTOR * typical:
                logger.warning(
                    "the one-hot window is %d bp, the length of the longest sequence (%s), "
                    "over %d× the %d bp that 95%% of the sequences stay within; every "
                    "sequence is padded to it, which costs memory and time in proportion: "
                    "pass --max-len %d (or so) to centre-crop the few long ones instead",
                    max_len, sequences.ids[int(lengths.argmax())], OUTLIER_FACTOR, typical,
                    typical,
                )  # fmt: skip
        first = sequences.sequences[0].upper() if len(sequences) else ""
        if len(sequences) > 1 and all(s.upper() == first for s in sequences.sequences):
            raise InputError(
                f"all {len(sequences)} sequences are the same; there is nothing to embed"
            )  # as the k-mer and cells recipes say; training would give one point for all
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
                "%s longer than the %d-base window (centre-cropped)",
                counted(cropped, "sequence", ("is", "are")), self.max_len,
            )  # fmt: skip

    def transform(self, sequences: SequenceSet) -> np.ndarray:
        return one_hot_encode(sequences.sequences, self.max_len, sequences.ids)

    def to_dict(self) -> dict:
        return {"alphabet": ALPHABET, "max_len": self.max_len, "window": "centred"}

    @classmethod
    def from_dict(cls, config: dict) -> SequenceEncoding:
        return cls(max_len=int(config["max_len"]))
