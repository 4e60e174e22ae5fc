"""Killed runs (SIGKILL, no chance to clean up) never damage the input or leave a
half-written output: outputs are written to a temporary file and renamed into place."""

import errno
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pytest

from diffaug_bio import InputError
from diffaug_bio.io.files import atomic_replacement, staged_writes
from diffaug_bio.io.h5ad import write_h5ad_atomic

pytestmark = pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")


def test_sigkill_during_training_leaves_the_input_intact(bladder_path, tmp_path, digest):
    source = shutil.copy(bladder_path, tmp_path / "cells.h5ad")
    before = digest(source)
    command = [sys.executable, "-m", "diffaug_bio", "embed", str(source),
               "--method", "simclr", "--epochs", "500"]  # fmt: skip
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    for line in process.stderr:  # wait until training has started, then kill
        if "training" in line:
            break
    time.sleep(1.0)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert digest(source) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cells.h5ad"]


WRITER = textwrap.dedent("""
    import sys
    import anndata as ad, numpy as np
    from diffaug_bio.io.h5ad import write_h5ad_atomic
    adata = ad.AnnData(np.full((20_000, 2_000), 2.0, dtype=np.float32))
    print("writing", flush=True)
    write_h5ad_atomic(adata, sys.argv[1])
""")


def test_sigkill_during_a_write_leaves_the_old_or_the_new_file(tmp_path):
    target = tmp_path / "out.h5ad"
    ad.AnnData(np.ones((5, 3), dtype=np.float32)).write_h5ad(target)
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(target)],
                               stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert process.stdout.readline().strip() == "writing"
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".out.h5ad.*.tmp")) and time.monotonic() < deadline:
        time.sleep(0.002)  # the temporary file exists: the write is under way
    assert list(tmp_path.glob(".out.h5ad.*.tmp")), "the write went to no temporary file"
    process.send_signal(signal.SIGKILL)
    process.wait()

    written = ad.read_h5ad(target)  # never half-written: the old file or the whole new one
    assert written.shape in {(5, 3), (20_000, 2_000)}
    assert np.unique(written.X).tolist() in ([1.0], [2.0])
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == ["out.h5ad"]

    write_h5ad_atomic(ad.AnnData(np.zeros((2, 2), dtype=np.float32)), target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.h5ad"]  # orphan removed
    assert ad.read_h5ad(target).shape == (2, 2)


@pytest.fixture
def another_file_system(tmp_path):
    """A folder on another file system than ``tmp_path`` where the machine has one (a link
    into it cannot be renamed over), else beside ``tmp_path``."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shm.stat().st_dev != tmp_path.stat().st_dev:
        with tempfile.TemporaryDirectory(dir=shm) as folder:
            yield Path(folder)
    else:
        (tmp_path / "annex").mkdir()
        yield tmp_path / "annex"


def test_outputs_staged_together_land_together_and_keep_links(tmp_path, another_file_system):
    elsewhere = another_file_system
    (elsewhere / "scores.json").write_text("old")
    (elsewhere / "generator").write_text("a cached generator")
    out = tmp_path / "out"
    (out / "model").mkdir(parents=True)
    (out / "model" / "diffusion.pt").symlink_to(elsewhere / "generator")
    (out / "notes.txt").write_text("the user's")
    (out / "table.csv").write_text("old")
    (out / "table.csv").chmod(0o640)
    (out / "scores.json").symlink_to(elsewhere / "scores.json")
    (out / ".staging.999999999.x.tmp").mkdir()  # left by a killed writer
    names = ["table.csv", "model/encoder.pt", "model/diffusion.pt", "scores.json"]

    full = pytest.raises(InputError, match=r"out: cannot write the outputs \(No space left")
    with full, staged_writes(out, names, "outputs") as staging:
        (staging / "table.csv").write_text("new")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    before = ["model", "model/diffusion.pt", "notes.txt", "scores.json", "table.csv"]
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == before
    assert (out / "table.csv").read_text() == "old"

    with staged_writes(out, names, "outputs") as staging:
        (staging / "model").mkdir()
        for name in ("table.csv", "model/encoder.pt", "scores.json"):
            (staging / name).write_text("new")
    after = ["model", "model/encoder.pt", "notes.txt", "scores.json", "table.csv"]
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == after  # generator gone
    assert (out / "scores.json").is_symlink() and (elsewhere / "scores.json").read_text() == "new"
    assert (elsewhere / "generator").exists()  # the link was removed, not the file behind it
    assert (out / "table.csv").stat().st_mode & 0o777 == 0o640
    assert (out / "notes.txt").read_text() == "the user's"
    assert sorted(p.name for p in elsewhere.iterdir()) == ["generator", "scores.json"]

    (out / "scores.json").unlink()
    (out / "scores.json").mkdir()
    with (
        pytest.raises(InputError, match=r"scores\.json: is a folder"),
        staged_writes(out, names, "outputs") as staging,
    ):
        (staging / "table.csv").write_text("newer")
    assert (out / "table.csv").read_text() == "new"  # refused before anything was replaced


def test_a_failed_write_is_one_error_and_leaves_no_trace(tmp_path):
    """A full disk (or a folder that refuses files) while an output is written is bad input
    of the InputError kind, naming the output, not an internal error; the old file stays, no
    temporary file is left, and a folder the failed write would have created is gone."""
    target = tmp_path / "out.h5ad"
    target.write_text("old")
    full = pytest.raises(InputError, match=r"out\.h5ad: cannot write the output \(No space left")
    with full, atomic_replacement(target) as temporary:
        Path(temporary).write_text("half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert [p.name for p in tmp_path.iterdir()] == ["out.h5ad"]
    assert target.read_text() == "old"

    run = tmp_path / "new" / "run"
    with (
        pytest.raises(InputError, match=r"run: cannot write the outputs \(No space left"),
        staged_writes(run, ["metrics.json"], "outputs") as staging,
    ):
        (staging / "metrics.json").write_text("{}")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert [p.name for p in tmp_path.iterdir()] == ["out.h5ad"]  # neither run/ nor new/ left


def test_an_h5ad_that_fails_halfway_leaves_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "out.h5ad"
    target.write_text("old")

    def half_then_full(adata, path, *args, **kwargs):
        Path(path).write_text("half")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(ad.AnnData, "write_h5ad", half_then_full)
    with pytest.raises(InputError, match="cannot write the output"):
        write_h5ad_atomic(ad.AnnData(np.ones((2, 2), dtype=np.float32)), target)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.h5ad"]
