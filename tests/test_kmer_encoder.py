"""``train-dna --encoder kmer``: sequences as k-mer counts, trained through the cells' path."""

import logging

import numpy as np
import pytest

from diffaug_bio import tl
from diffaug_bio._errors import InputError
from diffaug_bio.io import KmerEncoding, SequenceSet, kmer_counts, load_dna_dataset
from diffaug_bio.io.kmers import kmer_names
from diffaug_bio.io.sequences import read_sequence_file
from diffaug_bio.model import EmbeddingModel


def test_kmer_counts_read_u_as_t_and_skip_other_characters():
    index = {name: i for i, name in enumerate(kmer_names(2))}
    counts = kmer_counts(["ACGU", "acNgt", "aaaa", "AACGN"], k=2).toarray()
    assert counts.shape == (4, 16)
    assert counts[3].tolist() == [1, 1] + [0] * 4 + [1] + [0] * 9  # AA, AC, CG; GN skipped
    assert {name for name, i in index.items() if counts[0, i]} == {"AC", "CG", "GT"}  # U → T
    assert counts[1, index["AC"]] == 1 and counts[1, index["GT"]] == 1 and counts[1].sum() == 2
    assert counts[2, index["AA"]] == 3 and counts[2].sum() == 3  # overlapping windows


def test_kmer_encoding_scales_counts_and_reapplies_the_saved_recipe():
    rng = np.random.default_rng(0)
    sequences = SequenceSet(
        [f"s{i}" for i in range(30)], ["".join(rng.choice(list("ACGT"), 60)) for _ in range(30)]
    )
    recipe, prepared = KmerEncoding.fit(sequences, k=3)
    assert prepared.shape == (30, 64) and prepared.dtype == np.float32
    # normalize_total + log1p, then each k-mer standardised over the training sequences
    counts = kmer_counts(sequences.sequences, 3).toarray()
    logged = np.log1p(counts / counts.sum(1, keepdims=True) * 1e4)
    expected = (logged - logged.mean(0)) / np.where(logged.std(0) > 0, logged.std(0), 1)
    np.testing.assert_allclose(prepared, expected, atol=1e-4)
    # a saved recipe, read back, encodes new sequences as the original does
    again = KmerEncoding.from_dict(recipe.to_dict())
    new = SequenceSet(["n"], ["ACGTACGTTTGACCA"])
    np.testing.assert_array_equal(again.transform(new), recipe.transform(new))
    assert again.transform(new).shape == (1, 64)
    with pytest.raises(ValueError, match="64 k-mers recorded for k = 4"):  # edited by hand
        KmerEncoding.from_dict({**recipe.to_dict(), "k": 4})  # was: 64 of 256 columns used


def test_sequences_without_a_kmer_are_named_in_one_error():
    sequences = SequenceSet(["long", "short", "unknown"], ["ACGTACGT", "ACG", "NNNNNNNN"])
    with pytest.raises(InputError, match=r"2 sequences hold no 4-mer .*: short, unknown"):
        KmerEncoding.fit(sequences, k=4)
    with pytest.raises(InputError, match="between 3 and 8"):
        KmerEncoding.fit(sequences, k=2)


def test_fit_on_all_learns_from_the_test_split_too(nontata_dir):
    sequences = load_dna_dataset(str(nontata_dir))
    test = np.asarray(sequences.splits) == "test"
    options = {"encoder": "kmer", "k": 4, "method": "simclr", "epochs": 2, "device": "cpu"}
    runs = {fit_on: tl.train_dna(sequences, fit_on=fit_on, **options) for fit_on in tl.FIT_ON}
    for fit_on, n_fit in (("train", 80), ("all", 120)):
        result = runs[fit_on]
        assert result.metrics["fit_on"] == fit_on and result.metrics["n_fit"] == n_fit
        assert result.adata.uns["diffaug"]["params"]["fit_on"] == fit_on
        # the recipe's statistics are those of the sequences it learned from
        fitted = sequences if fit_on == "all" else sequences.subset(~test)
        recipe, _ = KmerEncoding.fit(fitted, k=4)
        np.testing.assert_array_equal(result.model.recipe.scaling.mean, recipe.scaling.mean)
        assert result.metrics["n_test"] == 40  # the probe's split does not move


def test_kmer_model_embeds_sequences_only_and_round_trips(nontata_dir, tmp_path, monkeypatch):
    result = tl.train_dna(str(nontata_dir), encoder="kmer", k=3, method="simclr", epochs=10,
                          device="cpu")  # fmt: skip
    # 40 balanced test sequences: a probe on a broken embedding would sit near 0.5
    assert 0.65 < result.metrics["linear_probe_accuracy"] <= 1.0
    model = result.model
    assert model.modality.name == "dna-kmer" and model.n_features == 64
    assert model.encoder.blocks[0][0].out_features == 256  # k-mers share the cells' (256, 128)
    loaded = EmbeddingModel.load(model.save(tmp_path / "model"), "dna")
    assert loaded.encoder_hidden == model.encoder_hidden == (256, 128)
    sequences = load_dna_dataset(str(nontata_dir))
    monkeypatch.setattr("diffaug_bio.model.BLOCK_ROWS", 7)  # 120 sequences in 18 blocks
    np.testing.assert_allclose(
        loaded.embed(sequences), result.adata.obsm[tl.DEFAULT_KEY], atol=1e-5
    )
    with pytest.raises(InputError, match="holds a model for dna-kmer data, but expression input"):
        EmbeddingModel.load(tmp_path / "model", "expression")
    with pytest.raises(InputError, match="encoder cnn or transformer"):
        tl.augment(sequences, tl.train_dna(str(nontata_dir), encoder="kmer", k=3, epochs=2,
                                           device="cpu").model)  # fmt: skip


def test_one_hot_options_are_refused_with_the_kmer_encoder(nontata_dir):
    with pytest.raises(InputError, match="--max-len sets the one-hot window"):
        tl.train_dna(str(nontata_dir), encoder="kmer", max_len=100)
    with pytest.raises(InputError, match="--k is the k-mer length"):
        tl.train_dna(str(nontata_dir), encoder="cnn", k=5)


def test_a_train_split_of_one_class_trains_and_skips_the_probe(
    promoters_fasta, caplog, monkeypatch
):
    monkeypatch.setattr(logging.getLogger("diffaug_bio"), "propagate", True)  # the CLI's off
    sequences = read_sequence_file(promoters_fasta)
    n = len(sequences)
    splits = ["train"] * (n - 10) + ["test"] * 10
    labels = ["a"] * (n - 10) + ["a", "b"] * 5  # one class among the train split's labels
    result = tl.train_dna(SequenceSet(sequences.ids, sequences.sequences, labels, splits),
                          encoder="kmer", k=3, epochs=1, dim=4)  # fmt: skip
    assert result.metrics["linear_probe_accuracy"] is None  # was: ValueError after training
    assert result.adata.obsm["X_diffaug"].shape == (n, 4)
    assert "the train split holds one class ('a'): no linear probe is scored" in caplog.text
