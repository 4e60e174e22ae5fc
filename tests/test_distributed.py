"""Training under torchrun: two CPU processes (gloo) give the loss and gradients of the
global batch, and ``torchrun … -m diffaug_bio embed`` writes one complete output from rank 0."""

import os
import subprocess
import sys

import anndata as ad
import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

import diffaug_bio as dab
from diffaug_bio import distributed
from diffaug_bio.contrastive.losses import get_loss
from diffaug_bio.encoders import build_encoder, projection_head
from diffaug_bio.train import ContrastiveTrainer, OptimiserConfig


def test_interleave_undoes_sharding():
    items = torch.arange(7)
    parts = [items[0::2], torch.cat([items[1::2], torch.tensor([-1])])]  # rank 1 padded
    assert torch.equal(distributed.interleave(parts, 7), items)


@pytest.mark.parametrize("n", [100, 256, 300, 700])
def test_one_process_batches_cover_every_item_with_no_short_batch(n):
    batches = distributed.global_batches(n, 256, torch.Generator().manual_seed(0), True)
    assert torch.equal(torch.sort(torch.cat(batches)).values, torch.arange(n))
    assert min(map(len, batches)) >= min(n, 256)  # a ragged tail joins the batch before it


def _trainer(seed: int = 0) -> ContrastiveTrainer:
    torch.manual_seed(seed)
    trainer = ContrastiveTrainer(
        build_encoder("mlp", 6, 4, (16, 8)), projection_head(4, 8, 5), get_loss("infonce"),
        OptimiserConfig(), torch.device("cpu"), torch.Generator().manual_seed(seed),
    )  # fmt: skip
    trainer.encoder.eval()  # BatchNorm on running statistics: the same function on any batch
    trainer.head.eval()
    return trainer


def _global_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    view_1 = torch.randn(8, 6, generator=generator)
    return view_1, view_1 + 0.1 * torch.randn(8, 6, generator=generator), torch.arange(8)


def _rank_loss_and_gradient(rank: int, init_file: str, results: dict) -> None:
    os.environ.update(WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank))
    torch.distributed.init_process_group("gloo", f"file://{init_file}", rank=rank, world_size=2)
    trainer = _trainer()
    view_1, view_2, index = _global_batch()
    mine = distributed.shard(index)
    loss = trainer.pair_loss(view_1[mine], view_2[mine], mine)
    loss.backward()
    first = next(trainer.encoder.parameters())
    results[rank] = (loss.item(), first.grad.clone())
    torch.distributed.destroy_process_group()


def test_two_ranks_see_the_global_batch_and_average_gradients(tmp_path):
    results = mp.Manager().dict()
    mp.spawn(_rank_loss_and_gradient, args=(str(tmp_path / "init"), results), nprocs=2)
    trainer = _trainer()
    loss = trainer.pair_loss(*_global_batch())
    loss.backward()
    expected = next(trainer.encoder.parameters()).grad
    for rank in (0, 1):
        rank_loss, gradient = results[rank]
        assert rank_loss == pytest.approx(loss.item(), rel=1e-5)  # all 8 pairs, not 4
        torch.testing.assert_close(gradient, expected, rtol=1e-4, atol=1e-6)


def _torchrun(*args, tmp_path, processes: int = 2) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={processes}", "-m", "diffaug_bio", *map(str, args)]  # fmt: skip
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, cwd=tmp_path,
                          env=environment, timeout=900)  # fmt: skip


