"""Energy-based voice activity detection: where a long recording can be cut into segments.

An attention model decodes best what looks like its training utterances, a sentence or two with
a little silence around it; given ten minutes at once it loses its place and loops or stops
early. So long audio is cut at pauses, and never into pieces longer than ``max_segment_seconds``.

The detector works on 10 ms frames (no model, nothing to download):

1. frame energies in dB (:class:`EnergyMeter` computes them block by block, so an hour-long
   file never has to be in memory at once; 360,000 floats an hour);
2. a frame is speech when its energy exceeds an absolute floor (``silence_db``, dBFS), the
   recording's noise floor (10th percentile of the frame energies) by ``min_snr_db``, and a
   level ``threshold_ratio`` of the way from that floor up to the loud level (99th percentile):
   adaptive to the recording's level and background noise, and deaf to steady noise;
3. gaps shorter than ``min_pause_seconds`` are filled (a word's closure or a breath does not end
   a segment), and regions with less than ``min_speech_seconds`` of speech frames dropped
   (clicks);
4. a region longer than ``max_segment_seconds`` is cut where it is quietest (lowest energy,
   smoothed over 100 ms) between half and all of the maximum from its start;
5. each segment is widened by ``padding_seconds`` of context on either side, without
   overlapping its neighbours, so that a soft onset just below the threshold is not clipped;
   less than a pause between speech and the file's start or end is not a pause, and belongs to
   the segment (a file holding one utterance is decoded whole, as in training).
   Only 20 ms: models trained on tightly trimmed utterances (as the synthetic corpus is) read
   extra silence as something to spell. docs/transcribe.md has the measurements (WER of long
   recordings minus one by one, las_tiny, greedy: -0.1, +0.5, +0.9, +5.8 points with 0, 0.02,
   0.05, 0.15 s between utterances of silence; +2.4, +0.8, +1.7, +14.9 with noise).

>>> import numpy as np
>>> rate = 16000
>>> burst = 0.3 * np.sin(np.arange(rate) * 0.2)
>>> audio = np.concatenate([np.zeros(rate), burst, np.zeros(rate), burst]).astype(np.float32)
>>> [(round(s / rate, 2), round(e / rate, 2)) for s, e in find_segments(audio, rate)]
[(0.98, 2.02), (2.98, 4.0)]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

FRAME_SECONDS = 0.01
# Added to the mean square before the log so digital silence has a finite energy (-100 dB).
_ENERGY_FLOOR = 1e-10


@dataclass(frozen=True)
class VadOptions:
    """How audio is cut into segments (module docstring)."""

    max_segment_seconds: float = 20.0
    min_pause_seconds: float = 0.3
    min_speech_seconds: float = 0.1
    padding_seconds: float = 0.02
    threshold_ratio: float = 0.3
    min_snr_db: float = 6.0
    silence_db: float = -60.0

    def __post_init__(self) -> None:
        if self.max_segment_seconds < 1.0:
            raise ValueError(
                f"max_segment_seconds must be at least 1 s, got {self.max_segment_seconds}"
            )
        if min(self.min_pause_seconds, self.min_speech_seconds, self.padding_seconds) < 0:
            raise ValueError(
                "min_pause_seconds, min_speech_seconds and padding_seconds must be ≥ 0"
            )
        if not 0.0 < self.threshold_ratio < 1.0:
            raise ValueError(f"threshold_ratio must be in (0, 1), got {self.threshold_ratio}")


class EnergyMeter:
    """Energy in dB of consecutive 10 ms frames of a stream fed in blocks of any size.

    >>> meter = EnergyMeter(sample_rate=100)  # 1-sample frames
    >>> meter.add(np.array([1.0, 0.0], dtype=np.float32))
    >>> meter.add(np.array([0.1], dtype=np.float32))
    >>> meter.energies().round(1).tolist()
    [0.0, -100.0, -20.0]
    """

    def __init__(self, sample_rate: int) -> None:
        self.frame_length = max(1, round(sample_rate * FRAME_SECONDS))
        self._chunks: list[np.ndarray] = []
        self._remainder = np.zeros(0, dtype=np.float32)

    def add(self, samples: np.ndarray) -> None:
        """Append mono samples (S,)."""
        samples = np.concatenate([self._remainder, np.asarray(samples, dtype=np.float32)])
        whole = samples.shape[0] // self.frame_length * self.frame_length
        if whole:
            frames = samples[:whole].reshape(-1, self.frame_length).astype(np.float64)
            self._chunks.append(_to_db(np.square(frames).mean(axis=1)))
        self._remainder = samples[whole:]

    def energies(self) -> np.ndarray:
        """dB of every frame so far (F,), the last partial frame included, as float32."""
        chunks = list(self._chunks)
        if self._remainder.shape[0]:
            chunks.append(_to_db(np.square(self._remainder.astype(np.float64)).mean(keepdims=True)))
        if not chunks:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(chunks).astype(np.float32)


def _to_db(mean_square: np.ndarray) -> np.ndarray:
    return 10.0 * np.log10(mean_square + _ENERGY_FLOOR)


def frame_energies(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Energy in dB of each 10 ms frame of ``samples`` (S,); a partial last frame counts."""
    meter = EnergyMeter(sample_rate)
    meter.add(samples)
    return meter.energies()


