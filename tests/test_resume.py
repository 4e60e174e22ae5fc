"""An interrupted training run resumes from its checkpoint and ends exactly where an
uninterrupted run with the same seed ends (CPU)."""

import numpy as np
import pytest

import diffaug_bio as dab
from diffaug_bio import Checkpoints, InputError


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
        ("diffaug", 2),  # in the warm-up
        ("diffaug", 4),  # in round 1's diffusion M-step
        ("diffaug", 7),  # in round 1's contrastive E-step
        ("diffaug", 10),  # in round 2's E-step, the bank of round 2 from the checkpoint
        ("du:prior=diffaug", 9),  # after the DiffAug prior, in decoupled uniformity
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


def test_a_checkpoint_of_another_run_is_refused(pbmc, tmp_path, monkeypatch):
    path = tmp_path / "run.ckpt"
    cells = pbmc[:200].copy()
    with monkeypatch.context() as patch:
        interrupted_at(1, patch)
        with pytest.raises(Killed):
            dab.tl.embed(cells, "simclr", epochs=3, checkpoints=Checkpoints(path, every_s=0))
    with pytest.raises(InputError, match="belongs to another run \\(different seed\\)"):
        dab.tl.embed(cells, "simclr", epochs=3, seed=1, checkpoints=Checkpoints(path, resume=True))
