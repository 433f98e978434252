import csv
import json
import os

import pytest
import torch
from omegaconf import OmegaConf

pytest.importorskip("solo.methods")

from solo_plugins.analysis.plots import plot_loss_vs_batch_size  # noqa: E402
from solo_plugins.analysis.report import results_markdown  # noqa: E402
from solo_plugins.commands._hydra import compose  # noqa: E402
from solo_plugins.analysis.results import read_rows, row_key  # noqa: E402
from solo_plugins.commands.sweep import sweep  # noqa: E402
from solo_plugins.sweep.plan import Run, plan  # noqa: E402
from tests.conftest import CONFIGS, SWEEP_CONFIGS  # noqa: E402

QUICK = [
    "pretrain_overrides=['max_epochs=1','+limit_train_batches=2','+limit_val_batches=0']",
    "linear_overrides=['max_epochs=1','+limit_train_batches=2']",
    "metrics_samples=64",
    "loss_vs_batch_size=false",
]


def _overrides(digits_root, out, extra=()):
    return [f"config_dir={CONFIGS}", f"data_root={digits_root}", f"out_dir={out}", *QUICK, *extra]


def _rows(out):
    return list(csv.DictReader(open(os.path.join(out, "results.csv"))))


@pytest.mark.slow
def test_tiny_sweep_with_reference_rows_variants_statistics_and_resume(digits_root, tmp_path, capsys):
    out = tmp_path / "sweep"
    overrides = _overrides(digits_root, out, [
        "methods=[infonce,dhel]", "batch_sizes=[16,32]", "seeds=[0,1]",
        "variants={dhel: {temperature: [0.3, 0.5]}}", "variant_batch_sizes=[32]", "variant_seeds=[0]",
    ])
    table = sweep(compose(os.path.join(CONFIGS, "sweep"), "digits.yaml", overrides))
    rows = _rows(out)
    keys = sorted((r["method"], r["variant"], r["batch_size"], r["seed"]) for r in rows)
    # temperature 0.3 is dhel's shipped setting, so only 0.5 adds a run.
    assert keys == sorted(
        [(m, "", b, s) for m in ("infonce", "dhel") for b in ("16", "32") for s in ("0", "1")]
        + [(ref, "", "", s) for ref in ("random-init", "pixels") for s in ("0", "1")]
        + [("dhel", "temperature=0.5", "32", "0")]
    )
    for r in rows:
        assert 0 <= float(r["probe_acc1"]) <= 100 and 0 <= float(r["knn_acc1"]) <= 100
        assert r["version"] and r["config"]
        if r["method"] == "pixels":
            assert r["linear_acc1"] == "" and r["checkpoint"] == ""
        else:
            assert 0 <= float(r["linear_acc1"]) <= 100 and 1 <= float(r["z_effective_rank"]) <= 64
            assert os.path.isfile(out / r["checkpoint"])
    variant = next(r for r in rows if r["variant"])
    assert json.loads(variant["loss_kwargs"])["temperature"] == 0.5
    assert variant["config"] == "digits/dhel.yaml method_kwargs.temperature=0.5"
    for name in ("accuracy_vs_batch_size.png", "metrics.png", "hyperparameter_robustness.png"):
        assert (out / name).stat().st_size > 0
    # Every run folder keeps its own row, so that a garbled table is rebuilt whole.
    for r in rows:
        run_id = Run(r["method"], int(r["batch_size"]) if r["batch_size"] else "", int(r["seed"]), r["variant"]).run_id
        kept = json.load(open(out / "runs" / run_id / "row.json"))
        assert str(kept["probe_acc1"]) == r["probe_acc1"] and kept["method"] == r["method"]
    with open(out / "results.csv", "a") as f:
        f.write("@@ garbled @@\n")
    with pytest.warns(RuntimeWarning, match="unreadable results table"):
        rebuilt = read_rows(str(out / "results.csv"))
    assert sorted(row_key(r) for r in rebuilt) == sorted(row_key(r) for r in rows)
    assert "| random-init |" in table and "| pixels |" in table and "Paired difference to `infonce`" in table
    assert "| dhel | temperature=0.5 |" in table and "| dhel | temperature=0.3 |" in table
    assert "[13/13]" in capsys.readouterr().out

    # Started again: nothing is rerun and no row is duplicated.
    sweep(compose(os.path.join(CONFIGS, "sweep"), "digits.yaml", overrides))
    assert "13 already in" in capsys.readouterr().out
    assert len(_rows(out)) == 13
    assert {r["linear_protocol"] for r in _rows(out) if r["method"] != "pixels"} == {
        "max_epochs=1 +limit_train_batches=2"}

    # Other linear settings: only the linear evaluation of the finished rows is redone.
    before = {(r["method"], r["variant"], r["batch_size"], r["seed"]): r for r in _rows(out)}
    other = [o if not o.startswith("linear_overrides") else
             "linear_overrides=['max_epochs=1','+limit_train_batches=1','+feature_batchnorm=true']"
             for o in overrides]
    sweep(compose(os.path.join(CONFIGS, "sweep"), "digits.yaml", other))
    printed = capsys.readouterr().out
    assert "linear evaluation redone [11/11]" in printed and "13 already in" in printed
    for r in _rows(out):
        old = before[(r["method"], r["variant"], r["batch_size"], r["seed"])]
        assert r["probe_acc1"] == old["probe_acc1"] and r["checkpoint"] == old["checkpoint"]
        if r["method"] != "pixels":
            assert r["linear_protocol"] == "max_epochs=1 +limit_train_batches=1 +feature_batchnorm=true"

    # Rows whose probes ran under other settings: only their probes are redone, from the
    # checkpoint (or the images, for pixels), and they give the same numbers again.
    from solo_plugins.analysis.results import write_rows
    from solo_plugins.evaluation import probe_protocol

    rows = _rows(out)
    assert {r["probe_protocol"] for r in rows} == {probe_protocol()}
    earlier = {(r["method"], r["variant"], r["batch_size"], r["seed"]): dict(r) for r in rows}
    stale = [r for r in rows if (r["method"], r["variant"]) in {("pixels", ""), ("dhel", "temperature=0.5")}]
    assert len(stale) == 3
    for r in stale:
        r.update(probe_protocol="logistic lbfgs tol=0.0001", probe_acc1="0", knn_acc1="0")
    write_rows(str(out / "results.csv"), rows)
    sweep(compose(os.path.join(CONFIGS, "sweep"), "digits.yaml", other))
    printed = capsys.readouterr().out
    assert "probes redone [3/3]" in printed and "linear evaluation redone" not in printed
    again = _rows(out)
    assert len(again) == 13
    for r in again:
        old = earlier[(r["method"], r["variant"], r["batch_size"], r["seed"])]
        assert r["probe_protocol"] == probe_protocol()
        assert float(r["probe_acc1"]) == pytest.approx(float(old["probe_acc1"]))
        assert float(r["knn_acc1"]) == pytest.approx(float(old["knn_acc1"]))
        assert r["linear_acc1"] == old["linear_acc1"]


