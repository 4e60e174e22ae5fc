"""Encoders map one modality's input to an embedding z; the projection head maps z to the
space where the contrastive loss is computed (the evaluated representation is z)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from .._errors import InputError
from .mlp import MLPEncoder
from .sequence import CNNEncoder, TransformerEncoder

SEQUENCE_ENCODERS = {"cnn": CNNEncoder, "transformer": TransformerEncoder}


def build_encoder(kind: str, n_features: int, dim: int, hidden: Sequence[int] = ()) -> nn.Module:
    """``kind`` is ``mlp`` (tabular: ``n_features`` inputs through ``hidden`` widths), ``cnn``
    or ``transformer`` (DNA, whose shape is their own)."""
    if kind == "mlp":
        return MLPEncoder(n_features, dim, hidden)
    if kind in SEQUENCE_ENCODERS:
        return SEQUENCE_ENCODERS[kind](dim)
    raise InputError(f"unknown encoder {kind!r}: choose mlp, cnn or transformer")


def projection_head(dim: int, hidden: int = 256, out: int = 64) -> nn.Sequential:
    """The SimCLR-style head: z → hidden → out, on which the contrastive loss is computed."""
    return nn.Sequential(
        nn.Linear(dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, out)
    )


__all__ = ["CNNEncoder", "MLPEncoder", "TransformerEncoder", "build_encoder", "projection_head"]
