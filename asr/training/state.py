"""Where a run stands, and the checkpoints that keep it: resume files, ``best.pt``, epoch files.

Resuming (``trainer.resume=true``) reads the newest *complete* of ``last.pt`` and
``resume/stepNNNNNNNN.pt``: each save writes ``resume/step<optimizer step>.pt`` atomically
(asr.checkpoint.save_payload), points ``last.pt`` at it, and keeps the newest
``trainer.keep_last_checkpoints`` of them, so a file cut short by a kill or a full disk is
detected on reading, named in one warning, and the one before it used. A resume file holds the
weights, the optimizer, LR-schedule and AMP-scaler states, the :class:`Progress` (epoch, batch
inside it, step, bad-step counts) and every random generator's state (asr.training.random_state):
a run killed at any step boundary continues bitwise as if it never stopped.

``best.pt`` holds the weights of the epoch with the lowest dev error (CER, or PER for a phone
model). With ``trainer.keep_checkpoints=N`` each epoch's weights also go to
``checkpoints/epochNNN.pt``, of which the last N and the best N are kept for ``asr average``.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from asr.checkpoint import read_checkpoint, save_checkpoint, sync_folder
from asr.errors import UserError
from asr.recognizer import Recognizer
from asr.text import Vocabulary

log = logging.getLogger("asr.train")

RESUME_FOLDER = "resume"
# Why an update was skipped (Progress.bad_steps' keys, summary.json's "bad_steps").
NON_FINITE, OUT_OF_MEMORY = "non-finite loss or gradient", "out of memory"


@dataclass
class Progress:
    """Where a run stands: it trains batch ``batch_in_epoch`` of ``epoch`` next (both 0-based)."""

    epoch: int = 0
    batch_in_epoch: int = 0
    step: int = 0  # optimizer steps taken
    best_error: float = math.inf  # the lowest dev error so far (the selected_by metric)
    history: list[dict] = field(default_factory=list)  # one record per finished epoch
    # Updates skipped, by reason (non-finite loss or gradient, out of memory), and how many
    # non-finite ones came in a row up to now (trainer.max_bad_steps stops the run).
    bad_steps: dict[str, int] = field(default_factory=dict)
    bad_in_a_row: int = 0
    # The running sums of the epoch's training loss, so a resumed epoch reports the whole mean.
    loss_sum: float = 0.0
    loss_count: int = 0
    # Minutes trained by the runs before this one, up to their last save (summary.json adds
    # this run's, so a resumed run reports the whole training time).
    train_minutes: float = 0.0

    def record(self, entry: dict) -> None:
        """Add an epoch's record; a resumed epoch replaces the one its interrupted part wrote."""
        self.history = [h for h in self.history if h["epoch"] != entry["epoch"]] + [entry]

    def count_skipped(self, reason: str, max_in_a_row: int) -> None:
        """Count an update skipped for ``reason``, with a warning; UserError when the
        ``max_in_a_row``-th non-finite one in a row says training diverged."""
        self.bad_steps[reason] = self.bad_steps.get(reason, 0) + 1
        if reason != OUT_OF_MEMORY:  # memory is the batch's fault, not the weights'
            self.bad_in_a_row += 1
        log.warning(
            "update %d skipped: %s (%d skipped so far: %s)",
            self.step + 1,
            reason,
            sum(self.bad_steps.values()),
            ", ".join(f"{n} {r}" for r, n in sorted(self.bad_steps.items())),
        )
        if self.bad_in_a_row >= max_in_a_row:
            raise UserError(
                f"{self.bad_in_a_row} updates in a row had a non-finite loss or gradient "
                f"(trainer.max_bad_steps={max_in_a_row}): training diverged; resume from the "
                f"last checkpoint with a lower optim.optimizer.lr, longer optim.warmup_steps or "
                f"smaller optim.max_grad_norm"
            )


def training_payload(
    progress: Progress,
    optimizer,
    scheduler,
    epoch: int,
    batch: int,
    random_states: list[dict],
    scaler=None,
) -> dict:
    """The ``training`` part of a resume file: what resuming at (``epoch``, ``batch``) needs.

    ``random_states``: one :func:`asr.training.random_state.capture` per process (rank).
    """
    payload = {
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        **asdict(progress),
        "epoch": epoch,
        "batch_in_epoch": batch,
        "random": list(random_states),
    }
    if scaler is not None and scaler.is_enabled():
        payload["scaler"] = scaler.state_dict()
    return payload


