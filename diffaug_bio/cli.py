"""The ``diffaug-bio`` command line: a thin layer over :mod:`diffaug_bio.tl`.

Exit status: 0 success; 2 bad usage or bad input (one line on stderr); 1 anything else.

Torch, scanpy and the modules built on them load only when a command runs (about 7 s on a
laptop), so that ``--help``, ``--version`` and a refused option answer at once.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

import click

from . import __version__
from ._errors import InputError, TrainingDiverged
from ._progress import progress_enabled, set_progress

if TYPE_CHECKING:
    from .checkpoint import Checkpoints

logger = logging.getLogger("diffaug_bio")

# The choices and defaults the options state. They are written out here, not imported from
# the modules that define them, because those modules import torch; test_cli checks that
# each one is still the code's.
METHODS = ("clae", "diffaug", "du", "simclr", "viewmaker")
DEFAULT_METHOD = "diffaug"
LOSSES = ("du", "infonce", "tkernel")
INFONCE_TEMPERATURE = 0.5
BETA_SCHEDULES = ("cosine", "linear")
PROCESSES = ("categorical", "gaussian")
PRIORS = ("none", "pca", "diffaug")
NORMALISATIONS = ("log1p", "pearson", "none")
DEFAULT_NORMALISATION = "pearson"
N_TOP_GENES = {"diffaug": 5000, "others": 2000}
EPOCHS = {"cells": 100, "dna": 20}
BATCH_SIZE = {"cells": 256, "dna": 128}
DIFFAUG_DEFAULTS = {"rounds": 2, "replace_fraction": 0.5, "noise_level": 0.5, "guidance": 0.0,
                    "schedule": "cosine", "process": "gaussian"}  # fmt: skip
DIFFAUG_LOSS = {"cells and k-mers": "du", "one-hot DNA": "infonce"}
CLAE_FLIP_RATE = 0.02
CHECKPOINT_EVERY_S = 60.0
DEFAULT_KEY = "X_diffaug"
BACKED_TRAIN_CELLS = 20_000
DNA_ENCODERS = ("cnn", "transformer", "kmer")
FIT_ON = ("train", "all")
DEFAULT_K = 7
K_RANGE = (3, 8)
SEED_MAX = 2**32 - 1

_handler: logging.Handler | None = None
_verbose = False
_checkpoint: Path | None = None
"""The running command's checkpoint file, named when an interruption leaves it behind."""


def _configure_logging(quiet: bool, verbose: bool) -> None:
    """Messages go to stderr as ``diffaug-bio: …``; replaced on each call (tests call often)."""
    global _handler, _verbose
    _verbose = verbose
    if _handler is not None:
        logger.removeHandler(_handler)
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(logging.Formatter("diffaug-bio: %(message)s"))
    logger.addHandler(_handler)
    quiet = quiet or int(os.environ.get("RANK", "0")) > 0  # under torchrun only rank 0 talks
    logger.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False
    set_progress(not quiet)


NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())
"""Raised by click ≥ 8.2 for a bare command group; older versions print the help themselves."""


class DiffAugGroup(click.Group):
    """Turns every failure into one line on stderr and the contract's exit status."""

    def main(self, args=None, prog_name=None, **extra):  # type: ignore[override]
        extra.pop("standalone_mode", None)
        # called from Python (a notebook, a test runner), the process lives on: the logging
        # and progress settings of the run are undone afterwards
        level, propagate, bars = logger.level, logger.propagate, progress_enabled()
        global _checkpoint
        _checkpoint = None
        try:
            status = super().main(args, prog_name, standalone_mode=False, **extra)
        except NO_ARGS_IS_HELP as error:  # bare `diffaug-bio`: the help, as it is laid out
            click.echo(error.ctx.get_help(), err=True)
            sys.exit(2)
        except (InputError, click.ClickException) as error:
            message = error.format_message() if isinstance(error, click.ClickException) else error
            _fail(f"error: {message}", 2)
        except TrainingDiverged as error:
            _fail(f"error: {error}", 1)
        except (KeyboardInterrupt, click.Abort):
            kept = _checkpoint is not None and _checkpoint.exists()
            resume = f"; {_checkpoint} is kept: run the same command with --resume to continue"
            _fail(f"interrupted{resume if kept else ''}", 130)
        except Exception as error:
            if _verbose:
                traceback.print_exc()
            _fail(
                f"internal error: {type(error).__name__}: {error} (--verbose shows the traceback)",
                1,
            )
        finally:
            distributed = sys.modules.get(f"{__package__}.distributed")
            if distributed is not None:  # loaded by a command that ran
                distributed.teardown()
            if _handler is not None:
                logger.removeHandler(_handler)
            logger.setLevel(level)
            logger.propagate = propagate
            set_progress(bars)
        sys.exit(status if isinstance(status, int) else 0)


