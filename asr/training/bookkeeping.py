"""What a run records and saves around its optimizer steps: logs, dev scores, checkpoints.

At a step boundary: TensorBoard scalars every ``trainer.log_every_steps`` updates, and a resume
file (``last.pt``) every ``trainer.checkpoint_every_steps`` updates, every
``trainer.checkpoint_minutes``, or on a preemption signal (asr.training.preemption), which also
stops the run. At an epoch's end: the dev pass (asr.training.dev), an attention-alignment figure,
the epoch's record, ``best.pt`` where the dev error is the lowest so far, the epoch file and
``last.pt`` (asr.training.state). At the run's end: ``summary.json``.

Rank 0 writes every file; every rank calls every method, as the dev pass and the resume files
gather from all ranks, and a stop must be every rank's.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch.utils.tensorboard import SummaryWriter

from asr import distributed
from asr.checkpoint import save_checkpoint
from asr.cpu import passive_no_longer_needed
from asr.data import SkipCounter
from asr.metrics import text_normalizer
from asr.models.las import LossOutput
from asr.plotting import plot_alignments
from asr.recognizer import DecodingOptions, Recognizer
from asr.training.datasets import TrainingData
from asr.training.dev import score_dev
from asr.training.preemption import PreemptionFlag, resume_command
from asr.training.random_state import capture
from asr.training.state import Progress, save_epoch_checkpoint, save_resumable, training_payload

log = logging.getLogger("asr.train")


class Bookkeeper:
    """The logs, dev passes, checkpoints and summary of one run of ``asr train``.

    ``cfg`` is the run's config (its ``trainer``, ``decoding`` and ``data.normalization`` are
    read here) and ``config`` its resolved copy, stored in every checkpoint. The optimizer, LR
    scheduler, AMP scaler, augmentation ``generator`` and ``progress`` are the ones the loop
    trains with: a resume file saves their states.
    """

    def __init__(
        self,
        cfg: DictConfig,
        config: dict,
        recognizer: Recognizer,
        data: TrainingData,
        context: distributed.Context,
        progress: Progress,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        scaler: torch.amp.GradScaler,
        generator: torch.Generator,
        skips: SkipCounter,
    ) -> None:
        self.settings, self.config = cfg.trainer, config
        self.exp_dir = Path(cfg.exp_dir)
        self.recognizer, self.data, self.context, self.progress = (
            recognizer,
            data,
            context,
            progress,
        )
        self.optimizer, self.scheduler, self.scaler = optimizer, scheduler, scaler
        self.generator, self.skips = generator, skips
        self.advised_restart = False  # the free-CPU advice (asr.cpu) is given once a run
        self.is_main = context.is_main
        # Dev decoding is sharded like training: each rank decodes every world_size-th
        # utterance, and the results are gathered before scoring.
        dev, rank, world_size = data.dev_set, context.rank, context.world_size
        self.dev_shard = (
            type(dev)(dev.utterances[rank::world_size], dev.vocabulary, dev.sample_rate)
            if world_size > 1
            else dev
        )
        self.decoding = DecodingOptions.from_config(cfg.decoding)
        # Training's dev pass has no language model: refuse options that need one (or a CTC
        # head the model lacks) now, in one line, rather than after the first epoch.
        recognizer.check_options(self.decoding, None)
        self.normalize = text_normalizer(cfg.data.normalization)
        # Model selection: dev CER for characters, dev PER (WER over phones) for phones.
        self.is_phone = recognizer.vocabulary.unit == "phone"
        self.selected_by = "dev_per" if self.is_phone else "dev_cer"
        self.writer = SummaryWriter(str(self.exp_dir / "tensorboard")) if self.is_main else None
        self.plot_ids = [u.id for u in data.dev_set.utterances[: self.settings.plot_utterances]]
        # Set by the loop: when training started, the preemption flag it trains under, and
        # when last.pt was last written (trainer.checkpoint_minutes counts from there).
        self.started, self.last_save = 0.0, 0.0
        self.minutes_before = progress.train_minutes  # of the runs this one resumes
        self.preemption: PreemptionFlag | None = None
        self.preempted: str | None = None  # the signal that stopped the run

    def log_step(self, losses: LossOutput, grad_norm: torch.Tensor, throughput: float) -> None:
        """Write the update's losses, gradient norm, LR and audio seconds per second."""
        step, writer = self.progress.step, self.writer
        if writer is None:  # not rank 0
            return
        writer.add_scalar("train/loss", float(losses.loss.detach()), step)
        writer.add_scalar("train/attention_loss", float(losses.attention_loss.detach()), step)
        if losses.ctc_loss is not None:
            writer.add_scalar("train/ctc_loss", float(losses.ctc_loss.detach()), step)
        writer.add_scalar("train/grad_norm", float(grad_norm), step)
        writer.add_scalar("train/lr", self.scheduler.get_last_lr()[0], step)
        writer.add_scalar("train/audio_seconds_per_second", throughput, step)

    def at_step_boundary(self, epoch: int, batch_in_epoch: int, stepped: bool) -> bool:
        """Save where due (every ``trainer.checkpoint_every_steps`` updates, every
        ``trainer.checkpoint_minutes``, on a preemption signal); True to stop (preempted)."""
        every, minutes = self.settings.checkpoint_every_steps, self.settings.checkpoint_minutes
        by_steps = bool(stepped and every and self.progress.step % every == 0)
        by_time = bool(minutes and time.monotonic() - self.last_save > 60 * minutes)
        # All ranks must agree (a save gathers every rank's random state; a stop must be
        # everyone's): a signal or a clock seen by one rank counts for all.
        by_time, signalled = distributed.any_rank(
            [by_time, self.preemption.signal is not None], self.context
        )
        if by_steps or by_time or signalled:
            path = self.save_last(epoch, batch_in_epoch)
            self.last_save = time.monotonic()
            if signalled:
                self.preempted = self.preemption.signal or "a signal on another rank"
                log.info(
                    "%s: saved %s (epoch %d, batch %d, step %d); resume with: %s",
                    self.preempted,
                    path,
                    epoch + 1,
                    batch_in_epoch,
                    self.progress.step,
                    resume_command(str(self.exp_dir), self.context),
                )
                return True
        return False

    def end_epoch(self, epoch: int, record: dict) -> None:
        """Score dev, log, plot, and save best.pt, the epoch file and last.pt."""
        settings = self.settings
        dev = score_dev(
            self.recognizer,
            self.dev_shard,
            self.decoding,
            self.context.device,
            self.skips,
            self.normalize,
            batch_size=settings.dev_batch_size,
            progress=settings.progress_bar and self.is_main,
            gather=self.gather_decoded if self.context.is_distributed else None,
        )
        record.update(dev_cer=dev.cer, dev_wer=dev.wer)
        record["elapsed_minutes"] = (time.monotonic() - self.started) / 60
        if self.is_phone:
            record["dev_per"] = dev.wer
        self.progress.record(record)
        if self.writer is not None:
            self.writer.add_scalar("dev/cer", dev.cer, self.progress.step)
            self.writer.add_scalar("dev/wer", dev.wer, self.progress.step)
        log.info(
            "epoch %d: train loss %.3f, dev CER %.2f%% %s %.2f%%",
            epoch + 1,
            record["train_loss"],
            100 * dev.cer,
            "PER" if self.is_phone else "WER",
            100 * dev.wer,
        )
        if self.is_main and not self.advised_restart:
            advice = passive_no_longer_needed()
            if advice is not None:
                log.warning(advice)
                self.advised_restart = True  # once a run
        plotted = [(i, dev.decoded[i]) for i in self.plot_ids if i in dev.decoded]
        if plotted and self.is_main:
            plot_alignments(plotted, self.exp_dir / "alignments" / f"epoch{epoch + 1:03d}.png")
        metrics = {
            **{k: v for k, v in record.items() if k.startswith("dev_")},
            "epoch": epoch + 1,
            "selected_by": self.selected_by,
        }
        if record[self.selected_by] < self.progress.best_error:
            self.progress.best_error = record[self.selected_by]
            if self.is_main:
                save_checkpoint(self.exp_dir / "best.pt", self.recognizer, self.config, metrics)
        keep = settings.keep_checkpoints
        if keep and self.is_main:
            save_epoch_checkpoint(
                self.exp_dir, self.recognizer, self.config, metrics, self.progress.history, keep
            )
        batch = self.progress.batch_in_epoch
        if batch >= len(self.data.sampler.batches(epoch)):
            self.save_last(epoch + 1, 0, metrics)
        else:  # stopped by trainer.max_steps inside the epoch
            self.save_last(epoch, batch, metrics)

    def save_last(self, epoch: int, batch: int, metrics: dict | None = None) -> Path:
        """Write a resume file at (``epoch``, ``batch``) (rank 0; every rank must call this, as
        each rank's random state is gathered); returns its path."""
        generators = {"augment": self.generator}
        states = distributed.gather(capture(generators), self.context)
        path = self.exp_dir / "last.pt"
        self.progress.train_minutes = self.minutes_trained()
        if self.is_main:
            training = training_payload(
                self.progress, self.optimizer, self.scheduler, epoch, batch, states, self.scaler
            )
            keep = self.settings.keep_last_checkpoints
            path = save_resumable(
                self.exp_dir, self.recognizer, self.config, metrics, training, keep
            )
        return path

    def gather_decoded(self, results: list) -> list:
        """Every rank's dev results, in one list (the same on every rank)."""
        return [r for part in distributed.gather(results, self.context) for r in part]

    def finish(self) -> dict:
        """Close the TensorBoard writer; save the weights as best.pt where no dev pass saved
        one (unless preempted); returns the summary, also written to ``summary.json``."""
        if self.writer is not None:
            self.writer.close()
        best_path = self.exp_dir / "best.pt"
        if self.is_main and not self.preempted and not best_path.exists():
            save_checkpoint(best_path, self.recognizer, self.config, metrics={})
        return self.summary(self.minutes_trained())

    def minutes_trained(self) -> float:
        """This run's minutes so far plus those of the runs it resumes."""
        return self.minutes_before + (time.monotonic() - self.started) / 60

    def summary(self, train_minutes: float) -> dict:
        """The run's epochs, best dev error, skipped utterances and updates (rank 0 writes it
        to ``summary.json`` and logs the best error)."""
        history, best_error = self.progress.history, self.progress.best_error
        summary = {
            "exp_dir": str(self.exp_dir),
            "device": str(self.context.device),
            "epochs": history,
            "selected_by": self.selected_by,
            "best_dev_error": best_error,
            "best_dev_cer": min((h["dev_cer"] for h in history), default=math.inf),
            "skipped": dict(self.skips.counts),
            # Updates not applied, by reason (a non-finite loss or gradient, out of memory).
            "bad_steps": dict(self.progress.bad_steps),
            "processes": self.context.world_size,
            "preempted": self.preempted,
            "train_minutes": train_minutes,
        }
        if self.is_phone:
            summary["best_dev_per"] = best_error
        if not self.is_main:
            return summary
        (self.exp_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        log.info(
            "training done: best %s %.2f%%; %s",
            "dev PER" if self.is_phone else "dev CER",
            100 * best_error,
            self.skips.summary(),
        )
        return summary
