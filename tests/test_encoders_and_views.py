import math

import numpy as np
import pytest
import torch

from diffaug_bio import InputError
from diffaug_bio.contrastive import DNAViews, ExpressionViews, info_nce
from diffaug_bio.contrastive.losses import get_loss
from diffaug_bio.contrastive.views import NeighbourViews, shift
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