def _fail(message: str, status: int) -> None:
    click.echo(f"diffaug-bio: {' '.join(str(message).split())}", err=True)
    sys.exit(status)


class DeviceChoice(click.Choice):
    """auto|cpu|cuda|mps, a device this machine lacks refused before any file is read."""

    def convert(self, value, param, ctx):  # type: ignore[override]
        name = super().convert(value, param, ctx)
        if name == "auto":  # always resolves; checking would load torch for nothing
            return name
        from ._utils import resolve_device

        try:
            resolve_device(name)
        except InputError as error:
            self.fail(str(error), param, ctx)
        return name


DEVICE = DeviceChoice(["auto", "cpu", "cuda", "mps"])
SEED = click.IntRange(0, SEED_MAX)


def saved_model_option(help_text: str):
    """The required ``--model DIR`` of commands that apply a saved model."""
    return click.option(
        "--model", "model_dir", required=True, type=click.Path(file_okay=False), help=help_text
    )


def required_output_option(help_text: str):
    return click.option(
        "-o", "--output", required=True, type=click.Path(dir_okay=False), help=help_text
    )


METHOD_OPTIONS = (
    "loss",
    "temperature",
    "warmup",
    "rounds",
    "replace_fraction",
    "noise_level",
    "guidance",
    "schedule",
    "process",
    "prior",
    "sigma",
    "epsilon",
)


def method_options(options: dict) -> dict:
    """Remove the method options from ``options``; return those the user gave."""
    given = {name: options.pop(name) for name in METHOD_OPTIONS}
    return {name: value for name, value in given.items() if value is not None}


