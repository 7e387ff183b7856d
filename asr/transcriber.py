"""Transcribe recordings as people have them: any format, rate, channel count and length.

>>> from asr import Transcriber                                        # doctest: +SKIP
>>> transcriber = Transcriber.from_checkpoint("exp/best.pt")           # doctest: +SKIP
>>> result = transcriber.transcribe("lecture.mp3")                     # doctest: +SKIP
>>> result.text, result.words[0].start, result.confidence             # doctest: +SKIP

How a file becomes a :class:`~asr.transcription.Transcription`:

1. **Reading.** Each file is opened once and read whole or streamed, mono at the model's rate,
   with a warning for a truncated or narrowband file (:class:`asr.recording.Recording`).
2. **Segmentation.** :mod:`asr.vad` cuts the audio at pauses into segments of at most
   ``max_segment_seconds``; a file with no speech gives an empty transcript and no segments.
3. **Decoding.** Segments of up to ``4 × batch_size`` files at a time are sorted by length and
   decoded in batches by :meth:`asr.recognizer.Recognizer.transcribe_batch` (greedy or beam
   search), the one decoding path of the library: the search itself returns every chosen
   token's log-probability and the attention alignment, so each segment is searched once.
4. **Guarding.** A segment whose transcript shows an attention failure — it never emitted
   ``<eos>`` (the search forced it at the length limit), a phrase repeated 4 times in a row
   ("hai hai hai hai"), or under 2 characters a second over 4 s (the speller stopped early) — is
   split at its quietest point and both halves decoded again, at most twice.
5. **Words, times, confidence** come from the alignment and the log-probabilities
   (:func:`asr.transcription.make_segment`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
from torch import Tensor

from asr.audio import pad_waveforms
from asr.errors import AudioError, UserError
from asr.inputs import AUDIO_SUFFIXES, expand_inputs
from asr.models.language_model import CharLSTMLM
from asr.recognizer import DecodingOptions, Recognizer
from asr.recording import AudioInput, Recording
from asr.search import Hypothesis
from asr.transcription import Segment, Transcription, Word, make_segment
from asr.vad import VadOptions, quietest_point

__all__ = [
    "AUDIO_SUFFIXES",
    "Segment",
    "Transcriber",
    "Transcription",
    "Word",
    "expand_inputs",
    "has_loop",
]

MAX_RETRY_DEPTH = 2
# Measured on CPU (docs/transcribe.md): 4 beams cut las_tiny's test WER from 28.8% to 25.6% for
# 1.5x its greedy decoding time (as for las_small); 10 beams add nothing more at 2.5x or more.
DEFAULT_BEAM_SIZE = 4
# A file whose average token confidence falls below this is said to look unlike the training
# data. Measured with the demo checkpoint (2026-12-02, beam 4): 40 test files of its own
# espeak-ng voices averaged 0.64-0.87 (median 0.77); the same 40 sentences spoken by a neural
# voice it never heard (piper, en_US-joe-medium) 0.53-0.65 (median 0.58), 37 of them below 0.63
# and each transcript mostly wrong (WER above 90% on that voice).
LOW_CONFIDENCE = 0.63

OnSegment = Callable[[str, Segment, Tensor], None]


@dataclass
class _Piece:
    """A segment waiting to be decoded."""

    file: int  # index into the current group of files
    start: int  # samples from the file's start
    samples: np.ndarray
    depth: int = 0  # how many times it was split after a failed decoding


@dataclass
class _FileState:
    name: str
    recording: Recording | None = None  # open until its segments are read
    duration: float = 0.0  # seconds
    segments: list[Segment] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None


class Transcriber:
    """A recognizer with everything around it: reading, segmentation, batching, word times.

    Args:
        recognizer: the model, on the device it should run on, in ``eval()`` mode.
        beam_size: 1 for greedy search; None means ``DEFAULT_BEAM_SIZE`` (4) on any device
            (docs/transcribe.md measures it: a tenth fewer word errors for 1.5x the time).
        batch_size: segments decoded together.
        vad: how audio is cut into segments.
        decoding: the other search options (length ratios, length penalty, attention window,
            CTC and LM weights, N-best); its ``beam_size`` gives way to ``beam_size``.
        language_model: the LM that ``decoding.lm_weight`` and ``lm_rescore_weight`` use, on
            the recognizer's device, with its vocabulary
            (:meth:`asr.recognizer.Recognizer.check_language_model`).
        low_confidence: a file whose average confidence is below this gets a warning that the
            model may not fit its audio (None: never). The default is measured on the demo
            model (``LOW_CONFIDENCE``); another model's confidences may sit elsewhere.
    """

    def __init__(
        self,
        recognizer: Recognizer,
        beam_size: int | None = None,
        batch_size: int = 16,
        vad: VadOptions | None = None,
        decoding: DecodingOptions | None = None,
        language_model: CharLSTMLM | None = None,
        low_confidence: float | None = LOW_CONFIDENCE,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.recognizer = recognizer.eval()
        self.device = next(recognizer.parameters()).device
        if beam_size is None:
            beam_size = DEFAULT_BEAM_SIZE
        if beam_size < 1:
            raise ValueError(f"beam_size must be at least 1, got {beam_size}")
        self.options = replace(decoding or DecodingOptions(), beam_size=beam_size)
        self.language_model = language_model
        recognizer.check_options(self.options, language_model)
        self.batch_size = batch_size
        self.low_confidence = low_confidence
        self.vad = vad or VadOptions()
        filterbank = recognizer.filterbank
        self.sample_rate = recognizer.sample_rate
        self.frame_seconds = (
            filterbank.hop_length
            / self.sample_rate
            * 2**recognizer.model.listener.num_pyramid_layers
        )
        self._window_length = filterbank.window_length

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike,
        device: str | torch.device | None = None,
        beam_size: int | None = None,
        batch_size: int = 16,
        max_segment_seconds: float | None = None,
        vad: VadOptions | None = None,
        lm: str | os.PathLike | None = None,
        decoding: Mapping | None = None,
        low_confidence: float | None = LOW_CONFIDENCE,
    ) -> Transcriber:
        """Load a checkpoint (see :mod:`asr.checkpoint`) onto ``device`` (default: CUDA if any).

        The search uses the checkpoint's ``decoding`` settings (length ratios, length penalty,
        attention window, CTC and LM weights), updated by ``decoding`` (``DecodingOptions``
        field names, e.g. ``{"lm_weight": 0.3, "nbest": 4}``), with ``beam_size`` chosen here.
        ``lm`` is a language model file (``asr train-lm``) for shallow fusion and rescoring; its
        vocabulary must be the checkpoint's. ``max_segment_seconds`` defaults to the shorter of
        20 s and the longest utterance the model was trained on (the checkpoint's
        ``data.max_duration``).
        """
        from asr.checkpoint import load_language_model, read_checkpoint, recognizer_from_payload

        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if device.type == "cuda" and not torch.cuda.is_available():
            raise UserError(f"device {device} was asked for, but torch sees no CUDA device")
        payload = read_checkpoint(path)
        recognizer = recognizer_from_payload(payload, path).to(device).eval()
        config = payload["config"]
        decoding_cfg = dict(config.get("decoding") or {})
        known = DecodingOptions.__dataclass_fields__
        decoding_cfg = {k: v for k, v in decoding_cfg.items() if k in known}
        merged = {**decoding_cfg, **dict(decoding or {})}
        if beam_size is None:  # N best need at least N beams
            beam_size = max(DEFAULT_BEAM_SIZE, int(merged.get("nbest", 1)))
        decoding = DecodingOptions.from_config({**merged, "beam_size": beam_size})
        language_model = None
        if lm is not None:
            language_model = recognizer.check_language_model(*load_language_model(lm, device), lm)
        vad = vad or VadOptions()
        if max_segment_seconds is None:
            trained_max = (config.get("data") or {}).get("max_duration") or 20.0
            max_segment_seconds = min(20.0, float(trained_max))
        vad = VadOptions(**{**asdict(vad), "max_segment_seconds": max_segment_seconds})
        return cls(recognizer, beam_size, batch_size, vad, decoding, language_model, low_confidence)

    # -- public API ----------------------------------------------------------------------------

    def transcribe(self, audio: AudioInput, sample_rate: int | None = None) -> Transcription:
        """Transcribe one file (any path soundfile or librosa reads) or waveform.

        A waveform is a tensor or array (S,) or (C, S) at ``sample_rate`` Hz (default: the
        model's). Raises AudioError for a missing, empty or unreadable file.
        """
        result = next(self.transcribe_sources([audio], sample_rate=sample_rate))
        if result.error:
            raise AudioError(result.error)
        return result

    def transcribe_many(
        self, inputs: Iterable[AudioInput], sample_rate: int | None = None
    ) -> list[Transcription]:
        """Transcribe many files (or folders and globs, see :func:`expand_inputs`), batched
        across files. One result per file, in input order (a folder or glob contributes its
        files in its place); a file that failed has ``error`` set."""
        return list(self.iter_transcribe(inputs, sample_rate=sample_rate))

    def iter_transcribe(
        self,
        inputs: Iterable[AudioInput],
        sample_rate: int | None = None,
        on_segment: OnSegment | None = None,
    ) -> Iterator[Transcription]:
        """Like :meth:`transcribe_many`, yielding results in input order as groups finish.

        ``on_segment(source, segment, alignment)`` is called after each segment is decoded with
        its (U + 1, T') attention alignment, which is not kept otherwise.
        """
        sources: list[AudioInput] = []
        for item in inputs:
            if isinstance(item, (np.ndarray, Tensor)):
                sources.append(item)
            else:  # a folder or a glob: its files, in its place
                sources += expand_inputs([item])
        yield from self.transcribe_sources(sources, sample_rate, on_segment)

    def transcribe_sources(
        self,
        sources: Sequence[AudioInput],
        sample_rate: int | None = None,
        on_segment: OnSegment | None = None,
    ) -> Iterator[Transcription]:
        """Like :meth:`iter_transcribe` for files and waveforms taken as they are (no folder or
        glob expansion: for a caller that has expanded its inputs already)."""
        group = 4 * self.batch_size
        for first in range(0, len(sources), group):
            yield from self._transcribe_group(
                sources[first : first + group], sample_rate, on_segment
            )

    # -- the pipeline --------------------------------------------------------------------------

    def _transcribe_group(
        self,
        sources: Sequence[AudioInput],
        sample_rate: int | None,
        on_segment: OnSegment | None,
    ) -> Iterator[Transcription]:
        states: list[_FileState] = []
        pool: list[_Piece] = []
        with contextlib.ExitStack() as open_files:
            for source in sources:  # open each file once: its header orders the group
                state = _FileState(source if isinstance(source, str) else "<waveform>")
                try:
                    state.recording = Recording(source, self.sample_rate, sample_rate)
                    open_files.enter_context(state.recording)
                    state.warnings = state.recording.warnings
                except AudioError as error:
                    state.error = str(error)
                states.append(state)
            order = sorted(
                range(len(states)),
                key=lambda i: -(states[i].recording.header_seconds if states[i].recording else 0),
            )
            for i in order:
                state, recording = states[i], states[i].recording
                if recording is None:
                    continue
                try:
                    for start, _, samples in recording.segments(self.vad):
                        # A copy, so that a waiting piece does not keep its whole file in memory.
                        pool.append(_Piece(i, start, samples.copy()))
                        while len(pool) >= 2 * self.batch_size:
                            self._decode_some(pool, states, on_segment)
                    state.duration = recording.duration
                except AudioError as error:
                    state.error = str(error)
                    pool[:] = [piece for piece in pool if piece.file != i]
                finally:
                    recording.close()
                    state.recording = None
        while pool:
            self._decode_some(pool, states, on_segment)
        for state in states:
            yield _finish(state, self.low_confidence)

    def _decode_some(
        self, pool: list[_Piece], states: list[_FileState], on_segment: OnSegment | None
    ) -> None:
        """Decode one batch of similar length from the pool (the longest ones)."""
        pool.sort(key=lambda piece: piece.samples.shape[0])
        batch = pool[-self.batch_size :]
        del pool[-self.batch_size :]
        waveforms, lens = pad_waveforms([p.samples for p in batch], self._window_length)
        decoded = self.recognizer.transcribe_batch(
            waveforms.to(self.device), lens.to(self.device), self.options, self.language_model
        )
        for piece, hypothesis in zip(batch, decoded, strict=True):
            state = states[piece.file]
            if state.error is not None:
                continue
            if self._looks_failed(piece, hypothesis) and piece.depth < MAX_RETRY_DEPTH:
                cut = quietest_point(piece.samples, self.sample_rate)
                if cut is not None:
                    for start, samples in (
                        (piece.start, piece.samples[:cut]),
                        (piece.start + cut, piece.samples[cut:]),
                    ):
                        pool.append(_Piece(piece.file, start, samples, piece.depth + 1))
                    continue
            start = piece.start / self.sample_rate
            end = start + piece.samples.shape[0] / self.sample_rate
            vocabulary = self.recognizer.vocabulary
            segment = make_segment(hypothesis, start, end, self.frame_seconds, vocabulary)
            state.segments.append(segment)
            if on_segment is not None:
                on_segment(state.name, segment, hypothesis.alignment)

    def _looks_failed(self, piece: _Piece, hypothesis: Hypothesis) -> bool:
        """Attention failures worth a second try on shorter audio (module docstring, step 4)."""
        seconds = piece.samples.shape[0] / self.sample_rate
        if hypothesis.reached_limit and hypothesis.tokens:
            return True
        if has_loop(hypothesis.text.split()):
            return True
        return seconds >= 4.0 and len(hypothesis.text) < 2.0 * seconds


def _finish(state: _FileState, low_confidence: float | None) -> Transcription:
    if state.error is not None:
        return Transcription(state.name, error=state.error, warnings=state.warnings)
    segments = sorted(state.segments, key=lambda s: s.start)
    text = " ".join(s.text for s in segments if s.text)
    result = Transcription(state.name, text, segments, state.duration, warnings=state.warnings)
    confidence = result.confidence
    if low_confidence is not None and confidence is not None and confidence < low_confidence:
        # Not silent garbage: a voice, room or microphone far from the training data gives
        # uniformly unsure tokens, and its transcript is then mostly wrong.
        result.warnings.append(
            f"{state.name}: average confidence {confidence:.2f} is below {low_confidence:.2f}: "
            "this audio looks unlike the model's training data; the transcript may be wrong"
        )
    return result


def has_loop(words: Sequence[str], repeats: int = 4, longest: int = 4) -> bool:
    """Whether some phrase of 1 to ``longest`` words occurs ``repeats`` times in a row.

    >>> has_loop("hai hai hai hai".split()), has_loop("no no no".split())
    (True, False)
    >>> has_loop("we go we go we go we go home".split())
    True
    """
    for n in range(1, longest + 1):
        for first in range(0, len(words) - n * repeats + 1):
            phrase = words[first : first + n]
            if all(words[first + k * n : first + (k + 1) * n] == phrase for k in range(1, repeats)):
                return True
    return False
