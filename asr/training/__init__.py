"""The training loop behind ``asr train``, in pieces a reader can take one at a time.

- :mod:`asr.training.datasets`: vocabulary, filtered train/dev sets, loader, normalisation fit
- :mod:`asr.training.loop`: :class:`Trainer` (set up; per epoch: batches → updates)
- :mod:`asr.training.update`: one optimizer update from its batches, or a counted skip
- :mod:`asr.training.bookkeeping`: step logs, the dev pass at an epoch's end, when to save
- :mod:`asr.training.dev`: the dev pass, decoded and scored as ``asr evaluate`` does
- :mod:`asr.training.state`: the run's position, resuming, and the checkpoint files
- :mod:`asr.training.random_state`, :mod:`asr.training.preemption`,
  :mod:`asr.training.run_info`: every RNG state, SIGTERM/SIGUSR1, the run's ``run.json``

The LR schedule is :mod:`asr.schedule`; the config schemas :mod:`asr.config`.
"""

from asr.training.loop import Trainer, train

__all__ = ["Trainer", "train"]
