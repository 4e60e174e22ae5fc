"""Shared fixtures: small real data committed under tests/data (cut by make_fixtures.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import scanpy as sc

DATA = Path(__file__).parent / "data"


@pytest.fixture
def bladder_path() -> Path:
    """233 mouse bladder cells × 3,000 genes, raw counts, obs["cell_type"] (16 types)."""
    return DATA / "bladder_small.h5ad"


@pytest.fixture
def bladder(bladder_path):
    return sc.read_h5ad(bladder_path)


@pytest.fixture
def pbmc():
    """scanpy's bundled pbmc68k_reduced: already scaled, negative values, 765 genes."""
    return sc.datasets.pbmc68k_reduced()


@pytest.fixture
def nontata_dir() -> Path:
    """Non-TATA promoters in the Genomic Benchmarks layout: 80 train + 40 test sequences."""
    return DATA / "nontata_small"


@pytest.fixture
def promoters_fasta() -> Path:
    """40 promoter-task sequences (251 bp) as FASTA."""
    return DATA / "promoters_small.fa"


@pytest.fixture
def digest():
    """SHA-256 of a file's bytes, to prove an input was left untouched."""
    return lambda path: hashlib.sha256(Path(path).read_bytes()).hexdigest()