@pytest.mark.slow
def test_a_row_is_re_evaluated_from_its_checkpoint_alone(digits_root, tmp_path):
    from solo_plugins.evaluation import evaluate_checkpoint

    out = tmp_path / "sweep"
    overrides = _overrides(digits_root, out, ["methods=[kcl]", "batch_sizes=[16]", "seeds=[0]",
                                              "reference_rows=false", "linear_eval=false"])
    sweep(compose(os.path.join(CONFIGS, "sweep"), "digits.yaml", overrides))
    (row,) = _rows(out)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:  # the sweep's row was evaluated at device: auto
        again = evaluate_checkpoint(str(out / row["checkpoint"]), seed=0, metrics_samples=64, device=device)
        assert again["probe_acc1"] == pytest.approx(float(row["probe_acc1"]), abs=0.5 if device == "cuda" else 1e-9)
        assert again["knn_acc1"] == pytest.approx(float(row["knn_acc1"]), abs=0.5 if device == "cuda" else 1e-9)
        assert again["z_effective_rank"] == pytest.approx(float(row["z_effective_rank"]), rel=1e-3)


def test_a_bad_device_fails_before_any_run(tmp_path):
    from solo_plugins.methods.config import ConfigError

    cfg = compose(os.path.join(CONFIGS, "sweep"), "digits.yaml", [f"out_dir={tmp_path}/out", "device=gpu"])
    with pytest.raises(ConfigError, match="device must be one of auto, cpu, cuda"):
        sweep(cfg)
    assert not os.path.exists(tmp_path / "out" / "results.csv")


