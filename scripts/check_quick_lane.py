"""The quick lane, and its coverage check: runs ``pytest -n 2 --dist loadfile -m "not slow"``
under coverage (its two xdist workers and the tests' subprocesses too) and checks that every
module of the package is called by at least one of its tests, not only imported. Prints the
lane's wall time.

    python3 scripts/check_quick_lane.py            # the lane, then the check
    python3 scripts/check_quick_lane.py --report quick.json   # only the check, on a JSON report

A module counts as called when a line inside one of its functions ran (a package's
``__init__`` or a module with no functions: when it was imported). Subprocesses count
(``.coveragerc``: ``patch = subprocess``). Prints the modules that were not, and exits 1 if any.
"""

import argparse
import ast
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(REPO, "solo_plugins")
RCFILE = os.path.join(REPO, ".coveragerc")


def function_lines(path: str) -> set:
    """Lines of the statements inside the module's functions and methods."""
    lines = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for statement in node.body:
                lines.update(range(statement.lineno, (statement.end_lineno or statement.lineno) + 1))
    return lines


def uncalled(report: dict) -> list:
    executed = {os.path.realpath(os.path.join(REPO, path)): set(data["executed_lines"])
                for path, data in report["files"].items()}
    out = []
    for folder, _, names in os.walk(PACKAGE):
        for name in sorted(names):
            if not name.endswith(".py"):
                continue
            path = os.path.realpath(os.path.join(folder, name))
            ran = executed.get(path, set())
            inside = function_lines(path)
            package = name == "__init__.py"  # a package's __init__ is called by being imported
            statements = report["files"].get(os.path.relpath(path, REPO), {}).get("summary", {}).get("num_statements")
            if statements == 0:  # a docstring alone: nothing to call
                continue
            if not (ran & inside if inside and not package else ran):
                out.append(os.path.relpath(path, REPO))
    return sorted(out)


def run_lane(folder: str) -> str:
    """Runs the quick lane under coverage; returns the JSON report's path."""
    env = dict(os.environ, SOLO_PLUGINS_COVERAGE_DIR=folder)
    start = time.time()
    lane = subprocess.run([sys.executable, "-m", "coverage", "run", f"--rcfile={RCFILE}", "-m", "pytest", "-q",
                           "-n", "2", "--dist", "loadfile", "-m", "not slow", "-p", "no:cacheprovider",
                           os.path.join(REPO, "tests")],
                          cwd=REPO, env=env)
    print(f"quick lane: {time.time() - start:.0f} s wall, exit {lane.returncode}", flush=True)
    if lane.returncode:
        sys.exit(lane.returncode)
    subprocess.run([sys.executable, "-m", "coverage", "combine", "-q", f"--rcfile={RCFILE}", folder],
                   cwd=REPO, env=env, check=True)
    report = os.path.join(folder, "quick.json")
    subprocess.run([sys.executable, "-m", "coverage", "json", "-q", f"--rcfile={RCFILE}", "-o", report],
                   cwd=REPO, env=env, check=True)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--report", help="check this coverage JSON report instead of running the lane")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = args.report or run_lane(folder)
        with open(path) as f:
            missing = uncalled(json.load(f))
    if missing:
        print(f"{len(missing)} modules no quick-lane test calls:\n  " + "\n  ".join(missing))
        sys.exit(1)
    print("every module of solo_plugins is called by a quick-lane test")


if __name__ == "__main__":
    main()
