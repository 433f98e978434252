"""The latent-recovery study run to convergence (canonical correlations against a numpy
reference, the criterion on plateaus, runs leaving the stack, resume after a kill, bad
configs) and the finite-batch optimum (the aligned simplex from random starts for every
shipped loss, the cross-polytope, closed forms)."""

import copy
import csv
import math
import os

import numpy as np
import pytest
import torch
import yaml

from solo_plugins.identifiability.converged_study import ConvergedStudy, check_converged_study
from solo_plugins.identifiability.convergence import Criterion, _converged
from solo_plugins.identifiability.measures import canonical_correlations
from solo_plugins.identifiability.optimum import best_of_starts, compare, cross_polytope, describe, regular_simplex
from solo_plugins.identifiability.optimum_study import batch_sizes, check_optimum_study
from solo_plugins.identifiability.training import GroupSettings, Model, loss_function, train_group

from .conftest import CONFIGS

SHIPPED = {
    "infonce": {"loss": "infonce", "temperature": 0.2},
    "dcl": {"loss": "dcl", "temperature": 0.1},
    "dclw": {"loss": "dcl", "temperature": 0.1, "weight_sigma": 0.5},
    "dhel": {"loss": "dhel", "temperature": 0.3},
    "kcl": {"loss": "kcl", "kernel": "gaussian", "t": 2.0, "gamma": 16.0},
}


# ------------------------------------------------------------------ canonical correlations


def _cca_numpy(h, z):
    """Canonical correlations from the covariance blocks: the square roots of the eigenvalues
    of Σhh⁻¹ Σhz Σzz⁻¹ Σzh."""
    h = h - h.mean(0)
    z = z - z.mean(0)
    shh, szz, shz = h.T @ h, z.T @ z, h.T @ z
    m = np.linalg.solve(shh, shz) @ np.linalg.solve(szz, shz.T)
    return np.sqrt(np.clip(np.sort(np.linalg.eigvals(m).real)[::-1], 0, 1))


def test_canonical_correlations_equal_a_covariance_reference():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2000, 5, generator=g, dtype=torch.float64)
    h = z @ torch.randn(5, 5, generator=g, dtype=torch.float64)
    h[:, 2] = torch.randn(2000, generator=g, dtype=torch.float64)  # one direction lost
    h += 0.3 * torch.randn(2000, 5, generator=g, dtype=torch.float64)
    ours = canonical_correlations(h, z).numpy()
    assert np.allclose(ours, _cca_numpy(h.numpy(), z.numpy()), atol=1e-10)
    assert (ours > 0.8).sum() == 4 and ours[-1] < 0.1


def test_a_rotation_of_z_has_every_correlation_one_and_their_squares_average_to_r2():
    from solo_plugins.identifiability.data import sample_sphere
    from solo_plugins.identifiability.measures import r2_linear

    g = torch.Generator().manual_seed(1)
    z = sample_sphere(20_000, 4, g, dtype=torch.float64)
    q = torch.linalg.qr(torch.randn(4, 4, generator=g, dtype=torch.float64))[0]
    assert torch.allclose(canonical_correlations(z @ q, z), torch.ones(4, dtype=torch.float64), atol=1e-10)
    # z isotropic: R² of the affine map is the mean squared canonical correlation.
    h = torch.nn.functional.normalize(z + 0.4 * torch.randn(20_000, 4, generator=g, dtype=torch.float64), dim=1)
    rho = canonical_correlations(h, z)
    assert abs(r2_linear(h, z, h, z) - float(rho.pow(2).mean())) < 0.01


# ------------------------------------------------------------------------- the criterion


def _curve(r2s, directions, every=100):
    return [{"step": i * every, "r2": r, "directions": k} for i, (r, k) in enumerate(zip(r2s, directions))]


def test_a_flat_plateau_is_not_convergence_and_all_directions_with_a_settled_r2_is():
    c = Criterion(min_steps=300, max_steps=1000, check_every=100, window=300, r2_tolerance=0.002)
    plateau = _curve([0.78] * 10, [8] * 10)
    assert not _converged(plateau, 900, c, d=10)  # flat for 900 steps, two directions missing
    climbing = _curve([0.90, 0.95, 0.98, 0.990, 0.9950, 0.9955, 0.996, 0.9962], [10] * 8)
    assert not _converged(climbing, 400, c, d=10)  # 0.95 -> 0.995 over the window
    assert _converged(climbing, 700, c, d=10)  # 0.995 -> 0.9962
    assert not _converged(_curve([0.99] * 3, [10] * 3), 200, c, d=10)  # before min_steps