def save_resumable(
    exp_dir: Path,
    recognizer: Recognizer,
    config: dict,
    metrics: dict | None,
    training: dict,
    keep: int,
) -> Path:
    """Write ``resume/step<step>.pt``, point ``last.pt`` at it, keep the newest ``keep``."""
    folder = exp_dir / RESUME_FOLDER
    path = folder / f"step{training['step']:08d}.pt"
    save_checkpoint(path, recognizer, config, metrics, training)
    last, tmp = exp_dir / "last.pt", exp_dir / f".last.pt.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    try:
        os.link(path, tmp)  # a second name for the same bytes: no second write
    except OSError:  # a file system without hard links
        shutil.copyfile(path, tmp)
    os.replace(tmp, last)
    sync_folder(exp_dir)
    for old in resume_files(exp_dir)[max(1, keep) :]:
        old.unlink(missing_ok=True)
    return path


def resume_files(exp_dir: Path) -> list[Path]:
    """The run's ``resume/step*.pt`` files, newest (highest step) first."""
    return sorted((exp_dir / RESUME_FOLDER).glob("step*.pt"), reverse=True)


def clear_resume_files(exp_dir: Path) -> None:
    """A new run in an old folder: its step files would pass for this run's newest."""
    stale = resume_files(exp_dir)
    if stale:
        log.info("starting a new run: removing %d resume file(s) of an earlier one", len(stale))
    for path in stale:
        path.unlink()


def newest_complete(exp_dir: Path) -> tuple[Path, dict] | None:
    """The newest resume file that reads whole, and its payload; None when there is none.

    Files that do not read (cut short by a kill, a full disk) are skipped and named in one
    warning.
    """
    last = exp_dir / "last.pt"
    candidates = [last] if last.is_file() else []
    for path in resume_files(exp_dir):
        if not (candidates and candidates[0] == last and os.path.samefile(last, path)):
            candidates.append(path)
    broken = []
    for path in candidates:
        try:
            payload = read_checkpoint(path)
        except UserError as error:
            broken.append(f"{path} ({error})")
            continue
        if "training" not in payload:
            broken.append(f"{path} (no training state)")
            continue
        if broken:
            log.warning("unreadable resume file(s) skipped: %s; using %s", "; ".join(broken), path)
        return path, payload
    if broken:
        log.warning("no resume file of %s reads whole: %s", exp_dir, "; ".join(broken))
    return None


def resume(payload: dict, path: Path, recognizer: Recognizer, optimizer, scaler=None) -> Progress:
    """Load a resume file's weights, optimizer and scaler state; returns where to continue.

    The LR schedule is not loaded: it is rebuilt for the run's steps and replayed to the
    returned ``step`` (asr.schedule), so a longer ``trainer.max_epochs`` re-plans its decay.
    The random states (``payload["training"]["random"]``) are restored by the loop, just before
    the first batch.
    """
    if Vocabulary.from_dict(payload["vocabulary"]) != recognizer.vocabulary:
        raise UserError(
            f"{path} was trained with another vocabulary than the data settings "
            f"(data.train_manifest, data.unit, data.tokens) give now; resume with the same ones"
        )
    recognizer.load_state_dict(payload["recognizer"])
    state = payload["training"]
    optimizer.load_state_dict(state["optimizer"])
    if scaler is not None and "scaler" in state:
        scaler.load_state_dict(state["scaler"])
    return Progress(
        epoch=state["epoch"],
        batch_in_epoch=state["batch_in_epoch"],
        step=state["step"],
        best_error=state.get("best_error", state.get("best_cer", math.inf)),
        history=list(state["history"]),
        bad_steps=dict(state.get("bad_steps", {})),
        bad_in_a_row=state.get("bad_in_a_row", 0),
        loss_sum=state.get("loss_sum", 0.0),
        loss_count=state.get("loss_count", 0),
        train_minutes=state.get("train_minutes", 0.0),
    )


def save_epoch_checkpoint(
    exp_dir: Path, recognizer: Recognizer, config: dict, metrics: dict, history: list, keep: int
) -> None:
    """Save ``checkpoints/epochNNN.pt``; keep the last ``keep`` and the best ``keep`` epochs.

    These are what ``asr average --last N`` / ``--best N`` average (weights only, no optimizer).
    """
    folder = exp_dir / "checkpoints"
    save_checkpoint(folder / f"epoch{metrics['epoch']:03d}.pt", recognizer, config, metrics)
    by = metrics["selected_by"]
    epochs = [h["epoch"] for h in history]
    best = sorted(history, key=lambda h: (h.get(by, math.inf), h["epoch"]))[:keep]
    wanted = set(epochs[-keep:]) | {h["epoch"] for h in best}
    for path in folder.glob("epoch*.pt"):
        if int(path.stem[len("epoch") :]) not in wanted:
            path.unlink()
