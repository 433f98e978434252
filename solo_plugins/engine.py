"""The one run engine of the harness: plan -> execute -> collect.

A command plans :class:`~solo_plugins.launch.Task` s (a stable id, a folder, a picklable
function and its arguments: a sweep run, or a group of a latent-recovery study's stacked runs),
hands the ones it still needs to :func:`execute_plan` with the :class:`Launch` settings of its
config, and collects the rows the tasks wrote in their folders. The sweep
(:mod:`solo_plugins.commands.sweep`) and every identifiability stage use it, so that whatever
runs locally also runs as SLURM job arrays (``launcher=slurm``) with the same rows.

    launch = Launch.from_config(cfg)               # errors name the setting, before anything runs
    if execute_plan(tasks, launch, out_dir, on_row=add_to_table):
        collect_and_report()
"""

import os
from dataclasses import dataclass, field
from typing import Callable, Dict, Mapping, Optional, Sequence

from solo_plugins.launch import (
    ACTIVE_STATES,
    LaunchError,
    SlurmLauncher,
    Submission,
    Task,
    check_launcher,
    execute,
    read_row,
)

ACTIONS = ("run", "status", "collect")


@dataclass(frozen=True)
class Launch:
    """How a plan's tasks execute: the config keys ``launcher``, ``slurm.*``, ``action``,
    ``wait``, ``dry_run`` (the sweep's and the studies' configs share them) and ``verbose``."""

    launcher: str = "local"
    slurm: Dict = field(default_factory=dict)
    action: str = "run"
    wait: bool = True
    dry_run: bool = False
    echo: bool = False

    @classmethod
    def from_config(cls, cfg: Mapping) -> "Launch":
        slurm = dict(cfg.get("slurm") or {})
        launch = cls(str(cfg.get("launcher", "local")), slurm, str(cfg.get("action", "run")),
                     bool(cfg.get("wait", True)), bool(cfg.get("dry_run", False)), bool(cfg.get("verbose", False)))
        check_launcher(launch.launcher, slurm)
        if launch.action not in ACTIONS:
            raise LaunchError(f"action must be one of {', '.join(ACTIONS)}; got {launch.action!r}")
        threads, cpus = cfg.get("threads"), slurm.get("cpus_per_task")
        if launch.launcher == "slurm" and threads and cpus and int(cpus) < int(threads):
            raise LaunchError(f"threads={threads} but slurm.cpus_per_task={cpus}: a task's torch threads need as many "
                              f"CPUs (set slurm.cpus_per_task={threads}, or null to take threads)")
        return launch

    def slurm_parameters(self, threads: Optional[int]) -> Dict:
        """``slurm.*`` with ``cpus_per_task`` taken from ``threads`` where it is not given."""
        slurm = dict(self.slurm)
        if threads and not slurm.get("cpus_per_task"):
            slurm["cpus_per_task"] = int(threads)
        return slurm


def execute_plan(tasks: Sequence[Task], launch: Launch, out_dir: str, *,
                 finished: Sequence[str] = (), on_row: Callable[[Task, Optional[Dict]], None] = lambda t, r: None,
                 run_here: Optional[Callable[[Task], Optional[Dict]]] = None,
                 progress: Callable[[str], None] = print) -> bool:
    """Executes ``tasks`` (those still to run) where ``launch`` says: one after another in this
    process (by ``run_here``, default :func:`~solo_plugins.launch.execute`; ``on_row`` gets each
    task's row as it lands), or as SLURM job arrays whose state and jobs live in
    ``<out_dir>/slurm``. ``finished`` names the plan's tasks that already have their rows (for
    ``action=status``). Returns True when the caller should collect the rows and report: False
    after a dry run, ``action=status`` or ``wait=false``."""
    several = [t.run_id for t in tasks if t.processes > 1]
    if several and launch.launcher == "local":
        raise LaunchError(f"launcher=local runs one process; {', '.join(several)} train on several devices "
                          "(devices or num_nodes > 1): use launcher=slurm, which starts one task per device")
    if launch.launcher == "slurm":
        return _on_slurm(tasks, launch, out_dir, finished, progress)
    if launch.dry_run or launch.action != "run":  # nothing runs: the plan, as the SLURM launcher shows it
        if launch.action == "status":
            for run_id in finished:
                progress(f"{run_id}: row collected")
        for task in tasks:
            progress(f"{task.run_id}: {'would run here' if launch.dry_run else 'not run'}")
        if launch.dry_run:
            progress(f"dry run: {len(tasks)} tasks would run in this process; nothing ran")
        return launch.action == "collect" and not launch.dry_run
    for task in tasks:
        on_row(task, run_here(task) if run_here else execute(task, echo=launch.echo))
    return True


def _on_slurm(tasks, launch: Launch, out_dir, finished, progress) -> bool:
    threads = max((t.threads or 0 for t in tasks), default=0) or None  # a job's CPUs: its task's torch threads
    slurm = SlurmLauncher(os.path.join(out_dir, "slurm"), launch.slurm_parameters(threads))
    submission = Submission.load(slurm.folder)
    if launch.action == "status":
        states = slurm.states(submission)
        for run_id in finished:
            progress(f"{run_id}: row collected")
        for task in tasks:
            where = states.get(task.run_id, "not submitted")
            job = f" (job {submission.jobs[task.run_id]})" if task.run_id in states else ""
            progress(f"{task.run_id}: {where}{job}")
        return False
    if launch.action == "collect":
        states = slurm.states(submission)
        for task in tasks:
            if read_row(task.folder) is None and task.run_id in submission.jobs \
                    and states[task.run_id] not in ACTIVE_STATES:
                f = slurm.failure(task.run_id, slurm.job(submission.jobs[task.run_id]))
                progress(f"FAILED {f.run_id}: job {f.job_id} {f.state}\n{f.stderr_tail}")
        return True
    known = Submission(submission.folder, {t.run_id: submission.jobs[t.run_id] for t in tasks
                                           if t.run_id in submission.jobs})
    states = slurm.states(known)
    waiting = [t for t in tasks if states.get(t.run_id) in ACTIVE_STATES]
    todo = [t for t in tasks if t not in waiting]
    if waiting:
        progress(f"{len(waiting)} tasks already queued or running: not submitted again")
    if launch.dry_run:
        for script in slurm.sbatch_scripts(todo):
            progress(script)
        progress(f"dry run: {len(todo)} tasks in {len(slurm.groups(todo))} array(s) would be submitted; nothing was")
        return False
    jobs = slurm.submit(todo, submission) if todo else {}
    for run_id, job in jobs.items():
        progress(f"submitted {run_id}: job {job.job_id}")
    if not launch.wait:
        progress("not waiting: 'action=status' shows the jobs, 'action=collect' gathers the rows and writes the report")
        return False
    for f in slurm.wait({**jobs, **{t.run_id: slurm.job(known.jobs[t.run_id]) for t in waiting}}):
        progress(f"FAILED {f.run_id}: job {f.job_id} {f.state}\n{f.stderr_tail}")
    return True