def speech_threshold(energies: np.ndarray, options: VadOptions) -> float:
    """The dB level above which a frame is speech (module docstring, step 2)."""
    if energies.size == 0:
        return float("inf")
    noise, loud = np.percentile(energies, [10, 99])
    relative = noise + max(options.min_snr_db, options.threshold_ratio * (loud - noise))
    return float(max(options.silence_db, relative))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of every run of True in a boolean vector."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def speech_regions(energies: np.ndarray, options: VadOptions) -> list[tuple[int, int]]:
    """[start, end) frames of speech, pauses shorter than the minimum filled (steps 2-3)."""
    speech = energies > speech_threshold(energies, options)
    min_pause = round(options.min_pause_seconds / FRAME_SECONDS)
    min_speech = max(1, round(options.min_speech_seconds / FRAME_SECONDS))
    regions: list[list[int]] = []  # [start, end, speech frames]
    for start, end in _runs(speech):
        if regions and start - regions[-1][1] < min_pause:
            regions[-1][1] = end
            regions[-1][2] += end - start
        else:
            regions.append([start, end, end - start])
    return [(start, end) for start, end, voiced in regions if voiced >= min_speech]


def _split_long(
    energies: np.ndarray, start: int, end: int, max_frames: int
) -> list[tuple[int, int]]:
    """Cut [start, end) into pieces of at most ``max_frames`` at the quietest frames (step 4)."""
    pieces = []
    if end - start > max_frames:
        kernel = np.ones(10, dtype=np.float32) / 10  # 100 ms moving average
        smooth = np.convolve(energies[start:end], kernel, mode="same")  # (end - start,)
        offset = start
    while end - start > max_frames:
        low, high = start + max_frames // 2, start + max_frames
        cut = low + int(np.argmin(smooth[low - offset : high - offset]))
        pieces.append((start, cut))
        start = cut
    pieces.append((start, end))
    return pieces


def plan_segments(
    energies: np.ndarray, num_samples: int, sample_rate: int, options: VadOptions | None = None
) -> list[tuple[int, int]]:
    """[start, end) sample spans to decode, in order, not overlapping, each at most
    ``max_segment_seconds`` long; an empty list when the audio holds no speech.

    Args:
        energies: (F,) frame energies in dB, as :class:`EnergyMeter` gives them.
        num_samples: S, the length of the audio the energies describe.
        sample_rate: of that audio.
        options: the detector's settings.
    """
    options = options or VadOptions()
    frame = max(1, round(sample_rate * FRAME_SECONDS))
    padding = round(options.padding_seconds * sample_rate)
    min_pause = round(options.min_pause_seconds * sample_rate)
    max_samples = int(options.max_segment_seconds * sample_rate)
    # Padding counts against the maximum; cuts inside a region get none.
    max_frames = max(1, (max_samples - 2 * padding) // frame)
    pieces = []  # (start frame, end frame, cut before, cut after)
    for start, end in speech_regions(energies, options):
        split = _split_long(energies, start, end, max_frames)
        for i, (piece_start, piece_end) in enumerate(split):
            pieces.append((piece_start, piece_end, i > 0, i < len(split) - 1))
    spans = []
    for i, (start, end, cut_before, cut_after) in enumerate(pieces):
        start, end = start * frame, min(end * frame, num_samples)
        if not cut_before:
            previous_end = pieces[i - 1][1] * frame if i else 0
            limit = (previous_end + start + 1) // 2 if i else 0  # no further than half the gap
            start = max(start - padding, limit)
            if i == 0 and start < min_pause:  # less than a pause before it: the file's start
                start = 0
        if not cut_after:
            next_start = pieces[i + 1][0] * frame if i + 1 < len(pieces) else num_samples
            limit = (end + next_start) // 2 if i + 1 < len(pieces) else num_samples
            end = min(end + padding, limit)
            if i + 1 == len(pieces) and num_samples - end < min_pause:
                end = num_samples
        if end > start:
            spans.append((start, end))
    return spans


def find_segments(
    samples: np.ndarray, sample_rate: int, options: VadOptions | None = None
) -> list[tuple[int, int]]:
    """:func:`plan_segments` of an in-memory mono waveform (S,)."""
    return plan_segments(frame_energies(samples, sample_rate), len(samples), sample_rate, options)


def cut_segments(
    blocks: Iterable[np.ndarray], spans: list[tuple[int, int]]
) -> Iterator[tuple[int, int, np.ndarray]]:
    """The samples of each span, from a stream of consecutive blocks: ``(start, end, samples)``.

    Spans must be ordered and not overlap (as :func:`plan_segments` gives them); at most one
    block plus one span is held at a time.
    """
    spans = list(spans)
    if not spans:
        return
    index = 0
    buffer = np.zeros(0, dtype=np.float32)
    buffer_start = 0  # position of buffer[0] in the stream
    for block in blocks:
        buffer = np.concatenate([buffer, block])
        while index < len(spans) and spans[index][1] <= buffer_start + buffer.shape[0]:
            start, end = spans[index]
            yield start, end, buffer[start - buffer_start : end - buffer_start].copy()
            index += 1
        if index == len(spans):
            return
        # Keep only what the next span needs.
        drop = min(max(0, spans[index][0] - buffer_start), buffer.shape[0])
        buffer, buffer_start = buffer[drop:], buffer_start + drop
    for start, end in spans[index:]:  # the stream ended early: what there is of each span
        piece = buffer[max(0, start - buffer_start) : max(0, end - buffer_start)]
        if piece.shape[0]:
            yield start, start + piece.shape[0], piece.copy()


def quietest_point(samples: np.ndarray, sample_rate: int) -> int | None:
    """Where to cut a waveform (S,) in two: the quietest 100 ms in its middle third, in samples.

    None when it is too short to cut (under 1 s).
    """
    if samples.shape[0] < sample_rate:
        return None
    energies = frame_energies(samples, sample_rate)
    smooth = np.convolve(energies, np.ones(10, dtype=np.float32) / 10, mode="same")
    low, high = len(smooth) // 3, 2 * len(smooth) // 3
    frame = max(1, round(sample_rate * FRAME_SECONDS))
    return (low + int(np.argmin(smooth[low:high]))) * frame
