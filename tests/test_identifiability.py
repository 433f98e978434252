"""The latent-recovery study: its data process, its measurements against known answers, the
stacked training against one model alone, the study's rows, resume and report, and its
command on the shipped config."""

import json
import math
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from solo_plugins.identifiability import training as ident
from solo_plugins.identifiability.data import mix, mixing_weights, sample_sphere, sample_vmf, unmix
from solo_plugins.identifiability.measures import procrustes_error, r2_linear
from solo_plugins.identifiability.report import steps_to_reach
from solo_plugins.identifiability.study import Study, check_study, selected
from solo_plugins.identifiability.training import GroupSettings, Model, train_group
from solo_plugins.analysis.statistics import ranks, spearman, spearman_interval


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------- data process


@pytest.mark.parametrize("d", [3, 10, 64])
def test_latents_are_uniform_on_the_sphere_by_their_moments(d):
    n = 200_000
    z = sample_sphere(n, d, _gen(), dtype=torch.float64)
    assert torch.allclose(z.norm(dim=1), torch.ones(n, dtype=torch.float64), atol=1e-12)
    # E z = 0, E z zᵀ = I/d, E z_i⁴ = 3/(d(d+2)); tolerances of about 5 standard errors.
    assert z.mean(0).abs().max() < 5 / math.sqrt(n * d)
    second = z.T @ z / n
    assert (second - torch.eye(d, dtype=torch.float64) / d).abs().max() < 5 * math.sqrt(2 / (d * (d + 2)) / n)
    fourth = z.pow(4).mean(0)
    sd = math.sqrt(105 / (d * (d + 2) * (d + 4) * (d + 6)) / n)
    assert (fourth - 3 / (d * (d + 2))).abs().max() < 6 * sd


def _mean_cosine(d, kappa):
    """A_d(κ) = I_{d/2}(κ) / I_{d/2-1}(κ), the mean of <μ, z'> under vMF(μ, κ)."""
    from scipy.special import ive

    return ive(d / 2, kappa) / ive(d / 2 - 1, kappa)


@pytest.mark.slow
@pytest.mark.parametrize("d,kappa", [(3, 1.0), (3, 10.0), (10, 10.0), (10, 50.0), (64, 10.0)])
def test_positives_have_the_concentration_asked(d, kappa):
    n = 100_000
    mu = sample_sphere(n, d, _gen(1), dtype=torch.float64)
    z = sample_vmf(mu, kappa, _gen(2))
    assert torch.allclose(z.norm(dim=1), torch.ones(n, dtype=torch.float64), atol=1e-10)
    w = (z * mu).sum(1)
    assert abs(float(w.mean()) - _mean_cosine(d, kappa)) < 5 * float(w.std()) / math.sqrt(n)
    if d == 3:  # closed form: A_3(κ) = coth κ - 1/κ
        assert abs(_mean_cosine(3, kappa) - (1 / math.tanh(kappa) - 1 / kappa)) < 1e-12
    # The part orthogonal to μ has no preferred direction: for a fixed μ its mean is 0.
    fixed = F.normalize(torch.ones(n, d, dtype=torch.float64), dim=1)
    tangent = sample_vmf(fixed, kappa, _gen(3))
    tangent = tangent - (tangent * fixed).sum(1, keepdim=True) * fixed
    assert tangent.mean(0).norm() < 5 * math.sqrt(float(tangent.pow(2).sum(1).mean()) / n)


def test_vmf_rejects_a_bad_concentration():
    with pytest.raises(ValueError, match="kappa"):
        sample_vmf(sample_sphere(4, 3, _gen()), 0.0, _gen())


