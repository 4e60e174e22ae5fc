"""Contrastive learning pieces shared by all methods: losses and views."""

from .losses import info_nce
from .views import DNAViews, ExpressionViews

__all__ = ["DNAViews", "ExpressionViews", "info_nce"]
