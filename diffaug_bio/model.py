"""The user-facing model: an encoder plus everything needed to apply it again to new data.

Split like scvi-tools: :mod:`diffaug_bio.io` registers the data (the input recipe),
:mod:`diffaug_bio.encoders` holds the torch modules, :mod:`diffaug_bio.methods` and
:mod:`diffaug_bio.train` train them; this class ties them together and saves them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import anndata as ad
import numpy as np
import torch

from . import __version__, distributed
from ._errors import InputError, counted, reason, whole_number
from ._progress import progress
from ._utils import keeps_global_random_state, resolve_device, seed_everything
from .checkpoint import Checkpoints, data_digest
from .diffusion import ConditionalDiffusion, make_schedule
from .encoders import build_encoder, projection_head
from .io.expression import (
    BLOCK_ROWS,
    ExpressionPreprocessing,
    get_matrix,
    matrix_name,
    row_blocks,
)
from .io.files import check_output_folder, staged_writes
from .io.h5ad import BackedMatrix
from .io.kmers import KmerEncoding
from .io.sequences import SequenceEncoding, SequenceSet
from .methods import DEFAULT_METHOD, build_method
from .modality import Modality, get_modality
from .train import ContrastiveTrainer, OptimiserConfig, embed

logger = logging.getLogger("diffaug_bio")

FORMAT = "diffaug-bio-model/1"
# a saved model's files; config.json last, as it is read first
MODEL_FILES = ("encoder.pt", "diffusion.pt", "config.json")
SEED_MAX = 2**32 - 1
"""The largest seed NumPy's generators take."""
InputRecipe = ExpressionPreprocessing | SequenceEncoding | KmerEncoding


def _refuse_non_finite(values: torch.Tensor, what: str) -> None:
    """Outputs of a model are refused rather than written when some are NaN or infinite:
    weights damaged or edited into such values (models saved before their weights were
    hashed), or input values too large for float32, give them."""
    bad = int((~torch.isfinite(values).flatten(1).all(dim=1)).sum())
    if bad:
        raise InputError(
            f"{bad} of {len(values)} {what} {'is' if bad == 1 else 'are'} not finite (NaN or "
            "infinite): the model's weights hold such values, or the input's values are too "
            "large for float32"
        )


