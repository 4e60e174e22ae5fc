import gzip

import numpy as np
import pytest
import torch

from diffaug_bio import InputError
from diffaug_bio.io import (
    SequenceEncoding,
    load_dna_dataset,
    one_hot_decode,
    one_hot_encode,
    read_benchmark_folder,
    read_sequence_file,
)
from diffaug_bio.io import genomic_benchmarks as gb


def test_one_hot_rule_bases_case_and_ambiguity_codes():
    x = one_hot_encode(["ACGTacgtNRu"], max_len=11)
    assert x.shape == (1, 4, 11) and x.dtype == np.float32
    np.testing.assert_array_equal(x[0, :, :8].argmax(0), [0, 1, 2, 3, 0, 1, 2, 3])
    np.testing.assert_array_equal(x[0, :, :8].sum(0), np.ones(8))
    np.testing.assert_allclose(x[0, :, 8], [0.25] * 4)  # N: evenly over A, C, G, T
    np.testing.assert_allclose(x[0, :, 9], [0.5, 0, 0.5, 0])  # R: A or G
    np.testing.assert_array_equal(x[0, :, 10], [0, 0, 0, 1])  # U reads as T


def test_window_centres_short_sequences_and_centre_crops_long_ones():
    padded = one_hot_encode(["ACG"], max_len=7)[0]
    np.testing.assert_array_equal(padded.sum(0), [0, 0, 1, 1, 1, 0, 0])
    cropped = one_hot_encode(["AAACCCGTTTT"], max_len=5)
    assert one_hot_decode(cropped) == ["CCCGT"]


def test_characters_outside_iupac_name_the_record():
    with pytest.raises(InputError, match=r"sequence chr1 .*'X'"):
        one_hot_encode(["ACXGT"], max_len=5, ids=["chr1"])
    with pytest.raises(InputError, match="outside the IUPAC"):
        one_hot_encode(["ACG-T"], max_len=5)


def test_decode_inverts_encode_and_names_ambiguity():
    sequences = ["ACGTTGCA", "GGGA", "ACNGR"]
    assert one_hot_decode(one_hot_encode(sequences, max_len=9)) == sequences
    assert one_hot_decode(torch.from_numpy(one_hot_encode(["TTAC"], 4))) == ["TTAC"]


def test_fasta_plain_gzip_and_fastq(promoters_fasta, tmp_path):
    plain = read_sequence_file(promoters_fasta)
    assert len(plain) == 40 and plain.ids[0].startswith(("negative_", "positive_"))
    assert all(len(s) == 251 for s in plain.sequences)
    zipped = tmp_path / "promoters.fa.gz"
    zipped.write_bytes(gzip.compress(promoters_fasta.read_bytes()))
    assert read_sequence_file(zipped).sequences == plain.sequences
    fastq = tmp_path / "reads.fq"
    fastq.write_text("@r1\nACGTN\n+\nIIIII\n@r2\nacgg\n+\nIIII\n")
    reads = read_sequence_file(fastq)
    assert reads.ids == ["r1", "r2"] and reads.sequences == ["ACGTN", "acgg"]


def test_csv_with_labels_and_splits(tmp_path):
    table = tmp_path / "seqs.csv"
    table.write_text("seq,label,split\nACGT,a,train\nGGCC,b,TEST\n")
    sequences = read_sequence_file(table)
    assert sequences.labels == ["a", "b"] and sequences.splits == ["train", "test"]
    spaced = tmp_path / "spaced.csv"  # spaces after commas, a trailing one in a split value
    spaced.write_text("id, seq, label, split\ns1, ACGT, a, train \ns2, GGCC, b, test\n")
    sequences = read_sequence_file(spaced)
    assert sequences.ids == ["s1", "s2"] and sequences.sequences == ["ACGT", "GGCC"]
    assert sequences.labels == ["a", "b"] and sequences.splits == ["train", "test"]
    no_seq = tmp_path / "bad.csv"
    no_seq.write_text("sequence,label\nACGT,a\n")
    with pytest.raises(InputError, match="no 'seq' column"):
        read_sequence_file(no_seq)


def test_one_hot_tensor_files(tmp_path):
    x = one_hot_encode(["ACGTA", "GG"], max_len=5)
    torch.save(torch.from_numpy(x), tmp_path / "x.pt")
    np.save(tmp_path / "x.npy", x)
    assert read_sequence_file(tmp_path / "x.pt").sequences == ["ACGTA", "GG"]
    assert read_sequence_file(tmp_path / "x.npy").sequences == ["ACGTA", "GG"]
    np.save(tmp_path / "bad.npy", np.ones((2, 4, 5), np.float32))
    with pytest.raises(InputError, match="one-hot"):
        read_sequence_file(tmp_path / "bad.npy")


def test_empty_inputs_are_refused(tmp_path):
    empty = tmp_path / "empty.fa"
    empty.write_text("")
    with pytest.raises(InputError, match="holds no sequences"):
        read_sequence_file(empty)
    blank = tmp_path / "blank.fa"
    blank.write_text(">a\nACGT\n>b\n\n")
    with pytest.raises(InputError, match="1 empty sequences"):
        read_sequence_file(blank)


def test_benchmark_folder_labels_splits_and_class_order(nontata_dir):
    sequences = read_benchmark_folder(nontata_dir)
    assert len(sequences) == 120
    assert sequences.classes == ["negative", "positive"]
    assert sequences.splits.count("train") == 80 and sequences.splits.count("test") == 40
    first = sequences.ids[0].split("/")
    assert first[0] == "train" and first[1] == sequences.labels[0]
    text = (nontata_dir / first[0] / first[1] / f"{first[2]}.txt").read_text().strip()
    assert sequences.sequences[0] == text


def test_benchmark_folder_needs_both_splits_and_two_classes(nontata_dir, tmp_path):
    import shutil

    shutil.copytree(nontata_dir / "train", tmp_path / "only_train" / "train")
    with pytest.raises(InputError, match="no test/"):
        read_benchmark_folder(tmp_path / "only_train")
    for split in ("train", "test"):
        shutil.copytree(nontata_dir / split / "positive", tmp_path / "one" / split / "positive")
    with pytest.raises(InputError, match="at least two class folders"):
        read_benchmark_folder(tmp_path / "one")


def test_dataset_name_resolved_under_gb_root(nontata_dir):
    sequences = load_dna_dataset("nontata_small", gb_root=nontata_dir.parent)
    assert len(sequences) == 120


def test_unknown_name_offline_explains_how_to_provide_data(tmp_path, monkeypatch):
    monkeypatch.setattr(gb, "DEFAULT_CACHE", tmp_path / "cache")
    monkeypatch.setitem(__import__("sys").modules, "genomic_benchmarks", None)
    with pytest.raises(InputError, match=r"not found under .*--gb-root"):
        load_dna_dataset("human_nontata_promoters", gb_root=tmp_path)


def test_max_len_defaults_to_longest_and_crops_beyond(promoters_fasta):
    sequences = read_sequence_file(promoters_fasta)
    assert SequenceEncoding.fit(sequences).max_len == 251
    encoding = SequenceEncoding.fit(sequences, max_len=200)
    assert encoding.transform(sequences).shape == (40, 4, 200)
