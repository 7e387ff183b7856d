"""Transcribe recordings as people have them: any format, rate, channel count and length.

>>> from asr import Transcriber                                        # doctest: +SKIP
>>> transcriber = Transcriber.from_checkpoint("exp/best.pt")           # doctest: +SKIP
>>> result = transcriber.transcribe("lecture.mp3")                     # doctest: +SKIP
>>> result.text, result.words[0].start, result.confidence             # doctest: +SKIP

How a file becomes a :class:`Transcription`:

1. **Reading.** The file is downmixed to mono and resampled to the model's rate (soxr). Files up
   to ``IN_MEMORY_SECONDS`` are read whole with :func:`asr.audio.load_audio`; longer ones are
   streamed twice in ``BLOCK_SECONDS`` blocks (once to measure frame energies, once to cut the
   segments), so memory stays bounded whatever the length: an hour needs its 1.4 MB of frame
   energies, not its 230 MB of samples.
2. **Segmentation.** :mod:`asr.vad` cuts the audio at pauses into segments of at most
   ``max_segment_seconds``; a file with no speech gives an empty transcript and no segments.
3. **Decoding.** Segments of up to ``4 × batch_size`` files at a time are sorted by length and
   decoded in batches (greedy or beam search). Each batch's chosen tokens are then scored by the
   speller, teacher-forced on the listener outputs the search already computed (captured by a
   forward hook, so the listener runs once): that gives every token's exact probability and the
   attention alignment of the transcript.
4. **Guarding.** A segment whose transcript shows an attention failure — it never emitted
   ``<eos>`` (the search forced it at the length limit), a phrase repeated 4 times in a row
   ("hai hai hai hai"), or under 2 characters a second over 4 s (the speller stopped early) — is
   split at its quietest point and both halves decoded again, at most twice.
5. **Words, times, confidence.** Each alignment row's expected listener frame (the attention
   weights' mean position) times the listener's frame duration (10 ms × 2^pyramid layers), plus
   the segment's start, says where the speller looked as it emitted that token. A word starts at
   the middle of the frame the space before it looked at (the boundary), or, for a segment's
   first word, at the start of the frame its first letter looked at; it ends at the boundary
   after it (the following space or ``<eos>``). A word's confidence is the geometric mean of its
   characters' probabilities; a segment's and a file's is the geometric mean over all their
   tokens, ``<eos>`` included.
"""

from __future__ import annotations

import glob
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile
import soxr
import torch
from torch import Tensor

from asr.audio import load_audio, resample
from asr.errors import AudioError, UserError
from asr.recognizer import DecodingOptions, Recognizer
from asr.text import Vocabulary
from asr.vad import (
    EnergyMeter,
    VadOptions,
    cut_segments,
    find_segments,
    plan_segments,
    quietest_point,
)

IN_MEMORY_SECONDS = 120.0
BLOCK_SECONDS = 10.0
# What a folder is searched for; a file named on its own is always tried, whatever its suffix.
AUDIO_SUFFIXES = frozenset(
    {".wav", ".wave", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".sph", ".nist", ".aif", ".aiff"}
    | {".aifc", ".au", ".snd", ".w64", ".rf64", ".caf", ".m4a", ".aac", ".wma", ".webm"}
)
MAX_RETRY_DEPTH = 2
# Measured on CPU (docs/transcribe.md): 4 beams cut las_tiny's test WER from 28.8% to 25.6% for
# 1.5x its greedy decoding time (as for las_small); 10 beams add nothing more at 2.5x or more.
DEFAULT_BEAM_SIZE = 4

AudioInput = str | os.PathLike | np.ndarray | Tensor


@dataclass
class Word:
    """One word: its spelling, start and end in seconds from the file's start, and confidence."""

    word: str
    start: float
    end: float
    confidence: float


