"""The cluster path against a real SLURM (scripts/slurm_local.sh up starts one on this
machine): a dry run submits nothing and shows the sbatch lines; an unknown partition shows
sbatch's message; a sweep through SLURM job arrays gives the rows of the local launcher; a
failing run is reported with its job id, state and stderr while the other rows are kept; a
job sent SLURM's warning signal checkpoints, is requeued and resumes to the uninterrupted
step; a run on two devices is one job of two srun tasks forming one DDP group; solo-learn's
script runs a multirun through hydra-submitit-launcher. Skipped where sinfo cannot reach a
cluster, unless SOLO_PLUGINS_REQUIRE_SLURM=1, and then they fail."""

import csv
import glob
import os
import shutil
import subprocess
import sys
import time

import pytest
import torch

from tests.conftest import CONFIGS

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def _cluster_reason():
    if shutil.which("sinfo") is None:
        return "no sinfo on PATH (scripts/slurm_local.sh up installs and starts a local cluster)"
    try:
        out = subprocess.run(["sinfo", "-h"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "sinfo timed out"
    return None if out.returncode == 0 and out.stdout.strip() else f"sinfo cannot reach a cluster: {out.stderr.strip()}"


@pytest.fixture(scope="module", autouse=True)
def cluster():
    pytest.importorskip("solo.methods")
    reason = _cluster_reason()
    if reason:
        if os.environ.get("SOLO_PLUGINS_REQUIRE_SLURM") == "1":
            pytest.fail(f"SOLO_PLUGINS_REQUIRE_SLURM=1 but {reason}")
        pytest.skip(reason)
    pytest.importorskip("submitit")


def _queue():
    return subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True, check=True).stdout.split()


QUICK_PRETRAIN = "['max_epochs=1','+limit_train_batches=3','+limit_val_batches=0','data.num_workers=0']"


def _sweep_args(digits_root, out, extra=(), pretrain=QUICK_PRETRAIN):
    return [sys.executable, "-m", "solo_plugins.commands.sweep", "--config-path", os.path.join(CONFIGS, "sweep"),
            "--config-name", "digits.yaml", f"config_dir={CONFIGS}", f"data_root={digits_root}", f"out_dir={out}",
            "batch_sizes=[32]", "seeds=[0]", "reference_rows=false", "threads=1", "loss_vs_batch_size=false",
            "metrics_samples=64", "slurm.mem_gb=6", "slurm.cpus_per_task=1",
            f"pretrain_overrides={pretrain}",
            "linear_overrides=['max_epochs=1','+limit_train_batches=2']", *extra]


def _sweep(digits_root, out, extra=(), pretrain=QUICK_PRETRAIN):
    return subprocess.run(_sweep_args(digits_root, out, extra, pretrain), cwd=os.path.dirname(out),
                          env=dict(os.environ, WANDB_MODE="offline"), capture_output=True, text=True, timeout=900)


def _rows(out):
    with open(os.path.join(out, "results.csv")) as f:
        return {(r["method"], r["variant"]): r for r in csv.DictReader(f)}


def test_a_dry_run_shows_the_sbatch_lines_and_submits_nothing(digits_root, tmp_path):
    before = _queue()
    run = _sweep(digits_root, str(tmp_path / "dry"), ["methods=[dhel,kcl]", "launcher=slurm", "dry_run=true"])
    assert run.returncode == 0, run.stderr[-3000:]
    assert "#SBATCH --array=0-1" in run.stdout and "#SBATCH --cpus-per-task=1" in run.stdout
    assert "nothing was" in run.stdout and _queue() == before
    assert not os.path.exists(tmp_path / "dry" / "slurm" / "submissions.json")


def test_an_unknown_partition_shows_sbatchs_message_and_submits_nothing(digits_root, tmp_path):
    before = _queue()
    run = _sweep(digits_root, str(tmp_path / "bad"), ["methods=[dhel,kcl]", "launcher=slurm", "slurm.partition=nosuch"])
    assert run.returncode != 0
    assert "sbatch refused the array of 2 runs" in run.stderr and "nothing was submitted" in run.stderr
    assert "invalid partition specified: nosuch" in run.stderr  # sbatch's own words
    assert _queue() == before


def test_the_scheduling_benchmark_s_slurm_sweep_gives_the_rows_of_its_local_one(tmp_path):
    from tests.conftest import REPO

    kept = tmp_path / "bench"
    out = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "bench_slurm.py"), "--quick", "--keep",
                          str(kept)], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "2 tiny runs: local" in out.stdout and "overhead" in out.stdout
    on_slurm, here = _rows(kept / "slurm"), _rows(kept / "local")
    assert on_slurm.keys() == here.keys() == {("dhel", ""), ("kcl", "")}
    for key in here:
        for column in ("probe_acc1", "knn_acc1", "z_effective_rank"):
            assert abs(float(on_slurm[key][column]) - float(here[key][column])) <= 0.01, (key, column)
    # Run again: every row is there, nothing is submitted.
    bench_pretrain = "['max_epochs=1','+limit_train_batches=2','+limit_val_batches=0','data.num_workers=0']"
    again = _sweep(str(kept / "digits"), str(kept / "slurm"), ["methods=[dhel,kcl]", "launcher=slurm",
                                                               "linear_eval=false", "slurm.mem_gb=4"],
                   pretrain=bench_pretrain)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "2 already in" in again.stdout and "submitted " not in again.stdout


