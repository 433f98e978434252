import csv
import os

import pytest

pytest.importorskip("solo.methods")

from solo_plugins.commands.sweep import plot_loss_vs_batch_size, sweep  # noqa: E402

from solo_plugins.commands._hydra import compose  # noqa: E402
from tests.conftest import CONFIGS  # noqa: E402


def test_sweep_runs_the_grid_writes_outputs_and_resumes(digits_root, tmp_path, capsys):
    overrides = [
        f"config_dir={CONFIGS}",
        f"data_root={digits_root}",
        f"out_dir={tmp_path}/sweep",
        "methods=[dhel,simclr]",
        "batch_sizes=[16,32]",
        "seeds=[0]",
        "pretrain_overrides=['max_epochs=1','+limit_train_batches=2','+limit_val_batches=0']",
        "linear_overrides=['max_epochs=1','+limit_train_batches=2']",
        "metrics_samples=64",
        "loss_vs_batch_size=false",
    ]
    cfg = compose(os.path.join(CONFIGS, "sweep"), "digits.yaml", overrides)
    table = sweep(cfg)
    out = tmp_path / "sweep"
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert sorted((r["method"], r["batch_size"]) for r in rows) == [
        ("dhel", "16"), ("dhel", "32"), ("simclr", "16"), ("simclr", "32")
    ]
    for r in rows:
        assert 0 <= float(r["val_acc1"]) <= 100 and 1 <= float(r["z_effective_rank"]) <= 64
    assert (out / "accuracy_vs_batch_size.png").stat().st_size > 0 and (out / "metrics.png").exists()
    assert "| dhel |" in table and "batch 32" in (out / "results.md").read_text()
    assert "[4/4]" in capsys.readouterr().out

    # Started again: nothing is rerun.
    sweep(compose(os.path.join(CONFIGS, "sweep"), "digits.yaml", overrides))
    assert "4 already in" in capsys.readouterr().out
    assert len(list(csv.DictReader(open(out / "results.csv")))) == 4


def test_loss_vs_batch_size_plot(tmp_path):
    plot_loss_vs_batch_size(str(tmp_path), dim=16, n=256, sizes=(8, 32))
    lines = (tmp_path / "loss_vs_batch_size.csv").read_text().splitlines()
    assert lines[0] == "loss,batch_size,mean,stderr" and len(lines) == 1 + 4 * 2
    assert (tmp_path / "loss_vs_batch_size.png").stat().st_size > 0


@pytest.mark.parametrize("name", sorted(os.listdir(os.path.join(CONFIGS, "sweep"))))
def test_every_shipped_sweep_names_existing_configs(name):
    cfg = compose(os.path.join(CONFIGS, "sweep"), name, [f"config_dir={CONFIGS}"])
    for method in cfg.methods:
        assert os.path.exists(os.path.join(CONFIGS, "pretrain", cfg.dataset, f"{method}.yaml"))
    assert os.path.exists(os.path.join(CONFIGS, "linear", cfg.dataset, "linear.yaml"))
    assert len(cfg.batch_sizes) >= 2 and len(cfg.seeds) >= 1
