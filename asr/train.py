"""Training: ``asr train [key=value ...]`` (Hydra; ``-m`` sweeps).

Each epoch: length-bucketed batches (at most ``data.max_batch_seconds`` of padded audio, the
frame budget) → waveform augmentation → log-mel → normalisation → SpecAugment → LAS loss
(attention cross-entropy + optional CTC) → Adam with warm-up and cosine decay, one optimizer
step every ``trainer.accumulate_batches`` batches. After each epoch the dev split is decoded and
scored as ``asr evaluate`` would, an attention-alignment figure is drawn, TensorBoard scalars
are written, and ``last.pt`` (plus ``best.pt`` by dev CER, or dev PER for a phone model) is
saved; with ``trainer.keep_checkpoints=N`` the epoch's weights also go to
``checkpoints/epochNNN.pt``, of which the last N and the best N are kept for ``asr average``.
``last.pt`` is also refreshed every ``trainer.checkpoint_minutes`` inside an epoch, with the
position in the epoch, so a run killed at any moment resumes (``trainer.resume=true``) from at
most that many minutes back.

Utterances are filtered before training: transcripts the vocabulary cannot spell, durations
outside ``[data.min_duration, data.max_duration]``, and token rates outside
``[data.min_tokens_per_second, data.max_tokens_per_second]`` are skipped and counted. An empty
dev set, or one of which nothing can be decoded, is refused: its 0% error would pick epoch 1.

Features are computed on the fly from the (augmented) waveforms. ``data.feature_cache_dir``
caches the unaugmented log-mel features in files instead, computed once; waveform augmentation
cannot apply to them, so it must be off (``augment.waveform=null``); SpecAugment still applies.

Data-parallel training: ``torchrun --nproc_per_node=N -m asr.train ...`` (several machines:
torchrun's ``--nnodes``/``--rdzv_endpoint``), or ``asr train trainer.devices=N``, which starts
torchrun on this machine (asr.distributed). Resume files are written every
``trainer.checkpoint_every_steps`` updates too, atomically, the newest
``trainer.keep_last_checkpoints`` kept; SIGTERM or SIGUSR1 saves one at the next step boundary
and exits with status 0, printing the command that resumes; a non-finite loss or gradient, or an
out-of-memory batch, skips its update (counted in ``summary.json``).

The run writes to ``exp/<data>_<model>_<attention>`` unless ``hydra.run.dir`` says otherwise,
and ``run.json`` there says what produced it (config, version, git commit, environment).
The pieces: asr/training/ (the loop), asr/schedule.py (LR), asr/config.py (the config schemas).
"""

from __future__ import annotations

import signal
import subprocess
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from asr import CONF_DIR, distributed
from asr.errors import reports_user_errors
from asr.training import train
from asr.training.preemption import SIGNALS

__all__ = ["main", "train"]


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
@reports_user_errors
def main(cfg: DictConfig) -> float:
    """The best dev error, which a Hydra sweeper minimises."""
    if cfg.trainer.devices > 1 and not distributed.under_torchrun():
        return launch(cfg.trainer.devices)
    return train(cfg)["best_dev_error"]


def launch(devices: int) -> float:
    """Run this command again under torchrun with ``devices`` processes, in this run folder."""
    hydra_config = HydraConfig.get()
    overrides = [o for o in hydra_config.overrides.task if not o.startswith("hydra.run.dir=")]
    # Every rank must write to this folder, not to one its own clock names.
    run_dir = f"hydra.run.dir={hydra_config.runtime.output_dir}"
    command = distributed.torchrun_command(devices, [*overrides, run_dir])
    process = subprocess.Popen(command)

    def forward(number, frame) -> None:
        # torchrun passes SIGTERM on to its processes (it would die of SIGUSR1): either way they
        # save at the next step boundary and exit cleanly.
        process.send_signal(signal.SIGTERM)

    for number in SIGNALS:
        signal.signal(number, forward)
    status = process.wait()
    if status != 0:
        sys.exit(status)
    return float("nan")  # torchrun's processes wrote the summary; a sweep reads summary.json


if __name__ == "__main__":  # torchrun ... -m asr.train (and python -m asr.train)
    main()
