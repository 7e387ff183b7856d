"""What training reads: the vocabulary, the filtered train and dev sets, their loaders.

Utterances are filtered before training: transcripts the vocabulary cannot spell, durations
outside ``[data.min_duration, data.max_duration]``, and token rates outside
``[data.min_tokens_per_second, data.max_tokens_per_second]`` (null: what the model can emit,
see :func:`max_tokens_per_second`) are skipped and counted.

``data.feature_cache_dir`` caches the unaugmented log-mel features in files, computed once;
waveform augmentation cannot apply to them, so it must be off (``augment.waveform=null``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from omegaconf import DictConfig
from torch.utils.data import DataLoader
from tqdm import tqdm

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
from asr.errors import UserError
from asr.features import LogMelFilterbank
from asr.models import LAS
from asr.recognizer import Recognizer
from asr.text import UNITS, Vocabulary


def build_vocabulary(data: DictConfig, train_utts: list[Utterance]) -> Vocabulary:
    """The vocabulary ``data.unit`` (char or phone) and ``data.tokens`` describe.

    ``data.tokens: null`` means the default characters for ``char``, and for ``phone`` every
    phone of the training transcripts, sorted (so the same manifest gives the same vocabulary).
    """
    if data.unit not in UNITS:
        raise UserError(f"data.unit must be one of {', '.join(UNITS)}, not {data.unit!r}")
    try:
        if data.tokens is not None:
            return Vocabulary(list(data.tokens), unit=data.unit)
        if data.unit == "char":
            return Vocabulary()
        return Vocabulary.from_transcripts((u.text for u in train_utts), unit=data.unit)
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


@dataclass
class TrainingData:
    """The filtered splits, the training sampler and the loader over it."""

    train_set: UtteranceDataset
    dev_set: UtteranceDataset
    sampler: BucketBatchSampler
    loader: DataLoader

    def normalizer_loader(self, max_batch_seconds: float, max_batch_size: int) -> DataLoader:
        """One ordered pass over the training set, without the loader's persistent workers."""
        ordered = BucketBatchSampler(
            self.train_set.durations(), max_batch_seconds, max_batch_size, shuffle=False
        )
        return DataLoader(
            self.train_set,
            batch_sampler=ordered,
            collate_fn=self.loader.collate_fn,
            num_workers=self.loader.num_workers,
            pin_memory=self.loader.pin_memory,
        )


def read_training_data(
    cfg: DictConfig,
    train_utts: list[Utterance],
    recognizer: Recognizer,
    skips: SkipCounter,
    device: torch.device,
    rank: int = 0,
    num_replicas: int = 1,
) -> TrainingData:
    """Filter the manifests' utterances (skips counted) and build the datasets and the loader.

    With ``num_replicas`` data-parallel processes the loader yields rank ``rank``'s shard of
    each epoch's batches (asr.data.batching.shard_batches).
    """
    data = cfg.data
    vocabulary = recognizer.vocabulary
    rate_limit = data.max_tokens_per_second
    if rate_limit is None:
        rate_limit = max_tokens_per_second(
            recognizer.model, cfg.features.hop_ms, cfg.decoding.max_length_ratio
        )
    bounds = dict(
        min_duration=data.min_duration,
        max_duration=data.max_duration,
        min_tokens_per_second=data.min_tokens_per_second,
        max_tokens_per_second=rate_limit,
    )
    train_utts = validate(train_utts, vocabulary, skips, **bounds)
    dev_utts = validate(read_manifest(data.dev_manifest, skips), vocabulary, skips, **bounds)
    if data.dev_max_utterances:
        dev_utts = dev_utts[: data.dev_max_utterances]
    if not train_utts:
        raise UserError(f"no usable training utterances in {data.train_manifest}")
    if not dev_utts:  # a dev CER over nothing would read 0% and pick epoch 1 as the best
        raise UserError(f"no usable dev utterances in {data.dev_manifest} ({skips.summary()})")
    feature_cache = None
    if data.feature_cache_dir:
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
        num_replicas=num_replicas,
        rank=rank,
    )
    loader = DataLoader(
        train_set,
        batch_sampler=sampler,
        collate_fn=collate,
        num_workers=data.num_workers,
        pin_memory=device.type == "cuda",
        # Workers outlive the epoch, so their in-memory audio cache (data.cache_audio) does too.
        persistent_workers=data.num_workers > 0,
        # Worker seeds come from this generator, not from torch's global one: starting an
        # epoch's iterator must not move the stream dropout draws from (exact resume). The
        # loop reseeds it each epoch from (seed, epoch, rank).
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    return TrainingData(train_set, dev_set, sampler, loader)


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
