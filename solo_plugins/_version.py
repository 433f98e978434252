import functools

__version__ = "0.4.0"


@functools.lru_cache(maxsize=None)
def source_commit() -> str:
    """The git commit this package runs from (``+dirty`` with local changes), or "" when it
    was installed from a wheel; read once per process, when the code was loaded."""
    import os
    import subprocess

    here = os.path.dirname(os.path.abspath(__file__))
    try:
        commit = subprocess.run(["git", "-C", here, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", here, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return commit + ("+dirty" if dirty else "")