def training_options(function):
    """Options shared by every command that trains an encoder."""
    decorators = [
        click.option("--method", type=click.Choice(METHODS), default=DEFAULT_METHOD,
                     show_default=True, help="Contrastive method."),
        click.option("--epochs", type=click.IntRange(min=1), default=None,
                     help=f"Contrastive training epochs [default: {EPOCHS['cells']} "
                          f"for cells and k-mers, {EPOCHS['dna']} for one-hot DNA]."),
        click.option("--batch-size", type=click.IntRange(min=2), default=None,
                     help="Items per training step, all processes together under torchrun; "
                          f"also the negatives per anchor [default: {BATCH_SIZE['cells']} "
                          f"for cells and k-mers, {BATCH_SIZE['dna']} for one-hot DNA]."),
        click.option("--dim", type=click.IntRange(min=2), default=None,
                     help="Embedding size [default: 128 for cnn / transformer DNA, 50 else]."),
        click.option("--seed", type=SEED, default=0, show_default=True,
                     help="Fixes every random choice; same seed, thread count and CPU kind, same "
                          "embedding on CPU."),
        click.option("--device", type=DEVICE, default="auto", show_default=True,
                     help="auto picks cuda, then mps, then cpu."),
        click.option("--loss", type=click.Choice(LOSSES), default=None,
                     help="Contrastive loss [default: infonce; du for --method du; for diffaug "
                          + ", ".join(f"{loss} on {data}" for data, loss in DIFFAUG_LOSS.items())
                          + "]."),
        click.option("--temperature", type=click.FloatRange(min=0, min_open=True), default=None,
                     help=f"InfoNCE's temperature T [default: {INFONCE_TEMPERATURE}]; for the du "
                          "loss it sets DU's weight t = 1/(2T) [default: t = 1]."),
        click.option("--warmup", type=click.Choice(["neighbours", "views"]), default=None,
                     help="diffaug: warm-up positives [default: views for one-hot DNA, "
                          "neighbours else]."),
        click.option("--rounds", type=click.IntRange(min=1), default=None,
                     help="diffaug: M-step/E-step rounds after the warm-up "
                          f"[default: {DIFFAUG_DEFAULTS['rounds']}]."),
        click.option("--replace-fraction", type=click.FloatRange(0, 1), default=None,
                     help="diffaug: share of positives drawn from the generated bank "
                          f"[default: {DIFFAUG_DEFAULTS['replace_fraction']:g}]."),
        click.option("--noise-level", type=click.FloatRange(0, 1), default=None,
                     help="diffaug: t*/T, how far anchors are noised before denoising "
                          f"[default: {DIFFAUG_DEFAULTS['noise_level']:g}]."),
        click.option("--guidance", type=click.FloatRange(min=0), default=None,
                     help="diffaug: classifier-free guidance weight, 0 off "
                          f"[default: {DIFFAUG_DEFAULTS['guidance']:g}]."),
        click.option("--schedule", type=click.Choice(BETA_SCHEDULES), default=None,
                     help="diffaug: the noise (β) schedule "
                          f"[default: {DIFFAUG_DEFAULTS['schedule']}]."),
        click.option("--process", type=click.Choice(PROCESSES), default=None,
                     help="diffaug: forward process; categorical (D3PM) is for DNA only "
                          f"[default: {DIFFAUG_DEFAULTS['process']}]."),
        click.option("--prior", type=click.Choice(PRIORS), default=None,
                     help="du: kernel prior, built without labels [default: none]."),
        click.option("--sigma", type=click.FloatRange(min=0, min_open=True), default=None,
                     help="du: RBF bandwidth of the prior [default: median distance]."),
        click.option("--epsilon", type=click.FloatRange(min=0, min_open=True), default=None,
                     help="viewmaker: ℓ1 budget per element [default: 0.015 one-hot DNA, "
                          "0.01 else]; clae: FGSM step [default: 0.03] (cells, k-mers; one-hot DNA "
                          f"flips {CLAE_FLIP_RATE:.0%} of bases instead)."),
    ]  # fmt: skip
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


def checkpoint_options(function):
    """``--resume`` and ``--checkpoint-every`` of the commands that train."""
    function = click.option(
        "--checkpoint-every", type=click.FloatRange(min=0), default=CHECKPOINT_EVERY_S,
        show_default=True, metavar="SECONDS",
        help="Save a training checkpoint this often (0: every epoch); removed on success.",
    )(function)  # fmt: skip
    return click.option(
        "--resume", is_flag=True,
        help="Continue an interrupted run from its checkpoint (run the same command again "
        "with --resume); it ends exactly as an uninterrupted run would on the CPU.",
    )(function)  # fmt: skip


TRAINING_ONLY = ("method", "epochs", "batch_size", "dim", "seed", "n_top_genes", "normalisation",
                 "train_cells", "resume", "checkpoint_every", *METHOD_OPTIONS)  # fmt: skip
"""The options of ``embed`` that only a training run reads."""


def _refuse_training_options(why: str) -> None:
    """A usage error naming the training options given on the command line, if any: a run
    that does not train would otherwise drop them without a word."""
    context = click.get_current_context()
    given = [
        f"--{name.replace('_', '-')}"
        for name in TRAINING_ONLY
        if context.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE
    ]
    if given:
        verb = "applies" if len(given) == 1 else "apply"
        raise click.UsageError(f"{why}: {', '.join(given)} {verb} only to training")


def make_checkpoints(path: Path, options: dict) -> Checkpoints:
    """Remove the checkpoint options from ``options``; the run's Checkpoints at ``path``."""
    from .checkpoint import Checkpoints

    global _checkpoint
    every, resume = options.pop("checkpoint_every"), options.pop("resume")
    _checkpoint = path
    return Checkpoints(path, every_s=every, resume=resume)