@pytest.mark.parametrize("bad, match", [
    (dict(window=250), "multiple of check_every"),
    (dict(min_steps=1050), "multiples of check_every"),
    (dict(min_canonical=1.5), "min_canonical"),
    (dict(max_steps=200), "window <= min_steps <= max_steps"),
])
def test_bad_criteria_are_named(bad, match):
    with pytest.raises(ValueError, match=match):
        Criterion(**{**dict(min_steps=500, max_steps=1000, check_every=100, window=300), **bad})


# -------------------------------------------------------------------------- the training


def _tiny_cfg(out_dir, **changes):
    with open(f"{CONFIGS}/sweep/identifiability_converged.yaml") as f:
        cfg = yaml.safe_load(f)
    cfg.update(out_dir=str(out_dir), latent_dim=3, hidden=[32, 32], heldout=1000, curve_points=500,
               pairwise_points=200, large_batch=256, early_step=200, seeds=[0, 1], threads=1, data_chunk=100,
               criterion=dict(check_every=100, min_canonical=0.9, window=300, r2_tolerance=0.01))
    cfg["settings"] = [dict(stage="converged", mixing_layers=2, batches=[dict(
        batch_size=64, min_steps=500, max_steps=1200, tuned={"dhel": {"temperature": 0.1}})])]
    cfg.update(changes)
    return cfg


def _rows(out_dir):
    with open(f"{out_dir}/results.csv") as f:
        return {(r["method"], r["variant"], r["seed"]): r for r in csv.DictReader(f)}


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("converged")
    ConvergedStudy(_tiny_cfg(out), progress=lambda line: None).run()
    return out


@pytest.mark.slow
def test_every_run_stops_converged_or_at_its_cap_with_its_early_values(tiny_study):
    rows = _rows(tiny_study)
    assert len(rows) == 10  # 4 methods x 2 seeds, and DHEL tuned x 2 seeds
    for r in rows.values():
        assert r["converged"] in ("true", "false")
        if r["converged"] == "true":
            assert float(r["directions"]) == 3 and 500 <= int(r["stopped_step"]) < 1200
        else:
            assert int(r["stopped_step"]) == 1200
        assert r["r2_early"] and r["early_step"] == "200" and float(r["loss_oracle"]) == float(r["loss_oracle"])
        assert abs(float(r["loss_gap"]) - (float(r["loss_large"]) - float(r["loss_oracle"]))) < 1e-4
    assert {r["converged"] for r in rows.values()} == {"true", "false"}  # this tiny setting has both


@pytest.mark.slow
def test_a_converged_run_equals_the_same_run_trained_alone_to_that_step(tiny_study):
    """A run that left the stack early, and one that stayed in it to the cap, each equal the
    run trained alone for as many steps (train_group, one model)."""
    rows = _rows(tiny_study)
    for r in (min(rows.values(), key=lambda r: int(r["stopped_step"])),
              max(rows.values(), key=lambda r: int(r["stopped_step"]))):
        spec = {"loss": r["loss"], **__import__("json").loads(r["loss_kwargs"])}
        settings = GroupSettings(latent_dim=3, kappa=10.0, mixing_layers=2, hidden=(32, 32), batch_size=64,
                                 steps=int(r["stopped_step"]), heldout=1000, pairwise_points=200, large_batch=256,
                                 threads=1, data_chunk=100)
        alone = train_group([Model(r["method"], tuple(sorted(spec.items())), int(r["seed"]))], settings)
        assert abs(alone.final[0]["r2"] - float(r["r2"])) < 1e-4
        assert abs(alone.final[0]["procrustes"] - float(r["procrustes"])) < 1e-4


@pytest.mark.slow
def test_the_report_counts_converged_runs_in_every_cell_and_draws_its_figures(tiny_study):
    from solo_plugins.identifiability.converged_report import write_converged_report

    text = write_converged_report(str(tiny_study), {})
    rows = _rows(tiny_study)
    k = sum(r["converged"] == "true" for r in rows.values() if r["method"] == "dcl" and r["hp"] == "default")
    assert "| dcl | " in text and f"({k}/2)" in text
    assert "at step 200" in text and "Hyperparameter sensitivity" in text and "dhel − infonce" in text
    assert "tuned − default, R² at step 200, same runs" in text
    for name in ("early_vs_converged.png", "convergence_curves.png", "curves.csv", "results.md"):
        assert (tiny_study / name).stat().st_size > 0
    with open(tiny_study / "curves.csv") as f:
        curve = list(csv.DictReader(f))
    assert {c["step"] for c in curve} >= {"0", "200", "500"}