@pytest.mark.slow
@pytest.mark.parametrize("d", [10, 64])
def test_the_mixing_is_invertible_and_well_conditioned(d):
    weights = mixing_weights(d, 3, _gen(4))
    assert weights.shape == (3, d, d)
    assert torch.allclose(weights.norm(dim=1), torch.ones(3, d, dtype=torch.float64), atol=1e-12)  # unit columns
    pool = torch.rand(4000, d, d, generator=_gen(5), dtype=torch.float64) * 2 - 1
    pool = pool / pool.norm(dim=1, keepdim=True)
    third = torch.linalg.cond(pool).quantile(0.35)  # the kept ones are in the best quarter of such draws
    assert (torch.linalg.cond(weights) < third).all()
    z = sample_sphere(1000, d, _gen(6), dtype=torch.float64)
    x = mix(z, weights)
    assert torch.allclose(unmix(x, weights), z, atol=1e-10)
    assert not torch.allclose(x, z @ weights[0].T @ weights[1].T @ weights[2].T)  # nonlinear
    # Stacked per seed, each seed's mixing is applied to its own rows.
    other = mixing_weights(d, 3, _gen(7))
    both = mix(torch.stack([z, z]), torch.stack([weights, other]))
    assert torch.equal(both[0], x) and torch.allclose(both[1], mix(z, other))


# ------------------------------------------------------------------------- measurements


def _orthogonal(d, seed):
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=_gen(seed), dtype=torch.float64))
    return q


def test_an_orthogonal_map_of_the_latents_is_recovered_exactly():
    g = _gen(8)
    z_fit, z = sample_sphere(10_000, 10, g, torch.float64), sample_sphere(10_000, 10, g, torch.float64)
    q = _orthogonal(10, 9)
    assert r2_linear(z_fit @ q, z_fit, z @ q, z) == pytest.approx(1.0, abs=1e-10)
    assert procrustes_error(z_fit @ q, z_fit, z @ q, z) == pytest.approx(0.0, abs=1e-10)
    # A linear map that is not orthogonal: identified up to a linear map, not a rotation.
    a = torch.randn(10, 10, generator=_gen(10), dtype=torch.float64)
    h_fit, h = F.normalize(z_fit @ a, dim=1), F.normalize(z @ a, dim=1)
    assert procrustes_error(h_fit, z_fit, h, z) > 0.05


def test_random_features_give_r2_near_zero():
    g = _gen(11)
    z_fit, z = sample_sphere(10_000, 10, g, torch.float64), sample_sphere(10_000, 10, g, torch.float64)
    noise_fit, noise = sample_sphere(10_000, 10, g, torch.float64), sample_sphere(10_000, 10, g, torch.float64)
    assert abs(r2_linear(noise_fit, z_fit, noise, z)) < 0.01
    assert procrustes_error(noise_fit, z_fit, noise, z) == pytest.approx(2.0, abs=0.05)


def test_r2_equals_scikit_learns_linear_regression():
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import r2_score

    g = _gen(12)
    h_fit, h = torch.randn(500, 6, generator=g, dtype=torch.float64), torch.randn(300, 6, generator=g, dtype=torch.float64)
    z_fit = h_fit[:, :4] ** 3 + 0.1 * torch.randn(500, 4, generator=g, dtype=torch.float64)
    z = h[:, :4] ** 3
    ref = r2_score(z.numpy(), LinearRegression().fit(h_fit.numpy(), z_fit.numpy()).predict(h.numpy()))
    assert r2_linear(h_fit, z_fit, h, z) == pytest.approx(ref, abs=1e-10)


# ------------------------------------------------------------------------------ training

SPECS = {
    "infonce": (("loss", "infonce"), ("temperature", 0.2)),
    "dhel": (("loss", "dhel"), ("temperature", 0.3)),
    "kcl": (("gamma", 16.0), ("kernel", "gaussian"), ("loss", "kcl"), ("t", 2.0)),
}
TINY = dict(latent_dim=4, hidden=(16, 16), batch_size=8, steps=30, eval_steps=(0, 15), heldout=300,
            curve_points=200, pairwise_points=100, loss_batches=4, large_batch=256, data_chunk=7)


