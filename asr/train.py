"""Training: ``asr train [key=value ...]`` (Hydra; ``-m`` sweeps).

Each epoch: length-bucketed batches (at most ``data.max_batch_seconds`` of padded audio, the
frame budget) → waveform augmentation → log-mel → normalisation → SpecAugment → LAS loss
(attention cross-entropy + optional CTC) → Adam with warm-up and cosine decay, one optimizer
step every ``trainer.accumulate_batches`` batches. After each epoch the dev split is decoded, an
attention-alignment figure is drawn, TensorBoard scalars are written, and ``last.pt`` (plus
``best.pt`` by dev CER, or dev PER for a phone model) is saved; with
``trainer.keep_checkpoints=N`` the epoch's weights also go to ``checkpoints/epochNNN.pt``, of
which the last N and the best N are kept for ``asr average``. ``last.pt`` is also refreshed every
``trainer.checkpoint_minutes`` inside an epoch, with the position in the epoch, so a run killed
at any moment resumes (``trainer.resume=true``) from at most that many minutes back.

Utterances are filtered before training: transcripts the vocabulary cannot spell, durations
outside ``[data.min_duration, data.max_duration]``, and token rates outside
``[data.min_tokens_per_second, data.max_tokens_per_second]`` (null: what the model can emit,
see :func:`max_tokens_per_second`) are skipped and counted.

Features are computed on the fly from the (augmented) waveforms. ``data.feature_cache_dir``
caches the unaugmented log-mel features in files instead, computed once; waveform augmentation
cannot apply to them, so it must be off (``augment.waveform=null``); SpecAugment still applies.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from contextlib import nullcontext
from pathlib import Path

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from asr import CONF_DIR
from asr.augment import SpectrogramAugment, WaveformAugment
from asr.checkpoint import read_checkpoint, save_checkpoint
from asr.data import (
    BucketBatchSampler,
    FeatureCache,
    SkipCounter,
    Utterance,
    UtteranceDataset,
    collate,
    read_manifest,
    validate,
)
from asr.decoding import decode_dataset
from asr.errors import UserError, reports_user_errors
from asr.features import LogMelFilterbank
from asr.metrics import score, text_normalizer
from asr.models.las import LAS
from asr.plotting import plot_alignments
from asr.recognizer import DecodingOptions, Recognizer
from asr.text import UNITS, Vocabulary

log = logging.getLogger(__name__)


def select_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"trainer.device={name} but no CUDA device is available")
    return torch.device(name)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """Mixed-precision dtype, or None for float32. CPU always trains in float32."""
    if precision not in ("auto", "fp32", "bf16", "fp16"):
        raise UserError(f"trainer.precision must be auto, fp32, bf16 or fp16, not {precision!r}")
    if device.type != "cuda" or precision == "fp32":
        return None
    if precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if precision == "bf16" else torch.float16


def check_config(cfg: DictConfig) -> None:
    """One clear line for a missing required key (``???`` in conf/)."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise UserError(f"missing required config key(s): {', '.join(missing)}")