@pytest.mark.slow
def test_a_killed_study_resumes_to_the_same_rows(tiny_study, tmp_path):
    cfg = _tiny_cfg(tmp_path, checkpoint_minutes=0)

    class Killed(Exception):
        pass

    def kill_at_step_700(line):
        if line.startswith("  step 700:"):
            raise Killed

    with pytest.raises(Killed):
        ConvergedStudy(copy.deepcopy(cfg), progress=kill_at_step_700).run()
    landed = _rows(tmp_path)
    assert 0 < len(landed) < 10  # some runs had stopped before the kill
    lines = []
    ConvergedStudy(cfg, progress=lines.append).run()
    assert any("resumed at step" in line for line in lines)
    resumed, straight = _rows(tmp_path), _rows(tiny_study)
    assert resumed.keys() == straight.keys()
    for key, r in straight.items():
        for column in ("converged", "stopped_step", "r2", "procrustes", "r2_early", "loss_gap"):
            assert resumed[key][column] == r[column], (key, column)
    assert not list((tmp_path / "groups").iterdir())  # a finished group leaves no state


@pytest.mark.slow
def test_a_warned_group_saves_at_once_hands_the_signal_on_and_its_requeue_gives_the_same_rows(tiny_study, tmp_path):
    """What a SLURM array task of the converged stage does on SLURM's warning signal: with a
    handler installed (submitit's, here one that records the call and exits as submitit does),
    the signal saves the group's state at the next data-chunk boundary although the periodic save
    is hours away, then calls that handler; the requeued task resumes and gives the rows of the
    group that was never stopped."""
    import signal

    from solo_plugins.identifiability.converged_study import run_converged_group

    cfg = _tiny_cfg(tmp_path, checkpoint_minutes=600)
    label = "converged b64 defaults"
    calls = []

    def submitit_handler(signum, frame):
        calls.append(signum)
        raise SystemExit(-1)

    def warn_at_step_700(line):
        if line.startswith("  step 700:"):
            os.kill(os.getpid(), signal.SIGUSR2)

    previous = signal.signal(signal.SIGUSR2, submitit_handler)
    try:
        with pytest.raises(SystemExit):
            run_converged_group(copy.deepcopy(cfg), label, progress=warn_at_step_700)
        assert calls == [signal.SIGUSR2] and signal.getsignal(signal.SIGUSR2) is submitit_handler
        state = torch.load(tmp_path / "groups" / "converged-b64-defaults.pt", weights_only=False)
        assert state["step"] == 800  # the chunk boundary after the signal (chunks of 100 steps)
        run_converged_group(copy.deepcopy(cfg), label)  # the requeued task
    finally:
        signal.signal(signal.SIGUSR2, previous)
    resumed, straight = _rows(tmp_path), _rows(tiny_study)
    assert resumed.keys() == {k for k, r in straight.items() if r["hp"] == "default"}
    for key, r in resumed.items():
        for column in set(r) - {"seconds", "commit", "version"}:
            assert r[column] == straight[key][column], (key, column)
    assert not (tmp_path / "groups" / "converged-b64-defaults.pt").exists()


@pytest.mark.slow
def test_a_row_left_in_its_run_folder_but_not_in_the_table_is_collected_without_training(tiny_study, tmp_path):
    """What a SLURM job that wrote its run's row file but not the shared table leaves: the next
    start of the study adds that row from the file and trains nothing."""
    import shutil

    out = tmp_path / "study"
    shutil.copytree(tiny_study, out)
    with open(out / "results.csv") as f:
        lines = f.read().splitlines(keepends=True)
    with open(out / "results.csv", "w") as f:
        f.writelines(lines[:-1])  # the last run's row only in its folder now
    lines_seen = []
    ConvergedStudy(_tiny_cfg(out), progress=lines_seen.append).run()
    assert not any(line.startswith("  step") for line in lines_seen)
    assert _rows(out) == _rows(tiny_study)


