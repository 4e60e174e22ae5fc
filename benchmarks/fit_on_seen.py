"""Does `train-dna --encoder kmer --fit-on all` learn a better encoder, or only better
embeddings of the sequences it was fitted on?

    python benchmarks/fit_on_seen.py --seeds 0,1 --data ../shared/data --options replace_fraction=0

On non-TATA promoters (or ``--dna``) the encoder is fitted on the train split plus a random
half of the test split (drawn with the seed); the linear probe is fitted on the train
split's embeddings, as in train-dna, and scored separately on the test half the encoder
saw and on the half it did not. Labels are used only to score. Prints one line per seed and half.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from suite import DEFAULT_DATA, parse_method

from diffaug_bio.evaluate import linear_probe
from diffaug_bio.io.genomic_benchmarks import load_dna_dataset
from diffaug_bio.io.kmers import DEFAULT_K, KmerEncoding
from diffaug_bio.model import EmbeddingModel


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="folder holding genomic_benchmarks/human_nontata_promoters "
                        "[default: ../shared/data]")  # fmt: skip
    parser.add_argument(
        "--dna",
        type=Path,
        default=None,
        help="a Genomic Benchmarks folder (default: DATA's non-TATA promoters)",
    )
    parser.add_argument("--epochs", type=int, default=None, help="default: the method's")
    parser.add_argument("--seeds", default="0", help="comma-separated: a run per seed")
    parser.add_argument("--method", default="diffaug", help="the contrastive method")
    parser.add_argument("--options", default="", help="method options, as in run.py: a=1;b=2")
    args = parser.parse_args()
    method, options = parse_method(f"{args.method}:{args.options}")
    folder = args.dna or args.data / "genomic_benchmarks" / "human_nontata_promoters"
    if not folder.is_dir():
        parser.error(f"{folder}: no such folder (see --data, --dna)")
    sequences = load_dna_dataset(str(folder))
    labels, train = np.asarray(sequences.labels), np.asarray(sequences.splits) == "train"
    for seed in map(int, args.seeds.split(",")):
        test = np.flatnonzero(~train)
        seen_test = np.zeros(len(sequences), dtype=bool)
        seen_test[np.random.default_rng(seed).permutation(test)[: len(test) // 2]] = True
        fitted = train | seen_test
        recipe, _ = KmerEncoding.fit(sequences.subset(fitted), DEFAULT_K)
        model = EmbeddingModel.for_kmers(recipe)
        prepared = model.prepare(sequences)
        model.fit(prepared[fitted], method, args.epochs, seed, "cpu", **options)
        embedding = model.embed(prepared, "cpu")
        for half, mask in (("seen", seen_test), ("unseen", ~fitted)):
            accuracy = linear_probe(embedding[train], labels[train], embedding[mask], labels[mask])
            print(f"seed {seed}: {half} test half (n = {mask.sum()}): {100 * accuracy:.2f}%",
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
