"""A tiny corpus and config for the training tests: las_tiny, 2 utterances a batch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from asr import CONF_DIR
from tests.e2e_corpus import make_tiny_corpus

TINY = [
    "model=las_tiny",
    "trainer.progress_bar=false",
    "trainer.plot_utterances=0",
    "trainer.checkpoint_minutes=0",
    "optim.warmup_steps=2",
    "optim.optimizer.lr=5e-3",
    "data.max_batch_size=2",
    "data.dev_max_utterances=1",
    "trainer.precision=fp32",  # the same numbers on every CPU (auto: bf16 where native)
]


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory) -> Path:
    """4 sentences, 3 times each: 12 training utterances, 6 batches an epoch."""
    root = tmp_path_factory.mktemp("training") / "corpus"
    make_tiny_corpus(root, repeats=3)
    return root


def overrides(corpus: Path, exp_dir: Path, extra=()) -> list[str]:
    return [f"data.corpus_dir={corpus}", f"exp_dir={exp_dir}", *TINY, *extra]


def config(corpus: Path, exp_dir: Path, extra=()):
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=overrides(corpus, exp_dir, extra))


def start_training(arguments: list[str], exp_dir: Path) -> subprocess.Popen:
    """``python -m asr.train ...`` in a subprocess, one thread (as the in-process runs use)."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    environment["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    return subprocess.Popen(
        [sys.executable, "-m", "asr.train", *arguments, f"hydra.run.dir={exp_dir}"],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
