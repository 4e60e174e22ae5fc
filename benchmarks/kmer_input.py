"""Non-TATA promoters through the cells' (tabular) path: k-mer counts as the features.

A diagnostic for issue 3, not a product path: each sequence becomes its k-mer count
vector, which ``tl.embed`` treats like a cell's gene counts (normalise, log1p, standardise,
MLP encoder, PCA-space diffusion, neighbour-mixup warm-up). The encoder is fitted on the
train split's sequences (as ``train-dna`` does) or on all of them (``--fit-on all``, as
``embed`` does with cells); labels are never used, and the linear probe is fitted on the
train split's embeddings and scored on the test split either way.

    python benchmarks/kmer_input.py --methods "simclr,diffaug,diffaug:replace_fraction=0" \
        --seeds 0,1,2 --fit-on all --out kmer_input.csv
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import anndata as ad
import numpy as np
from suite import DEFAULT_DATA, parse_method

from diffaug_bio import tl
from diffaug_bio.baselines import kmer_counts
from diffaug_bio.evaluate import linear_probe
from diffaug_bio.io import load_dna_dataset

NONTATA = DEFAULT_DATA / "genomic_benchmarks" / "human_nontata_promoters"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--dataset", type=Path, default=NONTATA,
                        help="a Genomic Benchmarks dataset folder (train/ and test/)")  # fmt: skip
    parser.add_argument("--k", type=int, default=6)
    parser.add_argument("--max-features", type=int, default=5000,
                        help="the most variable k-mers kept (embed's n_top_genes)")  # fmt: skip
    parser.add_argument("--methods", default="simclr,diffaug")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--fit-on", choices=("train", "all"), default="train")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    sequences = load_dna_dataset(str(args.dataset))
    labels = np.asarray(sequences.labels)
    # counts, not frequencies: embed recognises counts and normalises them (as for cells)
    everything = ad.AnnData(kmer_counts(sequences.sequences, args.k))
    everything.var_names = [f"k{i}" for i in range(everything.n_vars)]
    rows = []
    for seed in map(int, args.seeds.split(",")):
        train = tl.probe_splits(sequences, seed) == "train"
        fit_rows = train if args.fit_on == "train" else np.ones(len(labels), bool)
        for spec in args.methods.split(","):
            method, options = parse_method(spec)
            start = time.perf_counter()
            model = tl.embed(everything[fit_rows].copy(), method, seed=seed, device="cpu",
                             n_top_genes=args.max_features, **options)  # fmt: skip
            tl.embed(everything, model=model, device="cpu")
            embedding = everything.obsm[tl.DEFAULT_KEY]
            accuracy = linear_probe(embedding[train], labels[train],
                                    embedding[~train], labels[~train])  # fmt: skip
            row = {"dataset": args.dataset.name, "k": args.k,
                   "max_features": args.max_features, "fit_on": args.fit_on,
                   "method": spec, "seed": seed, "linear_probe_accuracy": round(accuracy, 4),
                   "train_s": round(time.perf_counter() - start, 1)}  # fmt: skip
            print(row, flush=True)
            rows.append(row)
    with args.out.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
