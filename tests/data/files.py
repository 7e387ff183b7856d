"""Audio files and manifests for the data tests, written into a test's tmp_path."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 16000


def wav(path: Path, seconds: float = 0.5, sample_rate: int = RATE) -> Path:
    """A 220 Hz tone of ``seconds`` as 16-bit WAV."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    sf.write(path, 0.3 * np.sin(2 * np.pi * 220 * t), sample_rate, subtype="PCM_16")
    return path


def cut_wav(path: Path, seconds: float = 1.0, kept: float = 0.5) -> Path:
    """A WAV file whose header declares ``seconds`` but whose end was cut off, keeping
    ``kept`` of its bytes (a copy interrupted halfway)."""
    data = wav(path, seconds).read_bytes()
    path.write_bytes(data[: int(len(data) * kept)])
    return path


def manifest(path: Path, entries: list) -> Path:
    """A JSONL manifest, one entry a line (a str entry is written as it is)."""
    lines = [e if isinstance(e, str) else json.dumps(e) for e in entries]
    path.write_text("".join(line + "\n" for line in lines))
    return path


def data_warnings(caplog) -> list[str]:
    """The messages logged at WARNING or above by asr.data."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("asr.data") and r.levelno >= logging.WARNING
    ]
