import math

import numpy as np
import pytest
import torch

from solo_plugins.metrics import (
    alignment,
    effective_rank,
    rank,
    sphere_inner_product_quantiles,
    uniformity,
    wasserstein_uniformity,
)

stats = pytest.importorskip("scipy.stats")


def _sphere(n, d, seed=0, k=None):
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, d, generator=gen, dtype=torch.float64)
    if k is not None:
        z[:, k:] = 0
        rotation, _ = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=torch.float64))
        z = z @ rotation
    return z


@pytest.mark.parametrize("d", [2, 3, 10, 127, 512])
def test_sphere_quantiles_match_the_beta_law(d):
    p = torch.linspace(0.001, 0.999, 41, dtype=torch.float64)
    expected = 2 * stats.beta.ppf(p.numpy(), (d - 1) / 2, (d - 1) / 2) - 1
    np.testing.assert_allclose(sphere_inner_product_quantiles(d, p).numpy(), expected, atol=1e-7)


def test_uniform_points_are_near_zero_distance():
    assert float(wasserstein_uniformity(_sphere(1500, 16))) < 0.01


@pytest.mark.slow
@pytest.mark.parametrize("d,k", [(16, 4), (64, 8), (128, 2)])
def test_subspace_points_sit_at_the_predicted_distance(d, k):
    # Theory: inner products of uniform points on a k-dim great subsphere follow the
    # k-dimensional law, so the distance is W1 between the k- and d-dimensional laws.
    u = (np.arange(20000) + 0.5) / 20000
    law = lambda dim: 2 * stats.beta.ppf(u, (dim - 1) / 2, (dim - 1) / 2) - 1
    predicted = np.abs(law(k) - law(d)).mean()
    measured = float(wasserstein_uniformity(_sphere(1500, d, k=k)))
    assert measured == pytest.approx(predicted, rel=0.08)
    assert measured > 10 * float(wasserstein_uniformity(_sphere(1500, d)))


def test_subsampling_is_reproducible_and_close():
    z = _sphere(3000, 8, k=3)
    a = wasserstein_uniformity(z, max_points=800, generator=torch.Generator().manual_seed(1))
    b = wasserstein_uniformity(z, max_points=800, generator=torch.Generator().manual_seed(1))
    assert float(a) == float(b)
    assert float(a) == pytest.approx(float(wasserstein_uniformity(z)), rel=0.1)


def test_effective_rank_and_rank():
    iso = _sphere(4000, 32)
    assert effective_rank(iso) > 0.9 * 32 and rank(iso) == 32
    low = _sphere(4000, 32, k=5)
    assert effective_rank(low) == pytest.approx(5, abs=0.5) and rank(low) == 5


def test_alignment_and_uniformity_against_brute_force():
    gen = torch.Generator().manual_seed(3)
    x, y = torch.randn(30, 6, generator=gen, dtype=torch.float64), torch.randn(30, 6, generator=gen, dtype=torch.float64)
    xn, yn = x / x.norm(dim=1, keepdim=True), y / y.norm(dim=1, keepdim=True)
    align = sum(float((xn[i] - yn[i]).norm() ** 3) for i in range(30)) / 30
    assert float(alignment(x, y, alpha=3)) == pytest.approx(align, rel=1e-9)
    terms = [math.exp(-2 * float(((xn[i] - xn[j]) ** 2).sum())) for i in range(30) for j in range(i + 1, 30)]
    assert float(uniformity(x, t=2)) == pytest.approx(math.log(sum(terms) / len(terms)), rel=1e-9)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="2-D"):
        wasserstein_uniformity(torch.randn(5))
    with pytest.raises(ValueError, match="same shape"):
        alignment(torch.randn(4, 3), torch.randn(5, 3))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_metrics_on_cuda_tensors():
    z = _sphere(500, 16).float().cuda()
    assert float(wasserstein_uniformity(z)) < 0.05
    assert effective_rank(z) > 14 and rank(z) == 16
    assert math.isfinite(float(uniformity(z))) and math.isfinite(float(alignment(z, z)))


@pytest.mark.slow
def test_kcl_expected_loss_is_flat_in_batch_size_and_infonce_is_not():
    from solo_plugins.analysis.loss_vs_batch_size import expected_loss_by_batch_size

    gen = torch.Generator().manual_seed(0)
    z1 = torch.randn(2048, 32, generator=gen)
    z2 = z1 + 0.5 * torch.randn(2048, 32, generator=gen)
    curves = expected_loss_by_batch_size(z1, z2, [8, 256], batches=48)
    kcl_small, kcl_err = curves["kcl"][8]
    kcl_large, _ = curves["kcl"][256]
    assert abs(kcl_large - kcl_small) < 4 * kcl_err + 1e-3
    # InfoNCE's expected loss grows like log of the batch size.
    nce_small, _ = curves["infonce"][8]
    nce_large, _ = curves["infonce"][256]
    assert nce_large - nce_small > 0.5 * math.log(256 / 8)


def test_rank_is_the_official_definition_on_a_decaying_spectrum():
    """np.linalg.matrix_rank(np.cov(z.T), tol=1e-5), the official code's rank, on embeddings
    whose spectrum decays from 1 to 1e-4 (where a relative tolerance gives a different count)."""
    import numpy as np

    gen = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(128, 128, generator=gen, dtype=torch.float64))
    scales = torch.logspace(0, -4, 128, dtype=torch.float64)
    z = torch.randn(2048, 128, generator=gen, dtype=torch.float64) * scales @ q.T
    expected = int(np.linalg.matrix_rank(np.cov(z.numpy().T), tol=1e-5))
    assert 40 < expected < 100
    assert rank(z) == expected
    assert rank(z.float()) == expected
    assert rank(z[:, :3].repeat(1, 2)) == 3