def test_a_failing_run_is_reported_and_the_other_rows_kept(digits_root, tmp_path):
    out = str(tmp_path / "failing")
    run = _sweep(digits_root, out, ["methods=[dhel]", "launcher=slurm", "variants={dhel: {temperature: [-1.0]}}"])
    assert run.returncode == 0, run.stderr[-3000:]
    assert set(_rows(out)) == {("dhel", "")}
    failed = [line for line in run.stdout.splitlines() if line.startswith("FAILED dhel-temperature-1.0-b32-s0")]
    assert failed and "job " in failed[0] and ("FAILED" in failed[0].split("job ")[1])
    assert "temperature" in run.stdout  # the tail of the job's stderr names the setting
    assert "missing rows (1): dhel-temperature-1.0-b32-s0" in run.stdout
    report = open(os.path.join(out, "results.md")).read()
    assert "## Missing runs" in report and "dhel-temperature-1.0-b32-s0" in report


def _wait_for(predicate, seconds, what, every=1.0):
    deadline = time.time() + seconds
    while not predicate():
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


def test_a_warned_job_checkpoints_is_requeued_resumes_and_finishes_at_the_uninterrupted_step(digits_root, tmp_path):
    out = tmp_path / "warned"
    # long enough that the signal, sent within 0.2 s of the first epoch's checkpoint, lands
    # mid-run however fast the machine: at 4 epochs, polled every second, a quiet CI machine
    # once finished before it arrived
    epochs, batches = 20, 8
    steps = f"['max_epochs={epochs}','+limit_train_batches={batches}','+limit_val_batches=0','data.num_workers=0']"
    run = _sweep(digits_root, str(out), ["methods=[dhel]", "launcher=slurm", "wait=false", "linear_eval=false"],
                 pretrain=steps)
    assert run.returncode == 0, run.stderr[-3000:]
    (job,) = [line.split("job ")[1] for line in run.stdout.splitlines() if line.startswith("submitted dhel-b32-s0")]
    # the same run without a signal, on the other core meanwhile (both use one thread)
    alone = tmp_path / "alone"
    with open(tmp_path / "alone.err", "w") as err:
        local = subprocess.Popen(_sweep_args(digits_root, str(alone), ["methods=[dhel]", "linear_eval=false"], steps),
                                 cwd=tmp_path, env=dict(os.environ, WANDB_MODE="offline"), stdout=subprocess.DEVNULL,
                                 stderr=err)
    folder = out / "runs" / "dhel-b32-s0"
    # the first end-of-epoch checkpoint: training is under way
    _wait_for(lambda: glob.glob(str(folder / "dhel" / "*" / "*.ckpt")), 600, "the first checkpoint", every=0.2)
    subprocess.run(["scancel", "--signal=USR2", job], check=True)  # what SLURM sends before a time limit
    # SLURM holds a requeued job back for a while before it may start again; make it eligible now
    _wait_for(lambda: "PENDING" in subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True,
                                                  text=True).stdout, 300, "the requeued job")
    subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], capture_output=True)
    _wait_for(lambda: (folder / "row.json").exists(), 900, "the requeued run's row")
    log = (folder / "log.txt").read_text()
    assert "signal SIGUSR2: checkpointing at step" in log and "Resuming from previous checkpoint" in log
    saved = int(log.split("signal SIGUSR2: checkpointing at step ")[1].split()[0])
    assert batches <= saved < epochs * batches
    assert "SLURM auto-requeueing enabled" not in log  # submitit owns the signal, not Lightning
    # the resumed run's checkpoints go to a folder of its own, as solo's auto-resume does
    ended = sorted(torch.load(c, weights_only=False)["global_step"]
                   for c in glob.glob(str(folder / "dhel" / "*" / "*.ckpt")))
    assert ended == [saved, epochs * batches]  # and it ends where the uninterrupted run ends

    def states():
        return subprocess.run(["sacct", "-j", job, "--duplicates", "-X", "-n", "-o", "State"], capture_output=True,
                              text=True, check=True).stdout.split()

    _wait_for(lambda: states()[-1:] not in (["RUNNING"], ["COMPLETING"]), 120, "the job's end")
    states = states()
    assert "REQUEUED" in states and states[-1] == "COMPLETED", states
    collected = _sweep(digits_root, str(out), ["methods=[dhel]", "launcher=slurm", "action=collect",
                                               "linear_eval=false"], pretrain=steps)
    assert collected.returncode == 0 and ("dhel", "") in _rows(out)
    # the signal usually lands inside an epoch: the requeued run continued that epoch where it
    # stopped, so it ends with the weights of the same run made without a signal, tensor for tensor
    assert local.wait(timeout=900) == 0, (tmp_path / "alone.err").read_text()[-3000:]

    def final(run_folder):
        (last,) = [c for c in glob.glob(str(run_folder / "dhel" / "*" / "*.ckpt"))
                   if torch.load(c, weights_only=False)["global_step"] == epochs * batches]
        return torch.load(last, weights_only=False)["state_dict"]

    requeued, uninterrupted = final(folder), final(alone / "runs" / "dhel-b32-s0")
    print(f"signal saved at step {saved} ({'mid-epoch' if saved % batches else 'an epoch boundary'})")
    for name, tensor in uninterrupted.items():
        assert torch.equal(tensor, requeued[name]), name


