"""The comparison's ``results.csv``: one row per evaluated checkpoint, written atomically."""

import csv
import os
from typing import Dict, Iterable, List, Tuple

REFERENCE_ROWS = ("random-init", "pixels")

FIELDS = [
    "method",
    "variant",  # "" for the method's config as shipped, else "key=value" of the loss
    "batch_size",  # "" for the reference rows
    "seed",
    "probe_acc1",  # converged logistic regression on frozen backbone features (%)
    "knn_acc1",  # weighted 20-NN, cosine (%)
    "linear_acc1",  # solo-learn's linear evaluation (%); "" for pixels
    "linear_acc5",
    "linear_protocol",  # the linear evaluation's overrides: rows under another one are redone
    "probe_C",
    "probe_converged",
    "probe_protocol",  # the probes' settings: rows under others are re-evaluated
    "loss_kwargs",  # JSON of the loss's own settings
    "checkpoint",  # relative to the output directory
    "config",
    "version",
    "commit",
    "pretrain_s",
    "linear_s",
    "eval_s",
]
METRICS = [
    "z_alignment",
    "z_uniformity",
    "z_wasserstein_uniformity",
    "feats_wasserstein_uniformity",
    "z_effective_rank",
    "feats_effective_rank",
    "z_rank",
    "feats_rank",
]
COLUMNS = FIELDS + METRICS


def row_key(row: Dict) -> Tuple[str, str, str, str]:
    return (str(row["method"]), str(row.get("variant", "")), str(row.get("batch_size", "")), str(row["seed"]))


def read_rows(path: str) -> List[Dict[str, str]]:
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def write_rows(path: str, rows: Iterable[Dict]) -> None:
    """Writes the whole table to a temporary file and renames it over ``path``, so that a
    kill leaves either the old table or the new one, never half a row."""
    tmp = f"{path}.tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def add_row(path: str, row: Dict) -> None:
    """Adds ``row``, replacing any earlier row with the same (method, variant, batch size, seed)."""
    rows = [r for r in read_rows(path) if row_key(r) != row_key(row)]
    write_rows(path, rows + [row])
