"""What a transcription request names: files, folders and globs, expanded into files."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path

# What a folder is searched for; a file named on its own is always tried, whatever its suffix.
AUDIO_SUFFIXES = frozenset(
    {".wav", ".wave", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".sph", ".nist", ".aif", ".aiff"}
    | {".aifc", ".au", ".snd", ".w64", ".rf64", ".caf", ".m4a", ".aac", ".wma", ".webm"}
)


def expand_inputs(inputs: Iterable[str | os.PathLike]) -> list[str]:
    """Files named by ``inputs``, in order, without duplicates.

    A folder stands for the audio files below it (recursively, sorted, by suffix:
    ``AUDIO_SUFFIXES``); a pattern with ``*``, ``?`` or ``[`` that names no existing path is a
    glob (``**`` recurses). Anything else is kept as given, so a missing file is reported when it
    is transcribed; a glob that matches nothing stays as itself and is reported the same way.
    """
    return list(dict.fromkeys(path for item in inputs for path in expand_input(item)))


def expand_input(item: str | os.PathLike) -> list[str]:
    """The files one input names (see :func:`expand_inputs`), duplicates kept."""
    item = os.fspath(item)
    if os.path.isdir(item):
        return _audio_files_below(item)
    if not os.path.exists(item) and glob.has_magic(item):
        expanded = []
        for match in sorted(glob.glob(item, recursive=True)):
            expanded += _audio_files_below(match) if os.path.isdir(match) else [match]
        return expanded or [item]
    return [item]


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