def test_plan_skips_a_variant_equal_to_the_shipped_setting():
    cfg = compose(os.path.join(CONFIGS, "sweep"), "digits.yaml", [
        f"config_dir={CONFIGS}", "methods=[kcl]", "batch_sizes=[8]", "seeds=[0]",
        "variants={kcl: {gamma: [4, 16.0]}}"])
    assert [r.run_id for r in plan(cfg)] == ["random-init-s0", "pixels-s0", "kcl-b8-s0", "kcl-gamma4-b8-s0"]


def test_fashion_mnist_hyperparameter_sweep_extends_the_comparison_by_its_variants():
    base = compose(os.path.join(CONFIGS, "sweep"), "fashion_mnist.yaml", [f"config_dir={CONFIGS}"])
    extended = compose(os.path.join(CONFIGS, "sweep"), "fashion_mnist_hyperparameters.yaml", [f"config_dir={CONFIGS}"])
    comparison, runs = plan(base), plan(extended)
    assert len(comparison) == 6 + 30 and runs[:len(comparison)] == comparison
    variants = runs[len(comparison):]
    assert len(variants) == 24 and {(r.batch_size, r.variant != "") for r in variants} == {(256, True)}
    assert {r.seed for r in variants} == {0, 1, 2}
    same = {k: v for k, v in OmegaConf.to_container(extended).items() if not k.startswith("variant")}
    assert same == {k: v for k, v in OmegaConf.to_container(base).items() if not k.startswith("variant")}


def test_views_variant_sets_the_number_of_crops():
    from solo_plugins.sweep.plan import pretrain_config

    cfg = compose(os.path.join(CONFIGS, "sweep"), "digits.yaml", [
        f"config_dir={CONFIGS}", "methods=[dhel]", "batch_sizes=[8]", "seeds=[0]", "reference_rows=false",
        "variants={dhel: {views: [2, 4]}}"])
    runs = plan(cfg)
    assert [r.run_id for r in runs] == ["dhel-b8-s0", "dhel-views4-b8-s0"]  # 2 is the shipped setting
    pre = pretrain_config(cfg, "dhel", 8, 0, runs[1].run_id, runs[1].variant)
    assert pre.augmentations[0].num_crops == 4 and pre.method_kwargs.temperature == 0.3

    # the report puts the shipped rows at the shipped number of views, read from the config
    from solo_plugins.sweep.plan import shipped_settings

    assert shipped_settings(cfg) == {("dhel", "views"): 2}
    rows = [_row("dhel", 8, 0, 90.0, kwargs={"temperature": 0.3}),
            _row("dhel", 8, 0, 92.0, variant="views=4", kwargs={"temperature": 0.3})]
    table = results_markdown(rows, shipped=shipped_settings(cfg))
    assert "| dhel | views=2 | 90.00 |" in table and "| dhel | views=4 | 92.00 |" in table


def _row(method, batch, seed, acc, variant="", kwargs=None):
    return {"method": method, "variant": variant, "batch_size": batch, "seed": seed, "probe_acc1": acc,
            "loss_kwargs": json.dumps(kwargs or {})}


def test_report_marks_intervals_that_exclude_zero_and_refuses_claims_with_one_seed():
    rows = [_row("infonce", 32, s, a) for s, a in enumerate([50, 60, 70])]
    rows += [_row("dhel", 32, s, a) for s, a in enumerate([53, 63, 73])]  # +3 every seed
    rows += [_row("kcl", 32, s, a) for s, a in enumerate([51, 62, 73])]  # +1, +2, +3
    rows += [_row("random-init", "", s, 40) for s in range(3)]
    text = results_markdown(rows)
    assert "| dhel | +3.00 [+3.00, +3.00] * |" in text
    assert "| kcl | +2.00 [-0.48, +4.48] |" in text
    assert "| random-init | 40.00 ± 0.00 |" in text
    one = results_markdown([r for r in rows if r["seed"] == 0])
    assert "One seed: no claim can be made" in one and "| dhel | +3.00 (n=1) |" in one


@pytest.mark.slow
def test_loss_vs_batch_size_plot(tmp_path):
    plot_loss_vs_batch_size(str(tmp_path), dim=16, n=256, sizes=(8, 32))
    lines = (tmp_path / "loss_vs_batch_size.csv").read_text().splitlines()
    assert lines[0] == "loss,batch_size,mean,stderr" and len(lines) == 1 + 4 * 2
    assert (tmp_path / "loss_vs_batch_size.png").stat().st_size > 0


