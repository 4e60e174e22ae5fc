"""Property-based tests (hypothesis): readers and the one-hot rule hold for any input, not
only for the examples someone thought of."""

from __future__ import annotations

import string
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from diffaug_bio.io import (
    SequenceSet,
    one_hot_decode,
    one_hot_encode,
    read_feature_table,
    read_sequence_file,
    write_fasta,
)
from diffaug_bio.io.sequences import IUPAC

BASES = st.text(alphabet="ACGT", min_size=1, max_size=300)
CODES = st.text(alphabet="".join(code for code in IUPAC if code != "U"), min_size=1, max_size=80)
NAMES = st.text(alphabet=string.ascii_letters + string.digits + "_.-", min_size=1, max_size=20)
FILES = settings(max_examples=40, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip


@given(st.lists(BASES, min_size=1, max_size=20))
def test_decode_inverts_encode_for_any_acgt_sequences(sequences):
    window = max(map(len, sequences))
    assert one_hot_decode(one_hot_encode(sequences, window)) == sequences


@given(st.lists(CODES, min_size=1, max_size=10), st.integers(1, 120))
def test_every_position_is_one_unit_or_padding_and_iupac_codes_survive(sequences, window):
    encoded = one_hot_encode(sequences, window)
    column_sums = encoded.sum(axis=1)
    assert np.all(np.isclose(column_sums, 1, atol=1e-6) | (column_sums == 0))
    for sequence, sums in zip(sequences, column_sums):
        assert int(np.isclose(sums, 1).sum()) == min(len(sequence), window)
    decoded = one_hot_decode(encoded)
    for sequence, back in zip(sequences, decoded):
        start = max(0, (len(sequence) - window) // 2)
        assert back == sequence[start : start + window]  # centred window, codes kept


@given(st.lists(st.tuples(NAMES, BASES), min_size=1, max_size=15, unique_by=lambda r: r[0]))
@FILES
def test_fasta_written_then_read_is_the_same(tmp_path: Path, records):
    names, sequences = map(list, zip(*records))
    path = tmp_path / "round.fa"
    write_fasta(SequenceSet(names, sequences), path)
    back = read_sequence_file(path)
    assert back.ids == names and back.sequences == sequences


@given(
    arrays(
        np.float32,
        st.tuples(st.integers(1, 30), st.integers(1, 12)),
        elements=st.floats(-1e6, 1e6, width=32),
    ),
    st.sampled_from([".csv", ".tsv"]),
)
@FILES
def test_feature_tables_keep_every_value_name_and_annotation(tmp_path: Path, matrix, suffix):
    genes = [f"gene_{j}" for j in range(matrix.shape[1])]
    table = pd.DataFrame(matrix, columns=genes)
    table.insert(0, "sample", [f"s{i}" for i in range(len(table))])
    table["group"] = ["a" if i % 2 else "b" for i in range(len(table))]
    path = tmp_path / f"table{suffix}"
    table.to_csv(path, sep="\t" if suffix == ".tsv" else ",", index=False)
    adata = read_feature_table(path, ["group"], "sample")
    np.testing.assert_array_equal(adata.X, matrix)
    assert list(adata.var_names) == genes and list(adata.obs_names) == list(table["sample"])
    assert list(adata.obs["group"]) == list(table["group"])
