"""results.csv: rows added under a lock through unique temporary files, run folders keep their
own rows, an unreadable table is set aside and rebuilt from them."""

import csv
import glob
import json
import multiprocessing
import os
import subprocess
import sys

import pytest

from solo_plugins.analysis.results import COLUMNS, ROW_FILE, Table, add_row, read_rows


def _row(method, seed, value="1.0"):
    return {"method": method, "variant": "", "batch_size": 32, "seed": seed, "probe_acc1": value}


def _fill(out, n=3):
    results = os.path.join(out, "results.csv")
    for s in range(n):
        add_row(results, _row("dhel", s, f"{90 + s}.5"), run_dir=os.path.join(out, "runs", f"dhel-b32-s{s}"))
    return results


def test_each_row_is_also_kept_in_its_run_folder(tmp_path):
    results = _fill(str(tmp_path))
    rows = read_rows(results)
    assert [r["probe_acc1"] for r in rows] == ["90.5", "91.5", "92.5"]
    for s, row in enumerate(rows):
        kept = json.load(open(tmp_path / "runs" / f"dhel-b32-s{s}" / ROW_FILE))
        assert str(kept["probe_acc1"]) == row["probe_acc1"] and kept["seed"] == s
    add_row(results, _row("dhel", 1, "50.0"), run_dir=str(tmp_path / "runs" / "dhel-b32-s1"))  # replaced, not added
    assert [r["probe_acc1"] for r in read_rows(results)] == ["90.5", "92.5", "50.0"]


@pytest.mark.parametrize("garbage", [
    "@@@ not a row @@@\n",  # the line the issue found read as a row
    "dhel,,32\n",  # a row cut short
    "\x00\x00\x00\n",
    None,  # bytes that are not UTF-8
])
def test_a_garbled_table_is_set_aside_with_a_warning_and_rebuilt_from_the_run_folders(tmp_path, garbage):
    results = _fill(str(tmp_path))
    before = read_rows(results)
    if garbage is None:
        open(results, "ab").write(b"\xff\xfe\xfa,1,2\n")
    else:
        open(results, "a").write(garbage)
    with pytest.warns(RuntimeWarning, match="unreadable results table .* set aside as .* 3 rows rebuilt"):
        rebuilt = read_rows(results)
    key = lambda r: (r["method"], r["seed"])
    assert sorted(rebuilt, key=key) == sorted(before, key=key)
    (aside,) = glob.glob(results + ".unreadable-*")
    assert open(aside, "rb").read().endswith((garbage or "").encode() or b"\n")
    assert sorted(read_rows(results), key=key) == sorted(before, key=key)  # the table itself is whole again


def test_adding_to_a_garbled_table_rebuilds_it_first(tmp_path):
    results = _fill(str(tmp_path))
    open(results, "a").write("garbage\n")
    with pytest.warns(RuntimeWarning, match="set aside"):
        add_row(results, _row("kcl", 0), run_dir=str(tmp_path / "runs" / "kcl-b32-s0"))
    assert sorted((r["method"], r["seed"]) for r in read_rows(results)) == [
        ("dhel", "0"), ("dhel", "1"), ("dhel", "2"), ("kcl", "0")]


def _writer(results, name, n, barrier):
    barrier.wait()  # every writer starts at once (imports done)
    for s in range(n):
        add_row(results, _row(name, s), run_dir=os.path.join(os.path.dirname(results), "runs", f"{name}-{s}"))


def test_two_writers_at_once_lose_no_row(tmp_path):
    results = str(tmp_path / "results.csv")
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(3)
    writers = [ctx.Process(target=_writer, args=(results, f"w{k}", 60, barrier)) for k in range(3)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(120)
    assert [w.exitcode for w in writers] == [0, 0, 0]
    rows = read_rows(results)
    assert sorted((r["method"], int(r["seed"])) for r in rows) == sorted((f"w{k}", s) for k in range(3) for s in range(60))
    assert not glob.glob(str(tmp_path / "results.csv.*.tmp"))


KILL = """
import os, sys
from solo_plugins.analysis.results import add_row
real = os.replace
def replace(src, dst):
    if dst.endswith("results.csv"):
        os._exit(9)  # killed after writing the new table, before renaming it over the old one
    real(src, dst)
os.replace = replace
add_row(sys.argv[1], {"method": "kcl", "variant": "", "batch_size": 32, "seed": 0, "probe_acc1": "1"})
"""


def test_a_kill_between_write_and_rename_leaves_the_old_table(tmp_path):
    results = _fill(str(tmp_path))
    before = open(results).read()
    proc = subprocess.run([sys.executable, "-c", KILL, results], capture_output=True, text=True)
    assert proc.returncode == 9, proc.stderr
    assert open(results).read() == before
    (left,) = glob.glob(results + ".*.tmp")  # its own temporary file, not a shared name
    assert "kcl" in open(left).read()
    add_row(results, _row("kcl", 1), run_dir=str(tmp_path / "runs" / "kcl-b32-s1"))
    assert not os.path.exists(left)  # cleaned up under the lock by the next writer
    assert [r["method"] for r in read_rows(results)] == ["dhel", "dhel", "dhel", "kcl"]


def test_a_table_with_its_own_columns_and_key(tmp_path):
    table = Table(str(tmp_path / "t.csv"), columns=["stage", "seed", "x"], key_fields=("stage", "seed"))
    table.add({"stage": "a", "seed": 0, "x": 1})
    table.add({"stage": "a", "seed": 0, "x": 2})
    table.add({"stage": "b", "seed": 0, "x": 3})
    assert [(r["stage"], r["x"]) for r in table.read()] == [("a", "2"), ("b", "3")]
    assert next(csv.reader(open(table.path))) == ["stage", "seed", "x"]
    assert list(COLUMNS[:4]) == ["method", "variant", "batch_size", "seed"]


def test_collect_adds_the_rows_run_folders_hold_and_the_table_lacks(tmp_path):
    results = _fill(str(tmp_path))
    table = Table(results)
    table.write([r for r in table.read() if r["seed"] != "1"])  # a job wrote its row file, not the table
    os.makedirs(tmp_path / "runs" / "broken")
    (tmp_path / "runs" / "broken" / ROW_FILE).write_text("{not json")
    with pytest.warns(RuntimeWarning, match="unreadable run row"):
        assert table.collect() == 1
    assert sorted((r["seed"], r["probe_acc1"]) for r in table.read()) == [("0", "90.5"), ("1", "91.5"), ("2", "92.5")]
    with pytest.warns(RuntimeWarning, match="unreadable run row"):
        assert table.collect() == 0  # the table's own rows are not added twice
