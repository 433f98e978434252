"""The gradient-vs-batch-size analysis: its premise checked exactly on a small set."""

import itertools

import pytest
import torch

from solo_plugins.analysis.gradient_vs_batch_size import (
    DEFAULT_LOSSES,
    _gradient,
    clustered_pairs,
    first_batch_size_below,
    gradient_statistics,
)


def _mean_over_every_batch(loss_fn, z1, z2, b):
    grads = [_gradient(loss_fn, z1[list(p)], z2[list(p)]) for p in itertools.combinations(range(z1.shape[0]), b)]
    return torch.stack(grads).mean(dim=0)


def test_kcl_batch_gradient_is_unbiased_and_dhel_infonce_are_not():
    """Averaged over every batch of 3 out of 7 pairs, KCL's gradient is the full-set gradient
    (its energy is a U-statistic); DHEL's and InfoNCE's are not."""
    z1, z2 = clustered_pairs(n=7, dim=4, clusters=2)
    for name, unbiased in (("kcl", True), ("dhel", False), ("infonce", False)):
        full = _gradient(DEFAULT_LOSSES[name], z1, z2)
        mean = _mean_over_every_batch(DEFAULT_LOSSES[name], z1, z2, 3)
        gap = float((mean - full).norm() / full.norm())
        assert (gap < 1e-10) if unbiased else (gap > 1e-3), (name, gap)


def test_the_whole_set_as_a_batch_has_no_bias_and_no_spread():
    z1, z2 = clustered_pairs(n=16, dim=4)
    stats = gradient_statistics(z1, z2, [16], batches=4)
    for name, by_size in stats.items():
        assert by_size[16]["bias"] < 1e-10 and by_size[16]["std"] < 1e-10, name


@pytest.mark.slow
def test_monte_carlo_noise_is_taken_out_of_the_bias():
    z1, z2 = clustered_pairs(n=64, dim=4)
    stats = gradient_statistics(z1, z2, [4, 32], losses={"kcl": DEFAULT_LOSSES["kcl"]}, batches=64)
    for s in stats["kcl"].values():
        assert s["net_bias"] <= s["bias"] and s["noise"] == pytest.approx(s["std"] / 8)
    # the estimate tells a biased loss from an unbiased one: KCL's bias stays at its noise
    # level, InfoNCE's stands far above it
    both = gradient_statistics(z1, z2, [4], losses={k: DEFAULT_LOSSES[k] for k in ("kcl", "infonce")}, batches=1024)
    assert both["kcl"][4]["bias"] < 2 * both["kcl"][4]["noise"]
    assert both["infonce"][4]["bias"] > 5 * both["infonce"][4]["noise"]


def test_first_batch_size_below():
    stats = {2: {"net_bias": 0.3}, 4: {"net_bias": 0.01}, 8: {"net_bias": 0.06}, 16: {"net_bias": 0.0}}
    assert first_batch_size_below(stats, 0.05) == 16
    assert first_batch_size_below(stats, 0.5) == 2
    assert first_batch_size_below({2: {"net_bias": 0.2}}, 0.05) is None
