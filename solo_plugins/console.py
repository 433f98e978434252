"""What the commands print: a line per finished run and the results, with each run's full
output (Lightning's progress bars and model summaries, solo-learn's logging, warnings) kept in
its folder's ``log.txt`` instead of on the console.

The warnings filtered here are the libraries' own, which a user of this package cannot act
on; each filter names its message and category, never all warnings.
"""

import contextlib
import logging
import os
import sys
import threading
import warnings
from typing import Iterator

#: (message regex, category, module regex) of import-time warnings of the libraries underneath
IMPORT_WARNINGS = (
    (r"pkg_resources is deprecated as an API", UserWarning, r"lightning\.fabric"),
    (r"Importing from timm\.\w+(\.\w+)* is deprecated", FutureWarning, r"timm\."),
    (r"Overwriting \w+ in registry with solo\.backbones\.", UserWarning, r"solo\.backbones\."),
    (r"`torch\.cuda\.amp\.custom_fwd\(args\.\.\.\)` is deprecated", FutureWarning, r"solo\.utils\.whitening"),
)

#: run-time warnings of lightning 2.1 / torch on a CPU, which the user cannot act on
RUN_WARNINGS = (
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated", Warning, r"lightning\.pytorch\.utilities\._pytree"),
    (r"'pin_memory' argument is set as true but no accelerator is found", UserWarning, r"torch\.utils\.data"),
)


@contextlib.contextmanager
def quiet_imports() -> Iterator[None]:
    """Imports inside it do not print the libraries' import-time warnings listed above."""
    with warnings.catch_warnings():
        quiet_import_warnings()
        yield


def quiet_import_warnings() -> None:
    """The filters of :func:`quiet_imports` for the rest of the process. The commands set them
    (``solo_plugins.commands`` does, on import): solo-learn and lightning are imported by
    whichever module needs them first, no longer inside ``import solo_plugins``."""
    for message, category, module in IMPORT_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)


class _NotMessage(logging.Filter):
    def __init__(self, text: str):
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def quiet_run_warnings() -> None:
    """Filters the run-time warnings listed above, for the rest of the process (the commands
    call it; the package's import does not)."""
    for message, category, module in RUN_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
    # solo-learn logs this for every schedule stepped per batch, which the shipped configs use
    # on purpose (warm-up within an epoch); resuming is tested (auto-resume).
    root = logging.getLogger()
    if not any(isinstance(f, _NotMessage) for f in root.filters):  # once per process
        root.addFilter(_NotMessage("Using scheduler_interval=step might generate issues"))


@contextlib.contextmanager
def run_log(path: str, echo: bool = False) -> Iterator[None]:
    """Sends everything written to this process's stdout and stderr (file descriptors 1 and 2,
    so child processes and C code too) to ``path`` (appended); with ``echo`` also to the
    console. Restores both on exit, also on an exception."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    log = open(path, "ab")
    saved = os.dup(1), os.dup(2)
    reader = writer = copier = None
    if echo:
        reader, writer = os.pipe()

        def copy():
            while True:
                chunk = os.read(reader, 65536)
                if not chunk:
                    return
                log.write(chunk)
                log.flush()
                os.write(saved[0], chunk)

        copier = threading.Thread(target=copy, daemon=True)
        copier.start()
    target = writer if echo else log.fileno()
    os.dup2(target, 1)
    os.dup2(target, 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        if echo:
            os.close(writer)
            copier.join()
            os.close(reader)
        for fd in saved:
            os.close(fd)
        log.close()
