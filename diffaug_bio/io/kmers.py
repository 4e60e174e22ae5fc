"""DNA as k-mer counts: each sequence's k-mer spectrum, read the way a cell's gene counts are.

The input recipe of ``train-dna --encoder kmer``: a sequence becomes the counts of its 4^k
k-mers (over A/C/G/T, ``U`` read as ``T``; windows holding any other character are
skipped), which the expression recipe then normalises (normalize_total + log1p) and
standardises with the training sequences' statistics. Every k-mer is kept, none selected
as "highly variable": on non-TATA promoters the rare 7-mers carry the signal (capped at
the 5,000 most variable, the linear probe falls from 88.6 to 85.0%; benchmarks/RESULTS.md).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer

from .._errors import InputError, counted, shown, whole_number
from .expression import ExpressionPreprocessing
from .sequences import SequenceSet, check_alphabet

DEFAULT_K = 7
"""Measured on non-TATA promoters (warm-up only, fitted on every sequence): k = 5 / 6 / 7
give 83.1 / 86.5 / 88.6% (benchmarks/RESULTS.md)."""
K_RANGE = (3, 8)
"""Allowed k: below 3 a spectrum says little; above 8 the 4^k inputs outgrow memory."""


def kmer_names(k: int) -> list[str]:
    """The 4^k k-mers over ACGT in lexicographic order: the columns of :func:`kmer_counts`."""
    return ["".join(kmer) for kmer in itertools.product("ACGT", repeat=k)]


def kmer_counts(sequences: list[str], k: int) -> sparse.csr_matrix:
    """Counts (float32, sparse) of every k-mer, columns as :func:`kmer_names`; k-mers holding
    characters other than A/C/G/T (``U`` counts as ``T``) are skipped."""
    vocabulary = [name.lower() for name in kmer_names(k)]
    counter = CountVectorizer(analyzer="char", ngram_range=(k, k), vocabulary=vocabulary)
    dna = [sequence.lower().replace("u", "t") for sequence in sequences]
    return counter.transform(dna).astype(np.float32).tocsr()


@dataclass
class KmerEncoding:
    """The fitted recipe from sequences to a float32 sequences × 4^k encoder input."""

    k: int
    scaling: ExpressionPreprocessing
    """normalize_total + log1p + the training sequences' mean and sd per k-mer."""

    @classmethod
    def fit(cls, sequences: SequenceSet, k: int = DEFAULT_K) -> tuple[KmerEncoding, np.ndarray]:
        """Count ``sequences``' k-mers and fit the scaling on them; return recipe and output."""
        k = whole_number("--k", k, *K_RANGE)
        names = pd.Index(kmer_names(k))
        counts = _counts(sequences, k)
        if counts.shape[0] > 1 and (counts != counts[np.zeros(counts.shape[0], int)]).nnz == 0:
            raise InputError(
                f"all {counts.shape[0]} sequences have the same {k}-mer counts; "
                "there is nothing to embed"
            )  # else the cells' recipe would say "cells" and "genes"
        scaling, prepared = ExpressionPreprocessing.fit_rows(  # log1p: what was measured
            counts, names, n_top_genes=len(names), normalisation="log1p",
            source="the k-mer count matrix",
        )  # fmt: skip
        return cls(k, scaling), prepared

    @property
    def n_features(self) -> int:
        return len(self.scaling.genes)

    def summary(self) -> dict:
        """How sequences became encoder input, as ``uns["diffaug"]["params"]`` records it."""
        return {"k": self.k}

    def warn_cropped(self, sequences: SequenceSet) -> None:
        """Nothing to say: k-mer counts have no window, so no sequence is cropped."""

    def transform(self, sequences: SequenceSet) -> np.ndarray:
        counts = _counts(sequences, self.k, advice="remove them (the model's k is fixed)")
        return self.scaling.transform_rows(counts, np.arange(self.n_features))

    def to_dict(self) -> dict:
        return {"kind": "kmer counts", "k": self.k, **self.scaling.to_dict()}

    @classmethod
    def from_dict(cls, config: dict) -> KmerEncoding:
        k, scaling = int(config["k"]), ExpressionPreprocessing.from_dict(config)
        if scaling.n_features != 4**k:  # every k-mer over ACGT is kept; a config edited by hand
            raise ValueError(f"{scaling.n_features} k-mers recorded for k = {k}")
        return cls(k, scaling)


def _counts(
    sequences: SequenceSet, k: int, advice: str = "remove them or lower --k"
) -> sparse.csr_matrix:
    """:func:`kmer_counts`, refusing characters outside IUPAC (as the one-hot path does) and
    sequences with no k-mer to count (nothing to embed)."""
    check_alphabet(sequences)
    counts = kmer_counts(sequences.sequences, k)
    empty = np.flatnonzero(np.asarray(counts.sum(axis=1)).ravel() == 0)
    if len(empty):
        names = [sequences.ids[i] for i in empty]
        without_kmers = counted(len(empty), "sequence", ("holds", "hold"))
        raise InputError(
            f"{without_kmers} no {k}-mer of A/C/G/T (shorter than {k} bases, or "
            f"ambiguous bases only): {shown(names)}; {advice}"
        )
    return counts
