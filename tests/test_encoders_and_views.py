import math

import numpy as np
import pytest
import torch

from diffaug_bio import InputError
from diffaug_bio.contrastive import DNAViews, ExpressionViews, info_nce
from diffaug_bio.contrastive.losses import get_loss
from diffaug_bio.contrastive.views import NeighbourMixup, NeighbourViews, shift
from diffaug_bio.encoders import CNNEncoder, MLPEncoder, TransformerEncoder
from diffaug_bio.io import one_hot_decode, one_hot_encode, read_sequence_file
from diffaug_bio.modality import kmer_spectrum


@pytest.mark.parametrize("encoder_class", [CNNEncoder, TransformerEncoder])
def test_sequence_encoders_map_any_length_to_fixed_size(encoder_class):
    torch.manual_seed(0)
    encoder = encoder_class(dim=16).eval()
    for length in (7, 64, 251):
        x = torch.from_numpy(one_hot_encode(["ACGTTGCA" * 40] * 3, max_len=length))
        z = encoder(x)
        assert z.shape == (3, 16) and torch.isfinite(z).all()


@pytest.mark.parametrize("encoder_class", [CNNEncoder, TransformerEncoder])
def test_padding_is_ignored_by_pooling(encoder_class):
    """The same bases with more all-zero padding around them embed (nearly) the same."""
    torch.manual_seed(0)
    encoder = encoder_class(dim=16).eval()
    core = "ACGTAGGCTTACGATCGATCGGCTAGCTAGGATCCGAT" * 2  # 76 bp
    tight = torch.from_numpy(one_hot_encode([core], max_len=76))
    loose = torch.from_numpy(one_hot_encode([core], max_len=76 + 2 * 48))
    other = torch.from_numpy(one_hot_encode(["GCGCGGCCATATTAAT" * 4 + "GCGCGCGCGCGC"], max_len=76))
    with torch.no_grad():
        gap_padding = (encoder(tight) - encoder(loose)).norm()
        gap_sequence = (encoder(tight) - encoder(other)).norm()
    assert gap_padding < 0.01 * gap_sequence


def test_mlp_encoder_shape():
    assert MLPEncoder(30, dim=8, hidden=(16,))(torch.randn(5, 30)).shape == (5, 8)


def test_dna_views_stay_valid_encodings(promoters_fasta):
    x = torch.from_numpy(one_hot_encode(read_sequence_file(promoters_fasta).sequences, 251))
    generator = torch.Generator().manual_seed(0)
    view = DNAViews()(x, generator)
    sums = view.sum(1)
    assert torch.all(torch.isclose(sums, torch.ones(())) | (sums == 0))
    column_max = view.amax(1)
    assert torch.all((column_max == 1) | (column_max == 0.25) | (sums == 0))
    assert not torch.equal(view, x)


def test_reverse_complement_and_shift():
    x = torch.from_numpy(one_hot_encode(["AACGT"], max_len=5))
    assert one_hot_decode(x.flip(1, 2)) == ["ACGTT"]
    assert one_hot_decode(shift(x, torch.tensor([2]))) == ["AAC"]
    assert one_hot_decode(shift(x, torch.tensor([-1]))) == ["ACGT"]
    rc_only = DNAViews(max_shift=0, substitution_rate=0, mask_rate=0)
    views = {one_hot_decode(rc_only(x, torch.Generator().manual_seed(s)))[0] for s in range(20)}
    assert views == {"AACGT", "ACGTT"}


@pytest.mark.parametrize(
    "rates",
    [{"substitution_rate": 1.0, "mask_rate": 0.0}, {"substitution_rate": 0.0, "mask_rate": 1.0}],
)
def test_dna_views_substitute_and_mask_bases_but_never_padding(rates):
    """Short sequences centred in a longer window: every base is substituted (or masked to N)
    at rate 1.0, while the padding columns around them stay all zero."""
    x = torch.from_numpy(one_hot_encode(["ACGTACGTAC", "GGATCCATTAGCCATGACGT"], max_len=30))
    padding = x.sum(1) == 0  # symmetric around each sequence: reverse complement keeps it
    assert padding.sum().item() == 20 + 10
    for seed in range(5):
        view = DNAViews(max_shift=0, **rates)(x, torch.Generator().manual_seed(seed))
        assert (view.permute(0, 2, 1)[padding] == 0).all()
        bases = view.permute(0, 2, 1)[~padding]
        if rates["mask_rate"]:
            assert (bases == 0.25).all()
        else:
            assert ((bases == 0) | (bases == 1)).all() and (bases.sum(1) == 1).all()
        assert [len(s) for s in one_hot_decode(view)] == [10, 20]