@dataclass
class Segment:
    """One decoded stretch of audio between pauses; times in seconds from the file's start."""

    start: float
    end: float
    text: str
    confidence: float  # geometric mean of the token probabilities, <eos> included
    words: list[Word] = field(default_factory=list)
    log_probability: float = 0.0  # sum over the tokens, to combine segments' confidences
    num_tokens: int = 0


@dataclass
class Transcription:
    """What a recording said. ``error`` is set (and the rest empty) when it could not be read."""

    source: str
    text: str = ""
    segments: list[Segment] = field(default_factory=list)
    duration: float = 0.0  # seconds of audio
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def words(self) -> list[Word]:
        return [word for segment in self.segments for word in segment.words]

    @property
    def confidence(self) -> float | None:
        """Geometric mean of all token probabilities; None without any segment."""
        tokens = sum(s.num_tokens for s in self.segments)
        if not tokens:
            return None
        return math.exp(sum(s.log_probability for s in self.segments) / tokens)

    def to_dict(self) -> dict:
        """Plain data for JSON: times rounded to milliseconds, confidences to 4 digits."""
        return {
            "file": self.source,
            "text": self.text,
            "duration": round(self.duration, 3),
            "confidence": _round(self.confidence, 4),
            "segments": [
                {
                    "start": round(s.start, 3),
                    "end": round(s.end, 3),
                    "text": s.text,
                    "confidence": _round(s.confidence, 4),
                    "words": [
                        {
                            "word": w.word,
                            "start": round(w.start, 3),
                            "end": round(w.end, 3),
                            "confidence": _round(w.confidence, 4),
                        }
                        for w in s.words
                    ],
                }
                for s in self.segments
            ],
            **({"error": self.error} if self.error else {}),
        }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


# ---------------------------------------------------------------------------------------------
# Inputs: files, folders and globs


def expand_inputs(inputs: Iterable[str | os.PathLike]) -> list[str]:
    """Files named by ``inputs``, in order, without duplicates.

    A folder stands for the audio files below it (recursively, sorted, by suffix:
    ``AUDIO_SUFFIXES``); a pattern with ``*``, ``?`` or ``[`` that names no existing path is a
    glob (``**`` recurses). Anything else is kept as given, so a missing file is reported when it
    is transcribed; a glob that matches nothing stays as itself and is reported the same way.
    """
    files: list[str] = []
    for item in inputs:
        item = os.fspath(item)
        if os.path.isdir(item):
            files += _audio_files_below(item)
        elif not os.path.exists(item) and glob.has_magic(item):
            matches = sorted(glob.glob(item, recursive=True))
            expanded = []
            for match in matches:
                expanded += _audio_files_below(match) if os.path.isdir(match) else [match]
            files += expanded or [item]
        else:
            files.append(item)
    return list(dict.fromkeys(files))


def _audio_files_below(folder: str) -> list[str]:
    found = []
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        found += [
            os.path.join(root, name)
            for name in sorted(names)
            if Path(name).suffix.lower() in AUDIO_SUFFIXES
        ]
    return found


# ---------------------------------------------------------------------------------------------
# Audio sources: read whole, or streamed in blocks


class _Audio:
    """Mono float32 audio at the model's rate, readable (as blocks) any number of times."""

    name: str
    duration: float  # seconds

    def blocks(self) -> Iterator[np.ndarray]:
        raise NotImplementedError


class _InMemory(_Audio):
    def __init__(self, name: str, samples: np.ndarray, sample_rate: int) -> None:
        self.name, self.samples = name, samples
        self.duration = samples.shape[0] / sample_rate

    def blocks(self) -> Iterator[np.ndarray]:
        yield self.samples


