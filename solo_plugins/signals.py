"""SLURM's warning signal, held until a run can save its state (the latent-recovery groups
poll it between data chunks; :class:`~solo_plugins.callbacks.requeue.RequeueOnSignal` between
Lightning steps). Standard library only."""

import signal
from typing import Callable, Optional

WARNING_SIGNAL = signal.SIGUSR2  # what submitit's sbatch scripts ask for (--signal=USR2@90)


class DeferredSignal:
    """SLURM's warning signal held until the run can save its state. Inside a job whose handler
    for ``signum`` is installed (submitit's: it requeues the job and exits), the signal only
    sets a flag that the run polls with :meth:`requested` at the points where its state is
    whole; after saving there it calls :meth:`hand_on`, which runs that handler. Outside such a
    job (no callable handler) it does nothing and :meth:`requested` stays False.

    >>> with DeferredSignal() as warning:
    ...     for step in range(3):
    ...         if warning.requested():  # save the state here, then:
    ...             warning.hand_on()
    """

    def __init__(self, signum: int = WARNING_SIGNAL):
        self.signum = signum
        self.previous: Optional[Callable] = None
        self.received = False

    def __enter__(self) -> "DeferredSignal":
        handler = signal.getsignal(self.signum)
        if callable(handler):
            self.previous = handler
            signal.signal(self.signum, self._record)
        return self

    def _record(self, signum, frame) -> None:
        self.received = True

    def requested(self) -> bool:
        return self.received and self.previous is not None

    def hand_on(self) -> None:
        handler, self.previous = self.previous, None
        signal.signal(self.signum, handler)
        handler(self.signum, None)

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(self.signum, self.previous)
            self.previous = None
