"""Where a best-Leiden-ARI figure comes from: the training seed, or Leiden's own seed.

    python benchmarks/leiden_spread.py --seeds 0,1,2,3,4 --data ../shared/data

On mouse bladder (or ``--cells``), for PCA-50 and for the embedding that each training
seed gives (``embed`` defaults, or ``--method SPEC`` as in run.py), scores the protocol's
best ARI (Leiden at resolutions 0.3 / 0.5 / 1.0, evaluate.leiden_scores) under Leiden seeds
0-9, and names the annotated types that the resolution-0.3 clustering (Leiden seed 0)
splits: at least 10% of the type in each of two or more clusters. Labels are used only to
score. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import scanpy as sc

sys.path.insert(0, str(Path(__file__).resolve().parent))

from suite import DEFAULT_DATA, parse_method

from diffaug_bio import tl
from diffaug_bio.baselines import pca_embedding
from diffaug_bio.evaluate import leiden_clusterings, leiden_scores

LEIDEN_SEEDS = range(10)


def split_types(embedding: np.ndarray, labels: np.ndarray, resolution: float = 0.3):
    """(cluster count, the types that ≥ 2 clusters each hold ≥ 10% of) at ``resolution``."""
    table = pd.crosstab(labels, leiden_clusterings(embedding, (resolution,))[resolution])
    split = [kind for kind, row in table.iterrows() if (row >= 0.1 * row.sum()).sum() > 1]
    return table.shape[1], split


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help="folder of mouse_bladder_2100.h5ad [default: ../shared/data]",
    )
    parser.add_argument(
        "--cells",
        type=Path,
        default=None,
        help="an .h5ad of counts (default: DATA's mouse bladder)",
    )
    parser.add_argument("--label", default="cell_type", help="the obs column to score against")
    parser.add_argument("--epochs", type=int, default=None, help="default: the method's")
    parser.add_argument("--seeds", default="0,1,2", help="training seeds")
    parser.add_argument("--method", default="diffaug", help="method spec, as in run.py")
    args = parser.parse_args()
    path = args.cells or args.data / "mouse_bladder_2100.h5ad"
    if not path.is_file():
        parser.error(f"{path}: no such file (see --data, --cells)")
    cells = sc.read_h5ad(path)
    labels = cells.obs[args.label].astype(str).to_numpy()
    sizes = pd.Series(labels).value_counts()
    method, options = parse_method(args.method)
    embeddings = {"pca50": pca_embedding(cells)}
    for seed in map(int, args.seeds.split(",")):
        adata = cells.copy()
        tl.embed(adata, method, epochs=args.epochs, seed=seed, device="cpu", **options)
        embeddings[f"{args.method}, seed {seed}"] = adata.obsm["X_diffaug"]
    print("| embedding | best ARI, Leiden seeds 0–9: mean (min–max) | clusters at 0.3 |"
          " types split at 0.3 (cells) |\n|---|---|---|---|")  # fmt: skip
    for name, embedding in embeddings.items():
        ari = [leiden_scores(embedding, labels, seed=seed)["ari"] for seed in LEIDEN_SEEDS]
        n_clusters, split = split_types(embedding, labels)
        named = ", ".join(f"{kind} ({sizes[kind]})" for kind in split) or "none"
        print(f"| {name} | {np.mean(ari):.3f} ({min(ari):.3f}–{max(ari):.3f}) | {n_clusters} "
              f"| {named} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