@pytest.mark.slow
def test_an_unreadable_group_state_starts_the_group_again(tmp_path):
    cfg = _tiny_cfg(tmp_path)
    cfg["settings"][0]["batches"][0].pop("tuned")
    (tmp_path / "groups").mkdir()
    (tmp_path / "groups" / "converged-b64-defaults.pt").write_bytes(b"not a torch file")
    lines = []
    ConvergedStudy(cfg, progress=lines.append).run()
    assert any("ignoring the unreadable group state" in line for line in lines)
    assert len(_rows(tmp_path)) == 8


@pytest.mark.parametrize("change, match", [
    (dict(methods={}), "methods"),
    (dict(seeds=[]), "seeds"),
    (dict(settings=[dict(stage="x", mixing_layers=2, batches=[dict(batch_size=1, min_steps=1, max_steps=2)])]),
     r"settings\[0\]\.batches\[0\]\.batch_size"),
    (dict(settings=[dict(stage="x", mixing_layers=2, batches=[dict(batch_size=8, min_steps=10, max_steps=5)])]),
     r"max_steps must be an integer >= 10"),
    (dict(settings=[dict(stage="x", mixing_layers=2, methods=["simclr"], batches=[])]), r"\['simclr'\] not in methods"),
    (dict(settings=[dict(stage="x", mixing_layers=2, batches=[dict(
        batch_size=8, min_steps=10, max_steps=20, tuned={"dhel": {"tau": 0.1}})])]), r"dhel takes"),
    (dict(criterion=dict(window=333)), "multiple of check_every"),
    (dict(reuse_rows="nowhere/results.csv"), "reuse_rows: no file at 'nowhere/results.csv'"),
    (dict(settings=[dict(stage="x", mixing_layers=2, batches=[dict(
        batch_size=8, min_steps=10, max_steps=20, selected={"simclr": {}})])]), r"selected: 'simclr' is not one"),
])
def test_bad_converged_configs_are_named(tmp_path, change, match):
    cfg = _tiny_cfg(tmp_path, **change)
    with pytest.raises(ValueError, match=match):
        check_converged_study(cfg)


@pytest.mark.slow
def test_a_group_filter_runs_only_the_named_groups_and_names_an_unknown_one(tmp_path):
    cfg = _tiny_cfg(tmp_path, groups=["converged b64 tuned"])
    ConvergedStudy(cfg, progress=lambda line: None).run()
    assert {(r["method"], r["hp"]) for r in _rows(tmp_path).values()} == {("dhel", "tuned")}
    with pytest.raises(ValueError, match=r"groups: \['converged b9 defaults'\] are not groups"):
        ConvergedStudy(_tiny_cfg(tmp_path, groups=["converged b9 defaults"]), progress=lambda line: None).run()


def test_the_shipped_converged_config_is_valid_and_covers_the_grid_the_issue_asks_for():
    with open(f"{CONFIGS}/sweep/identifiability_converged.yaml") as f:
        cfg = yaml.safe_load(f)
    check_converged_study(cfg)
    groups = ConvergedStudy(cfg, progress=lambda line: None).groups()
    main = [g for g in groups if g.runs[0].stage == "converged"]
    assert {r.method for g in main for r in g.runs} >= {"infonce", "dcl", "dhel", "kcl"}
    assert len({g.settings.batch_size for g in main}) >= 5 and len(cfg["seeds"]) >= 5
    for g in main:
        assert g.criterion.min_steps >= (20_000 if g.settings.batch_size == 512 else 10_000)
        assert g.settings.mixing_layers == 2 and g.settings.hidden == (256, 256)


# --------------------------------------------------------------- the finite-batch optimum