def test_a_sweep_run_on_two_devices_is_one_job_of_two_srun_tasks_and_one_row(digits_root, tmp_path):
    out = tmp_path / "ddp"
    two = ("['max_epochs=1','+limit_train_batches=3','+limit_val_batches=0','data.num_workers=0',"
           "'devices=[0,1]','strategy=ddp']")
    local = _sweep(digits_root, str(out), ["methods=[dhel]"], pretrain=two)
    assert local.returncode != 0 and "use launcher=slurm" in local.stderr  # one process cannot hold two ranks
    run = _sweep(digits_root, str(out), ["methods=[dhel]", "launcher=slurm"], pretrain=two)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "FAILED" not in run.stdout and set(_rows(out)) == {("dhel", "")}
    log = (out / "runs" / "dhel-b32-s0" / "log.txt").read_text()
    ended = sorted(line for line in log.splitlines() if line.startswith("pretraining ended at step"))
    assert ended == ["pretraining ended at step 3 (rank 0 of 2)", "pretraining ended at step 3 (rank 1 of 2)"]
    (job,) = [line.split("job ")[1] for line in run.stdout.splitlines() if line.startswith("submitted dhel-b32-s0")]
    scripts = glob.glob(str(out / "slurm" / job.split("_")[0] / "*submission.sh"))
    assert scripts and "#SBATCH --ntasks-per-node=2" in open(scripts[0]).read()


HYDRA_STAND_IN = """
import os

import hydra


@hydra.main(version_base="1.2", config_path=None, config_name=None)
def main(cfg):
    from solo.methods import METHODS  # imported in the job's own process

    cls = METHODS[cfg.method]  # solo's "Choose from ..." KeyError without the plugin
    with open(os.path.join(cfg.out, f"{cfg.method}-b{cfg.optimizer.batch_size}.txt"), "w") as f:
        f.write(f"{cls.__name__} {os.environ.get('SLURM_JOB_ID')}")


if __name__ == "__main__":
    main()
"""


def test_solo_learn_scripts_sweep_through_hydra_submitit_launcher_with_the_plugin_in_every_job(digits_root, tmp_path):
    """solo-learn's scripts are Hydra apps: ``-m hydra/launcher=submitit_slurm`` sends each
    combination to SLURM. Started through ``solo-plugins run``, every job's process registers
    the plugin (the start-up hook travels in the job's environment). With SOLO_LEARN_CHECKOUT,
    solo-learn's own main_pretrain.py pretrains each of method=dhel,kcl x two batch sizes;
    otherwise a stand-in looks the method up as solo's does, in the job."""
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    checkout = os.environ.get("SOLO_LEARN_CHECKOUT")
    out = tmp_path / "out"
    out.mkdir()
    launcher = [f"hydra.sweep.dir={tmp_path}/multirun", "hydra.launcher.partition=local",
                "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=4", "hydra.launcher.timeout_min=20"]
    grid = ["method=dhel,kcl", "optimizer.batch_size=16,32"]
    if checkout:
        script = os.path.join(checkout, "main_pretrain.py")
        # Hydra's options before -m: overrides after options after an override are refused
        options = ["--config-path", os.path.join(CONFIGS, "pretrain", "digits"), "--config-name", "dhel.yaml"]
        args = [*grid,
                f"data.train_path={digits_root}/train", f"data.val_path={digits_root}/val",
                f"checkpoint.dir={out}", "max_epochs=1", "+limit_train_batches=2", "+limit_val_batches=1",
                "devices='1'", "name='${method}-b${optimizer.batch_size}'"]
    else:
        script = tmp_path / "main_pretrain.py"
        script.write_text(HYDRA_STAND_IN)
        options, args = [], ["+method=dhel,kcl", "+optimizer.batch_size=16,32", f"+out={out}"]
    run = subprocess.run([sys.executable, "-m", "solo_plugins.commands.run_solo_script", str(script), *options, "-m",
                          "hydra/launcher=submitit_slurm", *args, *launcher],
                         cwd=tmp_path, capture_output=True, text=True, timeout=1500)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    names = [f"{m}-b{b}" for m in ("dhel", "kcl") for b in (16, 32)]
    if checkout:
        for name in names:  # solo's checkpointer: <dir>/<method>/<version>/<name>-<version>-ep=0.ckpt
            (ckpt,) = glob.glob(str(out / name.split("-")[0] / "*" / f"{name}-*ep=0.ckpt"))
            assert torch.load(ckpt, weights_only=False)["global_step"] == 2
        return
    found = {name: (out / f"{name}.txt").read_text().split() for name in names}
    assert [found[n][0] for n in names] == ["DHEL", "DHEL", "KCL", "KCL"]
    assert len({found[n][1] for n in names}) == 4  # four jobs


