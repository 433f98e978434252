"""Seed statistics for the comparison: mean ± std and paired differences with Student-t
confidence intervals."""

import math
import statistics
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence


@dataclass
class PairedDifference:
    mean: float  # mean over seeds of (method - baseline)
    low: Optional[float]  # 95% Student-t interval; None with fewer than 2 seeds
    high: Optional[float]
    n: int  # seeds present in both

    @property
    def excludes_zero(self) -> bool:
        return self.low is not None and (self.low > 0 or self.high < 0)


def mean_std(values: Sequence[float]):
    """(mean, sample std or None for a single value)."""
    values = list(values)
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else None


def t_quantile(p: float, dof: int) -> float:
    from scipy.stats import t

    return float(t.ppf(p, dof))


def paired_difference(method: Dict[int, float], baseline: Dict[int, float], level: float = 0.95) -> Optional[PairedDifference]:
    """Difference method - baseline over the seeds both have, with its two-sided
    ``level`` Student-t interval (n - 1 degrees of freedom)."""
    seeds = sorted(set(method) & set(baseline))
    if not seeds:
        return None
    diffs = [method[s] - baseline[s] for s in seeds]
    mean = statistics.mean(diffs)
    if len(diffs) < 2:
        return PairedDifference(mean, None, None, len(diffs))
    half = t_quantile(0.5 + level / 2, len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(len(diffs))
    return PairedDifference(mean, mean - half, mean + half, len(diffs))


def ranks(values: Sequence[float]) -> List[float]:
    """1-based ranks, ties given their average rank."""
    from scipy.stats import rankdata

    return rankdata(values).tolist()


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation (scipy's, with ties averaged)."""
    from scipy.stats import spearmanr

    if len(x) != len(y) or len(x) < 3:
        raise ValueError(f"spearman needs two sequences of the same length >= 3; got {len(x)} and {len(y)}")
    return float(spearmanr(x, y).statistic)


@dataclass
class Correlation:
    rho: float
    low: float  # percentile bootstrap interval
    high: float
    n: int


def spearman_interval(x: Sequence[float], y: Sequence[float], level: float = 0.95, reps: int = 2000,
                      seed: int = 0) -> Correlation:
    """Spearman's rho of the pairs (x_i, y_i) with a percentile bootstrap interval (the pairs
    resampled with replacement ``reps`` times; a seeded generator, so the interval repeats)."""
    import numpy as np
    from scipy.stats import spearmanr

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    rho = spearman(x, y)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(reps):
        i = rng.integers(0, len(x), len(x))
        if np.ptp(x[i]) > 0 and np.ptp(y[i]) > 0:
            draws.append(spearmanr(x[i], y[i]).statistic)
    low, high = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    return Correlation(rho, float(low), float(high), len(x))
