"""Where a run stands, and the checkpoints that keep it: ``last.pt``, ``best.pt``, epoch files.

``last.pt`` carries a :class:`Progress` and the optimizer state besides the weights, so a run
killed at any moment resumes (``trainer.resume=true``) from its last save. ``best.pt`` holds the
weights of the epoch with the lowest dev error (CER, or PER for a phone model). With
``trainer.keep_checkpoints=N`` each epoch's weights also go to ``checkpoints/epochNNN.pt``, of
which the last N and the best N are kept for ``asr average``.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from asr.checkpoint import read_checkpoint, save_checkpoint
from asr.errors import UserError
from asr.recognizer import Recognizer
from asr.text import Vocabulary


@dataclass
class Progress:
    """Where a run stands: it trains batch ``batch_in_epoch`` of ``epoch`` next (both 0-based)."""

    epoch: int = 0
    batch_in_epoch: int = 0
    step: int = 0  # optimizer steps taken
    best_error: float = math.inf  # the lowest dev error so far (the selected_by metric)
    history: list[dict] = field(default_factory=list)  # one record per finished epoch

    def record(self, entry: dict) -> None:
        """Add an epoch's record; a resumed epoch replaces the one its interrupted part wrote."""
        self.history = [h for h in self.history if h["epoch"] != entry["epoch"]] + [entry]


def training_payload(progress: Progress, optimizer, scheduler, epoch: int, batch: int) -> dict:
    """The ``training`` part of ``last.pt``: what resuming at (``epoch``, ``batch``) needs."""
    return {
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        **asdict(progress),
        "epoch": epoch,
        "batch_in_epoch": batch,
        "random": {"torch": torch.get_rng_state(), "python": list(random.getstate()[1])},
    }


def resume(path: Path, recognizer: Recognizer, optimizer) -> Progress:
    """Load ``last.pt``'s weights and optimizer state; returns the position to continue from.

    The LR schedule is not loaded: it is rebuilt for the run's steps and replayed to the
    returned ``step`` (asr.schedule), so a longer ``trainer.max_epochs`` re-plans its decay.
    """
    payload = read_checkpoint(path)
    if Vocabulary.from_dict(payload["vocabulary"]) != recognizer.vocabulary:
        raise UserError(
            f"{path} was trained with another vocabulary than the data settings "
            f"(data.train_manifest, data.unit, data.tokens) give now; resume with the same ones"
        )
    recognizer.load_state_dict(payload["recognizer"])
    state = payload["training"]
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["random"]["torch"])
    return Progress(
        epoch=state["epoch"],
        batch_in_epoch=state["batch_in_epoch"],
        step=state["step"],
        best_error=state.get("best_error", state.get("best_cer", math.inf)),
        history=list(state["history"]),
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
