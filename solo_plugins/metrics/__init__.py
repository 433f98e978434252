"""Representation metrics (torch only)."""

from solo_plugins.metrics.representation import (
    alignment,
    effective_rank,
    rank,
    sphere_inner_product_quantiles,
    uniformity,
    wasserstein_uniformity,
)

__all__ = [
    "alignment",
    "effective_rank",
    "rank",
    "sphere_inner_product_quantiles",
    "uniformity",
    "wasserstein_uniformity",
]


def all_metrics(feats, z1=None, z2=None, max_points=2048, generator=None):
    """Every metric of an embedding set, as floats; alignment when two views are given."""
    out = {
        "uniformity": float(uniformity(feats[:max_points])),
        "wasserstein_uniformity": float(wasserstein_uniformity(feats, max_points, generator)),
        "rank": rank(feats),
        "effective_rank": effective_rank(feats),
    }
    if z1 is not None and z2 is not None:
        out["alignment"] = float(alignment(z1, z2))
    return out
