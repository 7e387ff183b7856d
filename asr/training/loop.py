"""The training loop: set up once, then train an epoch, score dev, save; until the last epoch.

Each epoch: length-bucketed batches (at most ``data.max_batch_seconds`` of padded audio) →
waveform augmentation → log-mel → normalisation → SpecAugment → LAS loss (attention
cross-entropy + optional CTC) → Adam with warm-up and cosine decay (asr.schedule), one
optimizer step every ``trainer.accumulate_batches`` batches. After each epoch the dev split is
decoded and scored (asr.training.dev), an attention-alignment figure is drawn, TensorBoard
scalars are written and the checkpoints saved (asr.training.state). ``last.pt`` is also
refreshed every ``trainer.checkpoint_minutes`` inside an epoch.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from asr.augment import SpectrogramAugment, WaveformAugment
from asr.checkpoint import save_checkpoint
from asr.config import TrainConfig, check_config
from asr.data import Batch, SkipCounter, read_manifest
from asr.devices import autocast_dtype, select_device
from asr.errors import UserError
from asr.metrics import text_normalizer
from asr.plotting import plot_alignments
from asr.recognizer import DecodingOptions, Recognizer
from asr.schedule import warmup_cosine_schedule
from asr.training.datasets import build_vocabulary, fit_normalizer, read_training_data
from asr.training.dev import score_dev
from asr.training.state import Progress, resume, save_epoch_checkpoint, training_payload

log = logging.getLogger("asr.train")


def _maybe(cls, section):
    """``cls(**section)``, or None where the config switches that part off."""
    if section is None:
        return None
    return cls(**OmegaConf.to_container(section, resolve=True))


class Trainer:
    """One run of ``asr train``: ``Trainer(cfg).fit()`` returns the run's summary."""

    def __init__(self, cfg: DictConfig) -> None:
        check_config(cfg, TrainConfig)
        self.cfg, trainer = cfg, cfg.trainer
        self.exp_dir = Path(cfg.exp_dir)
        self.exp_dir.mkdir(parents=True, exist_ok=True)
        self.device = select_device(trainer.device)
        self.amp_dtype = autocast_dtype(trainer.precision, self.device)
        if trainer.accumulate_batches < 1:
            raise UserError(
                f"trainer.accumulate_batches must be at least 1, got {trainer.accumulate_batches}"
            )
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        self.config = OmegaConf.to_container(cfg, resolve=True)
        self.skips = SkipCounter()

        train_utts = read_manifest(cfg.data.train_manifest, self.skips)  # bad lines counted
        vocabulary = build_vocabulary(cfg.data, train_utts)
        self.recognizer = Recognizer.from_config(cfg, vocabulary).to(self.device)
        self.model = self.recognizer.model
        self.data = read_training_data(cfg, train_utts, self.recognizer, self.skips, self.device)
        self.optimizer = instantiate(
            cfg.optim.optimizer, params=self.model.parameters(), _convert_="all"
        )
        self.progress = self._resume_or_start()
        self.steps_per_epoch = math.ceil(
            len(self.data.sampler.batches(0)) / trainer.accumulate_batches
        )
        total_steps = self.steps_per_epoch * trainer.max_epochs
        if trainer.max_steps:
            total_steps = min(total_steps, trainer.max_steps)
        try:
            self.scheduler = warmup_cosine_schedule(
                self.optimizer,
                cfg.optim.warmup_steps,
                total_steps,
                cfg.optim.final_lr_ratio,
                start_step=self.progress.step,
            )
        except ValueError as error:
            raise UserError(f"optim: {error}") from None
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.wave_aug = _maybe(WaveformAugment, cfg.augment.waveform)
        if self.wave_aug is not None:
            self.wave_aug.to(self.device)
        self.spec_aug = _maybe(SpectrogramAugment, cfg.augment.spectrogram)
        self.generator = torch.Generator(device=self.device)
        self.decoding = DecodingOptions.from_config(cfg.decoding)
        # Training's dev pass has no language model: refuse options that need one (or a CTC
        # head the model lacks) now, in one line, rather than after the first epoch.
        self.recognizer.check_options(self.decoding, None)
        self.normalize = text_normalizer(cfg.data.normalization)
        # Model selection: dev CER for characters, dev PER (WER over phones) for phones.
        self.is_phone = vocabulary.unit == "phone"
        self.selected_by = "dev_per" if self.is_phone else "dev_cer"
        self.writer = SummaryWriter(str(self.exp_dir / "tensorboard"))
        self.plot_ids = [u.id for u in self.data.dev_set.utterances[: trainer.plot_utterances]]

    def _resume_or_start(self) -> Progress:
        last = self.exp_dir / "last.pt"
        if self.cfg.trainer.resume and last.is_file():
            progress = resume(last, self.recognizer, self.optimizer)
            log.info(
                "resuming from %s: epoch %d, batch %d, step %d",
                last,
                progress.epoch + 1,
                progress.batch_in_epoch,
                progress.step,
            )
            return progress
        if self.cfg.trainer.resume:
            log.info("no checkpoint at %s: starting a new run", last)
        data = self.cfg.data
        loader = self.data.normalizer_loader(data.max_batch_seconds, data.max_batch_size)
        fit_normalizer(self.recognizer, loader, self.device, self.cfg.trainer.progress_bar)
        return Progress()

    def fit(self) -> dict:
        """Train the remaining epochs; returns the summary also written to ``summary.json``."""
        trainer = self.cfg.trainer
        log.info(
            "training on %s: %d utterances (%.1f h), %d optimizer steps an epoch, %d parameters",
            self.device,
            len(self.data.train_set),
            sum(self.data.train_set.durations()) / 3600,
            self.steps_per_epoch,
            sum(p.numel() for p in self.model.parameters()),
        )
        # The OpenMP wait policy (chosen by asr/cpu.py) and the thread count explain the speed.
        log.info(
            "OMP_WAIT_POLICY=%s, %d threads",
            os.environ.get("OMP_WAIT_POLICY", "unset"),
            torch.get_num_threads(),
        )
        self.optimizer.zero_grad(set_to_none=True)
        self.started = time.monotonic()
        for epoch in range(self.progress.epoch, trainer.max_epochs):
            record, stopped = self.train_epoch(epoch)
            self.end_epoch(epoch, record)
            if stopped:
                break
        self.writer.close()
        best_path = self.exp_dir / "best.pt"
        if not best_path.exists():
            save_checkpoint(best_path, self.recognizer, self.config, metrics={})
        return self.summary((time.monotonic() - self.started) / 60)

    def train_epoch(self, epoch: int) -> tuple[dict, bool]:
        """Train on epoch ``epoch`` from the progress' batch; returns its record and whether
        ``trainer.max_steps`` stopped it."""
        cfg, trainer, sampler = self.cfg, self.cfg.trainer, self.data.sampler
        start = self.progress.batch_in_epoch if epoch == self.progress.epoch else 0
        sampler.set_epoch(epoch, start)
        self.generator.manual_seed(cfg.seed * 7919 + epoch * 104729 + start)
        self.model.train()
        batch_in_epoch, epoch_batches = start, len(sampler.batches(epoch))
        last_save, wall_started = time.monotonic(), time.monotonic()
        audio_seconds, throughput, loss_sum, loss_count = 0.0, 0.0, 0.0, 0
        pending, stopped = 0, False  # pending: batches whose gradients wait for a step
        bar = tqdm(
            self.data.loader,
            desc=f"epoch {epoch + 1}/{trainer.max_epochs}",
            unit="batch",
            disable=not trainer.progress_bar,
            dynamic_ncols=True,
        )
        for batch in bar:
            batch_in_epoch += 1
            self.skips.add(batch.skipped)
            if len(batch) > 0:
                losses = self.backward(batch)
                pending += 1
                audio_seconds += float(batch.waveform_lens.sum()) / cfg.data.sample_rate
                loss_value = float(losses.loss.detach())
                loss_sum += loss_value
                loss_count += 1
            if pending == 0 or (
                pending < trainer.accumulate_batches and batch_in_epoch < epoch_batches
            ):
                continue
            grad_norm = self.optimizer_step()
            pending = 0
            throughput = audio_seconds / max(1e-9, time.monotonic() - wall_started)
            bar.set_postfix(loss=f"{loss_value:.3f}", audio_s_per_s=f"{throughput:.1f}")
            if self.progress.step % trainer.log_every_steps == 0:
                self.log_step(losses, grad_norm, throughput)
            minutes = trainer.checkpoint_minutes
            if minutes and time.monotonic() - last_save > 60 * minutes:
                self.save_last(epoch, batch_in_epoch)
                last_save = time.monotonic()
            if trainer.max_steps and self.progress.step >= trainer.max_steps:
                stopped = True
                break
        bar.close()
        if pending:  # the epoch ended on batches without an optimizer step (an empty last one)
            self.optimizer_step()
        self.progress.batch_in_epoch = batch_in_epoch
        record = {
            "epoch": epoch + 1,
            "step": self.progress.step,
            "train_loss": loss_sum / max(1, loss_count),
            "audio_seconds_per_second": throughput if loss_count else None,
        }
        return record, stopped

    def backward(self, batch: Batch):
        """Features (augmented) → loss → gradients, scaled for accumulation; returns the losses."""
        batch = batch.to(self.device)
        recognizer = self.recognizer
        with torch.no_grad():
            if batch.features is not None:  # raw log-mel from the feature cache
                feature_lens = batch.feature_lens
                features = recognizer.normalizer(batch.features, feature_lens)
            else:
                waveforms, waveform_lens = batch.waveforms, batch.waveform_lens
                if self.wave_aug is not None:
                    waveforms, waveform_lens = self.wave_aug(
                        waveforms, waveform_lens, self.generator
                    )
                features, feature_lens = recognizer.features(waveforms, waveform_lens)
            if self.spec_aug is not None:
                features = self.spec_aug(
                    features, feature_lens, self.generator, feature_std=recognizer.normalizer.std
                )
        autocast = (
            torch.autocast(self.device.type, dtype=self.amp_dtype)
            if self.amp_dtype
            else nullcontext()
        )
        with autocast:
            losses = self.model(features, feature_lens, batch.targets, batch.target_lens)
        # Each batch's loss is a mean; dividing by the accumulation count makes the accumulated
        # gradient their mean, the gradient of one larger batch.
        self.scaler.scale(losses.loss / self.cfg.trainer.accumulate_batches).backward()
        return losses

    def optimizer_step(self) -> torch.Tensor:
        """Clip, step and schedule on the accumulated gradients; returns their norm."""
        self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(
            self.model.parameters(), self.cfg.optim.max_grad_norm
        )
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.progress.step += 1
        return grad_norm

    def log_step(self, losses, grad_norm: torch.Tensor, throughput: float) -> None:
        step, writer = self.progress.step, self.writer
        writer.add_scalar("train/loss", float(losses.loss.detach()), step)
        writer.add_scalar("train/attention_loss", float(losses.attention_loss.detach()), step)
        if losses.ctc_loss is not None:
            writer.add_scalar("train/ctc_loss", float(losses.ctc_loss.detach()), step)
        writer.add_scalar("train/grad_norm", float(grad_norm), step)
        writer.add_scalar("train/lr", self.scheduler.get_last_lr()[0], step)
        writer.add_scalar("train/audio_seconds_per_second", throughput, step)

    def end_epoch(self, epoch: int, record: dict) -> None:
        """Score dev, log, plot, and save best.pt, the epoch file and last.pt."""
        trainer = self.cfg.trainer
        dev = score_dev(
            self.recognizer,
            self.data.dev_set,
            self.decoding,
            self.device,
            self.skips,
            self.normalize,
            batch_size=trainer.dev_batch_size,
            progress=trainer.progress_bar,
        )
        record.update(dev_cer=dev.cer, dev_wer=dev.wer)
        record["elapsed_minutes"] = (time.monotonic() - self.started) / 60
        if self.is_phone:
            record["dev_per"] = dev.wer
        self.progress.record(record)
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
        plotted = [(i, dev.decoded[i]) for i in self.plot_ids if i in dev.decoded]
        if plotted:
            plot_alignments(plotted, self.exp_dir / "alignments" / f"epoch{epoch + 1:03d}.png")
        metrics = {
            **{k: v for k, v in record.items() if k.startswith("dev_")},
            "epoch": epoch + 1,
            "selected_by": self.selected_by,
        }
        if record[self.selected_by] < self.progress.best_error:
            self.progress.best_error = record[self.selected_by]
            save_checkpoint(self.exp_dir / "best.pt", self.recognizer, self.config, metrics)
        keep = trainer.keep_checkpoints
        if keep:
            save_epoch_checkpoint(
                self.exp_dir, self.recognizer, self.config, metrics, self.progress.history, keep
            )
        batch = self.progress.batch_in_epoch
        if batch >= len(self.data.sampler.batches(epoch)):
            self.save_last(epoch + 1, 0, metrics)
        else:  # stopped by trainer.max_steps inside the epoch
            self.save_last(epoch, batch, metrics)

    def save_last(self, epoch: int, batch: int, metrics: dict | None = None) -> None:
        training = training_payload(self.progress, self.optimizer, self.scheduler, epoch, batch)
        save_checkpoint(self.exp_dir / "last.pt", self.recognizer, self.config, metrics, training)

    def summary(self, train_minutes: float) -> dict:
        history, best_error = self.progress.history, self.progress.best_error
        summary = {
            "exp_dir": str(self.exp_dir),
            "device": str(self.device),
            "epochs": history,
            "selected_by": self.selected_by,
            "best_dev_error": best_error,
            "best_dev_cer": min((h["dev_cer"] for h in history), default=math.inf),
            "skipped": dict(self.skips.counts),
            "train_minutes": train_minutes,
        }
        if self.is_phone:
            summary["best_dev_per"] = best_error
        (self.exp_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        log.info(
            "training done: best %s %.2f%%; %s",
            "dev PER" if self.is_phone else "dev CER",
            100 * best_error,
            self.skips.summary(),
        )
        return summary


def train(cfg: DictConfig) -> dict:
    """Train as ``cfg`` says; returns the summary also written to ``<exp_dir>/summary.json``."""
    return Trainer(cfg).fit()