class EmbeddingModel:
    """An embedding model for one modality (``expression``, ``dna`` or ``dna-kmer``).

    Build it with :meth:`for_expression`, :meth:`for_dna` or :meth:`for_kmers`, train it
    with :meth:`fit`, apply it with :meth:`embed`, keep it with :meth:`save` / :meth:`load`.
    """

    def __init__(
        self,
        modality: str,
        recipe: InputRecipe,
        encoder: str | None = None,
        dim: int | None = None,
        encoder_hidden: Sequence[int] | None = None,
    ):
        self.modality: Modality = get_modality(modality)
        self.recipe = recipe
        self.encoder_kind = encoder or self.modality.default_encoder
        self.dim = self.modality.default_dim if dim is None else whole_number("--dim", dim, 2)
        hidden = self.modality.encoder_hidden if encoder_hidden is None else encoder_hidden
        self.encoder_hidden = tuple(hidden)
        self.n_features = recipe.n_features
        self.training: dict = {}
        self.encoder: torch.nn.Module | None = None
        self._diffusion: ConditionalDiffusion | None = None
        self._read_diffusion: Callable[[], ConditionalDiffusion] | None = None
        """A loaded model's generator, read on first use: only ``augment`` and saving need it,
        so a model folder without a readable ``diffusion.pt`` still embeds."""

    @property
    def diffusion(self) -> ConditionalDiffusion | None:
        """The generator of positives (models trained with DiffAug), else None."""
        if self._read_diffusion is not None:
            self._diffusion, self._read_diffusion = self._read_diffusion(), None
        return self._diffusion

    @diffusion.setter
    def diffusion(self, diffusion: ConditionalDiffusion | None) -> None:
        self._diffusion, self._read_diffusion = diffusion, None

    def __repr__(self) -> str:
        """What a notebook cell ending in ``dab.tl.embed(...)`` shows."""
        inputs = f"{self.n_features} features" if self.n_features else "one-hot sequences"
        training = self.training
        state = (
            f"{training['method']}, {counted(training['epochs'], 'epoch')}"
            if training
            else "untrained"
        )
        return (
            f"EmbeddingModel({self.modality.name}: {inputs} → {self.encoder_kind} encoder → "
            f"{self.dim} dims; {state})"
        )

    @classmethod
    def for_expression(
        cls, recipe: ExpressionPreprocessing, dim: int | None = None
    ) -> EmbeddingModel:
        return cls("expression", recipe, "mlp", dim)

    @classmethod
    def for_dna(
        cls, encoding: SequenceEncoding, encoder: str = "cnn", dim: int | None = None
    ) -> EmbeddingModel:
        if encoder not in {"cnn", "transformer"}:
            raise InputError(f"unknown DNA encoder {encoder!r}: choose cnn or transformer")
        return cls("dna", encoding, encoder, dim)

    @classmethod
    def for_kmers(cls, encoding: KmerEncoding, dim: int | None = None) -> EmbeddingModel:
        """Sequences as k-mer count vectors, embedded by an MLP as cells are."""
        return cls("dna-kmer", encoding, "mlp", dim)

    def _new_encoder(self) -> torch.nn.Module:
        return build_encoder(self.encoder_kind, self.n_features, self.dim, self.encoder_hidden)

    @keeps_global_random_state
    def fit(
        self,
        data: np.ndarray | torch.Tensor,
        method: str = DEFAULT_METHOD,
        epochs: int | None = None,
        seed: int = 0,
        device: str = "auto",
        checkpoints: Checkpoints | None = None,
        batch_size: int | None = None,
        **method_options: object,
    ) -> EmbeddingModel:
        """Train a fresh encoder on encoder-ready ``data`` (see :meth:`prepare`), without labels.

        ``batch_size``: items per optimiser step, all processes together under torchrun
        (default: the modality's); it is also the set of items the loss pushes each anchor
        away from.
        ``checkpoints`` saves the run periodically and, with ``resume``, continues an
        interrupted one to the same result (one process only).
        ``method_options`` go to the method (e.g. ``loss``, ``rounds`` for ``diffaug``).
        """
        data = torch.as_tensor(data, dtype=torch.float32)
        if len(data) < 2:
            raise InputError(f"contrastive training needs at least 2 items, got {len(data)}")
        epochs = whole_number(
            "--epochs", self.modality.default_epochs if epochs is None else epochs, 1
        )
        batch_size = self.modality.batch_size if batch_size is None else batch_size
        batch_size = whole_number("--batch-size", batch_size, 2)
        seed = whole_number("--seed", seed, 0, SEED_MAX)
        trainer_method = build_method(method, self.modality, **method_options)
        if distributed.requested() and not trainer_method.supports_distributed:
            raise InputError(
                f"--method {method} cannot train under torchrun yet; run it in one process"
            )
        checkpoints = checkpoints or Checkpoints()
        if distributed.requested() and checkpoints.path is not None:
            if checkpoints.resume:
                raise InputError("--resume works in one process, not under torchrun yet")
            checkpoints = Checkpoints()  # ranks would race to write one file
        torch_device = distributed.setup(resolve_device(device))
        if batch_size < distributed.world_size():  # each process takes an equal share
            raise InputError(
                f"--batch-size {batch_size} is smaller than the {distributed.world_size()} "
                "processes that share each batch"
            )
        generator = seed_everything(seed)
        checkpoints.start({**self.architecture(), **trainer_method.params(), "epochs": epochs,
                           "batch_size": batch_size, "seed": seed,
                           "data": data_digest(data)})  # fmt: skip
        self.encoder = self._new_encoder()
        trainer = ContrastiveTrainer(
            self.encoder,
            projection_head(self.dim),
            trainer_method.loss,
            OptimiserConfig(batch_size=batch_size),
            torch_device,
            generator,
            checkpoints,
        )
        logger.info(
            "training %s encoder (%s, dim %d) on %d items for %s on %s",
            self.modality.name, self.encoder_kind, self.dim, len(data), counted(epochs, "epoch"),
            torch_device,
        )  # fmt: skip
        trainer_method.fit(trainer, data, epochs)
        self.encoder = self.encoder.cpu().eval()
        self.diffusion = trainer_method.diffusion and trainer_method.diffusion.cpu()
        self.training = {
            **trainer_method.params(),
            "epochs": epochs,
            "batch_size": batch_size,
            "seed": seed,
            "processes": distributed.world_size(),
            "final_loss": trainer.history[-1],
        }
        return self

    def prepare(
        self, data: ad.AnnData | SequenceSet, align_genes: bool = False, layer: str | None = None
    ) -> torch.Tensor:
        """Raw input → encoder input, by the saved recipe (gene order, normalisation, window);
        ``align_genes`` and ``layer`` (cells only) as in :meth:`embed`."""
        if self.modality.reads == "expression":
            if not isinstance(data, ad.AnnData):
                raise InputError("this is an expression model: give it an AnnData")
            return torch.from_numpy(self.recipe.transform(data, layer, align_genes))
        if not isinstance(data, SequenceSet):
            raise InputError("this is a DNA model: give it sequences")
        return torch.from_numpy(self.recipe.transform(data))

    def embed(
        self,
        data: ad.AnnData | BackedMatrix | SequenceSet | np.ndarray | torch.Tensor,
        device: str = "cpu",
        align_genes: bool = False,
        layer: str | None = None,
    ) -> np.ndarray:
        """Embeddings (n, dim) float32 of raw input (AnnData, a backed file's matrix,
        SequenceSet) or of prepared tensors. Cells and sequences are prepared and embedded
        a block at a time, so memory stays flat however many there are. ``align_genes``:
        cells lacking some of the model's genes get those genes' training mean (with a
        warning) instead of an error. ``layer``: the AnnData layer to read (None: the one the
        model was trained on), for data that keeps its counts elsewhere."""
        if self.encoder is None:
            raise InputError("the model is not trained yet: call fit() or load() first")
        torch_device = resolve_device(device)
        encoder = self.encoder.to(torch_device)
        if isinstance(data, ad.AnnData | BackedMatrix):
            blocks, n_items = self._prepared_blocks(data, align_genes, layer), data.shape[0]
        elif isinstance(data, SequenceSet):
            blocks, n_items = self._prepared_sequence_blocks(data), len(data)
        else:
            data = torch.as_tensor(data, dtype=torch.float32)
            if self.n_features and (data.dim() != 2 or data.shape[1] != self.n_features):
                raise InputError(
                    f"prepared input must be items × {self.n_features} features, got "
                    f"{tuple(data.shape)}; give the AnnData itself to have it prepared"
                )
            blocks, n_items = [data], len(data)
        embedding = np.empty((n_items, self.dim), dtype=np.float32)
        start = 0  # filled block by block: the output is held once, not twice
        for block in blocks:
            rows = embed(encoder, torch.as_tensor(block), torch_device)
            embedding[start : start + len(rows)] = rows
            start += len(rows)
        self.encoder.cpu()
        _refuse_non_finite(torch.from_numpy(embedding), "embeddings")
        return embedding

    def _prepared_blocks(
        self, data: ad.AnnData | BackedMatrix, align_genes: bool, layer: str | None
    ) -> Iterator[torch.Tensor]:
        if self.modality.reads != "expression":
            raise InputError("this is a DNA model: give it sequences")
        if isinstance(data, BackedMatrix):
            matrix, layer = data, data.layer
        else:
            layer = self.recipe.layer if layer is None else layer
            matrix = get_matrix(data, layer)
        index = self.recipe.gene_index(data.var_names, align_genes)
        blocks = row_blocks(matrix)
        for start, block in progress(blocks, "embedding cells", -(-matrix.shape[0] // BLOCK_ROWS)):
            prepared = self.recipe.transform_rows(block, index, matrix_name(layer), start)
            yield torch.from_numpy(prepared)

    def _prepared_sequence_blocks(self, sequences: SequenceSet) -> Iterator[torch.Tensor]:
        for start in range(0, len(sequences), BLOCK_ROWS):
            rows = slice(start, start + BLOCK_ROWS)
            yield self.prepare(SequenceSet(sequences.ids[rows], sequences.sequences[rows]))

    def check_generates(self) -> None:
        """Refuse a model that cannot write positives."""
        if self.diffusion is None:
            raise InputError("this model has no generator: train it with --method diffaug")
        if not self.modality.writes_positives:
            raise InputError(
                "this k-mer model generates k-mer spectra, which do not decode to sequences; "
                "augment needs a DNA model trained with --encoder cnn or transformer"
            )

    @torch.no_grad()
    def augment(
        self,
        data: ad.AnnData | SequenceSet,
        n: int = 1,
        seed: int = 0,
        device: str = "cpu",
        noise_level: float | None = None,
        steps: int | None = None,
        align_genes: bool = False,
        layer: str | None = None,
    ) -> torch.Tensor:
        """``n`` generated positives per item, ``(n · N, …)`` in encoder-input space
        (copy k of item i at row ``k · N + i``): each anchor noised to ``noise_level`` and
        denoised conditioned on its embedding. Needs a model trained with ``diffaug``.
        ``align_genes`` and ``layer`` (cells only) as in :meth:`embed`."""
        self.check_generates()
        n = whole_number("-n", n, 1)
        seed = whole_number("--seed", seed, 0, SEED_MAX)
        prepared = self.prepare(data, align_genes, layer)
        condition = torch.from_numpy(self.embed(prepared, device))
        level = self.training["noise_level"] if noise_level is None else noise_level
        steps = self.training["sampling_steps"] if steps is None else steps
        guidance = self.training["guidance"]
        generator = torch.Generator().manual_seed(seed)
        torch_device = resolve_device(device)
        codes = [
            self.diffusion.generate(
                prepared, condition, level, steps, generator, torch_device, guidance,
                decode=False,
            )
            for _ in progress(range(n), "generating positives")
        ]  # fmt: skip
        self.diffusion.cpu()
        # the codes are checked before decoding: DNA's per-position argmax turns NaN codes
        # into valid-looking bases; the decoded cells too (a NaN in the space's buffers)
        _refuse_non_finite(torch.cat(codes), "generated positives")
        generated = torch.cat([self.diffusion.space.decode(copy, prepared) for copy in codes])
        _refuse_non_finite(generated, "generated positives")
        return generated

    def architecture(self) -> dict:
        """The network's shape (JSON values): what a saved model, a checkpoint's fingerprint
        and ``uns["diffaug"]["params"]`` all record, so they cannot disagree."""
        return {
            "modality": self.modality.name,
            "encoder": self.encoder_kind,
            "encoder_hidden": list(self.encoder_hidden),
            "dim": self.dim,
        }

    def config(self) -> dict:
        config = {
            "format": FORMAT,
            "version": __version__,
            **self.architecture(),
            "input": self.recipe.to_dict(),
            "training": self.training,
        }
        if self.diffusion is not None:
            config["diffusion"] = self.diffusion.config()
        return config

    def _new_diffusion(self, config: dict) -> ConditionalDiffusion:
        """The saved generator's shape and settings, untrained (its weights are loaded next)."""
        process = config.get("process", "gaussian")  # models saved before the option
        return self.modality.new_diffusion(
            self.n_features, self.dim,
            make_schedule(process, config["timesteps"], config["schedule"]),
            config.get("denoiser_width") or self.modality.legacy_denoiser_width,
            ema_decay=config["ema_decay"], condition_dropout=config["condition_dropout"],
        )  # fmt: skip

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``config.json`` (settings, input recipe, package version), ``encoder.pt`` and,
        for DiffAug models, ``diffusion.pt`` (the generator of positives), together: a failed
        write leaves a model saved there before as it was."""
        if self.encoder is None:  # before a folder is made for it
            raise InputError("the model is not trained yet: nothing to save")
        with staged_writes(check_model_folder(directory), MODEL_FILES, "model") as staging:
            self.write_files(staging)
        return Path(directory)

    def write_files(self, folder: Path) -> None:
        """A trained model's files into ``folder``, unguarded: :meth:`save` is the safe form;
        this is for a caller staging the model with other outputs."""
        config = self.config()
        json.dumps(config, default=_json_scalar)  # a value JSON cannot hold fails first
        folder.mkdir(exist_ok=True)
        modules = {"encoder.pt": self.encoder, "diffusion.pt": self.diffusion}
        for name, module in modules.items():
            if module is not None:
                try:
                    torch.save(module.state_dict(), folder / name)
                except RuntimeError as error:  # torch.save's own write failures
                    raise OSError(f"{reason(error)}; is the disk full?") from error
        config["weights"] = {name: _digest(folder / name) for name, m in modules.items() if m}
        (folder / "config.json").write_text(json.dumps(config, indent=1, default=_json_scalar))

    @classmethod
    def load(cls, directory: str | os.PathLike, modality: str | None = None) -> EmbeddingModel:
        """Read a saved model; ``modality`` (if given) must match what the directory holds."""
        directory = Path(directory)
        config_file = directory / "config.json"
        if not directory.exists():
            raise InputError(f"{directory}: no such model folder")
        if not config_file.is_file() or not (directory / "encoder.pt").is_file():
            raise InputError(
                f"{directory}: not a diffaug-bio model (config.json / encoder.pt missing)"
            )
        try:
            config = json.loads(config_file.read_text())
        except (OSError, ValueError) as error:  # ValueError: JSON, or bytes that are not text
            raise InputError(f"{config_file}: unreadable model config ({reason(error)})") from error
        if not isinstance(config, dict) or config.get("format") != FORMAT:
            found = config.get("format") if isinstance(config, dict) else type(config).__name__
            raise InputError(f"{directory}: unknown model format {found!r}")
        with _usable_config(config_file):
            return cls._from_config(directory, config, modality)

    @classmethod
    def _from_config(cls, directory: Path, config: dict, modality: str | None) -> EmbeddingModel:
        saved = get_modality(config["modality"])
        if modality is not None and saved.reads != modality:
            raise InputError(
                f"{directory} holds a model for {saved.name} data, but {modality} input was given"
            )
        recipe = saved.recipe.from_dict(config["input"])
        hidden = config.get("encoder_hidden", saved.legacy_encoder_hidden)
        model = cls(saved.name, recipe, config["encoder"], config["dim"], hidden)
        model.training = dict(config.get("training", {}))  # a mapping, as uns will need
        model.encoder = model._new_encoder()
        digests = config.get("weights", {})  # absent in models saved before they were kept
        model.encoder.load_state_dict(_weights(directory / "encoder.pt", digests))
        model.encoder.eval()
        if "diffusion" in config:

            def read_diffusion() -> ConditionalDiffusion:
                with _usable_config(directory / "config.json"):
                    diffusion = model._new_diffusion(config["diffusion"])
                    diffusion.load_state_dict(_weights(directory / "diffusion.pt", digests))
                return diffusion.eval()

            model._read_diffusion = read_diffusion
        return model


@contextmanager
def _usable_config(config_file: Path) -> Iterator[None]:
    """What a ``config.json`` edited by hand makes building the model raise (a key missing, a
    value of the wrong type or shape) as one InputError naming the file."""
    try:
        yield
    except InputError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as error:
        problem = f"{type(error).__name__}: {reason(error)}"[:300]
        raise InputError(
            f"{config_file}: not a usable model config, or weights that do not fit it ({problem})"
        ) from error


def check_model_folder(directory: str | os.PathLike) -> Path:
    """:func:`check_output_folder`, and a folder whose ``config.json`` is not a diffaug-bio
    model's refused: saving a model there would replace the user's own file."""
    directory = check_output_folder(directory)
    config_file = directory / "config.json"
    if config_file.is_file():
        try:
            saved_format = json.loads(config_file.read_text()).get("format")
        except (OSError, ValueError, AttributeError):
            saved_format = None
        if saved_format != FORMAT:
            raise InputError(
                f"{config_file}: exists and is not a diffaug-bio model's (or is a damaged "
                "one); save the model to another folder, or remove that file"
            )
    return directory


def _digest(path: Path) -> str:
    """A short hash of a weights file, recorded in config.json and checked on loading."""
    with path.open("rb") as file:  # streamed: a k-mer encoder's weights reach 100s of MB
        return hashlib.file_digest(file, lambda: hashlib.blake2b(digest_size=16)).hexdigest()


def _weights(path: Path, digests: dict) -> dict:
    """A saved state dict; a truncated, damaged or missing file is bad input naming it, and
    so is one whose hash differs from the one ``config.json`` recorded (``digests``)."""
    try:
        weights = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as error:
        raise InputError(f"{path}: cannot be read as model weights ({reason(error)})") from error
    if path.name in digests and _digest(path) != digests[path.name]:
        raise InputError(
            f"{path.parent}: {path.name} is not the file saved with config.json (files of two "
            "models mixed, or edited); save the model again"
        )
    return weights


def _json_scalar(value: object) -> object:
    """NumPy scalars in a model's settings (a parameter grid's values) as Python numbers."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} cannot be saved in a model's config")
