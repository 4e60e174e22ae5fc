"""The conditional diffusion core shared by both modalities (processes, denoisers, model)."""

from .denoisers import ConvDenoiser, MLPDenoiser
from .model import ConditionalDiffusion
from .schedules import CategoricalSchedule, GaussianSchedule, Schedule, make_schedule
from .spaces import DiffusionSpace, OneHotSpace, PrincipalSpace

__all__ = [
    "CategoricalSchedule",
    "ConditionalDiffusion",
    "ConvDenoiser",
    "DiffusionSpace",
    "GaussianSchedule",
    "MLPDenoiser",
    "OneHotSpace",
    "PrincipalSpace",
    "Schedule",
    "make_schedule",
]
