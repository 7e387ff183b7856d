"""Writing transcriptions out: plain text, JSON lines, SRT and WebVTT subtitles.

Every writer takes a :class:`asr.transcription.Transcription`. Subtitles are built from the word
times: a cue never crosses a segment boundary, and a new cue starts when the text would pass
``MAX_CUE_CHARACTERS`` (two lines of 42, the usual broadcast limit), the cue would last longer
than ``MAX_CUE_SECONDS``, or the speaker paused for more than ``MAX_CUE_GAP`` seconds.

>>> from asr.transcription import Segment, Transcription, Word
>>> words = [Word("good", 0.5, 0.8, 0.9), Word("morning", 0.8, 1.4, 0.8)]
>>> segment = Segment(0.3, 1.6, "good morning", 0.85, words)
>>> result = Transcription("a.wav", "good morning", [segment])
>>> print(to_srt(result), end="")
1
00:00:00,500 --> 00:00:01,400
good morning
>>> print(to_webvtt(result), end="")
WEBVTT
<BLANKLINE>
00:00:00.500 --> 00:00:01.400
good morning
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass

from asr.transcription import Transcription

MAX_CUE_CHARACTERS = 84
LINE_CHARACTERS = 42
MAX_CUE_SECONDS = 6.0
MAX_CUE_GAP = 1.0
FORMATS = ("text", "jsonl", "srt", "vtt")
# Suffix of the file --output-dir writes for each format.
SUFFIXES = {"text": ".txt", "jsonl": ".json", "srt": ".srt", "vtt": ".vtt"}


@dataclass(frozen=True)
class Cue:
    start: float  # seconds
    end: float
    text: str


def text_line(result: Transcription) -> str:
    """``file<TAB>transcript``, the plain text output (tabs and newlines cannot occur in text)."""
    return f"{result.source}\t{result.text}"


def json_line(result: Transcription) -> str:
    """One JSON object on one line: file, text, duration, confidence, segments with words."""
    return json.dumps(result.to_dict(), ensure_ascii=False)


def cues(result: Transcription) -> list[Cue]:
    """Subtitle cues from the word times (module docstring), in order, never overlapping."""
    found: list[Cue] = []
    for segment in result.segments:
        group: list = []
        for word in segment.words:
            if group:
                text = " ".join(w.word for w in group + [word])
                if (
                    len(text) > MAX_CUE_CHARACTERS
                    or word.end - group[0].start > MAX_CUE_SECONDS
                    or word.start - group[-1].end > MAX_CUE_GAP
                ):
                    found.append(_cue(group))
                    group = []
            group.append(word)
        if group:
            found.append(_cue(group))
    # A cue ends before the next begins; every cue lasts at least a millisecond.
    fixed = []
    for i, cue in enumerate(found):
        end = min(cue.end, found[i + 1].start) if i + 1 < len(found) else cue.end
        fixed.append(Cue(cue.start, max(end, cue.start + 0.001), cue.text))
    return fixed


def _cue(words: list) -> Cue:
    return Cue(words[0].start, words[-1].end, " ".join(w.word for w in words))


def _timestamp(seconds: float, decimal: str) -> str:
    milliseconds = max(0, round(seconds * 1000))
    hours, rest = divmod(milliseconds, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}{decimal}{rest % 1000:03d}"


def _lines(text: str) -> str:
    return "\n".join(textwrap.wrap(text, LINE_CHARACTERS, break_long_words=False))


def to_srt(result: Transcription) -> str:
    """SubRip: numbered cues, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, blank line between cues."""
    blocks = [
        f"{i}\n{_timestamp(c.start, ',')} --> {_timestamp(c.end, ',')}\n{_lines(c.text)}\n"
        for i, c in enumerate(cues(result), start=1)
    ]
    return "\n".join(blocks)


def to_webvtt(result: Transcription) -> str:
    """WebVTT: the ``WEBVTT`` header, then cues with ``HH:MM:SS.mmm`` times."""
    blocks = [
        f"{_timestamp(c.start, '.')} --> {_timestamp(c.end, '.')}\n{_lines(c.text)}\n"
        for c in cues(result)
    ]
    return "\n".join(["WEBVTT\n", *blocks])


def render(result: Transcription, output_format: str, *, as_file: bool = False) -> str:
    """``result`` in one of ``FORMATS``, newline-terminated.

    ``as_file`` is for --output-dir, one file per input: the text format is then the bare
    transcript and the JSON one is indented.
    """
    if output_format == "text":
        return (result.text if as_file else text_line(result)) + "\n"
    if output_format == "jsonl":
        if as_file:
            return json.dumps(result.to_dict(), ensure_ascii=False, indent=2) + "\n"
        return json_line(result) + "\n"
    if output_format == "srt":
        return to_srt(result)
    if output_format == "vtt":
        return to_webvtt(result)
    raise ValueError(f"unknown output format {output_format!r}; choose from {', '.join(FORMATS)}")
