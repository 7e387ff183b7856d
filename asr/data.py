"""Manifests, the utterance dataset, length-bucketed batching and collation.

A manifest is a JSONL file, one utterance a line:
``{"id": str, "audio": str, "duration": float, "text": str, "speaker": str}``. ``audio`` is
absolute or relative to the manifest's folder. An optional ``offset`` (seconds) makes the line
a segment of its file: ``duration`` seconds from ``offset`` on (a Kaldi ``segments`` entry);
without it the utterance is the whole file. Other keys (a LibriSpeech chapter, TIMIT's words)
are kept in ``Utterance.extra`` and written back. Any corpus that can be written this way can be
trained on.

Bad utterances never stop a job: ``validate`` drops those whose text the vocabulary cannot
spell, whose duration is out of bounds or whose length in tokens is impossible for that
duration, and the dataset returns a ``Skipped`` record for audio
that cannot be read, which ``collate`` carries in ``Batch.skipped`` (so it reaches the main
process even from data-loading workers). Every skip is logged with the utterance id and counted
in a ``SkipCounter`` so the run's summary can report it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import Dataset, Sampler

from asr.audio import load_audio
from asr.errors import AudioError, TextError, UserError
from asr.text import Vocabulary

log = logging.getLogger(__name__)

REQUIRED_KEYS = ("id", "audio", "text")
_KNOWN_KEYS = (*REQUIRED_KEYS, "duration", "speaker", "offset")


@dataclass(frozen=True)
class Utterance:
    id: str
    audio: Path
    duration: float
    text: str
    speaker: str = ""
    # Start in seconds of a segment of ``audio`` lasting ``duration``; None: the whole file.
    offset: float | None = None
    # Other manifest keys, kept as they were (not compared).
    extra: Mapping = field(default_factory=dict, compare=False)


def read_manifest(path: str | Path) -> list[Utterance]:
    """Utterances of a JSONL manifest; a malformed line is a UserError naming file and line."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"manifest not found: {path}")
    utterances = []
    seen: set[str] = set()
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as error:
                raise UserError(f"{path}:{number}: not valid JSON ({error.msg})") from None
            missing = [key for key in REQUIRED_KEYS if key not in entry]
            if missing:
                raise UserError(f"{path}:{number}: missing key(s) {', '.join(missing)}")
            if entry["id"] in seen:
                raise UserError(f"{path}:{number}: duplicate utterance id {entry['id']!r}")
            seen.add(entry["id"])
            audio = Path(entry["audio"])
            if not audio.is_absolute():
                audio = path.parent / audio
            offset = entry.get("offset")
            if offset is not None and "duration" not in entry:
                raise UserError(f"{path}:{number}: a line with an offset needs a duration")
            utterances.append(
                Utterance(
                    id=str(entry["id"]),
                    audio=audio,
                    duration=float(entry.get("duration", math.nan)),
                    text=str(entry["text"]),
                    speaker=str(entry.get("speaker", "")),
                    offset=None if offset is None else float(offset),
                    extra={k: v for k, v in entry.items() if k not in _KNOWN_KEYS},
                )
            )
    return utterances


def write_manifest(path: str | Path, utterances: Sequence[Utterance]) -> None:
    """Write utterances as JSONL with audio paths relative to the manifest's folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for utt in utterances:
            try:
                audio = str(utt.audio.resolve().relative_to(path.parent.resolve()))
            except ValueError:
                audio = str(utt.audio.resolve())
            entry = {
                "id": utt.id,
                "audio": audio,
                "duration": utt.duration,
                "text": utt.text,
                "speaker": utt.speaker,
            }
            if utt.offset is not None:
                entry["offset"] = utt.offset
            entry.update({k: v for k, v in utt.extra.items() if k not in entry})
            out.write(json.dumps(entry, ensure_ascii=False) + "\n")


class SkipCounter:
    """Counts skipped utterances by reason, and logs each one once."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._seen: set[str] = set()

    def add(self, skipped: Sequence[Skipped]) -> None:
        for item in skipped:
            self.skip(item.id, item.reason, item.message)

    def skip(self, utterance_id: str, reason: str, message: str) -> None:
        if utterance_id in self._seen:
            return
        self._seen.add(utterance_id)
        self.counts[reason] += 1
        log.warning("skipping %s: %s", utterance_id, message)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        if not self.counts:
            return "no utterances skipped"
        parts = ", ".join(f"{n} {reason}" for reason, n in sorted(self.counts.items()))
        return f"{self.total} utterances skipped ({parts})"


