"""The conditional diffusion core shared by both modalities (schedules, denoisers, model)."""

from .denoisers import ConvDenoiser, MLPDenoiser
from .model import ConditionalDiffusion
from .schedules import GaussianSchedule
from .spaces import DiffusionSpace, OneHotSpace, PrincipalSpace

__all__ = [
    "ConditionalDiffusion",
    "ConvDenoiser",
    "DiffusionSpace",
    "GaussianSchedule",
    "MLPDenoiser",
    "OneHotSpace",
    "PrincipalSpace",
]