def test_the_reference_configurations_have_their_inner_products():
    for m, d in [(2, 2), (3, 2), (4, 3), (9, 8)]:
        s = regular_simplex(m, d)
        gram = s @ s.T
        assert s.shape == (m, d) and torch.allclose(gram.diagonal(), torch.ones(m, dtype=torch.float64))
        off = gram[~torch.eye(m, dtype=torch.bool)]
        assert torch.allclose(off, torch.full_like(off, -1 / (m - 1)), atol=1e-12)
    c = cross_polytope(3)
    assert describe(c, c)["gram_values"] == pytest.approx([-1.0, 0.0])


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SHIPPED))
@pytest.mark.parametrize("d", [2, 3])
def test_every_shipped_loss_is_minimized_by_the_aligned_simplex_up_to_d_plus_1(name, d):
    """From 4 random starts (float64, L-BFGS), the best optimum at every M <= d + 1 has its
    positives aligned (mean ||z1 - z2||² <= 1e-6), every off-diagonal inner product of the
    anchors at -1/(M-1) (to 1e-3) and a loss no higher than the simplex's (to 1e-6)."""
    loss = loss_function(SHIPPED[name])
    for m in range(2, d + 2):
        found = best_of_starts(loss, m, d, starts=4)
        result = compare(loss, found, m, d)
        assert result["known"] == "simplex"
        assert result["is_known"], (name, d, m, result)
        assert abs(found.loss - result["known_loss"]) < 1e-6


def test_infonce_at_the_aligned_simplex_has_its_closed_form():
    """NT-Xent at M aligned pairs on the simplex: each anchor sees its positive at 1/τ and
    2(M-1) negatives at -1/((M-1)τ)."""
    tau = 0.2
    loss = loss_function({"loss": "infonce", "temperature": tau})
    for m, d in [(2, 2), (3, 2), (5, 4), (9, 8)]:
        s = regular_simplex(m, d)
        expected = -1 / tau + math.log(math.exp(1 / tau) + 2 * (m - 1) * math.exp(-1 / ((m - 1) * tau)))
        assert abs(float(loss(s, s)) - expected) < 1e-12


@pytest.mark.parametrize("name", ["infonce", "dcl", "dhel", "kcl"])
def test_the_square_is_the_optimum_of_four_pairs_on_the_circle(name):
    """M = 2d = 4 in d = 2 (beyond d + 1): the best of 6 starts is the aligned cross-polytope
    (a square) and its loss equals the square's."""
    loss = loss_function(SHIPPED[name])
    found = best_of_starts(loss, 4, 2, starts=6)
    result = compare(loss, found, 4, 2)
    assert result["known"] == "cross-polytope" and result["is_known"], result
    assert abs(found.loss - result["known_loss"]) < 1e-8
    assert result["min_distance"] == pytest.approx(math.sqrt(2), abs=1e-4)


def test_the_optimum_grid_and_its_config_checks():
    assert batch_sizes(3, 3, 12) == [2, 3, 4, 5, 6, 7, 8, 9]
    assert batch_sizes(16, 3, 12) == [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 16, 17, 18, 24, 32, 48]
    with open(f"{CONFIGS}/sweep/finite_batch_optimum.yaml") as f:
        cfg = yaml.safe_load(f)
    check_optimum_study(cfg)
    for change, match in [({"settings": {"x": {"loss": "simclr"}}}, "settings.x"),
                          ({"settings": {"x": {"loss": "dhel", "hp": "best"}}}, "default or tuned"),
                          ({"latent_dims": [1]}, "latent_dims"), ({"stall": 0}, "stall")]:
        with pytest.raises(ValueError, match=match):
            check_optimum_study({**cfg, **change})


# ------------------------------------------------------ hyperparameters selected at convergence


@pytest.mark.slow
def test_a_grid_group_gives_the_rows_of_the_same_settings_trained_as_defaults_and_tuned(tiny_study, tmp_path):
    """The grid's points train stacked in one group; each equals the same settings trained in
    the default and tuned groups (a run's trajectory does not depend on its stack)."""
    cfg = _tiny_cfg(tmp_path)
    cfg["settings"][0].update(defaults=False)
    batch = cfg["settings"][0]["batches"][0]
    batch.pop("tuned")
    batch["grid"] = {"dhel": {"temperature": [0.1, 0.3]}}
    groups = ConvergedStudy(cfg, progress=lambda line: None).groups()
    assert [g.label for g in groups] == ["converged b64 dhel grid"]
    ConvergedStudy(cfg, progress=lambda line: None).run()
    grid, straight = _rows(tmp_path), _rows(tiny_study)
    assert {r["hp"] for r in grid.values()} == {"grid"} and len(grid) == 4
    for seed in ("0", "1"):
        for variant, (hp, straight_variant) in {"temperature=0.3": ("default", ""),
                                                "temperature=0.1": ("tuned", "temperature=0.1")}.items():
            ours, theirs = grid[("dhel", variant, seed)], straight[("dhel", straight_variant, seed)]
            assert theirs["hp"] == hp
            for column in ("converged", "stopped_step", "r2", "procrustes", "r2_early"):
                assert ours[column] == theirs[column], (variant, seed, column)


