"""Reports made from committed rows: the report code turns the rows in docs/ into the tables
and figures committed beside them, and the demo and study commands refuse a bad setting
before any run."""

import csv
import os
import shutil

import pytest

from tests.conftest import CONFIGS, REPO

FASHION = os.path.join(REPO, "docs", "fashion_mnist")


def test_the_fashion_mnist_report_is_what_the_report_code_makes_of_its_rows(tmp_path):
    """A change to the tables' code or to the rows shows as a difference from the committed page."""
    from solo_plugins.analysis.results import read_rows
    from solo_plugins.commands.sweep import report

    rows = read_rows(os.path.join(FASHION, "results.csv"))
    with open(os.path.join(FASHION, "results.md")) as f:
        committed = f.read()
    text = report(rows, str(tmp_path), loss_vs_batch_size=True, title=committed.split("\n")[0].lstrip("# "))
    assert text == committed
    with open(tmp_path / "loss_vs_batch_size.csv") as a, open(os.path.join(FASHION, "loss_vs_batch_size.csv")) as b:
        assert list(csv.reader(a)) == list(csv.reader(b))
    for figure in ("accuracy_vs_batch_size.png", "metrics.png", "hyperparameter_robustness.png", "loss_vs_batch_size.png"):
        assert (tmp_path / figure).stat().st_size > 10_000, figure


def _report_from_committed_rows(folder, config, tmp_path, monkeypatch, *overrides):
    """The identifiability command's report_only path on docs/ground_truth/<folder>/results.csv;
    the report it writes, and the committed one."""
    from solo_plugins.commands.identifiability import main

    committed = os.path.join(REPO, "docs", "ground_truth", folder)
    shutil.copy(os.path.join(committed, "results.csv"), tmp_path / "results.csv")
    monkeypatch.setattr("sys.argv", ["solo-plugins-identifiability", "--config-name", config,
                                     f"out_dir={tmp_path}", "report_only=true", *overrides])
    main()
    with open(os.path.join(committed, "results.md")) as f:
        return (tmp_path / "results.md").read_text(), f.read()


def test_the_selection_report_picks_from_the_committed_rows(tmp_path, monkeypatch):
    """The picks and the sensitivity tables from the committed selection rows."""
    text, committed = _report_from_committed_rows("selection", "identifiability_selection.yaml", tmp_path, monkeypatch)
    assert text == committed
    assert "| dhel | 128 | temperature 0.1 | 0.989 ± 0.000 (2/2) | 0.984 (1/2) | most seeds converged" in text
    assert "| kcl | 128 | 20 |" in text  # KCL's grid at b = 128 with t 8 added


def test_the_evaluation_report_is_what_the_report_code_makes_of_its_rows(tmp_path, monkeypatch):
    """The picks evaluated at convergence, from the committed rows, which hold every run of the
    config (4 methods x 5 batch sizes x 5 seeds)."""
    text, committed = _report_from_committed_rows("selected", "identifiability_selected.yaml", tmp_path, monkeypatch,
                                                  "reuse_rows=null")
    assert text == committed
    assert text.startswith("# The picks of the selection at convergence, evaluated\n\n100 runs")


def test_the_demo_refuses_a_bad_setting_before_any_run(tmp_path):
    from solo_plugins.commands.demo import demo
    from solo_plugins.launch import LaunchError

    with pytest.raises(LaunchError, match="launcher must be one of local, slurm; got 'pbs'"):
        demo([f"data_root={tmp_path / 'digits'}", f"out_dir={tmp_path / 'out'}", "launcher=pbs",
              f"config_dir={CONFIGS}"])
    assert not (tmp_path / "out" / "runs").exists()


def test_the_converged_stage_report_is_what_the_report_code_makes_of_its_rows(tmp_path):
    import yaml

    from solo_plugins.identifiability.converged_report import write_converged_report

    committed = os.path.join(REPO, "docs", "ground_truth", "converged")
    shutil.copy(os.path.join(committed, "results.csv"), tmp_path / "results.csv")
    with open(os.path.join(CONFIGS, "sweep", "identifiability_converged.yaml")) as f:
        cfg = yaml.safe_load(f)
    with open(os.path.join(committed, "results.md")) as f:
        assert write_converged_report(str(tmp_path), cfg) == f.read()
    assert (tmp_path / "early_vs_converged.png").stat().st_size > 10_000


def test_the_selected_report_pairs_each_pick_with_infonce_s_by_seed():
    from scipy import stats

    from solo_plugins.identifiability.selected_report import selected_lines

    def row(method, variant, hp, seed, r2, converged="true"):
        return {"stage": "converged", "method": method, "variant": variant, "hp": hp, "batch_size": "32",
                "steps": "60000", "seed": str(seed), "r2": str(r2), "directions": "10", "procrustes": "0.1",
                "converged": converged}

    infonce, dhel = [0.90, 0.91, 0.95], [0.95, 0.95, 0.96]
    rows = [row("infonce", "temperature=0.1", "selected", s, v) for s, v in enumerate(infonce)]
    rows += [row("dhel", "", "default", s, v, "false" if s == 2 else "true") for s, v in enumerate(dhel)]
    lines = selected_lines(rows)
    diff = [a - b for a, b in zip(dhel, infonce)]
    mean, half = sum(diff) / 3, stats.t.ppf(0.975, 2) * stats.tstd(diff) / 3 ** 0.5
    assert f"| dhel | +{mean:.3f} [{mean - half:+.3f}, {mean + half:+.3f}] |" in lines
    assert "| infonce | temperature=0.1 |" in lines
    assert "| dhel | default (rows of the converged stage's default) |" in lines
    assert "| dhel | 2/3 (cap 60,000) |" in lines
