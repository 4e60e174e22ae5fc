import numpy as np
import pytest

from diffaug_bio import InputError
from diffaug_bio.baselines import kmer_frequencies, kmer_principal_components, pca_embedding
from diffaug_bio.evaluate import (
    knn_accuracy,
    leiden_scores,
    linear_probe,
    logreg_accuracy,
    majority_fraction,
)


def test_linear_probe_fits_on_train_and_scores_on_test():
    train_x = np.array([[-2.0], [-1.0], [1.0], [2.0]])
    train_y = ["a", "a", "b", "b"]
    test_x = np.array([[-3.0], [-0.5], [0.5], [3.0]])
    assert linear_probe(train_x, train_y, test_x, ["a", "a", "b", "b"]) == 1.0
    assert linear_probe(train_x, train_y, test_x, ["a", "b", "b", "b"]) == 0.75
    assert linear_probe(train_x, train_y, test_x, ["b", "b", "a", "a"]) == 0.0


def test_cross_validated_accuracies_separate_signal_from_noise():
    rng = np.random.default_rng(0)
    labels = np.repeat(["x", "y", "z"], 40)
    centres = {"x": [0, 0], "y": [10, 0], "z": [0, 10]}
    clustered = np.array([centres[label] for label in labels]) + rng.normal(size=(120, 2))
    noise = rng.normal(size=(120, 2))
    assert knn_accuracy(clustered, labels) == 1.0
    assert logreg_accuracy(clustered, labels) == 1.0
    assert knn_accuracy(noise, labels) < 0.6
    assert leiden_scores(clustered, labels)["ari"] > 0.9


def test_knn_accuracy_votes_over_k_neighbours():
    """Two clusters with a fifth of the labels flipped: a point's single nearest neighbour
    is often mislabelled, its 15 nearest mostly are not, so k = 15 scores clearly higher;
    the score is scikit-learn's k-NN on the protocol's stratified, shuffled folds."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(0)
    points = np.concatenate([rng.normal(-3, 1, (100, 2)), rng.normal(3, 1, (100, 2))])
    labels = np.repeat([0, 1], 100)
    labels = np.where(rng.random(200) < 0.2, 1 - labels, labels)
    one, fifteen = knn_accuracy(points, labels, k=1), knn_accuracy(points, labels, k=15)
    assert fifteen > one + 0.1
    assert knn_accuracy(points, labels) == fifteen  # k = 15 by default
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    for k, score in ((1, one), (15, fifteen)):
        expected = cross_val_score(KNeighborsClassifier(k), points, labels, cv=folds).mean()
        assert score == pytest.approx(expected)


def test_a_class_too_small_for_five_folds_is_said(caplog):
    rng = np.random.default_rng(0)
    labels = np.array(["x"] * 40 + ["y"] * 3)
    with caplog.at_level("WARNING", logger="diffaug_bio"):
        knn_accuracy(rng.normal(size=(43, 2)), labels, k=3)
    assert "3-fold cross-validation instead of 5" in caplog.text


def test_majority_fraction():
    assert majority_fraction(["a", "b", "b", "b"]) == 0.75


def test_kmer_frequencies_count_by_hand():
    features = kmer_frequencies(["AACGN", "acgt"], k=2)
    assert features.shape == (2, 16)
    index = {"AA": 0, "AC": 1, "CG": 6, "GT": 11}
    # AACGN: AA, AC, CG (GN skipped) → each 1/3
    assert features[0, index["AA"]] == pytest.approx(1 / 3)
    assert features[0, index["CG"]] == pytest.approx(1 / 3)
    assert features[1, index["GT"]] == pytest.approx(1 / 3)
    assert features[0].sum() == pytest.approx(1.0)


def test_kmer_principal_components_are_fitted_on_the_given_rows_only():
    rng = np.random.default_rng(0)
    sequences = ["".join(rng.choice(list("ACGT"), 60)) for _ in range(30)]
    fit_rows = np.arange(30) < 20
    reduced = kmer_principal_components(sequences, k=3, n_comps=5, fit_rows=fit_rows)
    assert reduced.shape == (30, 5)
    # the fitted rows are centred and ordered by variance, as a PCA of those rows alone
    assert np.allclose(reduced[fit_rows].mean(axis=0), 0, atol=1e-5)
    variances = reduced[fit_rows].var(axis=0)
    assert np.all(np.diff(variances) <= 1e-6)
    # inductive: the rows not fitted are projected, so changing them moves only themselves
    changed = sequences[:20] + ["A" * 60] * 10
    again = kmer_principal_components(changed, k=3, n_comps=5, fit_rows=fit_rows)
    assert np.allclose(again[fit_rows], reduced[fit_rows])
    assert not np.allclose(again[~fit_rows], reduced[~fit_rows])
    # never more components than the fitted rows can hold
    assert kmer_principal_components(sequences, 3, 128, fit_rows).shape == (30, 19)


def test_pca_baseline_follows_scanpy_pipeline(bladder):
    embedding = pca_embedding(bladder)
    assert embedding.shape == (bladder.n_obs, 50)
    assert knn_accuracy(embedding, bladder.obs["cell_type"]) > 0.5


def test_pca_baseline_on_pearson_residuals_is_scanpys_and_needs_counts(bladder, pbmc):
    """The peer of the product's default input: scanpy's residual HVG, residuals, PCA."""
    import scanpy as sc

    embedding = pca_embedding(bladder, n_top_genes=1000, normalisation="pearson")
    scratch = bladder.copy()
    sc.experimental.pp.highly_variable_genes(
        scratch, flavor="pearson_residuals", n_top_genes=1000, theta=100
    )
    scratch = scratch[:, scratch.var["highly_variable"]].copy()
    sc.experimental.pp.normalize_pearson_residuals(scratch, theta=100)
    sc.tl.pca(scratch, n_comps=50, random_state=0)
    np.testing.assert_allclose(np.abs(embedding), np.abs(scratch.obsm["X_pca"]), atol=1e-3)
    assert knn_accuracy(embedding, bladder.obs["cell_type"]) > 0.5
    with pytest.raises(InputError, match="Pearson residuals need raw counts"):
        pca_embedding(pbmc, normalisation="pearson")
    with pytest.raises(InputError, match="unknown normalisation 'sctransform'"):
        pca_embedding(bladder, normalisation="sctransform")


def test_leiden_scores_above_scanpys_exact_neighbour_limit():
    """Regression: above 4,096 items scanpy's neighbours go through pynndescent, whose 0.7
    release returns a csr_array that scanpy 1.11 cannot read (no getnnz); pinned below 0.7."""
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 2100)
    points = rng.normal(size=(4200, 5)) + 8 * labels[:, None]
    assert leiden_scores(points, labels, resolutions=(0.1,))["ari"] > 0.95
