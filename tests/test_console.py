"""The console helpers: a run's output (Python, C and child processes alike) goes to its log
file and, with echo, to the console too; the console comes back after an exception; the
package's import prints none of the libraries' import-time warnings."""

import os
import subprocess
import sys

import pytest

SCRIPT = r"""
import os, subprocess, sys
from solo_plugins.console import run_log
print("before", flush=True)
try:
    with run_log(sys.argv[1], echo=sys.argv[2] == "echo"):
        print("python line", flush=True)
        print("stderr line", file=sys.stderr, flush=True)
        os.write(1, b"fd line\n")
        subprocess.run([sys.executable, "-c", "print('child line')"], check=True)
        raise RuntimeError("boom")
except RuntimeError:
    pass
print("after", flush=True)
"""


@pytest.mark.parametrize("echo", [False, True])
def test_run_log_keeps_every_line_and_restores_the_console(tmp_path, echo):
    log = tmp_path / "run" / "log.txt"
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(log), "echo" if echo else "quiet"], capture_output=True,
                         text=True, timeout=120, check=True)
    kept = log.read_text()
    for line in ("python line", "stderr line", "fd line", "child line"):
        assert line in kept
        assert (line in out.stdout + out.stderr) == echo
    assert out.stdout.splitlines()[0] == "before" and out.stdout.splitlines()[-1] == "after"


def test_importing_the_package_prints_no_warning():
    pytest.importorskip("solo.methods")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    out = subprocess.run([sys.executable, "-c", "import solo_plugins"], capture_output=True, text=True, timeout=300,
                         env=env, check=True)
    assert out.stdout == "" and out.stderr == "", out.stderr[-2000:]
