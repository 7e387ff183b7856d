"""Speech synthesis with espeak-ng, called in-process through ctypes (the binding is
``asr.espeak``).

The shared library and its voice data come from the ``espeakng-loader`` wheel, so no system
espeak is needed. espeak-ng keeps global state (one voice, one set of parameters, one callback),
so a process holds a single :class:`EspeakSynthesizer`: constructing it twice returns the same
object, and calls are serialised by a lock. Worker processes each build their own.

A :class:`Voice` is an accent (an espeak language such as ``en-us`` or ``en-gb-scotland``), a
voice variant (``m3``, ``f2``, ``klatt`` ... or ``""`` for the language's default), a base pitch,
a pitch range and a speaking rate. Its ``name`` (``en-us+f2_p60_r170``) is stable and serves as
the speaker id of synthetic corpora.

espeak produces 22,050 Hz 16-bit audio; :meth:`EspeakSynthesizer.synthesize` returns it as a
float32 waveform (S,) resampled to 16 kHz, with leading and trailing silence trimmed to at most
0.15 s, and the start time of every word (from espeak's WORD events).

Speed, measured on the 2-core development machine in one process (sentences of the synthetic
corpus, about 3 s each, 16 kHz output including the per-call library reload, resampling and
trimming): 6 ms per utterance, about 470x real time, so one hour of speech in under 8 seconds.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from asr import espeak
from asr.audio import resample
from asr.text import normalize_text

# What normalize_text treats as word separators: white space, hyphens and dashes.
_TOKEN = re.compile(r"[^\s\-\u2013\u2014]+")
# Leading/trailing silence kept around the speech, in seconds.
MAX_EDGE_SILENCE = 0.15
# Amplitude (of full scale 1.0) below which a sample counts as silence when trimming.
SILENCE_THRESHOLD = 0.003

RATE_MIN, RATE_MAX = 80, 450  # words a minute espeak-ng accepts


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: an espeak language (accent), a variant, pitch, range and rate.

    >>> Voice("en-us", "f2", pitch=60, rate=170).name
    'en-us+f2_p60_r170'
    >>> Voice("en-gb-scotland", "", pitch=50, rate=150, pitch_range=30).name
    'en-gb-scotland_p50_r150_g30'
    """

    language: str
    variant: str = ""
    pitch: int = 50
    rate: int = 175
    pitch_range: int = 50

    def __post_init__(self) -> None:
        if not self.language:
            raise ValueError("a voice needs a language, such as 'en-us'")
        if not 0 <= self.pitch <= 99:
            raise ValueError(f"pitch must be in 0..99, got {self.pitch}")
        if not 0 <= self.pitch_range <= 99:
            raise ValueError(f"pitch_range must be in 0..99, got {self.pitch_range}")
        if not RATE_MIN <= self.rate <= RATE_MAX:
            raise ValueError(f"rate must be {RATE_MIN}..{RATE_MAX} words a minute, got {self.rate}")

    @property
    def espeak_name(self) -> str:
        """The name espeak_SetVoiceByName takes: ``language`` or ``language+variant``."""
        return f"{self.language}+{self.variant}" if self.variant else self.language

    @property
    def name(self) -> str:
        """Stable id: ``language[+variant]_p<pitch>_r<rate>`` plus ``_g<range>`` if not 50."""
        name = f"{self.espeak_name}_p{self.pitch}_r{self.rate}"
        return name if self.pitch_range == 50 else f"{name}_g{self.pitch_range}"


@dataclass(frozen=True)
class Synthesis:
    """Synthesised speech: ``waveform`` (S,) float32 in [-1, 1] at ``sample_rate`` Hz, and
    ``words``: each word of ``normalize_text(text)`` with its start in seconds."""

    waveform: torch.Tensor
    sample_rate: int
    words: list[tuple[str, float]]

    @property
    def duration(self) -> float:
        return self.waveform.shape[0] / self.sample_rate


