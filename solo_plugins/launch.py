"""Where runs execute: in this process (``launcher: local``), or as SLURM job arrays through
submitit (``launcher: slurm``), one array per distinct set of resources.

A run is a :class:`Task`: its id, its folder, a module-level function and its (picklable)
arguments. Executing it runs the function with the run's full output in ``<folder>/log.txt``
and writes what it returns, the run's row, to ``<folder>/row.json`` atomically, so that many
jobs never write one shared file; collecting reads the row files. Launchers know nothing of
losses or studies, and no study knows SLURM.
"""

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from solo_plugins.analysis.results import ROW_FILE, write_json
from solo_plugins.console import run_log

SUBMISSIONS = "submissions.json"

#: the sweep's ``slurm.*`` keys -> submitit's AutoExecutor parameters
SLURM_KEYS = {
    "partition": "slurm_partition",
    "account": "slurm_account",
    "qos": "slurm_qos",
    "gpus_per_node": "gpus_per_node",
    "cpus_per_task": "cpus_per_task",
    "mem_gb": "mem_gb",
    "timeout_min": "timeout_min",
    "constraint": "slurm_constraint",
    "array_parallelism": "slurm_array_parallelism",
    "max_requeue": None,  # submitit's max_num_timeout, given to the executor itself
    "additional_parameters": "slurm_additional_parameters",
}
LAUNCHERS = ("local", "slurm")


class LaunchError(ValueError):
    pass


def check_launcher(launcher: str, slurm: Optional[Dict]) -> None:
    """Errors naming the setting and the accepted values, before anything runs."""
    if launcher not in LAUNCHERS:
        raise LaunchError(f"launcher must be one of {', '.join(LAUNCHERS)}; got {launcher!r}")
    unknown = sorted(set(slurm or {}) - set(SLURM_KEYS))
    if unknown:
        raise LaunchError(f"slurm: unknown keys {unknown}; accepted: {', '.join(SLURM_KEYS)}")
    if launcher == "slurm":
        try:
            import submitit  # noqa: F401
        except ImportError as error:
            raise LaunchError("launcher=slurm needs submitit: pip install 'solo-plugins[slurm]' "
                              "(or pip install submitit)") from error


@dataclass(frozen=True)
class Task:
    run_id: str
    folder: str
    function: Callable
    args: Tuple = ()
    devices: int = 1  # processes per node: one SLURM task each
    nodes: int = 1
    gpus: int = 0  # GPUs per node the run trains on
    threads: Optional[int] = None  # torch threads inside the run, whichever the launcher

    @property
    def resources(self) -> Tuple[int, int, int]:
        return self.devices, self.nodes, self.gpus

    @property
    def processes(self) -> int:
        return self.devices * self.nodes


def task_rank() -> int:
    """This process's rank among a run's processes (SLURM's task id under srun; 0 alone)."""
    return int(os.environ.get("SLURM_PROCID", "0"))


def write_row(folder: str, row: Dict) -> None:
    """The run's row in its folder, written durably (fsync, then a rename)."""
    write_json(os.path.join(folder, ROW_FILE), row)


def read_row(folder: str) -> Optional[Dict]:
    try:
        with open(os.path.join(folder, ROW_FILE)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def execute(task: Task, echo: bool = False) -> Optional[Dict]:
    """Runs ``task`` here: its output in its folder's log, its row in its folder's row file.
    In a run of several processes every one calls this and only the first returns a row."""
    if task.threads:
        import torch

        torch.set_num_threads(int(task.threads))
    with run_log(os.path.join(task.folder, "log.txt"), echo=echo):
        row = task.function(*task.args)
    if row is not None:
        write_row(task.folder, row)
    return row


# ------------------------------------------------------------------------------ SLURM


class Requeueable:
    """:func:`execute` as a SLURM job calls it. On SLURM's warning signal submitit calls
    :meth:`checkpoint` (after the run has saved its state: :mod:`solo_plugins.callbacks.requeue`)
    and requeues the job with what it returns: the same task, which resumes from that state.
    Time limits count against ``slurm.max_requeue``, preemptions do not (submitit tells them
    apart by the time the job has run); a run that raises is not requeued."""

    def __call__(self, task: Task) -> Optional[Dict]:
        return execute(task)

    def checkpoint(self, task: Task):
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self, task)


@dataclass
class Failure:
    run_id: str
    job_id: str
    state: str
    stderr_tail: str


@dataclass
class Submission:
    """Job ids per run, kept in ``<folder>/submissions.json`` so that status and collect
    can find the jobs later."""

    folder: str
    jobs: Dict[str, str] = field(default_factory=dict)  # run id -> job id

    @classmethod
    def load(cls, folder: str) -> "Submission":
        try:
            with open(os.path.join(folder, SUBMISSIONS)) as f:
                return cls(folder, json.load(f))
        except (OSError, ValueError):
            return cls(folder)

    def save(self) -> None:
        os.makedirs(self.folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".submissions-")
        with os.fdopen(fd, "w") as f:
            json.dump(self.jobs, f, indent=1, sort_keys=True)
        os.replace(tmp, os.path.join(self.folder, SUBMISSIONS))


