import gzip
import json
import logging

import numpy as np
import pandas as pd
import pytest
import torch
from Bio import SeqIO

from diffaug_bio import InputError, tl
from diffaug_bio._errors import counted
from diffaug_bio.io import (
    SequenceEncoding,
    SequenceSet,
    load_dna_dataset,
    one_hot_decode,
    one_hot_encode,
    read_benchmark_folder,
    read_sequence_file,
)
from diffaug_bio.io import genomic_benchmarks as gb
from diffaug_bio.io import sequences as sequences_module


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
    with pytest.raises(InputError, match="1 empty sequence"):
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


def test_missing_or_empty_sequences_are_refused_not_read_as_letters(tmp_path):
    with pytest.raises(InputError, match=r"1 sequence is missing \(None, NaN or NA\): b"):
        SequenceSet.of(pd.Series(["ACGTACGTAC", np.nan], index=["a", "b"]))  # was "nan"
    with pytest.raises(InputError, match=r"2 sequences are missing .*: seq1, seq2"):
        SequenceSet.of(["ACGT", None, pd.NA])
    with pytest.raises(InputError, match=r"1 empty sequence \(first: seq1\)"):
        SequenceSet.of(["ACGT", ""])  # was embedded as pure padding
    r_table = tmp_path / "from_r.csv"  # R's write.csv: NA for what is missing
    r_table.write_text("id,seq,label\nNA,ACGT,a\nr2,NA,b\nr3,GGCA,b\n")
    with pytest.raises(InputError, match=r"from_r.csv: 1 sequence is missing .*: r2"):
        read_sequence_file(r_table)  # was the 2-base sequence "NA"
    r_table.write_text("id,seq,label\nNA,ACGT,a\nr2,ACGG,NA\nr3,GGCA,b\n")
    with pytest.raises(InputError, match=r"1 sequence has an empty or missing \(NA\) label "
                                         r"\(first: r2\)"):  # fmt: skip
        read_sequence_file(r_table)  # was a third class, "NA"
    r_table.write_text("id,seq,label\nNA,ACGT,a\nr2,ACGG,b\n")
    assert read_sequence_file(r_table).ids == ["NA", "r2"]  # an id is a name, never missing


def test_labels_are_kept_as_text_so_a_result_with_integer_labels_saves(promoters_fasta, tmp_path):
    records = read_sequence_file(promoters_fasta)
    labels = np.arange(len(records)) % 2  # NumPy integers: crashed save() in json.dumps
    sequences = SequenceSet(records.ids, records.sequences, labels)
    assert sequences.labels[:2] == ["0", "1"] and sequences.classes == ["0", "1"]
    result = tl.train_dna(sequences, encoder="kmer", k=3, epochs=1, dim=4)
    assert result.metrics["classes"] == ["0", "1"]
    result.save(tmp_path / "run")
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["classes"] == ["0", "1"]
    result.metrics["unwritable"] = object()
    with pytest.raises(TypeError):
        result.save(tmp_path / "half")
    assert not (tmp_path / "half").exists()  # was: embeddings and model written, no metrics


def test_a_failed_save_leaves_the_earlier_run_as_it_was(promoters_fasta, tmp_path, monkeypatch):
    def contents(folder):
        return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}

    tl.train_dna(str(promoters_fasta), encoder="kmer", k=3, epochs=1, dim=4).save(tmp_path)
    before = contents(tmp_path)
    other = tl.train_dna(str(promoters_fasta), encoder="kmer", k=3, epochs=1, dim=4, seed=1)

    def full_disk(*args, **kwargs):  # what torch.save raises when the disk fills mid-write
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 4 vs 2")

    monkeypatch.setattr("diffaug_bio.model.torch.save", full_disk)
    with pytest.raises(InputError, match=r"cannot write the outputs \(.*is the disk full"):
        other.save(tmp_path)
    # was: the new embeddings.h5ad beside the earlier run's model and metrics
    assert contents(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "embeddings.h5ad", "metrics.json", "model"]  # fmt: skip


def test_a_window_set_by_one_far_longer_sequence_is_warned_of(caplog, monkeypatch):
    monkeypatch.setattr(logging.getLogger("diffaug_bio"), "propagate", True)  # the CLI's off
    typical = ["ACGTACGTAC" * 10] * 40
    SequenceEncoding.fit(SequenceSet.of([*typical, "ACGTACGTAC" * 9]))
    assert "one-hot window" not in caplog.text
    encoding = SequenceEncoding.fit(SequenceSet.of([*typical, "A" * 5000]))
    assert encoding.max_len == 5000  # kept: every base may be wanted
    assert (
        "the one-hot window is 5000 bp, the length of the longest sequence (seq40), over 10× "
        "the 100 bp that 95% of the sequences stay within" in caplog.text
    )
    assert "pass --max-len 100 (or so)" in caplog.text


def test_a_one_hot_array_larger_than_memory_is_refused_before_allocation(monkeypatch):
    monkeypatch.setattr(sequences_module, "_memory_bytes", lambda: 2**30)
    with pytest.raises(InputError, match=r"100 sequences in a window of 1000000 bp needs "
                                         r"1.49 GiB, more than this machine's 1 GiB"):  # fmt: skip
        one_hot_encode(["ACGT"] * 100, max_len=10**6)  # was: killed by the OS, or MemoryError
    assert one_hot_encode(["ACGT"] * 100, max_len=10).shape == (100, 4, 10)