# A converged-stage group shrunk to 2 runs of 2,000 steps: the study's own settings otherwise.
SHRUNKEN_GROUP = ["seeds=[0]", "threads=1", "checkpoint_minutes=600", "criterion.window=1000",
                  "settings=[{stage: converged, mixing_layers: 2, methods: [infonce, dhel], "
                  "batches: [{batch_size: 4, min_steps: 1000, max_steps: 2000}]}]"]


def _study(out, extra=()):
    args = [sys.executable, "-m", "solo_plugins.commands.identifiability", "--config-name",
            "identifiability_converged.yaml", f"out_dir={out}", *SHRUNKEN_GROUP, "slurm.mem_gb=4", *extra]
    return subprocess.run(args, cwd=os.path.dirname(out), capture_output=True, text=True, timeout=900)


def _study_rows(out):
    with open(os.path.join(out, "results.csv")) as f:
        return {(r["method"], r["seed"]): r for r in csv.DictReader(f)}


def test_a_study_dry_run_prints_the_array_of_its_groups_and_submits_nothing(tmp_path):
    before = _queue()
    run = _study(str(tmp_path / "dry"), ["launcher=slurm", "dry_run=true"])
    assert run.returncode == 0, run.stderr[-3000:]
    assert "#SBATCH --array=0-0" in run.stdout and "#SBATCH --cpus-per-task=1" in run.stdout  # from threads
    assert "1 tasks in 1 array(s) would be submitted; nothing was" in run.stdout and _queue() == before
    bad = _study(str(tmp_path / "bad"), ["launcher=slurm", "threads=2", "slurm.cpus_per_task=1"])
    assert bad.returncode != 0 and "threads=2 but slurm.cpus_per_task=1" in bad.stderr


def test_a_converged_group_through_slurm_gives_the_rows_of_the_local_launcher(tmp_path):
    on_slurm = _study(str(tmp_path / "slurm"), ["launcher=slurm"])
    assert on_slurm.returncode == 0, on_slurm.stdout[-3000:] + on_slurm.stderr[-3000:]
    assert on_slurm.stdout.count("submitted converged-b4-defaults: job") == 1
    here = _study(str(tmp_path / "local"))
    assert here.returncode == 0, here.stderr[-3000:]
    a, b = _study_rows(tmp_path / "slurm"), _study_rows(tmp_path / "local")
    assert a.keys() == b.keys() == {("infonce", "0"), ("dhel", "0")}
    for key, row in b.items():
        for column in set(row) - {"seconds", "commit", "version"}:
            assert a[key][column] == row[column], (key, column)
    log = open(tmp_path / "slurm" / "groups" / "converged-b4-defaults" / "log.txt").read()
    assert "step 2000: 0 training, 2 stopped" in log
    again = _study(str(tmp_path / "slurm"), ["launcher=slurm"])
    assert again.returncode == 0 and "submitted" not in again.stdout  # only missing groups are submitted


@pytest.mark.parametrize("config, tasks", [("finite_batch_optimum.yaml", 5), ("identifiability.yaml", 1)])
def test_the_other_studies_send_their_tasks_to_slurm_too(tmp_path, config, tasks):
    """The finite-batch optimum (a task per latent dimension) and the 1,000-step study (a job
    per stage, each waiting for the one before it)."""
    before = _queue()
    run = subprocess.run([sys.executable, "-m", "solo_plugins.commands.identifiability", "--config-name", config,
                          f"out_dir={tmp_path / 'dry'}", "launcher=slurm", "dry_run=true"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"dry run: {tasks} tasks in 1 array(s) would be submitted; nothing was" in run.stdout
    assert _queue() == before