def validate(
    utterances: Sequence[Utterance],
    vocabulary: Vocabulary,
    skips: SkipCounter,
    min_duration: float = 0.0,
    max_duration: float = math.inf,
    min_tokens_per_second: float = 0.0,
    max_tokens_per_second: float = math.inf,
) -> list[Utterance]:
    """Utterances whose text can be spelled and whose duration is within bounds.

    The token bounds catch transcripts that cannot belong to their audio: more tokens a second
    than the model has frames to emit them from (CTC cannot align them, and the search's
    length limit cannot reach them), or far fewer than anyone speaks (a transcript of one word
    on 20 s of audio is usually a wrong or truncated one).
    """
    kept = []
    for utt in utterances:
        unknown = vocabulary.unknown_tokens(utt.text)
        units = "characters" if vocabulary.unit == "char" else "phones"
        if unknown:
            shown = " ".join(repr(ch) for ch in sorted(unknown))
            skips.skip(utt.id, "text outside vocabulary", f"text has {units} {shown}")
        elif not utt.text.strip():
            skips.skip(utt.id, "empty text", "empty transcript")
        elif not math.isnan(utt.duration) and not min_duration <= utt.duration <= max_duration:
            skips.skip(
                utt.id,
                "duration out of range",
                f"duration {utt.duration:.2f}s outside [{min_duration}, {max_duration}]",
            )
        elif not math.isnan(utt.duration) and not (
            min_tokens_per_second
            <= len(vocabulary.split(utt.text)) / max(utt.duration, 1e-3)
            <= max_tokens_per_second
        ):
            rate = len(vocabulary.split(utt.text)) / max(utt.duration, 1e-3)
            skips.skip(
                utt.id,
                "impossible length ratio",
                f"{rate:.1f} {units} a second, outside "
                f"[{min_tokens_per_second:g}, {max_tokens_per_second:g}]",
            )
        else:
            kept.append(utt)
    return kept


@dataclass(frozen=True)
class Skipped:
    """An utterance that could not be used, and why."""

    id: str
    reason: str
    message: str


@dataclass
class Example:
    id: str
    waveform: torch.Tensor  # (S,) float32; empty when ``features`` come from the cache
    tokens: torch.Tensor  # (U,) int64
    text: str
    features: torch.Tensor | None = None  # (T, F) raw log-mel, with a feature cache
    num_samples: int = 0  # S of the audio the features were computed from


class FeatureCache:
    """Raw log-mel features of utterances in files, computed once and read back afterwards.

    Features are computed from the unaugmented waveform and stored as float16 (a 10 ms frame
    of 80 bins is 160 bytes: 58 MB an hour of audio). A file is named by a hash of the audio
    file's path, size and modification time, the segment, and the filterbank's settings, so a
    changed file or a different filterbank never reads stale features. Files are written
    atomically, so data-loading workers can share one folder.
    """

    def __init__(self, folder: str | Path, filterbank: torch.nn.Module) -> None:
        settings = {
            name: getattr(filterbank, name)
            for name in (
                "sample_rate",
                "num_mel_bins",
                "window_length",
                "hop_length",
                "n_fft",
                "floor",
            )
        }
        tag = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
        self.folder = Path(folder) / f"logmel-{tag}"
        self.filterbank = filterbank

    def path(self, utt: Utterance) -> Path:
        stat = utt.audio.stat()
        key = f"{utt.audio.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{utt.offset}|"
        key += f"{utt.duration if utt.offset is not None else ''}"
        digest = hashlib.sha1(key.encode()).hexdigest()
        return self.folder / digest[:2] / f"{digest}.pt"

    def load(self, utt: Utterance, waveform_fn) -> tuple[torch.Tensor, int]:
        """(T, F) float32 features and the sample count, from the file or computed and saved."""
        path = self.path(utt)
        if path.is_file():
            try:
                stored = torch.load(path, map_location="cpu", weights_only=True)
                return stored["features"].float(), int(stored["num_samples"])
            except Exception:  # a damaged cache file is recomputed, never trusted
                log.warning("recomputing damaged cached features %s", path)
        waveform = waveform_fn()
        with torch.no_grad():
            features, _ = self.filterbank(waveform[None], torch.tensor([len(waveform)]))
        features = features[0]
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        torch.save({"features": features.half(), "num_samples": len(waveform)}, tmp)
        os.replace(tmp, path)
        return features.half().float(), len(waveform)