def test_txt_files_tables_with_any_separator_or_one_sequence_a_line(tmp_path):
    for separator in ("\t", ",", ";"):
        table = tmp_path / "table.txt"
        table.write_text(f"seq{separator}label\nACGT{separator}a\nGGCC{separator}b\n")
        read = read_sequence_file(table)  # was read as comma-separated, always
        assert read.sequences == ["ACGT", "GGCC"] and read.labels == ["a", "b"]
    bare = tmp_path / "bare.txt"
    bare.write_text("ACGTAC\nggcc\n\nTTTAN\n")  # was: no 'seq' column (columns: ACGTAC)
    read = read_sequence_file(bare)
    assert read.sequences == ["ACGTAC", "ggcc", "TTTAN"] and read.ids == ["seq0", "seq1", "seq2"]
    headed = tmp_path / "headed.txt"
    headed.write_text("seq\nACGTAC\nGGCC\n")
    assert read_sequence_file(headed).sequences == ["ACGTAC", "GGCC"]
    other_header = tmp_path / "other.txt"
    other_header.write_text("sequence\nACGTAC\n")
    with pytest.raises(InputError, match="the first line is neither a sequence nor the header"):
        read_sequence_file(other_header)
    fasta = tmp_path / "records.txt"
    fasta.write_text(">s1\nACGT\n")
    with pytest.raises(InputError, match=r"it looks like FASTA: name it \.fa or \.fasta"):
        read_sequence_file(fasta)
    tsv = tmp_path / "table.tsv"  # the suffix names the separator, as before
    tsv.write_text("seq\tlabel\nACGT\ta,b\n")
    assert read_sequence_file(tsv).labels == ["a,b"]


def test_fastq_named_fasta_is_told_to_be_renamed(tmp_path):
    reads = tmp_path / "reads.fa"
    reads.write_text("@r1\nACGTN\n+\nIIIII\n")
    with pytest.raises(InputError, match=r"it looks like FASTQ: name it \.fq or \.fastq"):
        read_sequence_file(reads)


def test_one_label_for_every_sequence_says_why_no_probe_is_scored(
    promoters_fasta, caplog, monkeypatch
):
    monkeypatch.setattr(logging.getLogger("diffaug_bio"), "propagate", True)  # the CLI's off
    records = read_sequence_file(promoters_fasta)
    one_class = SequenceSet(records.ids, records.sequences, ["pos"] * len(records))
    result = tl.train_dna(one_class, encoder="kmer", k=3, epochs=1, dim=4)
    assert result.metrics["linear_probe_accuracy"] is None
    assert "every sequence has the label 'pos': no linear probe is scored" in caplog.text
    labels, splits = ["a", "b"] * (len(records) // 2), ["train"] * len(records)
    no_test = SequenceSet(records.ids, records.sequences, labels, splits)
    result = tl.train_dna(no_test, encoder="kmer", k=3, epochs=1, dim=4)
    assert result.metrics["linear_probe_accuracy"] is None
    assert "no sequence is in the test split: no linear probe is scored" in caplog.text


def test_seqrecords_and_dataframes_are_sequences_other_objects_are_refused(promoters_fasta):
    records = list(SeqIO.parse(promoters_fasta, "fasta"))
    result = tl.train_dna(str(promoters_fasta), encoder="kmer", k=3, epochs=1, dim=4)
    from_file = tl.embed_dna(promoters_fasta, result)
    from_records = tl.embed_dna(records, result)  # was: "\n '().0:Iefiopq" not IUPAC
    assert list(from_records.obs_names) == [record.id for record in records]
    np.testing.assert_allclose(from_records.obsm["X_diffaug"], from_file.obsm["X_diffaug"])
    table = pd.DataFrame({"id": from_file.obs_names, "seq": [str(r.seq) for r in records]})
    from_table = tl.embed_dna(table, result)  # was: "2 sequences but 40 ids"
    assert list(from_table.obs_names) == list(from_file.obs_names)
    np.testing.assert_allclose(from_table.obsm["X_diffaug"], from_file.obsm["X_diffaug"])
    assert SequenceSet.of([records[0].seq]).sequences == [str(records[0].seq)]  # a Bio.Seq
    with pytest.raises(InputError, match="no 'seq' column"):
        SequenceSet.of(pd.DataFrame({"sequence": ["ACGT"]}))
    with pytest.raises(InputError, match=r"sequence seq0 is a bytes: give sequences as text"):
        SequenceSet.of([b"ACGT"])
    with pytest.raises(InputError, match="not one string"):
        SequenceSet.of("ACGT")


def test_counts_in_messages_agree_with_their_nouns():
    assert counted(1, "sequence", ("is", "are")) == "1 sequence is"
    assert counted(3, "sequence", ("is", "are")) == "3 sequences are"
    assert counted(0, "epoch") == "0 epochs"
    with pytest.raises(InputError, match=r"^2 sequences have an empty or missing"):
        SequenceSet.of(pd.DataFrame({"seq": ["ACGT", "ACGA", "ACGG"], "label": ["a", "", None]}))
