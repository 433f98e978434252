"""Seed statistics for the comparison: mean ± std and paired differences with Student-t
confidence intervals."""

import math
import statistics
from dataclasses import dataclass
from typing import Dict, Optional, Sequence


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
