"""Cut the small test fixtures in this folder from ../shared/data (run from the repo root).

    python tests/data/make_fixtures.py ../shared/data

Kept in git so that a clone without ../shared still passes its tests.
"""

import shutil
import sys
from pathlib import Path

import anndata as ad
import numpy as np

here = Path(__file__).parent
shared = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
rng = np.random.default_rng(0)

# 240 mouse bladder cells (15 per type, fewer for rare types), the 3,000 most-detected genes,
# raw counts kept so normalisation and HVG selection are exercised.
bladder = ad.read_h5ad(shared / "mouse_bladder_2100.h5ad")
cells = np.concatenate([
    rng.choice(np.flatnonzero(bladder.obs["cell_type"] == t),
               min(15, int((bladder.obs["cell_type"] == t).sum())), replace=False)
    for t in sorted(bladder.obs["cell_type"].unique())
])  # fmt: skip
detected = np.asarray((bladder.X[cells] > 0).sum(axis=0)).ravel()
genes = np.sort(np.argsort(-detected)[:3000])
subset = bladder[np.sort(cells), genes].copy()
subset.write_h5ad(here / "bladder_small.h5ad", compression="gzip")

# 40 train + 20 test sequences per class of the non-TATA promoters, in the cache layout.
source = shared / "genomic_benchmarks" / "human_nontata_promoters"
target = here / "nontata_small"
shutil.rmtree(target, ignore_errors=True)
fasta = []
for split, count in (("train", 40), ("test", 20)):
    for label in ("negative", "positive"):
        files = sorted((source / split / label).glob("*.txt"))
        (target / split / label).mkdir(parents=True)
        for file in rng.choice(files, count, replace=False):
            shutil.copy(file, target / split / label / file.name)
            if split == "test":
                fasta.append(f">{label}_{file.stem}\n{file.read_text().strip()}\n")
(here / "promoters_small.fa").write_text("".join(fasta))
