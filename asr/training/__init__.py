"""The training loop behind ``asr train``, in pieces a reader can take one at a time.

- :mod:`asr.training.datasets`: vocabulary, filtered train/dev sets, loader, normalisation fit
- :mod:`asr.training.loop`: :class:`Trainer` (set up; per epoch: train, dev pass, checkpoints)
- :mod:`asr.training.dev`: the dev pass, decoded and scored as ``asr evaluate`` does
- :mod:`asr.training.state`: the run's position, resuming, and the checkpoint files

The LR schedule is :mod:`asr.schedule`; the config schemas :mod:`asr.config`.
"""

from asr.training.loop import Trainer, train

__all__ = ["Trainer", "train"]
