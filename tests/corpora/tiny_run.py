"""Train las_tiny for one short epoch on a prepared corpus and evaluate it: the pipeline check
the corpus tests share. Learning is not the point (one epoch of a few utterances); the files and
numbers of the report are."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir

from asr import CONF_DIR
from asr.evaluate import evaluate
from asr.train import train

TINY = [
    "model=las_tiny",
    "augment=none",
    "trainer.max_epochs=1",
    "trainer.progress_bar=false",
    "trainer.plot_utterances=0",
    "optim.warmup_steps=2",
    "data.max_batch_seconds=40",
    "data.max_batch_size=4",
    "data.num_workers=0",
    "data.min_duration=0.1",
    "data.dev_max_utterances=null",
    "trainer.precision=fp32",  # the same numbers on every CPU (auto: bf16 where native)
]


def train_tiny(data: str, corpus_dir: Path, exp_dir: Path, extra=()) -> dict:
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[f"data={data}", f"data.corpus_dir={corpus_dir}", f"exp_dir={exp_dir}"]
            + TINY
            + list(extra),
        )
    return train(cfg)


def evaluate_splits(data: str, corpus_dir: Path, checkpoint: Path, out_dir: Path, splits, extra=()):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "evaluate",
            overrides=[
                f"checkpoint={checkpoint}",
                f"out_dir={out_dir}",
                f"data={data}",
                f"data.corpus_dir={corpus_dir}",
                f"splits=[{','.join(splits)}]",
                "decoding.max_length_ratio=0.5",
                *extra,
            ],
        )
    return evaluate(cfg)