def warmup_cosine(warmup_steps: int, total_steps: int, final_lr_ratio: float):
    """LR multiplier: linear warm-up to 1, then cosine decay to ``final_lr_ratio``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return final_lr_ratio + (1 - final_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def fit_normalizer(
    recognizer: Recognizer, loader: DataLoader, device: torch.device, progress: bool = True
) -> None:
    """Global mean/variance of the training features (no augmentation), one pass."""
    with torch.no_grad():
        bar = tqdm(
            loader, desc="normalisation statistics", unit="batch", leave=False, disable=not progress
        )
        for batch in bar:
            if len(batch) == 0:
                continue
            batch = batch.to(device)
            if batch.features is not None:  # from the feature cache
                features, feature_lens = batch.features, batch.feature_lens
            else:
                features, feature_lens = recognizer.raw_features(
                    batch.waveforms, batch.waveform_lens
                )
            recognizer.normalizer.accumulate(features, feature_lens)
    recognizer.normalizer.finalize()


def build_vocabulary(data: DictConfig, train_utts: list[Utterance]) -> Vocabulary:
    """The vocabulary ``data.unit`` (char or phone) and ``data.tokens`` describe.

    ``data.tokens: null`` means the default characters for ``char``, and for ``phone`` every
    phone of the training transcripts, sorted (so the same manifest gives the same vocabulary).
    """
    unit = data.get("unit", "char")
    if unit not in UNITS:
        raise UserError(f"data.unit must be one of {', '.join(UNITS)}, not {unit!r}")
    tokens = data.get("tokens")
    try:
        if tokens is not None:
            return Vocabulary(list(tokens), unit=unit)
        if unit == "char":
            return Vocabulary()
        return Vocabulary.from_transcripts((u.text for u in train_utts), unit=unit)
    except ValueError as error:
        raise UserError(f"data.tokens: {error}") from None


def max_tokens_per_second(model: LAS, hop_ms: float, max_length_ratio: float) -> float:
    """The most output tokens a second of audio the model can produce and be trained on.

    The search emits at most ``max_length_ratio`` tokens per listener frame; CTC needs at least
    one frame per token at the layer it reads. A transcript above this rate cannot be learned.

    >>> from asr.models import build_model
    >>> model = build_model({"listener": {"num_pyramid_layers": 2}, "ctc_weight": 0.3,
    ...     "attention": {"type": "location"}}, vocab_size=31, input_size=80)
    >>> max_tokens_per_second(model, hop_ms=10.0, max_length_ratio=2.0)  # CTC on 40 ms frames
    25.0
    """
    frames_per_second = 1000.0 / hop_ms
    listener = model.listener
    limit = max_length_ratio * frames_per_second / 2**listener.num_pyramid_layers
    if model.ctc_head is not None:
        layer = model.ctc_layer % len(listener.layers)
        reduction = 2 ** sum(listener.is_pyramid[: layer + 1])
        limit = min(limit, frames_per_second / reduction)
    return limit


def _random_states() -> dict:
    return {
        "torch": torch.get_rng_state(),
        "python": list(random.getstate()[1]),
    }


def train(cfg: DictConfig) -> dict:
    """Train as ``cfg`` says; returns the summary also written to ``<exp_dir>/summary.json``."""
    check_config(cfg)
    exp_dir = Path(cfg.exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    device = select_device(cfg.trainer.device)
    amp_dtype = autocast_dtype(cfg.trainer.precision, device)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    config = OmegaConf.to_container(cfg, resolve=True)

    skips = SkipCounter()
    data = cfg.data
    train_utts = read_manifest(data.train_manifest)
    dev_utts = read_manifest(data.dev_manifest)
    vocabulary = build_vocabulary(data, train_utts)
    recognizer = Recognizer.from_config(cfg, vocabulary).to(device)
    model = recognizer.model
    rate_limit = data.get("max_tokens_per_second")
    if rate_limit is None:
        rate_limit = max_tokens_per_second(
            model, cfg.features.hop_ms, cfg.decoding.max_length_ratio
        )
    bounds = dict(
        min_duration=data.min_duration,
        max_duration=data.max_duration,
        min_tokens_per_second=data.get("min_tokens_per_second", 0.0),
        max_tokens_per_second=rate_limit,
    )
    train_utts = validate(train_utts, vocabulary, skips, **bounds)
    dev_utts = validate(dev_utts, vocabulary, skips, **bounds)
    if data.dev_max_utterances:
        dev_utts = dev_utts[: data.dev_max_utterances]
    if not train_utts:
        raise UserError(f"no usable training utterances in {data.train_manifest}")
    feature_cache = None
    if data.get("feature_cache_dir"):
        if cfg.augment.waveform is not None:
            raise UserError(
                "data.feature_cache_dir stores features of the unaugmented audio, so waveform "
                "augmentation (speed perturbation, gain, noise) cannot apply: set "
                "augment.waveform=null, or data.feature_cache_dir=null to compute features on "
                "the fly"
            )
        feature_cache = FeatureCache(data.feature_cache_dir, LogMelFilterbank(**cfg.features))
    train_set = UtteranceDataset(
        train_utts,
        vocabulary,
        data.sample_rate,
        cache_audio=data.cache_audio and feature_cache is None,
        feature_cache=feature_cache,
    )
    dev_set = UtteranceDataset(dev_utts, vocabulary, data.sample_rate, cache_audio=True)
    sampler = BucketBatchSampler(
        train_set.durations(),
        data.max_batch_seconds,
        data.max_batch_size,
        seed=cfg.seed,
        sorted_epochs=data.sorted_epochs,
    )
    workers = data.num_workers
    loader_args = dict(
        collate_fn=collate,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        # Workers outlive the epoch, so their in-memory audio cache (data.cache_audio) does too.
        persistent_workers=workers > 0,
    )
    loader = DataLoader(train_set, batch_sampler=sampler, **loader_args)

    optimizer = instantiate(cfg.optim.optimizer, params=model.parameters(), _convert_="all")
    accumulate = cfg.trainer.get("accumulate_batches", 1)
    if accumulate < 1:
        raise UserError(f"trainer.accumulate_batches must be at least 1, got {accumulate}")
    steps_per_epoch = math.ceil(len(sampler.batches(0)) / accumulate)
    total_steps = steps_per_epoch * cfg.trainer.max_epochs
    if cfg.trainer.max_steps:
        total_steps = min(total_steps, cfg.trainer.max_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        warmup_cosine(cfg.optim.warmup_steps, total_steps, cfg.optim.final_lr_ratio),
    )
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)

    start_epoch, start_batch, step, best_error, history = 0, 0, 0, math.inf, []
    # Model selection: dev CER for characters, dev PER (WER over phones) for phones.
    selected_by = "dev_per" if vocabulary.unit == "phone" else "dev_cer"
    normalize = text_normalizer(data.get("normalization", "standard"))
    last_path, best_path = exp_dir / "last.pt", exp_dir / "best.pt"
    if cfg.trainer.resume and last_path.is_file():
        payload = read_checkpoint(last_path)
        if Vocabulary.from_dict(payload["vocabulary"]) != vocabulary:
            raise UserError(
                f"{last_path} was trained with another vocabulary than {data.train_manifest} "
                f"and data.unit/data.tokens give now; resume with the same data settings"
            )
        recognizer.load_state_dict(payload["recognizer"])
        state = payload["training"]
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, start_batch, step = state["epoch"], state["batch_in_epoch"], state["step"]
        best_error = state.get("best_error", state.get("best_cer", math.inf))
        history = list(state["history"])
        torch.set_rng_state(state["random"]["torch"])
        log.info(
            "resuming from %s: epoch %d, batch %d, step %d",
            last_path,
            start_epoch + 1,
            start_batch,
            step,
        )
    else:
        if cfg.trainer.resume:
            log.info("no checkpoint at %s: starting a new run", last_path)
        ordered = BucketBatchSampler(
            train_set.durations(), data.max_batch_seconds, data.max_batch_size, shuffle=False
        )
        one_pass = {**loader_args, "persistent_workers": False}
        fit_normalizer(
            recognizer,
            DataLoader(train_set, batch_sampler=ordered, **one_pass),
            device,
            progress=cfg.trainer.progress_bar,
        )

    wave_aug = _maybe(WaveformAugment, cfg.augment.waveform)
    spec_aug = _maybe(SpectrogramAugment, cfg.augment.spectrogram)
    if wave_aug is not None:
        wave_aug.to(device)
    generator = torch.Generator(device=device)
    decoding = DecodingOptions.from_config(cfg.decoding)
    writer = SummaryWriter(str(exp_dir / "tensorboard"))
    plot_ids = [utt.id for utt in dev_utts[: cfg.trainer.plot_utterances]]

    def training_state(epoch: int, batch_in_epoch: int) -> dict:
        return {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "epoch": epoch,
            "batch_in_epoch": batch_in_epoch,
            "step": step,
            "best_error": best_error,
            "history": history,
            "random": _random_states(),
        }

    log.info(
        "training on %s: %d utterances (%.1f h), %d optimizer steps an epoch, %d parameters",
        device,
        len(train_utts),
        sum(train_set.durations()) / 3600,
        steps_per_epoch,
        sum(p.numel() for p in model.parameters()),
    )

    def optimizer_step() -> torch.Tensor:
        """Clip, step and schedule on the accumulated gradients; returns their norm."""
        nonlocal step
        scaler.unscale_(optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.max_grad_norm)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        return grad_norm

    optimizer.zero_grad(set_to_none=True)
    started = time.monotonic()
    stop = False
    for epoch in range(start_epoch, cfg.trainer.max_epochs):
        sampler.set_epoch(epoch, start_batch if epoch == start_epoch else 0)
        generator.manual_seed(cfg.seed * 7919 + epoch * 104729 + start_batch)
        model.train()
        batch_in_epoch = sampler.start_batch
        last_save = time.monotonic()
        audio_seconds, wall_started, throughput = 0.0, time.monotonic(), 0.0
        loss_sum, loss_count = 0.0, 0
        bar = tqdm(
            loader,
            desc=f"epoch {epoch + 1}/{cfg.trainer.max_epochs}",
            unit="batch",
            disable=not cfg.trainer.progress_bar,
            dynamic_ncols=True,
        )
        epoch_batches = len(sampler.batches(epoch))
        pending = 0  # batches whose gradients wait for the next optimizer step
        for batch in bar:
            batch_in_epoch += 1
            skips.add(batch.skipped)
            if len(batch) > 0:
                batch = batch.to(device)
                with torch.no_grad():
                    if batch.features is not None:  # raw log-mel from the feature cache
                        feature_lens = batch.feature_lens
                        features = recognizer.normalizer(batch.features, feature_lens)
                    else:
                        waveforms, waveform_lens = batch.waveforms, batch.waveform_lens
                        if wave_aug is not None:
                            waveforms, waveform_lens = wave_aug(waveforms, waveform_lens, generator)
                        features, feature_lens = recognizer.features(waveforms, waveform_lens)
                    if spec_aug is not None:
                        features = spec_aug(
                            features,
                            feature_lens,
                            generator,
                            feature_std=recognizer.normalizer.std,
                        )
                autocast = (
                    torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else nullcontext()
                )
                with autocast:
                    losses = model(features, feature_lens, batch.targets, batch.target_lens)
                # Each batch's loss is a mean; dividing by the accumulation count makes the
                # accumulated gradient their mean, the gradient of one larger batch.
                scaler.scale(losses.loss / accumulate).backward()
                pending += 1
                audio_seconds += float(batch.waveform_lens.sum()) / data.sample_rate
                loss_value = float(losses.loss.detach())
                loss_sum += loss_value
                loss_count += 1
            last_of_epoch = batch_in_epoch >= epoch_batches
            if pending == 0 or (pending < accumulate and not last_of_epoch):
                continue
            grad_norm = optimizer_step()
            pending = 0

            throughput = audio_seconds / max(1e-9, time.monotonic() - wall_started)
            bar.set_postfix(loss=f"{loss_value:.3f}", audio_s_per_s=f"{throughput:.1f}")
            if step % cfg.trainer.log_every_steps == 0:
                writer.add_scalar("train/loss", loss_value, step)
                writer.add_scalar(
                    "train/attention_loss", float(losses.attention_loss.detach()), step
                )
                if losses.ctc_loss is not None:
                    writer.add_scalar("train/ctc_loss", float(losses.ctc_loss.detach()), step)
                writer.add_scalar("train/grad_norm", float(grad_norm), step)
                writer.add_scalar("train/lr", scheduler.get_last_lr()[0], step)
                writer.add_scalar("train/audio_seconds_per_second", throughput, step)
            minutes = cfg.trainer.checkpoint_minutes
            if minutes and time.monotonic() - last_save > 60 * minutes:
                save_checkpoint(
                    last_path, recognizer, config, training=training_state(epoch, batch_in_epoch)
                )
                last_save = time.monotonic()
            if cfg.trainer.max_steps and step >= cfg.trainer.max_steps:
                stop = True
                break
        bar.close()

        if pending:  # the epoch ended on batches without an optimizer step (an empty last one)
            optimizer_step()
            pending = 0
        dev = evaluate_dev(
            recognizer,
            dev_set,
            decoding,
            device,
            skips,
            batch_size=cfg.trainer.dev_batch_size,
            progress=cfg.trainer.progress_bar,
            normalize=normalize,
        )
        record = {
            "epoch": epoch + 1,
            "step": step,
            "train_loss": loss_sum / max(1, loss_count),
            "dev_cer": dev["cer"],
            "dev_wer": dev["wer"],
            "audio_seconds_per_second": throughput if loss_count else None,
            "elapsed_minutes": (time.monotonic() - started) / 60,
        }
        if vocabulary.unit == "phone":
            record["dev_per"] = dev["wer"]
        # A resumed epoch replaces the record its interrupted part wrote.
        history = [h for h in history if h["epoch"] != epoch + 1] + [record]
        writer.add_scalar("dev/cer", dev["cer"], step)
        writer.add_scalar("dev/wer", dev["wer"], step)
        log.info(
            "epoch %d: train loss %.3f, dev CER %.2f%% %s %.2f%%",
            epoch + 1,
            record["train_loss"],
            100 * dev["cer"],
            "PER" if vocabulary.unit == "phone" else "WER",
            100 * dev["wer"],
        )
        plotted = [
            (utt_id, dev["transcripts"][utt_id])
            for utt_id in plot_ids
            if utt_id in dev["transcripts"]
        ]
        if plotted:
            plot_alignments(plotted, exp_dir / "alignments" / f"epoch{epoch + 1:03d}.png")
        metrics = {
            **{k: v for k, v in record.items() if k.startswith("dev_")},
            "epoch": epoch + 1,
            "selected_by": selected_by,
        }
        if record[selected_by] < best_error:
            best_error = record[selected_by]
            save_checkpoint(best_path, recognizer, config, metrics=metrics)
        if cfg.trainer.get("keep_checkpoints", 0):
            save_epoch_checkpoint(
                exp_dir, recognizer, config, metrics, history, cfg.trainer.keep_checkpoints
            )
        epoch_done = batch_in_epoch >= len(sampler.batches(epoch))
        position = (epoch + 1, 0) if epoch_done else (epoch, batch_in_epoch)
        save_checkpoint(
            last_path, recognizer, config, metrics=metrics, training=training_state(*position)
        )
        if stop:
            break
    writer.close()
    if not best_path.exists():
        save_checkpoint(best_path, recognizer, config, metrics={})
    summary = {
        "exp_dir": str(exp_dir),
        "device": str(device),
        "epochs": history,
        "selected_by": selected_by,
        "best_dev_error": best_error,
        "best_dev_cer": min((h["dev_cer"] for h in history), default=math.inf),
        "skipped": dict(skips.counts),
        "train_minutes": (time.monotonic() - started) / 60,
    }
    if vocabulary.unit == "phone":
        summary["best_dev_per"] = best_error
    (exp_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    log.info(
        "training done: best %s %.2f%%; %s",
        "dev PER" if selected_by == "dev_per" else "dev CER",
        100 * best_error,
        skips.summary(),
    )
    return summary


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


def evaluate_dev(
    recognizer,
    dev_set,
    decoding,
    device,
    skips,
    batch_size: int = 32,
    progress: bool = True,
    normalize=None,
) -> dict:
    """Dev CER and WER (PER for phones), both sides normalised by ``normalize`` when given."""
    results = decode_dataset(
        recognizer,
        dev_set,
        decoding,
        device,
        skips,
        batch_size=batch_size,
        desc="dev decoding",
        progress=progress,
    )
    normalize = normalize or (lambda text: text)
    scores = score(
        [normalize(r.reference) for r in results], [normalize(r.hypothesis) for r in results]
    )
    recognizer.model.train()
    return {
        "cer": scores.cer,
        "wer": scores.wer,
        "transcripts": {r.id: r for r in results},
    }


def _maybe(cls, section):
    """``cls(**section)``, or None where the config switches that part off."""
    if section is None:
        return None
    return cls(**OmegaConf.to_container(section, resolve=True))


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
@reports_user_errors
def main(cfg: DictConfig) -> float:
    summary = train(cfg)
    return summary["best_dev_error"]