def test_torchrun_embed_on_cpu_writes_once_from_rank_0(bladder_path, tmp_path):
    out = tmp_path / "out.h5ad"
    result = _torchrun("embed", bladder_path, "-o", out, "--epochs", "4", "--dim", "8",
                       "--device", "cpu", "--save-model", tmp_path / "model",
                       tmp_path=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Warning" not in result.stderr  # torch 2.13 deprecated DDP's broadcast_buffers
    adata = ad.read_h5ad(out)
    params = adata.uns["diffaug"]["params"]
    assert params["processes"] == 2 and params["method"] == "diffaug"
    embedding = adata.obsm["X_diffaug"]
    assert embedding.shape == (adata.n_obs, 8) and np.isfinite(embedding).all()
    assert embedding.std(0).min() > 0  # trained, not collapsed
    model = dab.EmbeddingModel.load(tmp_path / "model")
    np.testing.assert_allclose(model.embed(adata), embedding, atol=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "out.h5ad"]


def test_torchrun_refuses_a_method_it_cannot_distribute(bladder_path, tmp_path):
    result = _torchrun("embed", bladder_path, "-o", tmp_path / "out.h5ad", "--method",
                       "viewmaker", "--epochs", "1", tmp_path=tmp_path)  # fmt: skip
    assert result.returncode != 0
    assert "cannot train under torchrun" in result.stderr
    assert not (tmp_path / "out.h5ad").exists()


def test_torchrun_refuses_a_batch_smaller_than_the_processes(bladder_path, tmp_path):
    """Each process takes an equal share of the batch: 3 processes cannot share 2 cells."""
    result = _torchrun("embed", bladder_path, "-o", tmp_path / "out.h5ad", "--batch-size", "2",
                       "--epochs", "1", tmp_path=tmp_path, processes=3)  # fmt: skip
    assert result.returncode != 0
    assert "--batch-size 2 is smaller than the 3 processes that share each batch" in result.stderr
    assert not (tmp_path / "out.h5ad").exists()


# The GPU paths cannot run on this project's CPU machine; these check the decisions they
# rest on, with torch's placeholders where a second device is needed.


def test_gather_together_joins_item_numbers_from_the_cpu_with_embeddings_elsewhere(monkeypatch):
    # on CUDA the embeddings live on the GPU and the batch's item numbers on the CPU
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    monkeypatch.setattr(distributed, "gather", lambda packed: torch.cat([packed, packed]))
    z = torch.empty(4, 3, device="meta")  # a device other than the CPU
    index = torch.arange(4)
    gathered_z, gathered_index = distributed.gather_together(z, index)
    assert gathered_z.shape == (8, 3) and gathered_index.shape == (8,)
    assert gathered_z.device.type == gathered_index.device.type == "meta"


def test_batchnorm_is_synchronised_across_gpus_only(monkeypatch):
    wrapped = {}
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    monkeypatch.setattr(torch.nn.parallel, "DistributedDataParallel",
                        lambda module, **kwargs: wrapped.setdefault("module", module))  # fmt: skip
    for backend, expected in (("nccl", torch.nn.SyncBatchNorm), ("gloo", torch.nn.BatchNorm1d)):
        monkeypatch.setattr(torch.distributed, "get_backend", lambda backend=backend: backend)
        wrapped.clear()
        distributed.wrap(build_encoder("mlp", 6, 4, (16, 8)))
        norms = [m for m in wrapped["module"].modules() if "BatchNorm" in type(m).__name__]
        assert norms and all(type(m) is expected for m in norms), backend


def test_torchrun_refuses_mps_which_neither_backend_moves(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(dab.InputError, match="not on Apple MPS: pass --device cpu"):
        distributed.setup(torch.device("mps"))


def test_only_rank_0_writes_when_nothing_trains_under_torchrun(
    monkeypatch, pbmc, promoters_fasta, tmp_path
):
    # embed --model, embed-dna, augment: no process group is joined, the launcher's RANK tells
    cells = dab.tl.embed(pbmc[:100].copy(), "diffaug", epochs=2, dim=4)
    dna = dab.tl.train_dna(str(promoters_fasta), max_len=8, dim=4, epochs=2, rounds=1).model
    pbmc[:100].copy().write_h5ad(tmp_path / "cells.h5ad")
    for rank, written in (("1", []), ("0", ["a.fa", "a.h5ad", "d.h5ad", "e.h5ad"])):
        monkeypatch.setenv("RANK", rank)
        assert distributed.is_main() == (rank == "0")
        dab.tl.embed_file(tmp_path / "cells.h5ad", tmp_path / "e.h5ad", model=cells)
        dab.tl.embed_dna_file(promoters_fasta, tmp_path / "d.h5ad", dna)
        dab.tl.augment_file(tmp_path / "cells.h5ad", tmp_path / "a.h5ad", cells)
        dab.tl.augment_file(promoters_fasta, tmp_path / "a.fa", dna)
        assert sorted(p.name for p in tmp_path.iterdir() if p.name != "cells.h5ad") == written


def test_no_bf16_autocast_on_gpus_that_only_emulate_it(monkeypatch):
    from diffaug_bio._utils import mixed_precision

    monkeypatch.setattr(torch.cuda, "is_bf16_supported",
                        lambda including_emulation=True: including_emulation)  # fmt: skip
    assert mixed_precision(torch.device("cuda")).__class__.__name__ == "nullcontext"


def test_embedding_runs_in_full_precision_where_training_uses_autocast(monkeypatch):
    # a saved model applied on the CPU must give the embedding its GPU training run wrote
    from diffaug_bio import train

    seen = []

    class Recorder(torch.nn.Module):
        def forward(self, x):
            seen.append(torch.is_autocast_enabled("cpu"))
            return x

    monkeypatch.setattr(train, "mixed_precision",
                        lambda device: torch.autocast("cpu", dtype=torch.bfloat16))  # fmt: skip
    with train.mixed_precision(torch.device("cpu")):
        Recorder()(torch.ones(2, 3))
    train.embed(Recorder(), torch.ones(2, 3), torch.device("cpu"))
    assert seen == [True, False]
