"""The launchers without a cluster: settings checked before anything runs, a run's row and
log in its own folder, one array per distinct set of resources, the sbatch script of a dry
run (submitit builds it; nothing is submitted)."""

import builtins
import json
import os
import shutil

import pytest

from solo_plugins.launch import LaunchError, SlurmLauncher, Task, check_launcher, execute, read_row


# submitit builds its sbatch scripts only where srun is installed (a login node)
needs_srun = pytest.mark.skipif(shutil.which("srun") is None, reason="submitit's SLURM executor needs srun on PATH")


def _row(value):
    os.write(1, f"working on {value}\n".encode())  # file descriptor 1 (pytest holds sys.stdout itself)
    return {"method": "m", "value": value}


def test_bad_launch_settings_are_named_with_the_accepted_values(monkeypatch):
    with pytest.raises(LaunchError, match="launcher must be one of local, slurm; got 'pbs'"):
        check_launcher("pbs", {})
    with pytest.raises(LaunchError, match=r"slurm: unknown keys \['partiton'\]; accepted: partition, account"):
        check_launcher("slurm", {"partiton": "gpu"})
    real_import = builtins.__import__

    def no_submitit(name, *args, **kwargs):
        if name == "submitit":
            raise ImportError("No module named 'submitit'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_submitit)
    with pytest.raises(LaunchError, match=r"pip install 'solo-plugins\[slurm\]'"):
        check_launcher("slurm", {"partition": "gpu"})
    check_launcher("local", {"partition": "gpu"})  # the slurm keys are only read by the slurm launcher


def test_a_run_leaves_its_row_and_its_log_in_its_folder(tmp_path):
    folder = tmp_path / "runs" / "a"
    row = execute(Task("a", str(folder), _row, (3,)))
    assert row == {"method": "m", "value": 3} == read_row(str(folder))
    assert "working on 3" in (folder / "log.txt").read_text()
    assert [p.name for p in folder.iterdir() if p.name.startswith(".row-")] == []  # no temporary file left
    (folder / "row.json").write_text("{ garbled")
    assert read_row(str(folder)) is None


@needs_srun
def test_one_array_per_set_of_resources_and_a_dry_run_script(tmp_path):
    pytest.importorskip("submitit")
    tasks = [Task("a", "a", _row), Task("b", "b", _row), Task("c", "c", _row, devices=2)]
    launcher = SlurmLauncher(str(tmp_path / "slurm"), {"partition": "gpu", "account": "lab", "gpus_per_node": 2,
                                                      "timeout_min": 30, "additional_parameters": {"mail-type": "END"}})
    assert {k: [t.run_id for t in v] for k, v in launcher.groups(tasks).items()} == {(1, 1, 0): ["a", "b"],
                                                                                     (2, 1, 0): ["c"]}
    one, two = launcher.sbatch_scripts(tasks)
    for line in ("#SBATCH --partition=gpu", "#SBATCH --account=lab", "#SBATCH --gpus-per-node=2",
                 "#SBATCH --time=30", "#SBATCH --mail-type=END"):
        assert line in one and line in two
    assert "#SBATCH --array=0-1" in one and "#SBATCH --ntasks-per-node=1" in one
    assert "#SBATCH --ntasks-per-node=2" in two
    assert not (tmp_path / "slurm" / "submissions.json").exists()
    json.dumps(launcher.parameters(1, 1))  # plain values only


@needs_srun
def test_a_run_on_gpus_asks_for_them_unless_the_config_says_how_many(tmp_path):
    pytest.importorskip("submitit")
    gpus = [Task("g", "g", _row, devices=4, nodes=2, gpus=4)]
    (script,) = SlurmLauncher(str(tmp_path / "a"), {}).sbatch_scripts(gpus)
    assert "#SBATCH --gpus-per-node=4" in script and "#SBATCH --ntasks-per-node=4" in script
    assert "#SBATCH --nodes=2" in script
    (script,) = SlurmLauncher(str(tmp_path / "b"), {"gpus_per_node": 8}).sbatch_scripts(gpus)
    assert "#SBATCH --gpus-per-node=8" in script


def test_only_the_first_process_of_a_run_writes_its_row(tmp_path, monkeypatch):
    folder = tmp_path / "run"
    monkeypatch.setenv("SLURM_PROCID", "1")
    assert execute(Task("r", str(folder), _other_ranks_return_none, (3,), devices=2)) is None
    assert read_row(str(folder)) is None
    monkeypatch.setenv("SLURM_PROCID", "0")
    assert execute(Task("r", str(folder), _other_ranks_return_none, (3,), devices=2)) == {"value": 3}
    assert read_row(str(folder)) == {"value": 3}


def _other_ranks_return_none(value):
    from solo_plugins.launch import task_rank

    return {"value": value} if task_rank() == 0 else None


def _fails(value):
    raise RuntimeError(f"run {value} failed")


def test_the_engine_runs_a_plan_here_in_order_and_hands_each_row_on(tmp_path):
    from solo_plugins.engine import Launch, execute_plan

    tasks = [Task(f"t{k}", str(tmp_path / f"t{k}"), _row, (k,)) for k in range(3)]
    landed = []
    assert execute_plan(tasks, Launch(), str(tmp_path), on_row=lambda t, r: landed.append((t.run_id, r["value"])))
    assert landed == [("t0", 0), ("t1", 1), ("t2", 2)]
    assert [read_row(t.folder)["value"] for t in tasks] == [0, 1, 2]
    # a study's groups run in this process through its own function, with the same plan
    here = []
    execute_plan(tasks[:1], Launch(), str(tmp_path), run_here=lambda t: here.append(t.run_id))
    assert here == ["t0"]
    with pytest.raises(RuntimeError, match="run 7 failed"):  # locally a failing run stops the plan
        execute_plan([Task("bad", str(tmp_path / "bad"), _fails, (7,))], Launch(), str(tmp_path))
    several = Task("ddp", str(tmp_path / "ddp"), _row, (0,), devices=2)
    with pytest.raises(LaunchError, match="launcher=local runs one process; ddp train on several devices"):
        execute_plan([several], Launch(), str(tmp_path))


def test_a_local_dry_run_or_status_lists_the_plan_and_runs_nothing(tmp_path):
    from solo_plugins.engine import Launch, execute_plan

    tasks = [Task(f"t{k}", str(tmp_path / f"t{k}"), _fails, (k,)) for k in range(2)]
    said = []
    assert not execute_plan(tasks, Launch(dry_run=True), str(tmp_path), progress=said.append)
    assert said == ["t0: would run here", "t1: would run here", "dry run: 2 tasks would run in this process; nothing ran"]
    said.clear()
    assert not execute_plan(tasks[1:], Launch(action="status"), str(tmp_path), finished=["t0"], progress=said.append)
    assert said == ["t0: row collected", "t1: not run"]
    assert execute_plan(tasks, Launch(action="collect"), str(tmp_path), progress=said.append)  # collect: no run
    assert not any(os.path.exists(t.folder) for t in tasks)


@pytest.mark.parametrize("cfg, match", [
    ({"launcher": "pbs"}, "launcher must be one of local, slurm"),
    ({"action": "cancel"}, "action must be one of run, status, collect; got 'cancel'"),
    ({"launcher": "slurm", "threads": 4, "slurm": {"cpus_per_task": 2}}, "threads=4 but slurm.cpus_per_task=2"),
])
def test_a_config_s_launch_settings_are_checked_before_anything_runs(cfg, match):
    from solo_plugins.engine import Launch

    with pytest.raises(LaunchError, match=match):
        Launch.from_config(cfg)


def test_a_study_s_threads_give_its_tasks_cpus_unless_slurm_says_otherwise():
    from solo_plugins.engine import Launch

    assert Launch.from_config({"launcher": "slurm", "threads": 2}).slurm_parameters(2)["cpus_per_task"] == 2
    assert Launch.from_config({"launcher": "slurm", "threads": 2, "slurm": {"cpus_per_task": 4}}) \
        .slurm_parameters(2)["cpus_per_task"] == 4