class EspeakSynthesizer:
    """The process's espeak-ng engine.

    espeak-ng keeps state between messages in C statics that no API call resets (the phase of
    the pitch "flutter" table, the gain control, the Klatt filters), so the same text would
    come out slightly differently on every call. To make synthesis a pure function of text and
    voice, each call loads a private copy of the library afresh, initialises it, speaks, and
    unloads it again (about 5 ms of overhead).

    >>> synth = EspeakSynthesizer()
    >>> synth is EspeakSynthesizer()
    True
    >>> out = synth.synthesize("hello world", Voice("en-us", "m3"))
    >>> out.sample_rate, [word for word, _ in out.words]
    (16000, ['hello', 'world'])
    """

    _instance: EspeakSynthesizer | None = None
    _create_lock = threading.Lock()

    def __new__(cls) -> EspeakSynthesizer:
        with cls._create_lock:
            if cls._instance is None:
                instance = super().__new__(cls)
                instance._setup()
                cls._instance = instance
            return cls._instance

    def _setup(self) -> None:
        import espeakng_loader

        self._data_path = espeakng_loader.get_data_path()
        # A private copy: nobody else in the process can hold it open, so unloading it really
        # discards its state. Only the creating process removes it (a forked child may exit
        # while its parent still needs the file).
        self._library_source = espeakng_loader.get_library_path()
        library_dir = tempfile.mkdtemp(prefix="asr-espeak-")
        atexit.register(_remove_if_owner, library_dir, os.getpid())
        self._library_path = os.path.join(library_dir, os.path.basename(self._library_source))
        shutil.copyfile(self._library_source, self._library_path)
        self._lock = threading.Lock()
        self._chunks: list[np.ndarray] = []  # int16 audio of the message being synthesised
        self._word_events: list[tuple[int, int, int]] = []  # (text position, length, ms)
        # Kept on the instance: ctypes must not free the callback while espeak may call it.
        self._callback = espeak.SynthCallback(self._on_audio)
        with self._engine() as lib:
            self._languages = espeak.english_languages(lib)
            self._variants = espeak.variants(lib)
            self._version = lib.espeak_Info(None).decode()

    @contextlib.contextmanager
    def _engine(self) -> Iterator[ctypes.CDLL]:
        """A freshly loaded and initialised libespeak-ng, unloaded on exit."""
        if not os.path.exists(self._library_path):  # removed behind our back: copy it again
            os.makedirs(os.path.dirname(self._library_path), exist_ok=True)
            shutil.copyfile(self._library_source, self._library_path)
        lib = ctypes.CDLL(self._library_path)
        initialised = False
        try:
            espeak.declare(lib)
            data_path = self._data_path.encode()
            rate = lib.espeak_Initialize(
                espeak.AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, espeak.DONT_EXIT
            )
            if rate != espeak.ESPEAK_SAMPLE_RATE:
                raise RuntimeError(f"espeak-ng failed to initialise from {self._data_path}")
            initialised = True
            lib.espeak_SetSynthCallback(self._callback)
            lib.espeak_ng_SetRandSeed(0)
            yield lib
        finally:
            if initialised:
                lib.espeak_Terminate()
            espeak.unload(lib)

    def version(self) -> str:
        """The espeak-ng library version, such as "1.52.0"."""
        return self._version

    def english_languages(self) -> list[str]:
        """English accents of the bundled data, as names ``Voice.language`` accepts (sorted)."""
        return list(self._languages)

    def variants(self) -> list[str]:
        """Voice variants of the bundled data (``m1`` ... ``f5``, ``klatt`` ...), sorted."""
        return list(self._variants)

    def _on_audio(self, wav, num_samples: int, events) -> int:
        """espeak's callback: collect the audio and WORD events of the current message."""
        if wav and num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        i = 0
        while events[i].type != espeak.EVENT_LIST_TERMINATED:
            event = events[i]
            if event.type == espeak.EVENT_WORD:
                self._word_events.append((event.text_position, event.length, event.audio_position))
            i += 1
        return 0  # continue synthesis

    def synthesize(self, text: str, voice: Voice, sample_rate: int = 16000) -> Synthesis:
        """Speak ``text`` with ``voice``.

        Returns the waveform (S,) at ``sample_rate`` Hz with at most 0.15 s of silence at each
        end, and each word's start time in seconds. Raises ValueError for an empty text or a
        language or variant the bundled data lacks. The same text and voice always give the
        same samples.
        """
        if not text.strip():
            raise ValueError("cannot synthesise an empty text")
        if voice.language not in self._languages:
            raise ValueError(f"espeak-ng has no English language {voice.language!r}")
        if voice.variant and voice.variant not in self._variants:
            raise ValueError(f"espeak-ng has no voice variant {voice.variant!r}")
        encoded = text.encode("utf-8") + b"\0"
        with self._lock, self._engine() as lib:
            if lib.espeak_SetVoiceByName(voice.espeak_name.encode()) != espeak.EE_OK:
                raise ValueError(f"espeak-ng cannot load voice {voice.espeak_name!r}")
            lib.espeak_SetParameter(espeak.RATE, voice.rate, 0)
            lib.espeak_SetParameter(espeak.PITCH, voice.pitch, 0)
            lib.espeak_SetParameter(espeak.RANGE, voice.pitch_range, 0)
            self._chunks, self._word_events = [], []
            status = lib.espeak_Synth(
                encoded, len(encoded), 0, espeak.POS_CHARACTER, 0, espeak.CHARS_AUTO, None, None
            )
            chunks, word_events = self._chunks, self._word_events
            self._chunks, self._word_events = [], []
        if status != espeak.EE_OK:
            raise RuntimeError(f"espeak-ng failed to synthesise {text!r} (error {status})")

        audio = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
        waveform = audio.astype(np.float32) / 32768.0  # (S,) at 22,050 Hz
        start, end = speech_bounds(waveform, espeak.ESPEAK_SAMPLE_RATE)
        events = [(position, milliseconds / 1000.0) for position, _, milliseconds in word_events]
        words = _align_words(text, events, end / espeak.ESPEAK_SAMPLE_RATE)
        offset = start / espeak.ESPEAK_SAMPLE_RATE
        words = [(word, round(max(0.0, seconds - offset), 3)) for word, seconds in words]
        waveform = resample(waveform[start:end], espeak.ESPEAK_SAMPLE_RATE, sample_rate)
        np.clip(waveform, -1.0, 1.0, out=waveform)
        return Synthesis(torch.from_numpy(waveform), sample_rate, words)


