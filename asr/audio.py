"""Audio files in and out: the one place the project reads audio.

:class:`AudioFile` is every read: opening it reads the header (:class:`AudioInfo`: frames, rate,
channels, duration, and whether a WAV is truncated), then the same open file is read whole, as a
stretch, or streamed in blocks (downmixed and resampled on the fly). ``load_audio``,
``audio_duration`` and ``probe_audio`` are its one-call forms; ``pad_waveforms`` batches
waveforms.

``load_audio`` returns a mono float32 waveform of shape (S,) in [-1, 1] at the requested sample
rate. Files are read with soundfile (libsndfile: WAV, FLAC, OGG/Vorbis, NIST SPHERE, MP3 and the
other formats ``soundfile.available_formats()`` lists); what libsndfile cannot read falls back to
librosa (audioread). ``torchaudio.load`` is deliberately not used: it needs TorchCodec.

Resampling uses soxr (its "HQ" quality). Measured on the 2-core development machine, 10 s of
44.1 kHz audio resample to 16 kHz in 1.9 ms with soxr against 2.8 ms with
``torchaudio.functional.resample``; 3 s at 22.05 kHz take 0.6 ms against 1.1 ms.

``offset`` and ``duration`` read one stretch of a file (a Kaldi ``segments`` entry, a manifest
line with offsets) without decoding the rest where the format allows seeking.

Every problem with a file (missing, empty, corrupt, cut inside its header, not audio, too short,
or NIST SPHERE compressed with shorten, as some LDC corpora ship it) raises
:class:`asr.errors.AudioError` with one sentence that names the file. A WAV cut after its header
reads as far as its data goes; ``AudioInfo.truncated`` says so, for the caller to warn or skip.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import soxr
import torch

from asr.audio_headers import (
    promised_wav_frames,
    refuse_compressed_sphere,
    unreadable,
)
from asr.errors import AudioError

DEFAULT_SAMPLE_RATE = 16000
# One 25 ms analysis window at 16 kHz: the shortest clip a feature extractor can frame.
MIN_SAMPLES = 400

PathLike = str | os.PathLike


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says, at the file's own rate.

    frames: samples per channel that the file holds.
    promised_frames: what a WAV header promises when the file holds fewer (a truncated file,
        which libsndfile reads silently up to where the data stops); None otherwise.
    """

    path: str
    frames: int
    sample_rate: int
    channels: int
    promised_frames: int | None = None

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate

    @property
    def truncated(self) -> bool:
        return self.promised_frames is not None

    def truncation_message(self) -> str:
        promised = self.promised_frames or self.frames
        return (
            f"audio file {self.path} is truncated: its header promises "
            f"{promised / self.sample_rate:.2f} s but it holds {self.duration:.2f} s"
        )


