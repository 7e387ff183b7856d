"""Bad steps: a non-finite loss skips its update, an out-of-memory batch is skipped, both are
counted; everything else trains as before. Faults are injected by wrapping the Trainer's
forward, as a real NaN or OOM would surface there."""

from __future__ import annotations

import json

import pytest
import torch

from asr.errors import UserError
from asr.training import Trainer
from tests.training.conftest import config

pytestmark = pytest.mark.slow


def inject(trainer: Trainer, faults: dict[int, str]) -> list[bool]:
    """Make forward call n (1-based) fail as ``faults[n]`` says ("nan" or "oom"); returns, per
    optimizer_step call, whether the weights stayed the same across it."""
    forward, step, calls, unchanged = trainer.forward, trainer.optimizer_step, [0], []

    def faulty_forward(*args):
        calls[0] += 1
        fault = faults.get(calls[0])
        if fault == "oom":
            raise torch.OutOfMemoryError("injected: CUDA out of memory")
        losses = forward(*args)
        if fault == "nan":
            return losses._replace(loss=losses.loss * float("nan"))
        return losses

    def watched_step():
        before = [p.detach().clone() for p in trainer.model.parameters()]
        grad_norm = step()
        after = list(trainer.model.parameters())
        unchanged.append(all(torch.equal(a, b) for a, b in zip(before, after, strict=True)))
        return grad_norm

    trainer.forward, trainer.optimizer_step = faulty_forward, watched_step
    return unchanged


def test_a_nan_loss_and_an_oom_batch_are_skipped_and_counted(small_corpus, tmp_path):
    trainer = Trainer(config(small_corpus, tmp_path, ["augment=none", "trainer.max_epochs=1"]))
    unchanged = inject(trainer, {2: "nan", 4: "oom"})
    summary = trainer.fit()
    # 6 batches: the 2nd and the 4th change nothing, the 4 others are updates.
    assert unchanged == [False, True, False, True, False, False]
    assert summary["epochs"][-1]["step"] == 4
    assert summary["bad_steps"] == {"non-finite loss or gradient": 1, "out of memory": 1}
    assert json.loads((tmp_path / "summary.json").read_text())["bad_steps"] == summary["bad_steps"]
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["config"]["trainer"]["max_epochs"] == 1
    assert {"las_asr_version", "git_commit"} <= set(run)
    assert run["environment"]["torch"] == torch.__version__
    assert run["environment"]["threads"] == torch.get_num_threads()


def test_non_finite_updates_in_a_row_stop_the_run_in_one_line(small_corpus, tmp_path):
    cfg = config(small_corpus, tmp_path, ["augment=none", "trainer.max_bad_steps=2"])
    trainer = Trainer(cfg)
    inject(trainer, {n: "nan" for n in (2, 3)})
    with pytest.raises(UserError, match=r"^2 updates in a row had a non-finite loss.*max_bad"):
        trainer.fit()


def test_git_commit_is_none_outside_a_checkout(tmp_path):
    from asr.training.run_info import git_commit

    assert git_commit(tmp_path) is None
