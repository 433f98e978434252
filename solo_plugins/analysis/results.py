"""Results tables (``results.csv``): one row per run, each row added under an exclusive lock
and written through a temporary file of its own, so that two processes adding rows to one
folder lose none and a kill leaves the old table or the new one. Every run folder keeps its
own row (``row.json``) beside its checkpoint; a table that cannot be read is set aside with a
warning and rebuilt from them."""

import csv
import fcntl
import glob
import io
import json
import os
import tempfile
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Dict, Iterable, List, Sequence, Tuple

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
    "config_id",  # of the run's resolved pretraining config: a row under another is redone
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
KEY_FIELDS = ("method", "variant", "batch_size", "seed")

#: A run folder's own copy of its row.
ROW_FILE = "row.json"


class UnreadableTable(ValueError):
    pass


@dataclass(frozen=True)
class Table:
    """A results table at ``path`` with its columns and the fields that identify a row. Run
    folders are ``<folder of path>/runs/<run>/`` unless ``runs_dir`` says otherwise."""

    path: str
    columns: Sequence[str] = tuple(COLUMNS)
    key_fields: Sequence[str] = KEY_FIELDS
    runs_dir: str = ""

    def key(self, row: Dict) -> Tuple[str, ...]:
        return tuple("" if row.get(f) is None else str(row[f]) for f in self.key_fields)

    @property
    def run_folders(self) -> str:
        return self.runs_dir or os.path.join(os.path.dirname(os.path.abspath(self.path)), "runs")

    def read(self) -> List[Dict[str, str]]:
        """The table's rows; an unreadable table is set aside (``results.csv.unreadable-<time>``)
        with a warning and rebuilt from the run folders' rows."""
        if not os.path.exists(self.path):
            return []
        try:
            return _parse(self.path, self.key_fields)
        except UnreadableTable:
            with self._locked():
                try:  # another process may have rebuilt it meanwhile
                    return _parse(self.path, self.key_fields)
                except UnreadableTable as error:
                    return self._rebuild(error)

    def add(self, row: Dict, run_dir: str = "") -> None:
        """Adds ``row``, replacing any earlier row with the same key; with ``run_dir``, also
        writes it as that folder's ``row.json`` (first, so that the folder always holds every
        row the table has)."""
        if run_dir:
            write_json(os.path.join(run_dir, ROW_FILE), row)
        with self._locked():
            try:
                rows = _parse(self.path, self.key_fields) if os.path.exists(self.path) else []
            except UnreadableTable as error:
                rows = self._rebuild(error)
            rows = [r for r in rows if self.key(r) != self.key(row)]
            self._write(rows + [row])

    def write(self, rows: Iterable[Dict]) -> None:
        with self._locked():
            self._write(rows)

    @contextmanager
    def _locked(self):
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        with open(f"{self.path}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                # Under the lock no other writer is between its write and its rename, so any
                # temporary table left here is from a killed writer.
                prefix = os.path.basename(self.path) + "."
                for stale in glob.glob(os.path.join(directory, glob.escape(prefix) + "*.tmp")):
                    os.remove(stale)
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _write(self, rows: Iterable[Dict]) -> None:
        directory = os.path.dirname(os.path.abspath(self.path))
        fd, tmp = tempfile.mkstemp(prefix=os.path.basename(self.path) + ".", suffix=".tmp", dir=directory)
        with os.fdopen(fd, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(self.columns), extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                writer.writerow(row)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def run_rows(self) -> Dict[Tuple[str, ...], Dict[str, str]]:
        """The rows the run folders hold (``runs/*/row.json``), by key; an unreadable one is
        skipped with a warning."""
        rows = {}
        for path in sorted(glob.glob(os.path.join(glob.escape(self.run_folders), "*", ROW_FILE))):
            try:
                with open(path) as f:
                    row = json.load(f)
                rows[self.key(row)] = {k: "" if v is None else str(v) for k, v in row.items()}
            except (OSError, ValueError) as bad:
                warnings.warn(f"unreadable run row {path} ({bad}) skipped", RuntimeWarning)
        return rows

    def collect(self) -> int:
        """Adds the rows that run folders hold and the table lacks (a job that wrote its row
        file but was stopped before the table); returns how many."""
        have = {self.key(r) for r in self.read()}
        missing = [row for key, row in self.run_rows().items() if key not in have]
        for row in missing:
            self.add(row)
        return len(missing)

    def _rebuild(self, error: Exception) -> List[Dict]:
        aside = f"{self.path}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}"
        os.replace(self.path, aside)
        rows = self.run_rows()
        warnings.warn(f"unreadable results table {self.path} ({error}) set aside as {aside}; "
                      f"{len(rows)} rows rebuilt from {self.run_folders}/*/{ROW_FILE}", RuntimeWarning)
        self._write(rows.values())
        return _parse(self.path, self.key_fields)


def _parse(path: str, key_fields: Sequence[str]) -> List[Dict[str, str]]:
    """The rows of a CSV table, or UnreadableTable when any line is not a row of it: bytes that
    are not UTF-8, NUL bytes, a header without the key fields, a line with another number of
    fields than the header, or a row without its key."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as error:
        raise UnreadableTable(f"not UTF-8: {error}") from None
    if "\0" in text:
        raise UnreadableTable("NUL bytes")
    try:
        lines = list(csv.reader(io.StringIO(text)))
    except csv.Error as error:
        raise UnreadableTable(str(error)) from None
    if not lines:
        return []
    header, body = lines[0], lines[1:]
    missing = [f for f in key_fields if f not in header]
    if missing:
        raise UnreadableTable(f"header lacks {missing}")
    rows = []
    for number, line in enumerate(body, 2):
        if len(line) != len(header):
            raise UnreadableTable(f"line {number} has {len(line)} fields, the header {len(header)}")
        row = dict(zip(header, line))
        if not row[key_fields[0]] or "seed" in row and not row["seed"].lstrip("-").isdigit():
            raise UnreadableTable(f"line {number} is not a row (key {[row[f] for f in key_fields]})")
        rows.append(row)
    return rows


def write_json(path: str, value: Dict) -> None:
    """Writes ``value`` as JSON through a temporary file of its own and a rename."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    with os.fdopen(fd, "w") as f:
        json.dump(value, f, indent=1, sort_keys=True, default=str)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# The comparison harness's table (solo_plugins.commands.sweep).


def row_key(row: Dict) -> Tuple[str, str, str, str]:
    return (str(row["method"]), str(row.get("variant", "")), str(row.get("batch_size", "")), str(row["seed"]))


def read_rows(path: str) -> List[Dict[str, str]]:
    return Table(path).read()


def write_rows(path: str, rows: Iterable[Dict]) -> None:
    """Writes the whole table (under the lock, through a temporary file and a rename)."""
    Table(path).write(rows)


def add_row(path: str, row: Dict, run_dir: str = "") -> None:
    """Adds ``row``, replacing any earlier row with the same (method, variant, batch size, seed)."""
    Table(path).add(row, run_dir)