# the latent-recovery studies' configs are not comparisons (test_identifiability.py, test_converged.py)
@pytest.mark.parametrize("name", SWEEP_CONFIGS)
def test_every_shipped_sweep_names_existing_configs(name):
    cfg = compose(os.path.join(CONFIGS, "sweep"), name, [f"config_dir={CONFIGS}"])
    for method in cfg.methods:
        assert os.path.exists(os.path.join(CONFIGS, "pretrain", cfg.dataset, f"{method}.yaml"))
    assert os.path.exists(os.path.join(CONFIGS, "linear", cfg.dataset, "linear.yaml"))
    assert len(cfg.batch_sizes) >= 2 and len(cfg.seeds) >= 1
    for method, settings in (cfg.get("variants") or {}).items():
        pre = compose(os.path.join(CONFIGS, "pretrain", cfg.dataset), f"{method}.yaml", [])
        assert set(settings) - {"views"} <= set(pre.method_kwargs)


@pytest.mark.slow
def test_a_truncated_checkpoint_is_set_aside_and_the_run_restarts(digits_root, tmp_path):
    out = tmp_path / "sweep"
    overrides = _overrides(digits_root, out, ["methods=[dhel]", "batch_sizes=[16]", "seeds=[0]",
                                              "reference_rows=false", "linear_eval=false"])
    sweep(compose(os.path.join(CONFIGS, "sweep"), "digits.yaml", overrides))
    (row,) = _rows(out)
    ckpt = out / row["checkpoint"]
    ckpt.write_bytes(ckpt.read_bytes()[:1000])  # what a kill while saving leaves
    os.remove(out / "results.csv")  # the run never got its row, in the table or in its folder
    os.remove(out / "runs" / "dhel-b16-s0" / "row.json")
    with pytest.warns(RuntimeWarning, match="unreadable checkpoint"):
        sweep(compose(os.path.join(CONFIGS, "sweep"), "digits.yaml", overrides))
    assert (ckpt.parent / (ckpt.name + ".corrupt")).exists()  # kept, renamed
    (again,) = _rows(out)
    import torch

    assert torch.load(out / again["checkpoint"], weights_only=False)["global_step"] == 2