class UtteranceDataset(Dataset):
    """Reads audio and encodes text; returns ``Skipped`` for an utterance that cannot be used.

    With ``cache_audio=True`` decoded waveforms are kept in memory as int16 (2 bytes a sample:
    an hour of 16 kHz audio is 115 MB), so later epochs do no file I/O. With a
    ``feature_cache`` the examples carry raw log-mel features read from (or written to) that
    cache instead of waveforms.
    """

    def __init__(
        self,
        utterances: Sequence[Utterance],
        vocabulary: Vocabulary,
        sample_rate: int = 16000,
        min_samples: int = 400,
        cache_audio: bool = False,
        feature_cache: FeatureCache | None = None,
        encode_text: bool = True,
    ) -> None:
        self.utterances = list(utterances)
        # Decoding for scoring needs no token ids: a reference the vocabulary cannot spell is
        # still scored (as errors) instead of skipped.
        self.encode_text = encode_text
        self.vocabulary = vocabulary
        self.sample_rate = sample_rate
        self.min_samples = min_samples
        self.cache_audio = cache_audio
        self.feature_cache = feature_cache
        self._cache: dict[int, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self.utterances)

    def _waveform(self, index: int) -> torch.Tensor:
        cached = self._cache.get(index)
        if cached is not None:
            return cached.float() / 32767.0
        utt = self.utterances[index]
        waveform = load_audio(
            utt.audio,
            self.sample_rate,
            min_samples=self.min_samples,
            offset=utt.offset or 0.0,
            duration=None if utt.offset is None else utt.duration,
        )
        if self.cache_audio:
            self._cache[index] = (waveform.clamp(-1, 1) * 32767.0).round().to(torch.int16)
        return waveform

    def __getitem__(self, index: int) -> Example | Skipped:
        utt = self.utterances[index]
        try:
            ids = self.vocabulary.encode(utt.text) if self.encode_text else []
            tokens = torch.tensor(ids, dtype=torch.long)
            if self.feature_cache is not None:
                features, num_samples = self.feature_cache.load(utt, lambda: self._waveform(index))
                return Example(utt.id, torch.zeros(0), tokens, utt.text, features, num_samples)
            waveform = self._waveform(index)
        except AudioError as error:
            return Skipped(utt.id, "unreadable audio", str(error))
        except TextError as error:
            return Skipped(utt.id, "text outside vocabulary", str(error))
        return Example(utt.id, waveform, tokens, utt.text, num_samples=len(waveform))

    def durations(self) -> list[float]:
        """Seconds per utterance (manifest value, else read from the file header)."""
        from asr.audio import audio_duration

        out = []
        for utt in self.utterances:
            if math.isnan(utt.duration):
                try:
                    out.append(audio_duration(utt.audio))
                except AudioError:
                    out.append(0.0)
            else:
                out.append(utt.duration)
        return out


@dataclass
class Batch:
    ids: list[str]
    texts: list[str]
    waveforms: torch.Tensor  # (B, S) zero-padded; (B, 0) when ``features`` are given
    waveform_lens: torch.Tensor  # (B,) samples of each utterance's audio
    targets: torch.Tensor  # (B, U) padded with the blank id 0
    target_lens: torch.Tensor  # (B,)
    skipped: list[Skipped] = field(default_factory=list)
    features: torch.Tensor | None = None  # (B, T, F) raw log-mel from a feature cache
    feature_lens: torch.Tensor | None = None  # (B,)

    def __len__(self) -> int:
        return len(self.ids)

    def to(self, device: torch.device) -> Batch:
        def move(tensor):
            return None if tensor is None else tensor.to(device, non_blocking=True)

        return Batch(
            self.ids,
            self.texts,
            move(self.waveforms),
            move(self.waveform_lens),
            move(self.targets),
            move(self.target_lens),
            self.skipped,
            move(self.features),
            move(self.feature_lens),
        )