@pytest.mark.slow
def test_a_model_trained_with_others_follows_its_trajectory_alone():
    alone = train_group([Model("dhel", SPECS["dhel"], 1)], GroupSettings(**TINY))
    models = [Model("infonce", SPECS["infonce"], 0), Model("dhel", SPECS["dhel"], 1), Model("kcl", SPECS["kcl"], 1)]
    together = train_group(models, GroupSettings(**TINY))
    for key, value in alone.final[0].items():
        assert together.final[1][key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
    assert len(together.curves[1]) == 3 and [p["step"] for p in together.curves[1]] == [0, 15, 30]
    # Same seed, another loss: the same start (first curve point measures the same network).
    assert together.curves[2][0]["r2"] == together.curves[1][0]["r2"]
    assert together.curves[1][-1]["r2"] != together.curves[1][0]["r2"]


@pytest.mark.slow
def test_training_recovers_the_latents():
    settings = GroupSettings(**{**TINY, "latent_dim": 3, "hidden": (64, 64), "batch_size": 64, "steps": 400,
                                "eval_steps": (0,), "kappa": 10.0})
    result = train_group([Model("infonce", SPECS["infonce"], 0), Model("kcl", SPECS["kcl"], 0)], settings)
    assert result.curves[0][0]["r2"] < 0.6 and result.final[0]["r2"] > 0.9  # InfoNCE: R² 0.49 -> 0.96
    assert result.final[1]["r2"] > result.curves[1][0]["r2"] + 0.2  # KCL: 0.49 -> 0.75
    for k in range(2):
        assert result.final[k]["procrustes"] < result.curves[k][0]["procrustes"] / 5
    assert result.oracle[0] < result.final[0]["loss_large"]  # the true latents beat a trained encoder


@pytest.mark.slow
def test_a_diverging_model_is_reported_and_leaves_the_others_alone(monkeypatch):
    real = ident.loss_function

    def loss_function(spec, chunk_size=None):
        fn = real(spec, chunk_size)
        if spec.get("temperature") == 0.3:  # dhel: NaN from its 5th call on
            calls = {"n": 0}

            def broken(z1, z2):
                calls["n"] += 1
                return fn(z1, z2) * (float("nan") if calls["n"] >= 5 else 1.0)
            return broken
        return fn

    monkeypatch.setattr(ident, "loss_function", loss_function)
    models = [Model("infonce", SPECS["infonce"], 0), Model("dhel", SPECS["dhel"], 0)]
    result = train_group(models, GroupSettings(**{**TINY, "eval_steps": ()}))
    assert result.diverged_at == [None, 4]
    monkeypatch.setattr(ident, "loss_function", real)
    alone = train_group(models[:1], GroupSettings(**{**TINY, "eval_steps": ()}))
    assert result.final[0]["r2"] == pytest.approx(alone.final[0]["r2"], rel=1e-5)


# ---------------------------------------------------------------------------- the study


def tiny_study(out, **changes):
    cfg = {
        "out_dir": str(out), "threads": None, "latent_dim": 4, "kappa": 10.0, "mixing_layers": 3, "hidden": [16, 16],
        "lr": 0.001, "steps": 20, "eval_every": 10, "heldout": 300, "curve_points": 200, "pairwise_points": 100,
        "loss_batches": 4, "large_batch": 256, "seeds": [0, 1, 2], "batch_sizes": [4, 8],
        "methods": {"infonce": {"loss": "infonce", "temperature": 0.2}, "dcl": {"loss": "dcl", "temperature": 0.1},
                    "dhel": {"loss": "dhel", "temperature": 0.3},
                    "kcl": {"loss": "kcl", "kernel": "gaussian", "t": 2.0, "gamma": 16.0}},
        "selection": {"seeds": [100], "grid": {"dhel": [{"temperature": 0.1}], "kcl": [{"gamma": 4.0}]}},
        "ablation": {"dhel": [{"include_augs": False}]},
        "same_samples": {"batch_sizes": [4, 8], "samples_of_batch": 4},
        "high_dim": {"latent_dim": 6, "batch_sizes": [4]},
    }
    cfg.update(changes)
    return cfg


@pytest.mark.slow
def test_the_tiny_study_rows_resume_and_report(tmp_path):
    lines = []
    study = Study(tiny_study(tmp_path / "s"), progress=lines.append)
    rows = study.run()
    keys = {(r["stage"], r["method"], r["variant"], r["batch_size"], r["steps"], r["seed"]) for r in rows}
    for b in ("4", "8"):
        for m in ("infonce", "dcl", "dhel", "kcl"):
            assert {("main", m, "", b, "20", s) for s in "012"} <= keys
            assert ("selection", m, "", b, "20", "100") in keys
        assert {("main", "dhel", "include_augs=false", b, "20", s) for s in "012"} <= keys
        assert ("selection", "dhel", "temperature=0.1", b, "20", "100") in keys
        assert ("selection", "kcl", "gamma=4.0", b, "20", "100") in keys
        for m in ("dhel", "kcl"):  # a tuned run exactly where the selection picked another value
            pick = selected(rows, m, int(b), 4)
            tuned = {r["variant"] for r in rows if r["stage"] == "main" and r["method"] == m and r["hp"] == "tuned"
                     and r["batch_size"] == b}
            assert tuned == ({pick} if pick else set())
    # equal samples (20 x 4): batch 8 runs 10 steps; batch 4 is the main stage's run
    assert {r["steps"] for r in rows if r["stage"] == "same_samples"} == {"10"}
    assert {(r["latent_dim"], r["batch_size"]) for r in rows if r["stage"] == "high_dim"} == {("6", "4")}
    for r in rows:
        assert -1 <= float(r["r2"]) <= 1 and 0 <= float(r["procrustes"]) <= 4
        assert 1 <= float(r["effective_rank"]) <= int(r["latent_dim"])
        assert float(r["seconds"]) > 0 and r["version"] and json.loads(r["loss_kwargs"])
        if r["stage"] != "selection":
            assert r["loss_large"] != "" and r["loss_oracle"] != ""
    assert sum("runs (" in line for line in lines) == len(study.stages())
    assert sum(": R² " in line for line in lines) == len(rows)  # a progress line per run
    # Resume: nothing left to train; a lost row is trained again, alone.
    lines.clear()
    assert len(Study(tiny_study(tmp_path / "s"), progress=lines.append).run()) == len(rows)
    assert not any("runs (" in line for line in lines)
    table = study.table

    def lose_a_row():
        lost = [r for r in table.read() if r["stage"] == "main" and r["method"] == "kcl" and r["seed"] == "2"
                and r["batch_size"] == "8" and r["variant"] == ""]
        table.write([r for r in table.read() if r not in lost])
        return lost[0]

    # a row its run folder holds (a job stopped before it reached the table) is collected, not trained
    lost = lose_a_row()
    lines.clear()
    assert lost in Study(tiny_study(tmp_path / "s"), progress=lines.append).run()
    assert not any("runs (" in line for line in lines)
    # without its row file too, it is trained again, alone
    run_id = "main-d4-kcl-b8-t20-s2"
    os.remove(tmp_path / "s" / "runs" / run_id / "row.json")
    lose_a_row()
    lines.clear()
    again = Study(tiny_study(tmp_path / "s"), progress=lines.append).run()
    (started,) = [line for line in lines if "runs (" in line]
    assert "main d4 b8: 1 runs" in started
    assert len(again) == len(rows)
    # The report: every section, intervals over 3 seeds, correlations.
    from solo_plugins.identifiability.report import write_report

    text = write_report(str(tmp_path / "s"), tiny_study(tmp_path / "s"))
    for heading in ("r2 at d = 4, equal steps, shipped defaults", "per-batch-size tuned", "The selection's picks",
                    "equal samples seen", "d = 6", "include_augs=false − default", "Loss at the end",
                    "Convergence", "Spearman", "Reference: the untrained encoders (the same 3 seeds"):
        assert heading in text, heading
    for name in ("results.md", "curves.csv", "r2_vs_batch_size.png", "convergence_r2.png", "metric_correlations.png"):
        assert (tmp_path / "s" / name).stat().st_size > 0
    curves = (tmp_path / "s" / "curves.csv").read_text().splitlines()
    assert len(curves) - 1 == 3 * sum(1 for r in again if r["stage"] != "selection")  # steps 0, 10, 20


@pytest.mark.parametrize("change,message", [
    ({"methods": {"x": {"loss": "simclr"}}}, "methods.x: 'loss' must be one of"),
    ({"methods": {"dhel": {"loss": "dhel", "tau": 0.3}}}, r"methods.dhel: dhel takes \['temperature', 'include_augs'\]"),
    ({"batch_sizes": [1, 8]}, "every batch size must be >= 2"),
    ({"steps": 0}, "steps must be a positive integer"),
    ({"seeds": []}, "seeds must be a non-empty list"),
    ({"selection": {"seeds": [9], "grid": {"simclr": [{"temperature": 0.1}]}}}, "selection: 'simclr' is not one of"),
    ({"ablation": {"dhel": [{"include_aug": False}]}}, "ablation.dhel: dhel takes"),
])
def test_a_bad_study_config_names_the_setting(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        check_study(tiny_study(tmp_path, **change))
    assert not os.path.exists(tmp_path / "results.csv")


def test_selection_picks_the_best_mean_and_the_default_on_ties():
    def row(variant, seed, r2):
        return {"stage": "selection", "method": "dhel", "variant": variant, "batch_size": "8", "latent_dim": "10",
                "seed": str(seed), "r2": str(r2)}

    rows = [row("", 0, 0.5), row("", 1, 0.7), row("temperature=0.1", 0, 0.65), row("temperature=0.1", 1, 0.6)]
    assert selected(rows, "dhel", 8, 10) == "temperature=0.1"  # 0.625 > 0.6
    rows += [row("temperature=0.5", 0, 0.6), row("temperature=0.5", 1, 0.65)]
    assert selected(rows, "dhel", 8, 10) == "temperature=0.1"
    rows[0]["r2"] = "0.55"  # default 0.625: a tie goes to the default
    assert selected(rows, "dhel", 8, 10) == ""
    rows[0]["r2"] = "nan"  # a diverged default loses
    assert selected(rows, "dhel", 8, 10) == "temperature=0.1"
    assert selected(rows, "kcl", 8, 10) == ""


def test_steps_to_reach_reads_the_mean_curve():
    curve = [{"stage": "main", "variant": "", "method": "dhel", "batch_size": "8", "step": s, "r2": v}
             for s, v in ((0, 0.1), (100, 0.5), (200, 0.91), (300, 0.95))]
    assert steps_to_reach(curve, "main") == {("dhel", 8): 200}  # 0.91 >= 0.95 * 0.95 > 0.5


# --------------------------------------------------------------------------- statistics


def test_spearman_against_hand_computed_cases():
    assert ranks([10, 30, 20, 30]) == [1, 3.5, 2, 3.5]
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)  # 1 - 6·2/(4·15)
    assert spearman([1, 2, 3, 4, 5], [5, 4, 3, 2, 1]) == pytest.approx(-1.0)
    # With ties: Pearson of the average ranks (1, 2.5, 2.5, 4) and (1, 2, 3, 4) = 0.9487
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(3 / math.sqrt(10), abs=1e-12)
    from scipy.stats import spearmanr

    x, y = [0.3, 0.1, 0.9, 0.5, 0.5, 0.2], [2, 1, 5, 3, 4, 1]
    assert spearman(x, y) == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)
    c = spearman_interval([1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 3, 4, 5, 6, 7, 8])
    assert c.rho == 1.0 and c.low == pytest.approx(1.0, abs=1e-12) and c.high == pytest.approx(1.0, abs=1e-12)
    c = spearman_interval(x * 5, y * 5)
    assert c.low <= c.rho <= c.high and c == spearman_interval(x * 5, y * 5)  # seeded: it repeats


# ------------------------------------------------------------------------------ command


@pytest.mark.slow
def test_the_command_runs_the_shipped_config_from_any_directory(tmp_path):
    pytest.importorskip("hydra")
    out = tmp_path / "study"
    args = [sys.executable, "-m", "solo_plugins.commands.identifiability", "--config-name", "identifiability.yaml",
            f"out_dir={out}", "steps=8", "eval_every=4", "seeds=[0,1]", "batch_sizes=[4]", "heldout=200",
            "curve_points=100", "pairwise_points=50", "large_batch=64", "hidden=[8,8]", "latent_dim=3",
            "selection.seeds=[7]", "same_samples.batch_sizes=[]", "high_dim.batch_sizes=[]"]
    run = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "wrote" in run.stdout and (out / "results.md").exists()
    assert sorted(os.listdir(tmp_path)) == ["study"]  # nothing outside its folder
    bad = subprocess.run([*args[:5], f"out_dir={out}", "batch_sizes=[1]"], cwd=tmp_path, capture_output=True, text=True)
    assert bad.returncode != 0 and "batch_sizes" in bad.stderr
