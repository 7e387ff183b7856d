"""Exact resume: a run killed at any step, or stopped by SIGTERM, continues as if it never
stopped; a resume file cut short is skipped for the one before it."""

from __future__ import annotations

import logging
import random
import shutil
import signal
import time
from pathlib import Path

import pytest
import torch

from asr.checkpoint import read_checkpoint
from asr.train import train
from asr.training.state import resume_files
from tests.training.conftest import config, overrides, start_training

pytestmark = pytest.mark.slow

# Augmentation (waveform and SpecAugment) and dropout on: their random draws are what a resumed
# run most easily gets wrong.
RANDOM = [
    "augment=default",
    "model.listener.dropout=0.2",
    "model.speller.dropout=0.2",
    "trainer.checkpoint_every_steps=1",
    "trainer.keep_last_checkpoints=3",
]


def wait_for_step(process, exp_dir: Path, step: int, timeout: float = 240.0) -> None:
    """Until a resume file of ``step`` or later exists (the run is past that step)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = resume_files(exp_dir)
        if files and int(files[0].stem[len("step") :]) >= step:
            return
        if process.poll() is not None:
            pytest.fail(f"the run ended before step {step}:\n{process.stdout.read()}")
        time.sleep(0.005)
    process.kill()
    pytest.fail(f"no resume file of step {step} within {timeout} s")


def weights(path: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(path)["recognizer"]


def test_a_run_killed_at_a_random_step_resumes_bitwise(small_corpus, tmp_path):
    extra = [*RANDOM, "trainer.max_epochs=2"]  # 12 updates, a dev pass between the epochs
    train(config(small_corpus, tmp_path / "whole", extra))

    killed = tmp_path / "killed"
    step = random.Random().randint(1, 10)  # its own generator: training seeds the global one
    process = start_training(overrides(small_corpus, killed, extra), killed)
    wait_for_step(process, killed, step)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    resumed = train(config(small_corpus, killed, [*extra, "trainer.resume=true"]))

    assert resumed["epochs"][-1]["step"] == 12
    whole, again = weights(tmp_path / "whole" / "last.pt"), weights(killed / "last.pt")
    assert whole.keys() == again.keys()
    different = [name for name in whole if not torch.equal(whole[name], again[name])]
    assert not different, f"killed after step {step}: {different} differ"


def test_resuming_at_an_epoch_end_or_inside_an_epoch_is_bitwise(small_corpus, tmp_path):
    """The kill test's moment is random; these two are the positions that differ: step 6 is the
    file the end of epoch 1 wrote (after its dev pass), step 4 one inside the epoch."""
    extra = [*RANDOM, "trainer.max_epochs=2", "trainer.keep_last_checkpoints=12"]
    train(config(small_corpus, tmp_path / "whole", extra))
    expected = weights(tmp_path / "whole" / "last.pt")
    for step in (6, 4):
        again = tmp_path / f"from{step}"
        again.mkdir()
        shutil.copy(tmp_path / "whole" / "resume" / f"step{step:08d}.pt", again / "last.pt")
        train(config(small_corpus, again, [*extra, "trainer.resume=true"]))
        found = weights(again / "last.pt")
        assert all(torch.equal(expected[n], found[n]) for n in expected), f"from step {step}"


def test_sigterm_saves_exits_cleanly_and_the_epoch_continues(small_corpus, tmp_path):
    extra = [*RANDOM, "trainer.max_epochs=1"]
    process = start_training(overrides(small_corpus, tmp_path, extra), tmp_path)
    wait_for_step(process, tmp_path, 2)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    assert "SIGTERM" in output and "resume with: asr train" in output
    assert "trainer.resume=true" in output
    state = read_checkpoint(tmp_path / "last.pt")["training"]
    assert state["epoch"] == 0 and 0 < state["batch_in_epoch"] < 6
    assert state["step"] == state["batch_in_epoch"]

    resumed = train(config(small_corpus, tmp_path, [*extra, "trainer.resume=true"]))
    assert [e["epoch"] for e in resumed["epochs"]] == [1]
    assert resumed["epochs"][-1]["step"] == 6  # the rest of the same epoch, nothing twice


def test_a_truncated_newest_file_is_named_and_the_previous_used(small_corpus, tmp_path, caplog):
    extra = ["augment=none", "trainer.checkpoint_every_steps=1", "trainer.max_steps=3"]
    train(config(small_corpus, tmp_path, [*extra, "trainer.keep_last_checkpoints=2"]))
    files = resume_files(tmp_path)
    assert [f.name for f in files] == ["step00000003.pt", "step00000002.pt"]
    data = files[0].read_bytes()
    (tmp_path / "last.pt").unlink()
    files[0].write_bytes(data[: len(data) // 2])  # a save cut short
    with caplog.at_level(logging.INFO, logger="asr"):
        resumed = train(
            config(small_corpus, tmp_path, [*extra, "trainer.max_steps=4", "trainer.resume=true"])
        )
    [warning] = [r for r in caplog.records if r.name == "asr.train" and r.levelno >= 30]
    assert "step00000003.pt" in warning.getMessage()
    assert "using" in warning.getMessage() and "step00000002.pt" in warning.getMessage()
    assert "resuming from" in caplog.text
    assert resumed["epochs"][-1]["step"] == 4


def test_a_resumed_run_reports_the_minutes_of_the_runs_before_it(small_corpus, tmp_path):
    """summary.json's train_minutes counts every run: resuming a finished run trains nothing and
    keeps the first run's minutes up to its last save (the first run's own summary also counts
    the moments after that save: best.pt, closing the logs); a run resumed for more adds its own."""
    extra = ["trainer.max_epochs=1"]
    first = train(config(small_corpus, tmp_path / "run", extra))
    again = train(config(small_corpus, tmp_path / "run", [*extra, "trainer.resume=true"]))
    assert first["train_minutes"] > 0
    assert again["train_minutes"] == pytest.approx(first["train_minutes"], rel=0.3)
    assert again["epochs"] == first["epochs"]
    more = train(
        config(small_corpus, tmp_path / "run", ["trainer.max_epochs=2", "trainer.resume=true"])
    )
    assert more["train_minutes"] > again["train_minutes"]
