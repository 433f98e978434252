"""Representation metrics (torch only)."""

from solo_plugins.metrics.representation import (
    alignment,
    effective_rank,
    rank,
    representation_metrics,
    sphere_inner_product_quantiles,
    uniformity,
    wasserstein_uniformity,
)

__all__ = [
    "alignment",
    "effective_rank",
    "rank",
    "representation_metrics",
    "sphere_inner_product_quantiles",
    "uniformity",
    "wasserstein_uniformity",
]