ACTIVE_STATES = ("PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "SUSPENDED", "RESIZING")


class SlurmLauncher:
    """Job arrays through submitit; its logs and pickles in ``folder`` (``<out_dir>/slurm``)."""

    def __init__(self, folder: str, slurm: Optional[Dict] = None):
        self.folder = os.path.abspath(folder)
        self.slurm = dict(slurm or {})

    def parameters(self, devices: int, nodes: int, gpus: int = 0) -> Dict:
        """One task per device, started under srun by submitit, so that Lightning's
        SLURMEnvironment gives each its rank; the GPUs a run trains on unless
        ``slurm.gpus_per_node`` says otherwise."""
        params = {SLURM_KEYS[k]: v for k, v in self.slurm.items() if v is not None and SLURM_KEYS[k]}
        params.update(nodes=nodes, tasks_per_node=devices)
        if gpus and params.get("gpus_per_node") is None:
            params["gpus_per_node"] = gpus
        return params

    def executor(self, devices: int, nodes: int, gpus: int = 0):
        import submitit

        requeue = self.slurm.get("max_requeue")
        executor = submitit.AutoExecutor(folder=os.path.join(self.folder, "%j"), cluster="slurm",
                                         slurm_max_num_timeout=3 if requeue is None else int(requeue))
        executor.update_parameters(name="solo-plugins", **self.parameters(devices, nodes, gpus))
        return executor

    @staticmethod
    def groups(tasks: Sequence[Task]) -> Dict[Tuple[int, int, int], List[Task]]:
        out: Dict[Tuple[int, int, int], List[Task]] = {}
        for task in tasks:
            out.setdefault(task.resources, []).append(task)
        return out

    def sbatch_scripts(self, tasks: Sequence[Task]) -> List[str]:
        """The sbatch script of each array that :meth:`submit` would send (one per distinct
        set of resources); nothing is submitted."""
        scripts = []
        for resources, group in self.groups(tasks).items():
            inner = self.executor(*resources)._executor
            inner.parameters["map_count"] = len(group)
            scripts.append(inner._make_submission_file_text(
                "python -u -m submitit.core._submit '%s'" % os.path.join(self.folder, "%j"), "dry-run"))
        return scripts

    def submit(self, tasks: Sequence[Task], submission: Submission) -> Dict[str, object]:
        """One array per set of resources; a refused submission (an unknown partition or
        account: sbatch's own message) stops before the next array is sent."""
        from submitit.core.utils import FailedJobError

        jobs = {}
        for resources, group in self.groups(tasks).items():
            executor = self.executor(*resources)
            try:
                submitted = executor.map_array(Requeueable(), group)
            except FailedJobError as error:
                sent = f"{len(jobs)} runs of earlier arrays were submitted" if jobs else "nothing was submitted"
                raise LaunchError(f"sbatch refused the array of {len(group)} runs ({group[0].run_id}, ...); "
                                  f"{sent}. sbatch said:\n{error}") from error
            for task, job in zip(group, submitted):
                jobs[task.run_id] = job
                submission.jobs[task.run_id] = str(job.job_id)
            submission.save()
        return jobs

    def job(self, job_id: str):
        import submitit

        return submitit.SlurmJob(folder=os.path.join(self.folder, "%j"), job_id=job_id)

    def states(self, submission: Submission) -> Dict[str, str]:
        return {run_id: self.job(job_id).state for run_id, job_id in submission.jobs.items()}

    def wait(self, jobs: Dict[str, object]) -> List[Failure]:
        failures = []
        for run_id, job in jobs.items():
            try:
                job.results()  # one per task: a run of several processes is one job of several tasks
            except Exception:  # the job's own exception or a SLURM failure: reported, not raised
                failures.append(self.failure(run_id, job))
        return failures

    @staticmethod
    def final_state(job, seconds: float = 60.0) -> str:
        """The job's state once SLURM has left its active states (a failed job's result is
        known to submitit a moment before SLURM's accounting says so)."""
        deadline = time.time() + seconds
        while True:
            state = job.get_info(mode="force").get("State", "UNKNOWN") if hasattr(job, "get_info") else job.state
            if state not in ACTIVE_STATES or time.time() > deadline:
                return state
            time.sleep(1)

    def failure(self, run_id: str, job) -> Failure:
        stderr = ""
        try:
            stderr = job.stderr() or ""
        except Exception:
            pass
        return Failure(run_id, str(job.job_id), self.final_state(job), "\n".join(stderr.strip().splitlines()[-8:]))
