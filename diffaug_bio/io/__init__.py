"""Readers and writers: AnnData files, DNA sequence files and Genomic Benchmarks datasets."""

from .expression import ExpressionPreprocessing
from .genomic_benchmarks import load_dna_dataset, read_benchmark_folder
from .h5ad import read_h5ad, write_h5ad_atomic
from .kmers import KmerEncoding, kmer_counts
from .sequences import (
    SequenceEncoding,
    SequenceSet,
    one_hot_decode,
    one_hot_encode,
    read_sequence_file,
    write_fasta,
)
from .tables import read_feature_table

__all__ = [
    "ExpressionPreprocessing",
    "KmerEncoding",
    "SequenceEncoding",
    "SequenceSet",
    "kmer_counts",
    "load_dna_dataset",
    "one_hot_decode",
    "one_hot_encode",
    "read_benchmark_folder",
    "read_feature_table",
    "read_h5ad",
    "read_sequence_file",
    "write_fasta",
    "write_h5ad_atomic",
]
