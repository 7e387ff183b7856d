"""Preemption: SIGTERM or SIGUSR1 asks the run to save and stop at the next step boundary.

Cluster schedulers announce the end of a job with a signal (Slurm sends SIGTERM, or the signal
``--signal=USR1@90`` names, some time before it kills the job). Stopping in the signal handler
would leave a half-finished step; the handler only raises a flag, and the loop, between two
optimizer steps, saves a resume file and returns, so the process exits with status 0 and the
next job continues where this one stopped (``trainer.resume=true``).
"""

from __future__ import annotations

import shlex
import signal
import threading

from asr import distributed

SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGUSR1") if hasattr(signal, name))


class PreemptionFlag:
    """``with PreemptionFlag() as flag:`` handles the signals inside; ``flag.signal`` is the
    name of the one received, or None. Outside the main thread (where Python cannot install
    handlers) the flag never rises."""

    def __init__(self) -> None:
        self.signal: str | None = None
        self._previous: dict = {}

    def __enter__(self) -> PreemptionFlag:
        if threading.current_thread() is threading.main_thread():
            for number in SIGNALS:
                self._previous[number] = signal.signal(number, self._raise)
        return self

    def __exit__(self, *exc) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()

    def _raise(self, number, frame) -> None:
        self.signal = signal.Signals(number).name


def resume_command(exp_dir: str, context: distributed.Context) -> str:
    """The command that continues this run: its own overrides plus ``trainer.resume=true``."""
    try:
        from hydra.core.hydra_config import HydraConfig

        overrides = list(HydraConfig.get().overrides.task)
    except ValueError:  # not started by Hydra (asr.training.train called from Python)
        overrides = [f"exp_dir={exp_dir}"]
    kept = [o for o in overrides if not o.startswith(("trainer.resume=", "hydra.run.dir="))]
    arguments = [*kept, f"hydra.run.dir={exp_dir}", "trainer.resume=true"]
    if distributed.under_torchrun():
        program = f"torchrun --nproc_per_node={context.world_size} -m asr.train"
    else:
        program = "asr train"
    return " ".join([program, *map(shlex.quote, arguments)])