def test_expression_views_mask_about_the_asked_fraction():
    x = torch.ones(200, 100)
    view = ExpressionViews(mask_rate=0.3, noise=0.0)(x, torch.Generator().manual_seed(0))
    assert abs((view == 0).float().mean().item() - 0.3) < 0.02


def test_the_temperature_option_reaches_the_infonce_loss():
    h1, h2 = torch.randn(8, 4, generator=torch.Generator().manual_seed(0)).split(4)
    z = torch.zeros(4, 2)
    index = torch.arange(4)
    cooler = get_loss("infonce", temperature=0.2)(z, h1, h2, index)
    assert cooler.item() == pytest.approx(info_nce(h1, h2, temperature=0.2).item())
    assert cooler.item() != pytest.approx(get_loss("infonce")(z, h1, h2, index).item())
    with pytest.raises(InputError, match="--temperature must be positive, got 0"):
        get_loss("infonce", temperature=0)


def test_info_nce_matches_hand_computation():
    h1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    h2 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # each view: partner similarity 1, the other two similarities 0 → -log(e^{1/t} / (e^{1/t} + 2))
    t = 0.5
    expected = -math.log(math.exp(1 / t) / (math.exp(1 / t) + 2))
    assert info_nce(h1, h2, temperature=t).item() == pytest.approx(expected, rel=1e-6)
    swapped = info_nce(h1, h2.flip(0), temperature=t).item()
    assert swapped > expected  # wrong partners cost more
    assert np.isfinite(swapped)


def test_info_nce_compares_directions_not_lengths():
    """Cosine similarity: rescaling either set of head outputs leaves the loss unchanged."""
    generator = torch.Generator().manual_seed(0)
    h1, h2 = torch.randn(8, 5, generator=generator), torch.randn(8, 5, generator=generator)
    h2 = h1 + 0.5 * h2  # positives correlated with their anchors
    loss = info_nce(h1, h2).item()
    assert info_nce(3 * h1, 0.5 * h2).item() == pytest.approx(loss, rel=1e-5)
    lengths = torch.rand(8, 1, generator=generator) + 0.2
    assert info_nce(h1 * lengths, h2 / lengths).item() == pytest.approx(loss, rel=1e-5)


def test_neighbour_mixup_puts_each_positive_between_its_anchor_and_a_cluster_mate():
    """Two well-separated clusters: a positive is α x + (1 − α) x_nb with x_nb one of the
    anchor's nearest neighbours, i.e. a point of its own cluster; never the anchor itself."""
    generator = torch.Generator().manual_seed(0)
    cluster = (torch.arange(40) >= 20).float()
    centres = torch.stack([torch.full((6,), -5.0), torch.full((6,), 5.0)])
    data = centres[cluster.long()] + torch.randn(40, 6, generator=generator)
    pairs = NeighbourMixup(data, n_neighbors=5, seed=0)
    index = torch.randperm(40, generator=generator)[:30]  # a batch: a subset, shuffled
    anchors, positives = pairs(data[index], index, torch.Generator().manual_seed(1))
    assert torch.equal(anchors, data[index])
    assert ((positives - anchors).norm(dim=1) > 1e-4).all()
    own, other = centres[cluster[index].long()], centres[1 - cluster[index].long()]
    assert ((positives - own).norm(dim=1) < (positives - other).norm(dim=1)).all()
    # on the segment from the anchor to some other point of its cluster
    for i, anchor, positive in zip(index.tolist(), anchors, positives):
        mates = data[(cluster == cluster[i]) & (torch.arange(40) != i)]
        direction = mates - anchor
        along = (direction @ (positive - anchor)) / direction.pow(2).sum(1)
        off_line = (anchor + along[:, None] * direction - positive).norm(dim=1)
        on_segment = (off_line < 1e-4) & (along > 0) & (along <= 1)
        assert on_segment.any()


def test_dna_neighbour_warmup_draws_positives_from_k_mer_neighbours():
    """Two sequence families with different k-mer content: with every positive taken from a
    neighbour, a positive is another member of the anchor's own family, never the anchor."""
    rng = np.random.default_rng(0)
    at_rich = ["".join(rng.choice(list("AAT"), 60)) for _ in range(20)]
    gc_rich = ["".join(rng.choice(list("GGC"), 60)) for _ in range(20)]
    data = torch.from_numpy(one_hot_encode(at_rich + gc_rich, max_len=60))
    pairs = NeighbourViews(data, kmer_spectrum(data), lambda x, _g: x, share=1.0, n_neighbors=5)
    index = torch.arange(40)
    anchors, positives = pairs(data, index, torch.Generator().manual_seed(0))
    assert torch.equal(anchors, data)
    family = index >= 20
    positive_family = positives[:, 1:3].sum((1, 2)) > 30  # mostly C/G
    assert torch.equal(positive_family, family)
    assert not (positives == data).all(dim=(1, 2)).any()