@pytest.mark.slow
def test_selected_runs_reuse_the_rows_of_runs_set_up_alike_and_train_the_others(tiny_study, tmp_path):
    """A pick equal to a default or tuned setting of another table copies its rows; a pick
    under the same key but set up otherwise (here DCL's default changed) trains."""
    cfg = _tiny_cfg(tmp_path, reuse_rows=str(tiny_study / "results.csv"))
    cfg["methods"]["dcl"] = {"loss": "dcl", "temperature": 0.2}
    cfg["settings"][0].update(defaults=False)
    batch = cfg["settings"][0]["batches"][0]
    batch.pop("tuned")
    batch["selected"] = {"infonce": {}, "dcl": {}, "dhel": {"temperature": 0.1}}
    lines = []
    ConvergedStudy(cfg, progress=lines.append).run()
    assert "4 rows reused from " + str(tiny_study / "results.csv") in lines
    assert sum("not reused, set up otherwise (loss_kwargs)" in line for line in lines) == 2
    assert "[1/1] converged b64 selected: 2 runs (4 already done)" in lines
    ours, theirs = _rows(tmp_path), _rows(tiny_study)
    assert set(ours) == {(m, v, s) for m, v in [("infonce", ""), ("dcl", ""), ("dhel", "temperature=0.1")]
                         for s in ("0", "1")}
    for key in [("infonce", "", "0"), ("infonce", "", "1"), ("dhel", "temperature=0.1", "0")]:
        assert ours[key] == theirs[key]  # copied as they were, hp included
    for seed in ("0", "1"):
        dcl = ours[("dcl", "", seed)]
        assert dcl["hp"] == "selected" and dcl["loss_kwargs"] == '{"temperature": 0.2}'
        assert dcl["r2"] != theirs[("dcl", "", seed)]["r2"]


def _grid_row(method, kwargs, seed, r2, converged, b=32):
    return {"method": method, "batch_size": str(b), "hp": "grid", "seed": str(seed), "r2": str(r2),
            "converged": "true" if converged else "false", "loss_kwargs": __import__("json").dumps(kwargs)}


def test_the_pick_prefers_converged_seeds_then_r2_and_keeps_a_default_within_the_seeds_half_range():
    from solo_plugins.identifiability.selection import edge_extensions, pick

    t = lambda v: {"temperature": v}  # noqa: E731
    rows = [_grid_row("dhel", t(0.1), 0, 0.999, False), _grid_row("dhel", t(0.1), 1, 0.999, False),
            _grid_row("dhel", t(0.3), 0, 0.990, True), _grid_row("dhel", t(0.3), 1, 0.980, True),
            _grid_row("dhel", t(1.0), 0, 0.996, True), _grid_row("dhel", t(1.0), 1, 0.990, True)]
    p = pick(rows, "dhel", 32, t(0.3))
    # 0.1 has the best R² but converged on no seed; 1.0 beats the default by 0.008 > the larger half-range 0.005
    assert p.point.settings == t(1.0) and not p.at_cap
    assert edge_extensions(p, {"temperature": [0.1, 0.3, 1.0]}) == [t(2.0)]
    rows[4]["r2"] = "0.989"  # now 1.0 beats the default by 0.0045, within the half-range 0.005
    p = pick(rows, "dhel", 32, t(0.3))
    assert p.point.settings == t(0.3) and "shipped default" in p.reason
    assert edge_extensions(p, {"temperature": [0.1, 0.3, 1.0]}) == []
    at_cap = [_grid_row("kcl", {"gamma": g, "t": 2.0}, s, 0.9 + g / 1000, False, b=8) for g in (4, 16) for s in (0, 1)]
    p = pick(at_cap, "kcl", 8, {"gamma": 16, "t": 2.0})
    assert p.at_cap and p.point.settings == {"gamma": 16, "t": 2.0}
    assert edge_extensions(p, {"gamma": [4, 16], "t": [2.0]}) == [{"gamma": 32.0, "t": 2.0}]
    assert pick(at_cap, "kcl", 32, {}) is None


