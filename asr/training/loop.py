"""The training loop: set up once, then train an epoch, score dev, save; until the last epoch.

Each epoch: length-bucketed batches (at most ``data.max_batch_seconds`` of padded audio) →
waveform augmentation → log-mel → normalisation → SpecAugment → LAS loss (attention
cross-entropy + optional CTC) → Adam with warm-up and cosine decay (asr.schedule), one
optimizer step every ``trainer.accumulate_batches`` batches (asr.training.update: accumulation,
clipping, and the updates skipped for a non-finite loss or an out-of-memory batch). After each
epoch the dev split is decoded and scored (asr.training.dev), an attention-alignment figure is
drawn, TensorBoard scalars are written and the checkpoints saved (asr.training.state); what is
recorded and saved, and when, is asr.training.bookkeeping. ``last.pt`` is also refreshed every
``trainer.checkpoint_minutes`` inside an epoch.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from asr import distributed
from asr.augment import SpectrogramAugment, WaveformAugment
from asr.config import TrainConfig, check_config
from asr.data import Batch, SkipCounter, read_manifest
from asr.devices import autocast_dtype, cpu_has_native_bf16, precision_name, select_device
from asr.errors import UserError
from asr.recognizer import Recognizer
from asr.schedule import warmup_cosine_schedule
from asr.training.bookkeeping import Bookkeeper
from asr.training.datasets import build_vocabulary, fit_normalizer, read_training_data
from asr.training.preemption import PreemptionFlag
from asr.training.random_state import restore
from asr.training.run_info import write_run_info
from asr.training.state import Progress, clear_resume_files, newest_complete, resume
from asr.training.update import Updater

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
        self.context = distributed.start(select_device(trainer.device))
        self.device, self.is_main = self.context.device, self.context.is_main
        if self.is_main:
            self.exp_dir.mkdir(parents=True, exist_ok=True)
        self.amp_dtype = autocast_dtype(trainer.precision, self.device)
        if self.device.type == "cpu" and self.amp_dtype is not None and not cpu_has_native_bf16():
            log.warning(
                "trainer.precision=bf16 on a CPU without native bfloat16 (AVX512-BF16 or AMX): "
                "oneDNN emulates it, slower than fp32"
            )
        for key in ("accumulate_batches", "max_bad_steps", "keep_last_checkpoints"):
            if trainer[key] < 1:
                raise UserError(f"trainer.{key} must be at least 1, got {trainer[key]}")
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        self.config = OmegaConf.to_container(cfg, resolve=True)
        self.skips = SkipCounter()

        train_utts = read_manifest(cfg.data.train_manifest, self.skips)  # bad lines counted
        vocabulary = build_vocabulary(cfg.data, train_utts)
        self.recognizer = Recognizer.from_config(cfg, vocabulary).to(self.device)
        self.model = self.recognizer.model
        rank, world_size = self.context.rank, self.context.world_size
        self.data = read_training_data(
            cfg, train_utts, self.recognizer, self.skips, self.device, rank, world_size
        )
        self.optimizer = instantiate(
            cfg.optim.optimizer, params=self.model.parameters(), _convert_="all"
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.resumed_random: dict | None = None  # the random states to restore at the 1st batch
        self.progress = self._resume_or_start()
        try:
            batches_per_epoch = len(self.data.sampler.batches(0))
        except ValueError as error:  # the epoch cannot be dealt evenly to the ranks
            raise UserError(f"data: {error}; use fewer processes or larger batches") from None
        self.steps_per_epoch = math.ceil(batches_per_epoch / trainer.accumulate_batches)
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
        self.wave_aug = _maybe(WaveformAugment, cfg.augment.waveform)
        if self.wave_aug is not None:
            self.wave_aug.to(self.device)
        self.spec_aug = _maybe(SpectrogramAugment, cfg.augment.spectrogram)
        self.generator = torch.Generator(device=self.device)
        # The dev pass, logs and checkpoints (it checks the decoding options now, not after
        # the first epoch).
        self.bookkeeper = Bookkeeper(
            cfg,
            self.config,
            self.recognizer,
            self.data,
            self.context,
            self.progress,
            self.optimizer,
            self.scheduler,
            self.scaler,
            self.generator,
            self.skips,
        )
        # The module the steps run: DDP averages the gradients across ranks in backward.
        self.train_model = self.model
        if self.context.is_distributed:
            cuda = self.device.type == "cuda"
            self.train_model = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if cuda else None
            )
        self.updater = Updater(
            self.model,
            self.train_model,
            self.optimizer,
            self.scaler,
            self.scheduler,
            self.progress,
            self.context,
            self.amp_dtype,
            accumulate_batches=trainer.accumulate_batches,
            max_grad_norm=cfg.optim.max_grad_norm,
            max_bad_steps=trainer.max_bad_steps,
        )
        if rank and self.resumed_random is None:  # each rank its own dropout masks
            torch.manual_seed(cfg.seed * 1_000_003 + rank)
        if self.is_main:
            write_run_info(self.exp_dir / "run.json", self.config, self.device, world_size)

    def _resume_or_start(self) -> Progress:
        found = newest_complete(self.exp_dir) if self.cfg.trainer.resume else None
        if found is not None:
            path, payload = found
            progress = resume(payload, path, self.recognizer, self.optimizer, self.scaler)
            states = payload["training"]["random"]
            if not isinstance(states, list):  # an older file: one torch state
                torch.set_rng_state(states["torch"])
            elif len(states) == self.context.world_size:  # one state per rank
                self.resumed_random = states[self.context.rank]
            elif progress.batch_in_epoch:
                # Another number of processes deals the epoch's batches otherwise: the saved
                # position inside it means other batches now.
                log.warning(
                    "%s was saved by %d process(es), this run has %d: epoch %d starts again "
                    "from its first batch",
                    path,
                    len(states),
                    self.context.world_size,
                    progress.epoch + 1,
                )
                progress.batch_in_epoch = 0
            log.info(
                "resuming from %s: epoch %d, batch %d, step %d",
                path,
                progress.epoch + 1,
                progress.batch_in_epoch,
                progress.step,
            )
            return progress
        if self.cfg.trainer.resume:
            log.info("no checkpoint in %s: starting a new run", self.exp_dir)
        if self.is_main:
            clear_resume_files(self.exp_dir)
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
            "OMP_WAIT_POLICY=%s, %d threads, %s (trainer.precision=%s)",
            os.environ.get("OMP_WAIT_POLICY", "unset"),
            torch.get_num_threads(),
            precision_name(self.amp_dtype),
            trainer.precision,
        )
        self.optimizer.zero_grad(set_to_none=True)
        books = self.bookkeeper
        books.started, books.preempted = time.monotonic(), None
        with PreemptionFlag() as books.preemption:
            for epoch in range(self.progress.epoch, trainer.max_epochs):
                record, stopped = self.train_epoch(epoch)
                if books.preempted:
                    break
                books.end_epoch(epoch, record)
                if stopped:
                    break
        summary = books.finish()
        distributed.barrier(self.context)  # nobody leaves before rank 0's last write
        distributed.stop(self.context)
        return summary

    def train_epoch(self, epoch: int) -> tuple[dict, bool]:
        """Train on epoch ``epoch`` from the progress' batch; returns its record and whether
        ``trainer.max_steps`` (or a preemption signal) stopped it."""
        cfg, trainer, sampler = self.cfg, self.cfg.trainer, self.data.sampler
        start = self.progress.batch_in_epoch if epoch == self.progress.epoch else 0
        sampler.set_epoch(epoch, start)
        rank = self.context.rank
        self.data.loader.generator.manual_seed(cfg.seed * 7919 + epoch * 104729 + rank * 31)
        resumed = self.resumed_random is not None
        if resumed:  # continue every stream where the save left it
            restore(self.resumed_random, {"augment": self.generator})
            self.resumed_random = None
        if not resumed or start == 0:  # an epoch's augmentation starts from its own seed
            self.generator.manual_seed(cfg.seed * 7919 + epoch * 104729 + start + rank * 15485863)
        if start == 0:
            self.progress.loss_sum, self.progress.loss_count = 0.0, 0
        self.model.train()
        batch_in_epoch, epoch_batches = start, len(sampler.batches(epoch))
        self.bookkeeper.last_save, wall_started = time.monotonic(), time.monotonic()
        audio_seconds, throughput, loss_value = 0.0, 0.0, math.nan
        pending, stopped = 0, False  # pending: batches whose gradients wait for a step
        self.updater.group_fault = None  # no pending gradients yet, so nothing wrong with them
        bar = tqdm(
            self.data.loader,
            desc=f"epoch {epoch + 1}/{trainer.max_epochs}",
            unit="batch",
            disable=not (trainer.progress_bar and self.is_main),
            dynamic_ncols=True,
        )
        for batch in bar:
            batch_in_epoch += 1
            self.skips.add(batch.skipped)
            if len(batch) > 0:
                last = pending + 1 >= trainer.accumulate_batches or batch_in_epoch >= epoch_batches
                losses = self.backward(batch, sync=last)
                pending += 1
                audio_seconds += float(batch.waveform_lens.sum()) / cfg.data.sample_rate
                if losses is not None:
                    loss_value = float(losses.loss.detach())
                    if math.isfinite(loss_value):
                        self.progress.loss_sum += loss_value
                        self.progress.loss_count += 1
            if pending == 0 or (
                pending < trainer.accumulate_batches and batch_in_epoch < epoch_batches
            ):
                continue
            grad_norm = self.optimizer_step()
            pending = 0
            throughput = audio_seconds / max(1e-9, time.monotonic() - wall_started)
            bar.set_postfix(loss=f"{loss_value:.3f}", audio_s_per_s=f"{throughput:.1f}")
            if grad_norm is not None and self.progress.step % trainer.log_every_steps == 0:
                self.bookkeeper.log_step(losses, grad_norm, throughput)
            stepped = grad_norm is not None
            if self.bookkeeper.at_step_boundary(epoch, batch_in_epoch, stepped=stepped):
                stopped = True
                break
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
            "train_loss": self.progress.loss_sum / max(1, self.progress.loss_count),
            "audio_seconds_per_second": throughput if audio_seconds else None,
        }
        return record, stopped

    def backward(self, batch: Batch, sync: bool = True):
        """Features (augmented) → loss → gradients, scaled for accumulation; returns the losses,
        or None for a batch that ran out of memory (skipped, with its group's update).

        ``sync=False`` (a batch inside an accumulation group) keeps DDP from averaging the
        gradients across ranks until the group's last batch (asr.training.update).
        """
        batch = batch.to(self.device)
        features, feature_lens = self.features(batch)
        return self.updater.backward(
            lambda: self.forward(features, feature_lens, batch.targets, batch.target_lens),
            sync,
            batch_in_words=f"{len(batch)} utterances ({features.shape[1]} frames)",
        )

    def features(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's normalised, augmented features (B, T, F) and their lengths (B,)."""
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
        return features, feature_lens

    def forward(self, features, feature_lens, targets, target_lens):
        """The model's losses on one batch: (B, T, F) features, (B, U) targets (the updater's
        forward, called through here so that a test can stand in for it)."""
        return self.updater.forward(features, feature_lens, targets, target_lens)

    def optimizer_step(self) -> torch.Tensor | None:
        """Clip, step and schedule on the accumulated gradients; returns their norm, or None
        where the update was skipped (a non-finite loss or gradient, an out-of-memory batch)."""
        return self.updater.step()


def train(cfg: DictConfig) -> dict:
    """Train as ``cfg`` says; returns the summary also written to ``<exp_dir>/summary.json``."""
    return Trainer(cfg).fit()
