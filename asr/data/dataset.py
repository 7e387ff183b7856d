"""The utterance dataset: audio read (or cached features loaded) and text encoded.

The dataset returns a :class:`~asr.data.skips.Skipped` record, instead of raising, for an
utterance whose audio cannot be read (missing, empty, not audio, too short), whose audio is
truncated (a WAV file that holds fewer samples than its header declares, or a segment that runs
past the end of its file: its transcript would be paired with part of the speech), or whose
text cannot be encoded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from asr.audio import AudioFile, audio_duration
from asr.data.manifest import Utterance
from asr.data.skips import Skipped
from asr.errors import AudioError, TextError
from asr.text import Vocabulary

log = logging.getLogger(__name__)


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
        """The cache file of ``utt``; AudioError when its audio file cannot be looked at."""
        try:
            stat = utt.audio.stat()
        except FileNotFoundError:
            raise AudioError(f"audio file {utt.audio} does not exist") from None
        except OSError as error:
            raise AudioError(f"audio file {utt.audio} cannot be read ({error.strerror})") from None
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
        whole = utt.offset is None
        with AudioFile(utt.audio, self.sample_rate) as file:  # one open: header, then samples
            if whole and file.info is not None and file.info.truncated:
                raise TruncatedAudio(file.info.truncation_message())
            samples = file.read(
                utt.offset or 0.0, None if whole else utt.duration, self.min_samples
            )
        waveform = torch.from_numpy(samples)
        _check_complete(utt, waveform, self.sample_rate)
        if self.cache_audio:
            self._cache[index] = (waveform.clamp(-1, 1) * 32767.0).round().to(torch.int16)
            # The first read returns what every later read will (the int16 copy), so a batch
            # does not depend on whether its audio was read before (an exact resume does not
            # repeat the normalisation pass that first read it).
            return self._cache[index].float() / 32767.0
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
        except TruncatedAudio as error:
            return Skipped(utt.id, "truncated audio", str(error))
        except AudioError as error:
            return Skipped(utt.id, "unreadable audio", str(error))
        except TextError as error:
            return Skipped(utt.id, "text outside vocabulary", str(error))
        return Example(utt.id, waveform, tokens, utt.text, num_samples=len(waveform))

    def durations(self) -> list[float]:
        """Seconds per utterance (manifest value, else read from the file header)."""
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


class TruncatedAudio(AudioError):
    """Audio that holds less than its header or its manifest line says."""


def _check_complete(utt: Utterance, waveform: torch.Tensor, sample_rate: int) -> None:
    """Raise TruncatedAudio when the segment ``waveform`` (S,) is only part of what ``utt``
    describes (a whole file's truncation is read from its header when it is opened)."""
    if utt.offset is None:
        return
    # Durations in manifests are rounded (to 0.1 ms by the corpus preparation): allow 10 ms.
    if len(waveform) < (utt.duration - 0.01) * sample_rate:
        raise TruncatedAudio(
            f"segment of audio file {utt.audio} from {utt.offset:.2f} s for {utt.duration:.2f} s "
            f"runs past the end of the file ({len(waveform) / sample_rate:.2f} s read)"
        )