@click.group(cls=DiffAugGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="diffaug-bio")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors; no progress bars.")
@click.option(
    "-v", "--verbose", is_flag=True, help="Debug messages; tracebacks on internal errors."
)
def cli(quiet: bool, verbose: bool) -> None:
    """Contrastive embeddings of cells and DNA sequences with diffusion-generated positives.

    \b
    Examples:
      diffaug-bio demo
      diffaug-bio embed cells.h5ad -o cells.embedded.h5ad
      diffaug-bio train-dna human_nontata_promoters --gb-root data/ -o run/
    """
    _configure_logging(quiet, verbose)


@cli.command()
@click.argument("input_file", metavar="INPUT", type=click.Path(dir_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write here; without it an .h5ad INPUT is updated in place, atomically, and a "
    "table INPUT gets an .h5ad beside it.",
)
@click.option(
    "--layer",
    default=None,
    help="Use adata.layers[NAME] instead of X; with --model, --layer X reads X where the model "
    "was trained on a layer.",
)
@click.option("--key-added", default=DEFAULT_KEY, show_default=True, help="obsm key to write.")
@click.option(
    "--n-top-genes",
    type=click.IntRange(min=1),
    default=None,
    help="Highly variable genes the encoder sees (fewer genes: all of them) "
    f"[default: {N_TOP_GENES['diffaug']:,} for diffaug, {N_TOP_GENES['others']:,} for the others].",
)
@click.option(
    "--normalisation",
    type=click.Choice(NORMALISATIONS),
    default=None,
    help="How raw counts are normalised: pearson (Pearson residuals) or log1p "
    f"(normalize_total + log1p) [default: {DEFAULT_NORMALISATION}]; named, either also reads "
    "non-integer counts (EM quantifiers) when some value exceeds 88.7. none: values used as "
    "they are, integers too (a table of ages or doses). Other input is used as it is.",
)
@training_options
@checkpoint_options
@click.option(
    "--save-model",
    type=click.Path(file_okay=False),
    default=None,
    help="Save the trained model to this folder.",
)
@click.option(
    "--model",
    "model_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Apply a saved model instead of training (genes must match).",
)
@click.option(
    "--align-genes",
    is_flag=True,
    help="With --model: match genes by name; the model's genes missing from INPUT get their "
    "training mean (named in a warning) instead of an error.",
)
@click.option(
    "--obs-columns",
    default="",
    metavar="A,B,…",
    help="CSV/TSV input: annotation columns, kept in obs (every other column is a feature).",
)
@click.option("--index-column", default=None, help="CSV/TSV input: the column of sample names.")
@click.option(
    "--backed",
    is_flag=True,
    help="Read the matrix from disk a block at a time instead of loading it (large files).",
)
@click.option(
    "--train-cells",
    type=click.IntRange(min=2),
    default=None,
    help="Train on a random sample of this many cells, embed all "
    f"[default: all; {BACKED_TRAIN_CELLS:,} with --backed].",
)
def embed(input_file, output, layer, key_added, save_model, model_dir, align_genes, obs_columns,
          index_column, backed, train_cells, **options) -> None:  # fmt: skip
    """Embed the cells of an .h5ad file (or the rows of a CSV/TSV feature table) into obsm[KEY].

    Raw counts are detected and normalised (Pearson residuals, or normalize_total + log1p with
    --normalisation log1p); with more genes than --n-top-genes, the highly variable ones are
    used. Writes obsm[KEY] and uns["diffaug"]["params"] (also kept as
    uns["diffaug"]["embeddings"][KEY], beside earlier keys' records).
    With --backed the matrix is never loaded: training uses a random sample of cells, every
    cell is embedded a block at a time, and memory stays flat however many cells there are.

    \b
    Examples:
      diffaug-bio embed cells.h5ad -o cells.embedded.h5ad
      diffaug-bio embed cells.h5ad --layer counts --save-model model/
      diffaug-bio embed new_cells.h5ad --model model/ -o new_cells.embedded.h5ad
      diffaug-bio embed atlas.h5ad --backed --train-cells 50000 -o atlas.embedded.h5ad
      diffaug-bio embed other_cells.h5ad --model model/ --align-genes -o other.h5ad
      diffaug-bio embed proteins.csv --obs-columns patient,tissue --index-column sample_id
    """
    if align_genes and model_dir is None:
        raise click.UsageError("--align-genes applies a saved model: give --model DIR too")
    from . import distributed, tl

    destination = Path(output) if output else tl.default_output(input_file)
    checkpoints = make_checkpoints(destination.with_name(destination.name + ".checkpoint"), options)
    extra = method_options(options)
    if model_dir is not None:
        _refuse_training_options("--model applies a saved model without training")
    model = tl.embed_file(input_file, destination, backed=backed, layer=layer,
                          key_added=key_added, train_cells=train_cells, model=model_dir,
                          align_genes=align_genes, index_column=index_column,
                          checkpoints=None if model_dir else checkpoints,
                          obs_columns=[c.strip() for c in obs_columns.split(",") if c.strip()],
                          save_model=save_model or None, **options, **extra)  # fmt: skip
    logger.info("wrote obsm[%r] (%d dimensions) to %s", key_added, model.dim, destination)
    if distributed.is_main():
        checkpoints.remove()


@cli.command("train-dna")
@click.argument("dataset")
@checkpoint_options
@click.option(
    "--gb-root",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder holding Genomic Benchmarks datasets (NAME/{train,test}/CLASS/*.txt).",
)
@click.option(
    "-o",
    "--outdir",
    type=click.Path(file_okay=False),
    default="diffaug-dna",
    show_default=True,
    help="Output folder.",
)
@click.option(
    "--encoder",
    type=click.Choice(DNA_ENCODERS),
    default="cnn",
    show_default=True,
    help="cnn / transformer: on one-hot sequences; kmer: an MLP on each sequence's k-mer "
    "counts, trained as cells are (no augment: its positives are k-mer spectra).",
)
@click.option(
    "--k",
    type=click.IntRange(*K_RANGE),
    default=None,
    help=f"--encoder kmer: the k-mer length [default: {DEFAULT_K}].",
)
@click.option(
    "--fit-on",
    type=click.Choice(FIT_ON),
    default="train",
    show_default=True,
    help="Sequences the encoder learns from, labels never used: the train split, or all "
    "(test split too, as embed learns from every cell). The probe is fit on train either way.",
)
@training_options
@click.option(
    "--max-len",
    type=click.IntRange(min=1),
    default=None,
    help="Window width: longer sequences are centre-cropped, shorter ones centred and "
    "zero-padded [default: longest training sequence].",
)
def train_dna(dataset, gb_root, outdir, encoder, k, fit_on, max_len, **options):
    """Train a DNA encoder without labels; write embeddings, model and linear-probe metrics.

    DATASET is a Genomic Benchmarks name (looked up under --gb-root, then
    ~/.genomic_benchmarks, then downloaded if genomic-benchmarks is installed and online),
    a folder in that layout, a FASTA/FASTQ file, or a CSV/TSV with columns seq[,label][,split][,id].

    \b
    Writes OUTDIR/embeddings.h5ad (obs: split, label; obsm["X_diffaug"]),
    OUTDIR/model/ and OUTDIR/metrics.json (linear probe: fit on train, score on test).

    \b
    Examples:
      diffaug-bio train-dna human_nontata_promoters --gb-root data/genomic_benchmarks -o run/
      diffaug-bio train-dna sequences.csv --encoder transformer --epochs 10 -o run/
      diffaug-bio train-dna human_nontata_promoters --encoder kmer --fit-on all -o run/
    """
    from . import distributed, tl
    from .io.files import check_output_folder
    from .model import check_model_folder

    check_output_folder(outdir)
    check_model_folder(Path(outdir) / "model")  # a file of that name would fail after training
    checkpoints = make_checkpoints(Path(outdir) / "checkpoint.pt", options)
    extra = method_options(options)
    result = tl.train_dna(dataset, gb_root=gb_root, encoder=encoder, max_len=max_len, k=k,
                          fit_on=fit_on, checkpoints=checkpoints, **options, **extra)  # fmt: skip
    if not distributed.is_main():
        return
    result.save(outdir)
    checkpoints.remove()
    accuracy = result.metrics["linear_probe_accuracy"]
    if accuracy is not None:
        click.echo(f"linear-probe accuracy (test split): {accuracy:.4f}")
    logger.info("wrote %s/embeddings.h5ad, %s/model/, %s/metrics.json", outdir, outdir, outdir)


@cli.command("embed-dna")
@click.argument("input_file", metavar="INPUT.fa", type=click.Path(dir_okay=False))
@saved_model_option("A model folder written by train-dna.")
@required_output_option("The .h5ad to write (obsm['X_diffaug']).")
@click.option("--device", type=DEVICE, default="auto", show_default=True)
def embed_dna(input_file, model_dir, output, device) -> None:
    """Embed sequences (FASTA/FASTQ/CSV) with a saved DNA model.

    \b
    Example:
      diffaug-bio embed-dna promoters.fa --model run/model -o promoters.h5ad
    """
    from . import tl

    adata = tl.embed_dna_file(input_file, output, model_dir, device)
    logger.info("wrote %d embeddings to %s", adata.n_obs, output)


@cli.command()
@click.option(
    "-o",
    "--outdir",
    type=click.Path(file_okay=False),
    default="diffaug-demo",
    show_default=True,
    help="Output folder.",
)
@training_options
def demo(outdir, **options) -> None:
    """Embed scanpy's bundled pbmc68k_reduced, draw a UMAP PNG and print kNN accuracy.

    \b
    Example:
      diffaug-bio demo -o diffaug-demo
    """
    from . import distributed
    from .demo import run_demo

    extra = method_options(options)
    scores = run_demo(outdir, **options, **extra)
    if not distributed.is_main():
        return
    click.echo(f"pbmc68k_reduced kNN-15 accuracy: {scores['knn15_accuracy']:.3f} "
               f"(shipped PCA-50: {scores['knn15_accuracy_pca50']:.3f}); "
               f"Leiden ARI {scores['leiden_ari']:.3f}")  # fmt: skip
    click.echo(f"UMAP: {Path(outdir) / 'umap.png'}")


@cli.command()
@click.argument("input_file", metavar="INPUT", type=click.Path(dir_okay=False))
@saved_model_option("A model folder trained with --method diffaug.")
@click.option(
    "-n",
    "copies",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Generated positives per input item.",
)
@required_output_option("OUT.h5ad for cells, OUT.fa for sequences.")
@click.option(
    "--layer",
    default=None,
    help="Cells: read adata.layers[NAME], or X with --layer X [default: where the training "
    "data kept its matrix].",
)
@click.option(
    "--align-genes",
    is_flag=True,
    help="Cells: match genes by name; the model's genes missing from INPUT get their "
    "training mean (named in a warning) instead of an error.",
)
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--device", type=DEVICE, default="auto", show_default=True)
def augment(input_file, model_dir, copies, output, layer, align_genes, seed, device) -> None:
    """Write K generated positives per input item, from a saved DiffAug model.

    INPUT is an .h5ad (cells; output .h5ad on the model's genes, on the scale it was trained
    on: uns["diffaug"]["params"]["normalisation"]) or a FASTA/FASTQ/CSV of sequences (output
    FASTA of valid A/C/G/T sequences).

    \b
    Examples:
      diffaug-bio augment cells.h5ad --model model/ -n 5 -o cells.augmented.h5ad
      diffaug-bio augment promoters.fa --model run/model -n 3 -o promoters.augmented.fa
    """
    from . import tl

    written = tl.augment_file(input_file, output, model_dir, copies, seed, device, layer=layer,
                              align_genes=align_genes)  # fmt: skip
    logger.info("wrote %d generated positives to %s", written, output)


def main() -> None:
    cli.main(prog_name="diffaug-bio")
