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

The run writes to ``exp/<data>_<model>_<attention>`` unless ``hydra.run.dir`` says otherwise.
The pieces: asr/training/ (the loop), asr/schedule.py (LR), asr/config.py (the config schemas).
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from asr import CONF_DIR
from asr.errors import reports_user_errors
from asr.training import train

__all__ = ["main", "train"]


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
@reports_user_errors
def main(cfg: DictConfig) -> float:
    """The best dev error, which a Hydra sweeper minimises."""
    return train(cfg)["best_dev_error"]