@pytest.mark.slow
def test_a_sweep_killed_mid_run_resumes_without_duplicate_rows(digits_root, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "sweep"
    args = [sys.executable, "-m", "solo_plugins.commands.sweep", "--config-path", os.path.join(CONFIGS, "sweep"),
            "--config-name", "digits.yaml", f"config_dir={CONFIGS}", f"data_root={digits_root}", f"out_dir={out}",
            "methods=[infonce,kcl]", "batch_sizes=[16]", "seeds=[0]", "reference_rows=false", "linear_eval=false",
            "pretrain_overrides=['max_epochs=3','+limit_train_batches=2','+limit_val_batches=0']",
            "metrics_samples=64", "loss_vs_batch_size=false"]
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not list(out.glob("runs/kcl-b16-s0/**/*.ckpt")) and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    rows = _rows(out)
    assert [r["method"] for r in rows] == ["infonce"]  # the finished run only, a whole row
    done = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "1 already in" in done.stdout
    assert sorted(r["method"] for r in _rows(out)) == ["infonce", "kcl"]


def test_a_run_id_comes_from_its_resolved_config_and_not_from_where_it_runs(digits_root, tmp_path):
    from solo_plugins.sweep.plan import with_config_ids

    def ids(out, root, extra=()):
        cfg = compose(os.path.join(CONFIGS, "sweep"), "digits.yaml",
                      _overrides(root, out, ["methods=[dhel]", "batch_sizes=[32]", "seeds=[0]", *extra]))
        return [r.config_id for r in with_config_ids(cfg, plan(cfg))]

    here = ids(tmp_path / "a", digits_root)
    assert len(set(here)) == len(here) == 3  # random-init, pixels, dhel
    assert ids(tmp_path / "b", "/elsewhere/digits") == here  # another folder, another data root: the same ids
    changed = ids(tmp_path / "a", digits_root, [
        "pretrain_overrides=['max_epochs=2','+limit_train_batches=2','+limit_val_batches=0']"])
    assert changed[2] != here[2] and changed[:2] == here[:2]  # only the trained run's config changed


def test_a_composed_config_is_a_fresh_copy_and_follows_its_files(tmp_path):
    import shutil

    folder = tmp_path / "digits"
    shutil.copytree(os.path.join(CONFIGS, "pretrain", "digits"), folder)
    first = compose(str(folder), "dhel.yaml", ["optimizer.batch_size=8"])
    OmegaConf.set_struct(first, False)
    first.optimizer.batch_size = 3  # a caller's change stays its own
    assert compose(str(folder), "dhel.yaml", ["optimizer.batch_size=8"]).optimizer.batch_size == 8
    text = (folder / "dhel.yaml").read_text()
    assert "temperature: 0.3" in text
    (folder / "dhel.yaml").write_text(text.replace("temperature: 0.3", "temperature: 0.25"))
    assert compose(str(folder), "dhel.yaml", ["optimizer.batch_size=8"]).method_kwargs.temperature == 0.25
    (folder / "augmentations" / "symmetric.yaml").unlink()  # a file of the defaults, one folder down
    with pytest.raises(Exception, match="symmetric"):
        compose(str(folder), "dhel.yaml", ["optimizer.batch_size=8"])


@pytest.mark.slow
def test_a_run_whose_config_changed_is_redone_in_its_folder_with_the_old_one_set_aside(digits_root, tmp_path):
    out = tmp_path / "sweep"
    base = ["methods=[kcl]", "batch_sizes=[16]", "seeds=[0]", "reference_rows=false", "linear_eval=false"]
    sweep(compose(os.path.join(CONFIGS, "sweep"), "digits.yaml", _overrides(digits_root, out, base)))
    (first,) = _rows(out)
    longer = "pretrain_overrides=['max_epochs=2','+limit_train_batches=2','+limit_val_batches=0']"
    sweep(compose(os.path.join(CONFIGS, "sweep"), "digits.yaml", _overrides(digits_root, out, [*base, longer])))
    (second,) = _rows(out)
    assert second["config_id"] != first["config_id"]
    assert torch.load(out / second["checkpoint"], weights_only=False)["global_step"] == 4  # trained anew, not resumed
    folder = out / "runs" / "kcl-b16-s0"
    assert (folder / "config_id").read_text().strip() == second["config_id"]
    stale = folder / f"stale-{first['config_id']}"
    assert json.load(open(stale / "row.json"))["config_id"] == first["config_id"]


def test_plan_names_and_skips_variants_that_are_not_numbers():
    from solo_plugins.sweep.plan import pretrain_config

    cfg = compose(os.path.join(CONFIGS, "sweep"), "digits.yaml", [
        f"config_dir={CONFIGS}", "methods=[kcl,dhel]", "batch_sizes=[8]", "seeds=[0]", "reference_rows=false",
        "variants={kcl: {kernel: [gaussian, log], gamma: [4, 16.0]}, dhel: {include_augs: [true, false]}}"])
    variants = [r for r in plan(cfg) if r.variant]
    assert [r.run_id for r in variants] == ["kcl-kernellog-b8-s0", "kcl-gamma4-b8-s0", "dhel-include_augsfalse-b8-s0"]
    log, no_augs = (pretrain_config(cfg, r.method, 8, 0, r.run_id, r.variant) for r in (variants[0], variants[2]))
    assert log.method_kwargs.kernel == "log" and no_augs.method_kwargs.include_augs is False


@pytest.mark.parametrize("value", ["log", "two words", "it's", True, False, 0.1, 4, -1.0, [1, 2.5], ["a", "b c"]])
def test_a_variant_value_reads_back_as_itself_through_hydra(value):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from solo_plugins.sweep.plan import override_value, same_setting

    parsed = OverridesParser.create().parse_override(f"key={override_value(value)}").value()
    assert parsed == value and type(parsed) is type(value)
    assert same_setting(value, parsed) and same_setting(OmegaConf.create({"v": value}).v, value)
    assert not same_setting(True, 1) and same_setting(4, 4.0) and not same_setting("4", 4)


def test_a_rank_whose_folder_is_never_claimed_stops_with_an_error(tmp_path, monkeypatch):
    import solo_plugins.sweep.claims as claims
    import solo_plugins.sweep.runs as runs

    monkeypatch.setattr(claims, "CLAIM_WAIT_S", 0.3)
    monkeypatch.setattr(runs, "task_rank", lambda: 1)
    cfg = compose(os.path.join(CONFIGS, "sweep"), "digits.yaml", [f"config_dir={CONFIGS}", f"out_dir={tmp_path}"])
    run = Run("dhel", 8, 0, config_id="abc123")
    with pytest.raises(RuntimeError, match=r"did not claim this folder for config abc123 within 0 s \(found no claim"):
        runs.execute_run(OmegaConf.to_container(cfg, resolve=True), run)
    assert not any(p.suffix == ".ckpt" for p in tmp_path.rglob("*"))