class AudioFile:
    """One audio file, opened once: its header, then its samples as mono float32 (S,) in [-1, 1]
    at ``sample_rate`` Hz, read whole or as a stretch (:meth:`read`) or in blocks
    (:meth:`blocks`), as many times as needed. Use it as a context manager (or :meth:`close`).

    ``info`` is None for a file libsndfile cannot open (some MP4/AAC/WMA): librosa decodes those,
    and only when they are read. Raises AudioError at once for a missing or empty file.
    """

    def __init__(self, path: PathLike, sample_rate: int = DEFAULT_SAMPLE_RATE) -> None:
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        _check_file(path)
        self.path, self.sample_rate = str(path), sample_rate
        self.info: AudioInfo | None = None
        try:
            self._file: soundfile.SoundFile | None = soundfile.SoundFile(self.path)
        except (soundfile.LibsndfileError, RuntimeError, TypeError):
            self._file = None  # not a format libsndfile reads, or damaged: librosa, when read
            return
        frames = int(self._file.frames)
        self.info = AudioInfo(
            self.path,
            frames,
            int(self._file.samplerate),
            int(self._file.channels),
            promised_wav_frames(self.path, frames) if self._file.format == "WAV" else None,
        )

    def __enter__(self) -> AudioFile:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def read(
        self, offset: float = 0.0, duration: float | None = None, min_samples: int = MIN_SAMPLES
    ) -> np.ndarray:
        """The samples (S,) from ``offset`` seconds for ``duration`` seconds (None: to the end).

        Raises AudioError when the file is unreadable, shorter than the offset, or shorter than
        ``min_samples`` samples at ``sample_rate``.
        """
        if offset < 0 or (duration is not None and duration <= 0):
            raise ValueError(f"offset must be >= 0 and duration > 0, got {offset} and {duration}")
        samples, file_rate = self._read(offset, duration)  # (S, C) float32
        if samples.shape[0] == 0:
            where = f" from {offset:.2f} s on" if offset else ""
            raise AudioError(f"audio file {self.path} contains no samples{where}")
        mono = resample(samples.mean(axis=1, dtype=np.float32), file_rate, self.sample_rate)
        if mono.shape[0] < min_samples:
            raise AudioError(
                f"audio file {self.path} is shorter than one 25 ms frame: {mono.shape[0]} samples "
                f"at {self.sample_rate} Hz, fewer than the minimum {min_samples}"
            )
        return np.clip(mono, -1.0, 1.0, out=mono)

    def blocks(self, seconds: float) -> Iterator[np.ndarray]:
        """The whole file from its start as consecutive mono blocks of about ``seconds`` each
        (resampled by soxr's stream, so the blocks join seamlessly); memory stays bounded
        whatever the length. A file only librosa reads comes as one block."""
        if self._file is None:
            yield self.read()
            return
        file, rate = self._file, int(self._file.samplerate)
        block = max(1, int(seconds * rate))
        stream = None
        if rate != self.sample_rate:
            stream = soxr.ResampleStream(rate, self.sample_rate, 1, "float32")
        try:
            file.seek(0)
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
                f"audio file {self.path} is truncated or corrupt and cannot be decoded: {error}"
            ) from None

    def _read(self, offset: float, duration: float | None) -> tuple[np.ndarray, int]:
        """Samples (S, C) float32 of the stretch and the file's rate."""
        if self._file is not None:
            try:
                file, rate = self._file, int(self._file.samplerate)
                frames = -1 if duration is None else int(round(duration * rate))
                file.seek(min(int(round(offset * rate)), file.frames))
                return file.read(frames, dtype="float32", always_2d=True), rate
            except (soundfile.LibsndfileError, RuntimeError, TypeError):
                pass  # damaged past the header: librosa may still decode it, or says why not
        return _read_with_librosa(self.path, offset, duration)


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
    with AudioFile(path, sample_rate) as file:
        return torch.from_numpy(file.read(offset, duration, min_samples))


def probe_audio(path: PathLike) -> AudioInfo:
    """The header of ``path`` (frames, rate, channels, duration, truncation) without decoding
    the samples; a file only librosa reads is decoded to count them."""
    with AudioFile(path) as file:
        if file.info is not None:
            return file.info
    samples, rate = _read_with_librosa(str(path), 0.0, None)
    return AudioInfo(str(path), samples.shape[0], rate, samples.shape[1])


def truncated_wav(path: PathLike) -> str | None:
    """Why ``path`` is a truncated WAV (its header promises more samples than it holds), or None
    when it is complete, not a WAV, or cannot be opened (the reader reports that itself)."""
    try:
        with AudioFile(path) as file:
            info = file.info
    except AudioError:
        return None
    return info.truncation_message() if info is not None and info.truncated else None


def pad_waveforms(
    waveforms: Sequence[np.ndarray | torch.Tensor], min_samples: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """A zero-padded batch (B, S) of waveforms (S_b,) and their lengths (B,).

    A waveform shorter than ``min_samples`` counts as that long (its zeros are real silence), so
    a feature extractor can frame every row at least once.
    """
    rows = [torch.as_tensor(w, dtype=torch.float32) for w in waveforms]
    lens = torch.tensor([max(row.shape[0], min_samples) for row in rows])
    padded = torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)  # (B, max S_b)
    width = int(lens.max()) if rows else 0
    return torch.nn.functional.pad(padded, (0, width - padded.size(1))), lens


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
    with AudioFile(path) as file:
        if file.info is not None:
            return file.info.duration
    try:
        import librosa

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(librosa.get_duration(path=str(path)))
    except Exception as error:
        raise unreadable(path) from error


def _check_file(path: PathLike) -> None:
    """Raise AudioError when ``path`` is missing, not a regular file, or empty."""
    if not os.path.exists(path):
        raise AudioError(f"audio file {path} does not exist")
    if not os.path.isfile(path):
        raise AudioError(f"audio file {path} is not a regular file")
    if os.path.getsize(path) == 0:
        raise AudioError(f"audio file {path} is empty (0 bytes)")


def _read_with_librosa(
    path: PathLike, offset: float = 0.0, duration: float | None = None
) -> tuple[np.ndarray, int]:
    """Samples (S, C) float32 and the rate of what libsndfile could not read (librosa, through
    audioread); a clear AudioError for compressed SPHERE or a file nothing decodes."""
    refuse_compressed_sphere(path)
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
        raise unreadable(path) from error
    samples = np.atleast_2d(samples).T  # librosa gives (C, S) or (S,)
    return np.ascontiguousarray(samples, dtype=np.float32), int(rate)