class _Streamed(_Audio):
    """A file read block by block, downmixed and resampled on the fly (soxr's stream)."""

    def __init__(self, path: str, info, sample_rate: int) -> None:
        self.name, self.sample_rate = path, sample_rate
        self.file_rate = int(info.samplerate)
        self.duration = info.frames / info.samplerate

    def blocks(self) -> Iterator[np.ndarray]:
        block = int(BLOCK_SECONDS * self.file_rate)
        try:
            with soundfile.SoundFile(self.name) as file:
                stream = None
                if self.file_rate != self.sample_rate:
                    stream = soxr.ResampleStream(self.file_rate, self.sample_rate, 1, "float32")
                while True:
                    data = file.read(block, dtype="float32", always_2d=True)  # (S, C)
                    last = data.shape[0] < block
                    mono = data.mean(axis=1, dtype=np.float32)
                    if stream is not None:
                        mono = stream.resample_chunk(mono, last=last)
                    yield np.clip(mono, -1.0, 1.0)
                    if last:
                        return
        except (soundfile.LibsndfileError, RuntimeError) as error:
            raise AudioError(
                f"audio file {self.name} is truncated or corrupt and cannot be decoded: {error}"
            ) from None


def open_audio(source: AudioInput, sample_rate: int, source_rate: int | None = None) -> _Audio:
    """The audio of a path or a waveform at ``sample_rate``; AudioError when it is unusable.

    A waveform is (S,) or (C, S), float in [-1, 1], at ``source_rate`` (default: ``sample_rate``).
    """
    if isinstance(source, (np.ndarray, Tensor)):
        samples = source.detach().cpu().numpy() if isinstance(source, Tensor) else source
        samples = np.asarray(samples, dtype=np.float32)
        if samples.ndim == 2:
            samples = samples.mean(axis=0)
        if samples.ndim != 1:
            raise ValueError(f"a waveform must be (S,) or (C, S), got {samples.shape}")
        samples = resample(samples, source_rate or sample_rate, sample_rate)
        return _InMemory("<waveform>", np.clip(samples, -1.0, 1.0), sample_rate)
    path = os.fspath(source)
    try:
        info = soundfile.info(path)
    except Exception:  # not a file libsndfile reads: load_audio tries librosa or says why not
        return _InMemory(path, load_audio(path, sample_rate).numpy(), sample_rate)
    if info.frames <= 0:
        raise AudioError(f"audio file {path} contains no samples")
    if info.frames / info.samplerate <= IN_MEMORY_SECONDS:
        return _InMemory(path, load_audio(path, sample_rate).numpy(), sample_rate)
    return _Streamed(path, info, sample_rate)


def _probe_duration(source: AudioInput, waveform_rate: int) -> float:
    """Seconds of audio from the header (0 when unknown), to sort files by length."""
    if isinstance(source, (np.ndarray, Tensor)):
        return float(source.shape[-1]) / waveform_rate
    try:
        return float(soundfile.info(os.fspath(source)).duration)
    except Exception:
        return 0.0


# ---------------------------------------------------------------------------------------------
# The transcriber


@dataclass
class _Piece:
    """A segment waiting to be decoded."""

    file: int  # index into the current group of files
    start: int  # samples from the file's start
    samples: np.ndarray
    depth: int = 0  # how many times it was split after a failed decoding


@dataclass
class _FileState:
    duration: float = 0.0  # seconds
    segments: list[Segment] = field(default_factory=list)
    error: str | None = None


@dataclass
class _Decoded:
    tokens: list[int]
    log_probs: Tensor  # (U + 1,) of the tokens and <eos>
    alignment: Tensor  # (U + 1, T')
    hit_limit: bool  # the search forced <eos> at the length limit


