"""A third kind of voice: CMU Flite (Black & Lenzo 2001), Debian's ``flite`` package.

Flite speaks with voices of two kinds unlike both espeak-ng's formant synthesis and piper's
neural network: diphone concatenation (``kal``, 8 kHz, and ``kal16``) and statistical parametric
CLUSTERGEN voices (``awb``, Scottish English; ``rms``, US male; ``slt``, US female). It is an
optional system program (``apt-get install flite``): :func:`missing_message` says so in one line
and nothing here is needed by the demo. The corpus uses it as an engine that training can leave
out entirely, so ``test_unseen_engine`` measures transfer to voices of an unheard kind.

A :class:`FliteVoice` varies a voice by its tempo (``duration_stretch``) and the target mean and
spread of its pitch contour (``int_f0_target_mean``/``_stddev``, in Hz). Flite is deterministic:
the same text and voice give the same samples (checked by a test). One 3-second utterance takes
about 40 ms as a subprocess on the development machine (2026-12-03).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import torch

from asr.audio import resample
from asr.errors import UserError
from asr.synthesis import Synthesis, letter_share_word_starts, speech_bounds

# The general-domain voices of Debian's flite 2.2 (awb_time only speaks clock times).
VOICES = ("kal", "kal16", "awb", "rms", "slt")


def missing_message() -> str | None:
    """One line saying how to install flite, or None when the ``flite`` program is on PATH."""
    if shutil.which("flite") is None:
        return "flite is not installed: apt-get install flite (Debian/Ubuntu; optional)"
    return None


@dataclass(frozen=True)
class FliteVoice:
    """One rendering of a flite voice.

    >>> FliteVoice("slt", duration_stretch=1.1, f0_mean=180, f0_stddev=25).name
    'flite-slt_d1.10_f180_s25'
    """

    voice: str = "slt"
    duration_stretch: float = 1.0
    f0_mean: int = 120
    f0_stddev: int = 20

    def __post_init__(self) -> None:
        if self.voice not in VOICES:
            raise ValueError(f"unknown flite voice {self.voice!r}; known: {', '.join(VOICES)}")
        if not 0.5 <= self.duration_stretch <= 2.0:
            raise ValueError(f"duration_stretch must be in 0.5..2, got {self.duration_stretch}")
        if not 50 <= self.f0_mean <= 400 or not 0 <= self.f0_stddev <= 100:
            raise ValueError("f0_mean must be in 50..400 Hz and f0_stddev in 0..100 Hz")

    @property
    def name(self) -> str:
        """Stable speaker id of the corpus manifests."""
        return f"flite-{self.voice}_d{self.duration_stretch:.2f}_f{self.f0_mean}_s{self.f0_stddev}"


class FliteSynthesizer:
    """Speaks through the ``flite`` program; UserError in one line when it is not installed."""

    def __init__(self) -> None:
        if (message := missing_message()) is not None:
            raise UserError(message)

    def synthesize(self, text: str, voice: FliteVoice, sample_rate: int = 16000) -> Synthesis:
        """``text`` spoken by ``voice``: a waveform (S,) float32 at ``sample_rate`` Hz with at
        most 0.15 s of silence at each end, and word starts estimated by their share of the
        letters (flite's command line reports no word timing)."""
        if not text.strip():
            raise ValueError("cannot synthesise an empty text")
        with tempfile.TemporaryDirectory(prefix="asr-flite-") as directory:
            path = Path(directory) / "out.wav"
            command = [
                "flite",
                "-voice", voice.voice,
                "--setf", f"duration_stretch={voice.duration_stretch}",
                "--setf", f"int_f0_target_mean={voice.f0_mean}",
                "--setf", f"int_f0_target_stddev={voice.f0_stddev}",
                "-t", text,
                "-o", str(path),
            ]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0 or not path.is_file():
                raise RuntimeError(f"flite failed on {text!r}: {done.stderr.strip()[-200:]}")
            audio, native_rate = soundfile.read(path, dtype="float32")
        audio = np.asarray(audio, dtype=np.float32).reshape(-1)  # mono
        start, end = speech_bounds(audio, native_rate)
        waveform = resample(audio[start:end], native_rate, sample_rate)
        np.clip(waveform, -1.0, 1.0, out=waveform)
        duration = waveform.shape[0] / sample_rate
        words = letter_share_word_starts(text, duration)
        return Synthesis(torch.from_numpy(np.ascontiguousarray(waveform)), sample_rate, words)
