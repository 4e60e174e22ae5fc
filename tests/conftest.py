"""Shared fixtures: small real data committed under tests/data (cut by make_fixtures.py)."""

from __future__ import annotations

import hashlib
import runpy
import sys
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


@pytest.fixture
def run_script_here(monkeypatch, capsys):
    """Run a script (a benchmark, a workflow step) in this process, as ``python SCRIPT ARGS``
    would: its exit status, stdout and stderr. For refusals and small runs, which would otherwise
    pay a new interpreter's imports and numba compilation (about 30 s) each; the scripts'
    end-to-end runs stay subprocesses."""

    def run(script: Path, *arguments: object) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", [str(script), *map(str, arguments)])
        monkeypatch.syspath_prepend(str(script.parent))  # as python puts a script's folder first
        status, message = 0, ""
        try:
            runpy.run_path(str(script), run_name="__main__")
        except SystemExit as exit_:
            status = exit_.code or 0
            if isinstance(status, str):  # sys.exit("text") prints the text and exits 1
                status, message = 1, f"{status}\n"
        out, err = capsys.readouterr()
        return status, out, err + message

    return run
