"""Container headers las-asr reads itself, where libsndfile does not say enough: a WAV's
promised length (libsndfile reads a truncated WAV silently), NIST SPHERE's fields and codings
(libsndfile cannot decode shorten), and what a file's first bytes claim it is (to word the error
for a file nothing decodes)."""

from __future__ import annotations

import os

from asr.errors import AudioError

PathLike = str | os.PathLike

# Leading bytes of the audio containers we know; used only to word the error for a file that
# neither soundfile nor librosa can decode ("truncated or corrupt" versus "not audio").
_AUDIO_SIGNATURES = (b"RIFF", b"RF64", b"fLaC", b"OggS", b"ID3", b"NIST_1A", b"FORM", b".snd")


def promised_wav_frames(path: PathLike, frames: int) -> int | None:
    """The frame count a RIFF/WAVE header promises when that is more than the ``frames`` the
    file holds (it was truncated in a copy or a download), else None; None for other formats."""
    with open(path, "rb") as file:
        head = file.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        block_align = 0
        while True:
            chunk = file.read(8)
            if len(chunk) < 8:
                return None
            name, size = chunk[:4], int.from_bytes(chunk[4:], "little")
            if name == b"fmt ":
                body = file.read(size + size % 2)
                block_align = int.from_bytes(body[12:14], "little")
            elif name == b"data":
                if not block_align or size in (0, 0xFFFFFFFF):  # unknown length while streaming
                    return None
                promised = size // block_align
                return promised if promised > frames else None
            else:
                file.seek(size + size % 2, os.SEEK_CUR)


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


def refuse_compressed_sphere(path: PathLike) -> None:
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


def unreadable(path: PathLike) -> AudioError:
    """The error for a file no reader could decode, worded by what its first bytes claim."""
    with open(path, "rb") as file:
        head = file.read(16)
    looks_like_audio = head.startswith(_AUDIO_SIGNATURES) or head[:2] in (b"\xff\xfb", b"\xff\xf3")
    if looks_like_audio:
        return AudioError(f"audio file {path} is truncated or corrupt and cannot be decoded")
    return AudioError(f"file {path} is not audio in any format soundfile or librosa can read")
