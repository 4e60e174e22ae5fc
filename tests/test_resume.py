"""An interrupted training run resumes from its checkpoint and ends exactly where an
uninterrupted run with the same seed ends (CPU)."""

import logging
import os
import signal
import subprocess
import sys
import time

import anndata as ad
import numpy as np
import pytest
import torch
from click.testing import CliRunner

import diffaug_bio as dab
from diffaug_bio import Checkpoints, InputError
from diffaug_bio.cli import cli


class Killed(Exception):
    """Stands in for the kill: raised right after the chosen checkpoint is written."""


def interrupted_at(position: int, monkeypatch) -> None:
    save = Checkpoints._save

    def save_then_die(self):
        save(self)
        if self._position == position:
            raise Killed

    monkeypatch.setattr(Checkpoints, "_save", save_then_die)


@pytest.mark.parametrize(
    ("method", "position"),
    [
        ("simclr", 3),
        # diffaug, 8 epochs: warm-up 1-4, round 1 M-step 5-7 and E-step 8-9, round 2 10-14
        ("diffaug", 2),  # in the warm-up
        ("diffaug", 6),  # in round 1's diffusion M-step
        ("diffaug", 9),  # at the end of round 1: the resumed run skips the whole round
        ("diffaug", 13),  # in round 2's E-step: its bank comes from the checkpoint
        ("du:prior=diffaug", 9),  # after the DiffAug prior (epochs 1-8), in du
    ],
)
def test_resumed_run_ends_like_an_uninterrupted_one(pbmc, tmp_path, monkeypatch, method, position):
    name, _, option = method.partition(":")
    options = dict([option.split("=")]) if option else {}
    settings = dict(epochs=8, dim=8, seed=3, **options)
    cells = pbmc[:300].copy()
    reference = dab.tl.embed(cells.copy(), name, **settings)

    path = tmp_path / "run.ckpt"
    with monkeypatch.context() as patch:
        interrupted_at(position, patch)
        with pytest.raises(Killed):
            dab.tl.embed(cells.copy(), name, checkpoints=Checkpoints(path, every_s=0), **settings)
    assert path.exists()
    resumed = cells.copy()
    model = dab.tl.embed(resumed, name, checkpoints=Checkpoints(path, resume=True), **settings)

    np.testing.assert_array_equal(resumed.obsm["X_diffaug"], reference.embed(cells))
    assert model.training["final_loss"] == reference.training["final_loss"]


@pytest.mark.parametrize("changed", [{"seed": 1}, {"batch_size": 100}, {"dim": 4}])
def test_a_checkpoint_of_another_run_is_refused(pbmc, tmp_path, monkeypatch, changed):
    path = tmp_path / "run.ckpt"
    cells = pbmc[:200].copy()
    with monkeypatch.context() as patch:
        interrupted_at(1, patch)
        with pytest.raises(Killed):
            dab.tl.embed(cells, "simclr", epochs=3, checkpoints=Checkpoints(path, every_s=0))
    name = next(iter(changed))
    with pytest.raises(InputError, match=f"belongs to another run \\(different {name}\\)"):
        dab.tl.embed(cells, "simclr", epochs=3, checkpoints=Checkpoints(path, resume=True),
                     **changed)  # fmt: skip


def test_cli_run_killed_then_resumed_writes_the_uninterrupted_result(bladder_path, tmp_path):
    settings = ["--epochs", "30", "--dim", "8", "--seed", "2"]
    reference = CliRunner().invoke(cli, ["-q", "embed", str(bladder_path), "-o",
                                         str(tmp_path / "reference.h5ad"), *settings])  # fmt: skip
    assert reference.exit_code == 0, reference.output

    output = tmp_path / "out.h5ad"
    checkpoint = tmp_path / "out.h5ad.checkpoint"
    command = [sys.executable, "-m", "diffaug_bio", "-q", "embed", str(bladder_path),
               "-o", str(output), "--checkpoint-every", "0", *settings]  # fmt: skip
    process = subprocess.Popen(command)
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # a few epochs further on
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert checkpoint.exists() and not output.exists()  # killed while training

    resumed = CliRunner().invoke(cli, ["embed", str(bladder_path), "-o", str(output),
                                       "--resume", *settings])  # fmt: skip
    assert resumed.exit_code == 0, resumed.output
    assert "resuming from" in resumed.output
    np.testing.assert_array_equal(
        ad.read_h5ad(output).obsm["X_diffaug"],
        ad.read_h5ad(tmp_path / "reference.h5ad").obsm["X_diffaug"],
    )
    assert not checkpoint.exists()  # removed once the output is written


def test_an_interrupted_cli_run_says_how_to_resume(bladder_path, tmp_path, monkeypatch):
    save = Checkpoints._save

    def save_then_ctrl_c(self):
        save(self)
        raise KeyboardInterrupt

    monkeypatch.setattr(Checkpoints, "_save", save_then_ctrl_c)
    result = CliRunner().invoke(cli, ["-q", "embed", str(bladder_path), "-o",
                                      str(tmp_path / "out.h5ad"), "--method", "simclr",
                                      "--epochs", "3", "--checkpoint-every", "0"])  # fmt: skip
    assert result.exit_code == 130
    assert result.output.strip() == (
        f"diffaug-bio: interrupted; {tmp_path / 'out.h5ad.checkpoint'} is kept: run the same "
        "command with --resume to continue"
    )


class RunsCode:
    """A pickle that runs code when unpickled, as a file planted where a checkpoint is
    expected could."""

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_planted_checkpoint_is_refused_without_running_its_code(pbmc, tmp_path):
    path, RunsCode.marker = tmp_path / "run.ckpt", tmp_path / "ran"
    torch.save({"fingerprint": {}, "payload": RunsCode()}, path)
    with pytest.raises(InputError, match="holds more than a checkpoint's tensors"):
        dab.tl.embed(
            pbmc[:50].copy(), "simclr", epochs=1, checkpoints=Checkpoints(path, resume=True)
        )
    assert not RunsCode.marker.exists()  # was: unpickled with weights_only=False, code ran


def test_resume_without_a_checkpoint_trains_from_the_start(pbmc, tmp_path, caplog):
    """... and says so as a warning, which -q keeps: a mistyped path would otherwise start a
    long run over without a word."""
    cells = pbmc[:200].copy()
    path = tmp_path / "none.ckpt"
    with caplog.at_level(logging.WARNING, logger="diffaug_bio"):
        model = dab.tl.embed(cells, "simclr", epochs=2, checkpoints=Checkpoints(path, resume=True))
    assert f"--resume: no checkpoint at {path}; training from the start" in caplog.text
    reference = dab.tl.embed(pbmc[:200].copy(), "simclr", epochs=2)
    np.testing.assert_array_equal(model.embed(cells), reference.embed(cells))


def test_dna_resumed_run_ends_like_an_uninterrupted_one(nontata_dir, tmp_path, monkeypatch):
    settings = dict(epochs=4, dim=8, seed=1)
    reference = dab.tl.train_dna(nontata_dir, **settings)
    path = tmp_path / "dna.ckpt"
    with monkeypatch.context() as patch:
        interrupted_at(3, patch)  # inside DiffAug's first diffusion M-step
        with pytest.raises(Killed):
            dab.tl.train_dna(nontata_dir, checkpoints=Checkpoints(path, every_s=0), **settings)
    resumed = dab.tl.train_dna(nontata_dir, checkpoints=Checkpoints(path, resume=True), **settings)
    np.testing.assert_array_equal(
        resumed.adata.obsm["X_diffaug"], reference.adata.obsm["X_diffaug"]
    )
