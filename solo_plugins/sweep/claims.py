"""A run's folder belongs to one config: the first process of a run claims it (writing the
config's id, setting aside what another config left there); the others wait for that claim
before they resume anything from it."""

import os
import shutil
import time
from typing import Optional

from solo_plugins.sweep.plan import Run


CONFIG_ID_FILE = "config_id"


def claim_folder(folder: str, run: Run) -> None:
    """Makes ``folder`` the run's: what an earlier run of another config left there
    (checkpoints, row, log) moves to ``stale-<its id>/``, so that auto-resume cannot continue it."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, CONFIG_ID_FILE)
    try:
        with open(path) as f:
            old = f.read().strip()
    except OSError:
        old = None
    if old == run.config_id:
        return
    if old is not None:
        stale = os.path.join(folder, f"stale-{old}")
        os.makedirs(stale, exist_ok=True)
        for name in os.listdir(folder):
            if not name.startswith("stale-") and name != "log.txt":
                shutil.move(os.path.join(folder, name), os.path.join(stale, name))
        print(f"{run.run_id}: its config changed ({old} -> {run.config_id}); the earlier run moved to {stale}")
    with open(path, "w") as f:
        f.write(run.config_id + "\n")


CLAIM_WAIT_S = 300.0


def wait_for_claim(folder: str, config_id: str, timeout: Optional[float] = None) -> None:
    """Waits until the first process of the run has claimed ``folder`` for ``config_id``;
    raises if it has not within ``timeout`` (default CLAIM_WAIT_S) seconds, rather than
    going on to resume from a folder that may still hold another config's checkpoints."""
    timeout = CLAIM_WAIT_S if timeout is None else timeout
    deadline = time.time() + timeout
    while (found := _claimed(folder)) != config_id:
        if time.time() >= deadline:
            raise RuntimeError(
                f"{folder}: the run's first process (task rank 0) did not claim this folder for config "
                f"{config_id} within {timeout:.0f} s (found {found or 'no claim'} in {CONFIG_ID_FILE}); "
                f"this process stops instead of resuming from it. Check that rank 0 started and can "
                f"write there (shared storage on every node).")
        time.sleep(0.5)


def _claimed(folder: str) -> Optional[str]:
    try:
        with open(os.path.join(folder, CONFIG_ID_FILE)) as f:
            return f.read().strip()
    except OSError:
        return None