def collate(items: Sequence[Example | Skipped]) -> Batch:
    """Pad examples into a Batch; skipped ones travel in ``Batch.skipped`` (B may be 0)."""
    examples = [item for item in items if isinstance(item, Example)]
    skipped = [item for item in items if isinstance(item, Skipped)]
    waveform_lens = torch.tensor([ex.num_samples or len(ex.waveform) for ex in examples])
    target_lens = torch.tensor([len(ex.tokens) for ex in examples])
    with_features = bool(examples) and all(ex.features is not None for ex in examples)
    max_samples = int(waveform_lens.max()) if examples and not with_features else 0
    max_tokens = int(target_lens.max()) if examples else 0
    waveforms = torch.zeros(len(examples), max_samples)
    targets = torch.zeros(len(examples), max(max_tokens, 1), dtype=torch.long)
    for i, ex in enumerate(examples):
        waveforms[i, : len(ex.waveform)] = ex.waveform
        targets[i, : len(ex.tokens)] = ex.tokens
    features = feature_lens = None
    if with_features:
        feature_lens = torch.tensor([len(ex.features) for ex in examples])
        width = examples[0].features.size(1)
        features = torch.zeros(len(examples), int(feature_lens.max()), width)
        for i, ex in enumerate(examples):
            features[i, : len(ex.features)] = ex.features
    return Batch(
        [ex.id for ex in examples],
        [ex.text for ex in examples],
        waveforms,
        waveform_lens,
        targets,
        target_lens,
        skipped,
        features,
        feature_lens,
    )


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of similar duration, at most ``max_batch_seconds`` of padded audio each.

    Sorting by duration cuts padding (a padded frame costs as much as a real one in a dense
    LSTM); utterances are shuffled within buckets and batches are shuffled, so every epoch
    differs. The order of epoch ``e`` depends only on ``seed`` and ``e``, which is what lets a
    resumed run skip the batches it already trained on.

    The first ``sorted_epochs`` epochs go from the shortest batch to the longest instead
    (SortaGrad, Amodei et al. 2016): attention learns to align on short utterances first, which
    makes an attention model converge in far fewer updates.
    """

    def __init__(
        self,
        durations: Sequence[float],
        max_batch_seconds: float,
        max_batch_size: int = 64,
        shuffle: bool = True,
        seed: int = 0,
        sorted_epochs: int = 0,
    ) -> None:
        if max_batch_seconds <= 0 or max_batch_size <= 0:
            raise ValueError("max_batch_seconds and max_batch_size must be positive")
        self.durations = list(durations)
        self.max_batch_seconds = max_batch_seconds
        self.max_batch_size = max_batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.sorted_epochs = sorted_epochs
        self.epoch = 0
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch = epoch
        self.start_batch = start_batch

    def batches(self, epoch: int) -> list[list[int]]:
        rng = random.Random(self.seed * 100_003 + epoch)
        order = list(range(len(self.durations)))
        shuffle = self.shuffle and epoch >= self.sorted_epochs
        if shuffle:
            # Jitter durations by ±10% before sorting, so bucket membership changes per epoch.
            keys = {i: self.durations[i] * rng.uniform(0.9, 1.1) for i in order}
        else:
            keys = {i: self.durations[i] for i in order}
        order.sort(key=keys.__getitem__)
        batches: list[list[int]] = []
        current: list[int] = []
        longest = 0.0
        for i in order:
            longest_if_added = max(longest, self.durations[i])
            too_long = longest_if_added * (len(current) + 1) > self.max_batch_seconds
            if current and (too_long or len(current) >= self.max_batch_size):
                batches.append(current)
                current, longest_if_added = [], self.durations[i]
            current.append(i)
            longest = longest_if_added
        if current:
            batches.append(current)
        if shuffle:
            rng.shuffle(batches)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.batches(self.epoch)[self.start_batch :]

    def __len__(self) -> int:
        return max(0, len(self.batches(self.epoch)) - self.start_batch)
