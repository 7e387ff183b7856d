"""Language model training: ``asr train-lm [key=value ...]`` (Hydra; ``-m`` sweeps).

Trains :class:`asr.models.language_model.CharLSTMLM` on text, for shallow fusion and N-best
rescoring in the search: the transcripts of JSONL manifests (by default the acoustic model's
training manifest, ``data.train_manifest``) and/or plain text files one sentence a line
(LibriSpeech's ``librispeech-lm-norm.txt``, streamed). The text is normalised and spelled by the
acoustic model's vocabulary (the same ``data.unit`` and ``data.tokens``), dev perplexity is
logged each epoch, and ``best.pt`` / ``last.pt`` are self-describing language model checkpoints
(asr.checkpoint.save_language_model).

- :mod:`asr.lm_training.corpus`: sentence sources, skip counts, length-bucketed batches
- :mod:`asr.lm_training.loop`: :class:`LMTrainer` (epochs, dev perplexity, checkpoints, resume)

The run writes to ``exp/lm_<data>_<language_model>`` unless ``hydra.run.dir`` says otherwise.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from asr import CONF_DIR
from asr.errors import reports_user_errors
from asr.lm_training.loop import LMTrainer, train_language_model

__all__ = ["LMTrainer", "main", "train_language_model"]


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train_lm")
@reports_user_errors
def main(cfg: DictConfig) -> float:
    """The best dev perplexity, which a Hydra sweeper minimises."""
    return train_language_model(cfg)["best_dev_perplexity"]
