"""Probes on features with a known answer, the statistics against hand-computed cases,
the reference rows and re-evaluation from a checkpoint alone."""

import math

import numpy as np
import pytest
import torch

from solo_plugins.analysis.statistics import mean_std, paired_difference
from solo_plugins.evaluation.probes import knn_probe, logistic_probe


def _clusters(n_per_class=60, classes=5, dim=20, spread=0.3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(classes, dim)) * 3
    x = np.concatenate([c + spread * rng.normal(size=(n_per_class, dim)) for c in centers])
    y = np.repeat(np.arange(classes), n_per_class)
    return x, y


def test_logistic_probe_separates_separable_clusters():
    x, y = _clusters(seed=0)
    xt, yt = _clusters(seed=0)
    xt = xt + 0.05 * np.random.default_rng(1).normal(size=xt.shape)
    result = logistic_probe(x, y, xt, yt)
    assert result.acc1 == pytest.approx(100.0) and result.converged


def test_logistic_probe_is_at_chance_on_shuffled_labels():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(1000, 16)), rng.integers(0, 10, 1000)
    xt, yt = rng.normal(size=(2000, 16)), rng.integers(0, 10, 2000)
    result = logistic_probe(x, y, xt, yt)
    assert abs(result.acc1 - 10.0) < 3.5  # 2000 test samples: chance ± ~5 std errors


def test_logistic_probe_is_invariant_to_feature_scale():
    """Standardized features: rescaling a coordinate does not change the probe."""
    x, y = _clusters(spread=2.0, seed=2)
    xt, yt = _clusters(spread=2.0, seed=3)
    scale = np.geomspace(1e-3, 1e3, x.shape[1])
    a = logistic_probe(x, y, xt, yt).acc1
    b = logistic_probe(x * scale, y, xt * scale, yt).acc1
    assert a == pytest.approx(b, abs=0.5)


def test_logistic_probe_chooses_the_full_grid_s_best_C_and_refits_to_the_same_optimum():
    """Against a brute-force reference: every C of the grid fitted from scratch (no warm
    start, no early stop) on the same standardized held-out split, the best refitted from
    scratch on the whole training set. Noisy labels on few samples put the best C inside
    the grid, so the early stop and the warm starts are what is checked."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    from solo_plugins.evaluation.probes import DEFAULT_CS

    rng = np.random.default_rng(4)
    w = rng.normal(size=(40, 4))
    feats = rng.normal(size=(1400, 40))
    labels = (feats @ w + 2.0 * rng.normal(size=(1400, 4))).argmax(axis=1)
    x, y, xt, yt = feats[:400], labels[:400], feats[400:], labels[400:]
    scaler = StandardScaler().fit(x)
    fx, vx, fy, vy = train_test_split(scaler.transform(x), y, test_size=0.2, stratify=y, random_state=0)
    scores = [LogisticRegression(C=C, tol=1e-8, max_iter=20000).fit(fx, fy).score(vx, vy) for C in DEFAULT_CS]
    best = DEFAULT_CS[int(np.argmax(scores))]
    assert DEFAULT_CS[0] < best < DEFAULT_CS[-1], scores  # an interior optimum
    reference = LogisticRegression(C=best, tol=1e-8, max_iter=20000).fit(scaler.transform(x), y)
    expected = 100.0 * reference.score(scaler.transform(xt), yt)

    result = logistic_probe(x, y, xt, yt, seed=0)
    assert result.C == best and result.converged
    assert result.acc1 == pytest.approx(expected, abs=1e-9)


def test_knn_probe_separable_and_shuffled():
    x, y = _clusters(seed=4)
    xt, yt = _clusters(seed=4)
    assert knn_probe(x, y, xt, yt, k=20) == 100.0
    rng = np.random.default_rng(0)
    acc = knn_probe(rng.normal(size=(1000, 16)), rng.integers(0, 10, 1000), rng.normal(size=(2000, 16)),
                    rng.integers(0, 10, 2000))
    assert abs(acc - 10.0) < 3.5


def test_knn_probe_matches_solo_learn_weighted_knn():
    solo_knn = pytest.importorskip("solo.utils.knn")
    gen = torch.Generator().manual_seed(0)
    train_x, train_y = torch.randn(300, 8, generator=gen), torch.randint(0, 4, (300,), generator=gen)
    test_x, test_y = torch.randn(200, 8, generator=gen), torch.randint(0, 4, (200,), generator=gen)
    train_x[:, 0] += train_y * 1.5
    test_x[:, 0] += test_y * 1.5
    knn = solo_knn.WeightedKNNClassifier(k=20, T=0.07, distance_fx="cosine")
    knn(train_features=train_x, train_targets=train_y, test_features=test_x, test_targets=test_y)
    expected, _ = knn.compute()
    assert knn_probe(train_x, train_y, test_x, test_y, k=20, temperature=0.07) == pytest.approx(expected)


def test_paired_difference_against_a_hand_computed_case():
    # differences 1, 2, 3: mean 2, sd 1, se 1/sqrt(3), t_{0.975, 2} = 4.302653
    d = paired_difference({0: 51.0, 1: 62.0, 2: 73.0}, {0: 50.0, 1: 60.0, 2: 70.0})
    half = 4.302652729911275 / math.sqrt(3)
    assert (d.mean, d.n) == (2.0, 3)
    assert d.low == pytest.approx(2 - half) and d.high == pytest.approx(2 + half)
    assert not d.excludes_zero  # [-0.48, 4.48]
    d = paired_difference({0: 3.0, 1: 3.1, 2: 2.9, 3: 3.0}, {0: 1.0, 1: 1.0, 2: 1.0, 3: 1.0})
    # differences 2.0, 2.1, 1.9, 2.0: sd 0.08165, t_{0.975, 3} = 3.182446
    assert d.low == pytest.approx(2.0 - 3.182446305284263 * 0.0816496580927726 / 2)
    assert d.excludes_zero


def test_paired_difference_uses_only_common_seeds_and_says_when_it_has_one():
    d = paired_difference({0: 5.0, 7: 1.0}, {0: 4.0, 3: 9.0})
    assert (d.mean, d.n, d.low, d.high) == (1.0, 1, None, None)
    assert paired_difference({1: 1.0}, {2: 1.0}) is None
    assert mean_std([2.0]) == (2.0, None)
    assert mean_std([1.0, 3.0]) == (2.0, pytest.approx(math.sqrt(2)))