def test_the_selection_report_finds_a_kcl_default_on_its_grid_and_measures_the_spread():
    from solo_plugins.identifiability.selection import selection_lines

    point = lambda g, t: {"kernel": "gaussian", "gamma": g, "t": t}  # noqa: E731  (as the rows hold it)
    rows = [_grid_row("kcl", point(16.0, 2.0), s, r2, False) for s, r2 in ((100, 0.90), (101, 0.88))]
    rows += [_grid_row("kcl", point(4.0, 2.0), s, r2, False) for s, r2 in ((100, 0.91), (101, 0.89))]
    default = {"kcl": {"loss": "kcl", "kernel": "gaussian", "t": 2.0, "gamma": 16.0}}
    text = "\n".join(selection_lines(rows, default, {32: {"kcl": {"gamma": [4.0, 16.0], "t": [2.0]}}}))
    # gamma 4 is 0.01 better, within the half-range 0.01: the shipped default stays
    assert "| kcl | 32 | gamma 16, t 2 | 0.890 ± 0.010 (0/2) | 0.890 (0/2) | the shipped default, within" in text
    assert "| kcl | 32 | 2 | 0 | 2 | 0.890 | 0.900 | 0.010 |" in text


def test_the_shipped_selection_config_covers_the_grid_the_issue_asks_for():
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=f"{CONFIGS}/sweep", version_base=None):
        cfg = OmegaConf.to_container(compose("identifiability_selection.yaml"), resolve=True)
    check_converged_study(cfg)
    groups = ConvergedStudy(cfg, progress=lambda line: None).groups()
    assert not set(cfg["seeds"]) & {0, 1, 2, 3, 4} and len(cfg["seeds"]) >= 2 and cfg["threads"] == 1
    assert {g.settings.batch_size for g in groups} == {8, 32, 128}
    caps = {g.settings.batch_size: g.criterion.max_steps for g in groups}
    assert caps[8] == 60_000 and all(g.runs[0].hp == "grid" for g in groups)
    for g in groups:
        values = {r.method: set() for r in g.runs}
        for r in g.runs:
            values[r.method].add(tuple(v for k, v in r.spec if k not in ("loss", "kernel")))
        (method, points), = values.items()
        # DHEL's 0.05 and KCL's gamma 2 and t 0.5 added after b = 32 picked edge values
        # and KCL's t 8 at b = 128 after it picked t 4
        expected = {"infonce": 5, "dcl": 5, "dhel": 6, "kcl": 20 if g.settings.batch_size == 128 else 16}[method]
        assert len(points) == expected and len(g.runs) == expected * len(cfg["seeds"])
        assert g.settings.mixing_layers == 2 and g.settings.hidden == (256, 256) and g.settings.lr == 0.001


def test_the_shipped_evaluation_config_runs_the_picks_the_selection_rows_give():
    """identifiability_selected.yaml: each method at the pick its selection rows give (b = 512
    at b = 128's, b = 4 at b = 8's), seeds 0-4, b = 8 capped at 60,000 steps, the other caps the
    converged stage's so that its rows can be reused."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from solo_plugins.identifiability.selection import pick

    with initialize_config_dir(config_dir=f"{CONFIGS}/sweep", version_base=None):
        cfg = OmegaConf.to_container(compose("identifiability_selected.yaml"), resolve=True)
        converged = OmegaConf.to_container(compose("identifiability_converged.yaml"), resolve=True)
    check_converged_study(cfg)
    with open(os.path.join(CONFIGS, "..", "docs", "ground_truth", "selection", "results.csv")) as f:
        selection = list(csv.DictReader(f))
    groups = ConvergedStudy(cfg, progress=lambda line: None).groups()
    assert all(g.label.endswith(" selected") for g in groups) and cfg["seeds"] == [0, 1, 2, 3, 4]
    caps = {b["batch_size"]: b["max_steps"] for b in converged["settings"][0]["batches"]}
    nearest = {4: 8, 8: 8, 32: 32, 128: 128, 512: 128}
    assert sorted(g.settings.batch_size for g in groups) == sorted(nearest)
    for g in groups:
        b = g.settings.batch_size
        assert g.criterion.max_steps == (60_000 if b == 8 else caps[b])
        assert len(g.runs) == 4 * 5 and {r.method for r in g.runs} == set(cfg["methods"])
        for r in g.runs:
            default = {k: v for k, v in cfg["methods"][r.method].items() if k != "loss"}
            chosen = pick(selection, r.method, nearest[b], default)
            assert {k: v for k, v in r.spec if k != "loss"} == chosen.point.settings, (b, r.method)
