"""Neighbours on an embedding, UMAP and Leiden with scanpy; a PNG coloured by label and by
cluster; the clusters' agreement with the label (ARI, NMI) printed and saved as JSON.

    python umap_clusters.py embedded.h5ad --label cell_type -o umap.png --scores scores.json

The label only colours the picture and scores the clusters: the embedding never saw it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import scanpy as sc
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

import diffaug_bio as dab


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("embedded", type=Path, help="an .h5ad with the embedding in obsm")
    parser.add_argument("--label", required=True, help="obs column to colour and score by")
    parser.add_argument("--use-rep", default=dab.tl.DEFAULT_KEY, help="obsm key of the embedding")
    parser.add_argument("--resolution", type=float, default=1.0, help="Leiden resolution")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--title", help="panel title [default: the file name]")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the PNG to write")
    parser.add_argument("--scores", type=Path, help="write ARI / NMI here as JSON")
    args = parser.parse_args()

    adata = sc.read_h5ad(args.embedded)
    if args.label not in adata.obs:
        parser.error(f"{args.embedded}: no obs column {args.label!r} (has {list(adata.obs)})")
    sc.pp.neighbors(adata, use_rep=args.use_rep, random_state=args.seed)
    sc.tl.umap(adata, random_state=args.seed)
    sc.tl.leiden(adata, resolution=args.resolution, flavor="igraph", n_iterations=2,
                 random_state=args.seed)  # fmt: skip
    clusters = adata.obs["leiden"]
    scores = {"items": adata.n_obs, "clusters": int(clusters.nunique())}
    labelled = adata.obs[args.label].notna()
    colours = ["leiden"]
    if labelled.any():  # unlabelled sequences (a bare FASTA): a picture, no scores
        labels = adata.obs[args.label][labelled].astype(str)
        scores.update(labels=int(labels.nunique()),
                      ari=adjusted_rand_score(labels, clusters[labelled]),
                      nmi=normalized_mutual_info_score(labels, clusters[labelled]))  # fmt: skip
        adata.obs[args.label] = adata.obs[args.label].astype(str).astype("category")
        colours.insert(0, args.label)
    dab.pl.umap(adata, colours, args.output, title=args.title or args.embedded.stem)
    found = f"{args.embedded}: {scores['clusters']} Leiden clusters"
    if "ari" in scores:
        print(f"{found} vs {scores['labels']} {args.label} classes: ARI {scores['ari']:.3f}, "
              f"NMI {scores['nmi']:.3f}")  # fmt: skip
    else:
        print(f"{found}; no {args.label} to score them against")
    if args.scores:
        args.scores.write_text(json.dumps(scores, indent=1))


if __name__ == "__main__":
    main()
