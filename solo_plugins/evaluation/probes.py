"""Probes on frozen, precomputed features: a converged logistic regression and weighted kNN.

Both take features as arrays or tensors (rows are samples) and integer labels; neither
trains the network, so the representation, not the probe's budget, sets the number.
"""

import copy
import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

# Inverse regularization strengths searched on the held-out split (CLIP's linear probe
# searches the same span of λ = 1/C, by bisection).
DEFAULT_CS = tuple(10.0 ** k for k in range(-4, 3))
DEFAULT_TOL = 1e-6
DEFAULT_MAX_ITER = 10000
VAL_FRACTION = 0.2
KNN_K = 20
KNN_TEMPERATURE = 0.07


def probe_protocol() -> str:
    """The probes' settings as one line, recorded in each result row: a row measured under
    other settings is re-evaluated by the sweep."""
    # "patience=1": the C path stops at the first held-out score no better than the best.
    # Changing this string marks every recorded row stale.
    return (f"logistic lbfgs standardized tol={DEFAULT_TOL:g} max_iter={DEFAULT_MAX_ITER} "
            f"C={min(DEFAULT_CS):g}..{max(DEFAULT_CS):g} patience=1 val={VAL_FRACTION:g} 1-thread; "
            f"knn k={KNN_K} cosine T={KNN_TEMPERATURE:g}")


@dataclass
class ProbeResult:
    acc1: float  # top-1 accuracy on the test features, in %
    C: float  # the chosen inverse regularization strength
    converged: bool  # L-BFGS stopped by its tolerance, not by max_iter


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)


def _fit(x, y, C: float, max_iter: int, tol: float, model=None):
    """Fits (or, warm-started from ``model``'s weights, refits) at strength C."""
    from sklearn.linear_model import LogisticRegression

    model = model if model is not None else LogisticRegression(max_iter=max_iter, tol=tol, warm_start=True)
    model.set_params(C=C)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence is reported through ``converged``
        model.fit(x, y)
    return model, bool(np.all(model.n_iter_ < max_iter))


def logistic_probe(
    train_x,
    train_y,
    test_x,
    test_y,
    Cs: Sequence[float] = DEFAULT_CS,
    val_fraction: float = VAL_FRACTION,
    seed: int = 0,
    max_iter: int = DEFAULT_MAX_ITER,
    tol: float = DEFAULT_TOL,
) -> ProbeResult:
    """Multinomial logistic regression fitted to convergence (L-BFGS) on standardized
    features, its L2 strength chosen on a held-out split of the training set, then refitted
    on the whole training set and scored on the test set.

    Args:
        train_x: (N, D) training features. train_y: (N,) integer labels.
        test_x: (M, D) test features. test_y: (M,) integer labels.
        Cs: inverse regularization strengths to choose from, tried from the smallest up
            until one scores no better than the best on the held-out split.
        val_fraction: share of the training set held out to choose C (stratified).
        seed: the held-out split's seed.
        max_iter: L-BFGS iterations allowed; ``converged`` says whether they sufficed.
        tol: L-BFGS's stopping tolerance. scikit-learn's default (1e-4) stops early enough
            that the accuracy moves by ~0.1 point with the number of BLAS threads; at 1e-6
            it does not. The fits run on one BLAS thread, which on these small problems is
            also the fastest.

    Example:
        >>> result = logistic_probe(train_feats, train_labels, test_feats, test_labels)
        >>> result.acc1, result.C, result.converged
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _logistic_probe(train_x, train_y, test_x, test_y, Cs, val_fraction, seed, max_iter, tol)


def _logistic_probe(train_x, train_y, test_x, test_y, Cs, val_fraction, seed, max_iter, tol) -> ProbeResult:
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    # Standardized by the statistics of the whole training set (no labels involved), so
    # that the fits on its held-out split and the final refit share their coordinates.
    train_x = _numpy(train_x)
    scaler = StandardScaler().fit(train_x)
    train_x, test_x = scaler.transform(train_x), scaler.transform(_numpy(test_x))
    train_y, test_y = _numpy(train_y).astype(np.int64), _numpy(test_y).astype(np.int64)
    fit_x, val_x, fit_y, val_y = train_test_split(
        train_x, train_y, test_size=val_fraction, stratify=train_y, random_state=seed
    )
    best, best_score, best_model, model = None, -1.0, None, None
    for C in sorted(Cs):  # from strong to weak regularization, each fit warm-started
        model, _ = _fit(fit_x, fit_y, C, max_iter, tol, model)
        score = model.score(val_x, val_y)
        if score <= best_score:  # past the peak: weaker regularization only overfits more
            break
        best, best_score, best_model = float(C), score, copy.deepcopy(model)  # ties: the stronger

    # The refit on the whole training set starts from the held-out fit at the chosen C: the
    # same convex problem up to 20% more data, so only the path to the optimum is shorter.
    model, converged = _fit(train_x, train_y, best, max_iter, tol, best_model)
    acc = 100.0 * model.score(test_x, test_y)
    return ProbeResult(acc1=float(acc), C=best, converged=converged)


@torch.no_grad()
def knn_probe(train_x, train_y, test_x, test_y, k: int = KNN_K, temperature: float = KNN_TEMPERATURE,
              chunk_size: int = 1024, device=None) -> float:
    """Weighted kNN top-1 accuracy (%) with cosine similarity, as solo-learn's
    ``WeightedKNNClassifier(distance_fx="cosine")``: each of the k nearest training samples
    votes for its label with weight exp(cos / T).

    Runs on ``device`` (default: where ``train_x`` is, the CPU for arrays); every tensor it
    builds is made there, and the count is read back once.
    """
    if device is None:
        device = train_x.device if isinstance(train_x, torch.Tensor) else torch.device("cpu")
    train_x = F.normalize(torch.as_tensor(train_x, dtype=torch.float32).to(device), dim=1)
    test_x = F.normalize(torch.as_tensor(test_x, dtype=torch.float32).to(device), dim=1)
    train_y = torch.as_tensor(train_y, dtype=torch.long).to(device)
    test_y = torch.as_tensor(test_y, dtype=torch.long).to(device)
    num_classes = int(max(train_y.max(), test_y.max())) + 1
    k = min(k, len(train_y))
    correct = test_y.new_zeros(())
    for start in range(0, len(test_y), chunk_size):
        sims, idx = (test_x[start : start + chunk_size] @ train_x.T).topk(k, dim=1)
        votes = sims.new_zeros((len(idx), num_classes))
        votes.scatter_add_(1, train_y[idx], (sims / temperature).exp())
        correct += (votes.argmax(dim=1) == test_y[start : start + chunk_size]).sum()
    return 100.0 * int(correct) / len(test_y)