def _align_words(
    text: str, events: list[tuple[int, float]], end_seconds: float
) -> list[tuple[str, float]]:
    """The start time of every word of ``normalize_text(text)``.

    ``events`` are espeak's WORD events as (1-based character position, seconds). espeak
    reports most words but folds some unstressed ones into a neighbour ("was" in "there was
    an owl"); such a word gets a time interpolated by character position between the words
    around it.
    """
    tokens = []  # (first character, end character, normalised words) of each written token
    for match in _TOKEN.finditer(text):
        token_words = normalize_text(match.group()).split()
        if token_words:
            tokens.append((match.start(), match.end(), token_words))
    anchors: dict[int, float] = {}  # token index -> start time
    for position, seconds in events:
        index = next((i for i, (_, end, _) in enumerate(tokens) if end > position - 1), None)
        if index is not None and index not in anchors:
            anchors[index] = seconds
    known = sorted(anchors)
    words = []
    for i, (first, _, token_words) in enumerate(tokens):
        seconds = anchors.get(i)
        if seconds is None:
            before = [k for k in known if k < i]
            after = [k for k in known if k > i]
            start_char, start_time = (
                (tokens[before[-1]][0], anchors[before[-1]]) if before else (0, 0.0)
            )
            end_char, end_time = (
                (tokens[after[0]][0], anchors[after[0]]) if after else (len(text), end_seconds)
            )
            fraction = (first - start_char) / max(1, end_char - start_char)
            seconds = start_time + fraction * max(0.0, end_time - start_time)
        words.extend((word, seconds) for word in token_words)
    return words


def _remove_if_owner(directory: str, owner_pid: int) -> None:
    if os.getpid() == owner_pid:
        shutil.rmtree(directory, ignore_errors=True)


def speech_bounds(waveform: np.ndarray, sample_rate: int) -> tuple[int, int]:
    """[start, end) of ``waveform`` (S,) keeping at most MAX_EDGE_SILENCE s around the speech."""
    loud = np.flatnonzero(np.abs(waveform) > SILENCE_THRESHOLD)
    if loud.size == 0:
        return 0, waveform.shape[0]
    margin = int(MAX_EDGE_SILENCE * sample_rate)
    return max(0, int(loud[0]) - margin), min(waveform.shape[0], int(loud[-1]) + 1 + margin)


def letter_share_word_starts(text: str, duration: float) -> list[tuple[str, float]]:
    """Each word of ``normalize_text(text)`` with a start spread by its share of the letters:
    the estimate for engines that report no word timing (piper, flite)."""
    words = normalize_text(text).split()
    total = sum(len(word) + 1 for word in words) or 1
    starts, position = [], 0
    for word in words:
        starts.append((word, round(duration * position / total, 3)))
        position += len(word) + 1
    return starts
