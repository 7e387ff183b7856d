"""One recording on its way to the transcriber: opened once, read whole or streamed, cut into
segments at pauses, with the warnings it deserves.

A file is opened once (:class:`asr.audio.AudioFile`): its header gives the length used to order
a group of files, then the same open file is downmixed to mono and resampled to the model's rate.
Files up to ``IN_MEMORY_SECONDS`` are read whole; longer ones are streamed twice in
``BLOCK_SECONDS`` blocks (once to measure frame energies, once to cut the segments), so memory
stays bounded whatever the length: an hour needs its 1.4 MB of frame energies, not its 230 MB of
samples. A truncated WAV (its header promises more than it holds) and audio below the model's
rate (narrowband, where the model learnt full-band speech) are transcribed with a warning that
names the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
from torch import Tensor

from asr.audio import AudioFile, resample
from asr.errors import AudioError
from asr.vad import EnergyMeter, VadOptions, cut_segments, find_segments, plan_segments

IN_MEMORY_SECONDS = 120.0
BLOCK_SECONDS = 10.0

AudioInput = str | os.PathLike | np.ndarray | Tensor


class Recording:
    """A file (opened at once, header read) or a waveform, at ``sample_rate`` Hz once read.

    A waveform is (S,) or (C, S), float in [-1, 1], at ``source_rate`` (default: ``sample_rate``).
    Raises AudioError for a missing or empty file; reading errors surface in :meth:`segments`.
    """

    def __init__(self, source: AudioInput, sample_rate: int, source_rate: int | None = None):
        self.sample_rate = sample_rate
        self.warnings: list[str] = []
        self.duration = 0.0  # seconds, known once the segments are read
        self._file: AudioFile | None = None
        self._samples: np.ndarray | None = None
        if isinstance(source, (np.ndarray, Tensor)):
            self.name = "<waveform>"
            self._samples = _mono(source, source_rate or sample_rate, sample_rate)
            if (source_rate or sample_rate) < sample_rate:
                self.warnings.append(self._narrowband("the waveform", source_rate))
            self.header_seconds = self._samples.shape[0] / sample_rate
            return
        self.name = os.fspath(source)
        self._file = AudioFile(self.name, sample_rate)
        info = self._file.info
        self.header_seconds = 0.0 if info is None else info.duration  # 0: unknown (librosa)
        if info is not None and info.sample_rate < sample_rate:
            self.warnings.append(self._narrowband(f"audio file {self.name}", info.sample_rate))
        if info is not None and info.truncated:
            self.warnings.append(info.truncation_message() + "; transcribing what it holds")

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Close the file and drop the samples."""
        if self._file is not None:
            self._file.close()
        self._file = self._samples = None

    def segments(self, vad: VadOptions) -> Iterator[tuple[int, int, np.ndarray]]:
        """(start, end, samples) of each segment, in samples from the start, read whole or
        streamed (module docstring); sets ``duration``."""
        info = None if self._file is None else self._file.info
        if info is not None and info.frames <= 0:
            raise AudioError(f"audio file {self.name} contains no samples")
        if info is None or info.duration <= IN_MEMORY_SECONDS:
            samples = self._file.read() if self._samples is None else self._samples
            self.duration = samples.shape[0] / self.sample_rate
            for start, end in find_segments(samples, self.sample_rate, vad):
                yield start, end, samples[start:end]
            return
        meter, num_samples = EnergyMeter(self.sample_rate), 0
        for block in self._file.blocks(BLOCK_SECONDS):  # first pass: energies only
            meter.add(block)
            num_samples += block.shape[0]
        self.duration = num_samples / self.sample_rate
        spans = plan_segments(meter.energies(), num_samples, self.sample_rate, vad)
        yield from cut_segments(self._file.blocks(BLOCK_SECONDS), spans)  # second pass

    def _narrowband(self, what: str, rate: int) -> str:
        return (
            f"{what} is {rate} Hz audio, below the {self.sample_rate} Hz the model was trained "
            f"on: the model learnt full-band speech, so expect more errors on narrowband audio"
        )


def _mono(source: np.ndarray | Tensor, rate: int, sample_rate: int) -> np.ndarray:
    """A waveform (S,) or (C, S) at ``rate`` as mono float32 (S',) at ``sample_rate``."""
    samples = source.detach().cpu().numpy() if isinstance(source, Tensor) else source
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 2:
        samples = samples.mean(axis=0)
    if samples.ndim != 1:
        raise ValueError(f"a waveform must be (S,) or (C, S), got {samples.shape}")
    return np.clip(resample(samples, rate, sample_rate), -1.0, 1.0)