class Transcriber:
    """A recognizer with everything around it: reading, segmentation, batching, word times.

    Args:
        recognizer: the model, on the device it should run on, in ``eval()`` mode.
        beam_size: 1 for greedy search; None means ``DEFAULT_BEAM_SIZE`` (4) on any device
            (docs/transcribe.md measures it: a tenth fewer word errors for 1.5x the time).
        batch_size: segments decoded together.
        vad: how audio is cut into segments.
        decoding: other search options (length ratios, length penalty).
    """

    def __init__(
        self,
        recognizer: Recognizer,
        beam_size: int | None = None,
        batch_size: int = 16,
        vad: VadOptions | None = None,
        decoding: DecodingOptions | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.recognizer = recognizer.eval()
        self.device = next(recognizer.parameters()).device
        if beam_size is None:
            beam_size = DEFAULT_BEAM_SIZE
        if beam_size < 1:
            raise ValueError(f"beam_size must be at least 1, got {beam_size}")
        decoding = decoding or DecodingOptions()
        self.options = DecodingOptions(
            beam_size=beam_size,
            length_penalty=decoding.length_penalty,
            max_length_ratio=decoding.max_length_ratio,
            min_length_ratio=decoding.min_length_ratio,
        )
        self.batch_size = batch_size
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
    ) -> Transcriber:
        """Load a checkpoint (see :mod:`asr.checkpoint`) onto ``device`` (default: CUDA if any).

        ``max_segment_seconds`` defaults to the shorter of 20 s and the longest utterance the
        model was trained on (the checkpoint's ``data.max_duration``).
        """
        from asr.checkpoint import read_checkpoint, recognizer_from_payload

        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if device.type == "cuda" and not torch.cuda.is_available():
            raise UserError(f"device {device} was asked for, but torch sees no CUDA device")
        payload = read_checkpoint(path)
        recognizer = recognizer_from_payload(payload, path).to(device).eval()
        config = payload["config"]
        decoding_cfg = dict(config.get("decoding") or {})
        known = DecodingOptions.__dataclass_fields__
        decoding = DecodingOptions(**{k: v for k, v in decoding_cfg.items() if k in known})
        vad = vad or VadOptions()
        if max_segment_seconds is None:
            trained_max = (config.get("data") or {}).get("max_duration") or 20.0
            max_segment_seconds = min(20.0, float(trained_max))
        vad = VadOptions(**{**asdict(vad), "max_segment_seconds": max_segment_seconds})
        return cls(recognizer, beam_size, batch_size, vad, decoding)

    # -- public API ----------------------------------------------------------------------------

    def transcribe(self, audio: AudioInput, sample_rate: int | None = None) -> Transcription:
        """Transcribe one file (any path soundfile or librosa reads) or waveform.

        A waveform is a tensor or array (S,) or (C, S) at ``sample_rate`` Hz (default: the
        model's). Raises AudioError for a missing, empty or unreadable file.
        """
        result = next(self.iter_transcribe([audio], sample_rate=sample_rate))
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
        on_segment: Callable[[str, Segment, Tensor], None] | None = None,
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
        on_segment: Callable[[str, Segment, Tensor], None] | None,
    ) -> Iterator[Transcription]:
        names = [s if isinstance(s, str) else "<waveform>" for s in sources]
        states = [_FileState() for _ in sources]
        pool: list[_Piece] = []
        rate = sample_rate or self.sample_rate
        order = sorted(range(len(sources)), key=lambda i: -_probe_duration(sources[i], rate))
        for i in order:
            try:
                audio = open_audio(sources[i], self.sample_rate, sample_rate)
                for start, _, samples in self._segments(audio):
                    # A copy, so that a waiting piece does not keep its whole file in memory.
                    pool.append(_Piece(i, start, samples.copy()))
                    while len(pool) >= 2 * self.batch_size:
                        self._decode_some(pool, states, names, on_segment)
                states[i].duration = audio.duration
                del audio
            except AudioError as error:
                states[i].error = str(error)
                pool[:] = [piece for piece in pool if piece.file != i]
        while pool:
            self._decode_some(pool, states, names, on_segment)
        for name, state in zip(names, states, strict=True):
            yield self._finish(name, state)

    def _segments(self, audio: _Audio) -> Iterator[tuple[int, int, np.ndarray]]:
        if isinstance(audio, _InMemory):
            spans = find_segments(audio.samples, self.sample_rate, self.vad)
            for start, end in spans:
                yield start, end, audio.samples[start:end]
            return
        meter, num_samples = EnergyMeter(self.sample_rate), 0
        for block in audio.blocks():  # first pass: energies only
            meter.add(block)
            num_samples += block.shape[0]
        audio.duration = num_samples / self.sample_rate
        spans = plan_segments(meter.energies(), num_samples, self.sample_rate, self.vad)
        yield from cut_segments(audio.blocks(), spans)  # second pass: the segments' samples

    def _decode_some(
        self,
        pool: list[_Piece],
        states: list[_FileState],
        names: list[str],
        on_segment: Callable[[str, Segment, Tensor], None] | None,
    ) -> None:
        """Decode one batch of similar length from the pool (the longest ones)."""
        pool.sort(key=lambda piece: piece.samples.shape[0])
        batch = pool[-self.batch_size :]
        del pool[-self.batch_size :]
        for piece, decoded in zip(batch, self._decode(batch), strict=True):
            state = states[piece.file]
            if state.error is not None:
                continue
            if self._looks_failed(piece, decoded) and piece.depth < MAX_RETRY_DEPTH:
                cut = quietest_point(piece.samples, self.sample_rate)
                if cut is not None:
                    for start, samples in (
                        (piece.start, piece.samples[:cut]),
                        (piece.start + cut, piece.samples[cut:]),
                    ):
                        pool.append(_Piece(piece.file, start, samples, piece.depth + 1))
                    continue
            segment = self._segment(piece, decoded)
            state.segments.append(segment)
            if on_segment is not None:
                on_segment(names[piece.file], segment, decoded.alignment)

    def _finish(self, name: str, state: _FileState) -> Transcription:
        if state.error is not None:
            return Transcription(name, error=state.error)
        segments = sorted(state.segments, key=lambda s: s.start)
        text = " ".join(s.text for s in segments if s.text)
        return Transcription(name, text, segments, state.duration)

    # -- decoding ------------------------------------------------------------------------------

    @torch.inference_mode()
    def _decode(self, pieces: Sequence[_Piece]) -> list[_Decoded]:
        """Search, then score the chosen tokens teacher-forced (module docstring, step 3)."""
        recognizer, model = self.recognizer, self.recognizer.model
        lens = [max(p.samples.shape[0], self._window_length) for p in pieces]
        waveforms = torch.zeros(len(pieces), max(lens))
        for row, piece in enumerate(pieces):
            waveforms[row, : piece.samples.shape[0]] = torch.from_numpy(piece.samples)
        waveforms = waveforms.to(self.device)
        waveform_lens = torch.tensor(lens, device=self.device)

        captured = []  # (features, feature_lens), ListenerOutput of each listener call
        hook = model.listener.register_forward_hook(
            lambda _module, inputs, output: captured.append((inputs, output))
        )
        try:
            transcripts = recognizer.transcribe_batch(waveforms, waveform_lens, self.options)
        finally:
            hook.remove()
        batch = len(pieces)
        if len(captured) == 1 and captured[0][1].encoded.size(0) == batch:
            listened = model.attend_within(captured[0][1])
        else:  # the search encoded in some other way: encode once more
            listened = model.encode(*recognizer.features(waveforms, waveform_lens))

        # Teacher forcing: input <sos> y_1 … y_U, output y_1 … y_U <eos>, (B, U + 1).
        longest = max(len(t.tokens) for t in transcripts)
        tokens_in = torch.full((batch, longest + 1), Vocabulary.eos_id, device=self.device)
        tokens_in[:, 0] = Vocabulary.sos_id
        tokens_out = torch.full_like(tokens_in, Vocabulary.eos_id)
        for row, transcript in enumerate(transcripts):
            ids = torch.tensor(transcript.tokens, dtype=torch.long, device=self.device)
            tokens_in[row, 1 : len(ids) + 1] = ids
            tokens_out[row, : len(ids)] = ids
        memory = model.speller.memory(listened.encoded, listened.encoded_lens)
        logits, alignments = model.speller(memory, tokens_in)  # (B, U + 1, V), (B, U + 1, T')
        never = torch.zeros(logits.size(-1), dtype=torch.bool, device=self.device)
        never[[Vocabulary.blank_id, Vocabulary.sos_id]] = True  # as the search masks them
        log_probs = logits.float().masked_fill(never, float("-inf")).log_softmax(dim=-1)
        token_log_probs = log_probs.gather(-1, tokens_out[:, :, None])[:, :, 0].cpu()
        alignments = alignments.float().cpu()
        encoded_lens = listened.encoded_lens.cpu().tolist()
        decoded = []
        for row, transcript in enumerate(transcripts):
            length, frames = len(transcript.tokens), encoded_lens[row]
            decoded.append(
                _Decoded(
                    transcript.tokens,
                    token_log_probs[row, : length + 1].clone(),
                    alignments[row, : length + 1, :frames].clone(),
                    hit_limit=length >= math.floor(self.options.max_length_ratio * frames),
                )
            )
        return decoded

    def _looks_failed(self, piece: _Piece, decoded: _Decoded) -> bool:
        """Attention failures worth a second try on shorter audio (module docstring, step 4)."""
        seconds = piece.samples.shape[0] / self.sample_rate
        if decoded.hit_limit and decoded.tokens:
            return True
        text = self.recognizer.vocabulary.decode(decoded.tokens)
        if has_loop(text.split()):
            return True
        return seconds >= 4.0 and len(text) < 2.0 * seconds

    def _segment(self, piece: _Piece, decoded: _Decoded) -> Segment:
        """Text, words with times and confidences from a decoded piece (module docstring, 5)."""
        vocabulary = self.recognizer.vocabulary
        start = piece.start / self.sample_rate
        end = start + piece.samples.shape[0] / self.sample_rate
        characters = [vocabulary.tokens[t] for t in decoded.tokens]
        alignment = decoded.alignment  # (U + 1, T')
        positions = torch.arange(alignment.size(1), dtype=torch.float32)
        weights = alignment / alignment.sum(dim=1, keepdim=True).clamp(min=1e-9)
        expected = (weights * positions).sum(dim=1)  # (U + 1,) expected frame of each row
        # Where each row looks, as the middle of its frame and as the frame's start, in seconds.
        middles = (start + (expected + 0.5) * self.frame_seconds).clamp(start, end).tolist()
        onsets = (start + expected * self.frame_seconds).clamp(start, end).tolist()
        log_probs = decoded.log_probs

        if vocabulary.unit == "phone":  # each phone is a token and a "word"
            spans = [(i, i + 1) for i in range(len(characters))]
        else:
            spans = [(m.start(), m.end()) for m in re.finditer(r"[^ ]+", "".join(characters))]
        words: list[Word] = []
        for first, last in spans:
            # A word starts where the speller looked as it spelled the space before it, the
            # boundary; the first word, with no space before it, where its first letter's
            # attention begins (measured best, see docs/transcribe.md). It ends at the boundary
            # after it: the space or <eos> that follows.
            word_start = middles[first - 1] if first > 0 else onsets[first]
            if words:  # starts never go backwards
                word_start = max(word_start, words[-1].start)
            word_end = min(max(middles[last], word_start + self.frame_seconds), end)
            word_start = min(word_start, word_end)
            confidence = math.exp(float(log_probs[first:last].mean()))
            words.append(Word("".join(characters[first:last]), word_start, word_end, confidence))
        total = float(log_probs.sum())
        return Segment(
            start=start,
            end=end,
            text=" ".join(w.word for w in words),
            confidence=math.exp(total / log_probs.numel()),
            words=words,
            log_probability=total,
            num_tokens=log_probs.numel(),
        )


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
