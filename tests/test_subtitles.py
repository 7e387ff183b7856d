"""Output writers: text, JSON lines, SRT and WebVTT parse back and agree with each other."""

from __future__ import annotations

import json
import math
import re

import pytest

from asr.subtitles import (
    LINE_CHARACTERS,
    MAX_CUE_CHARACTERS,
    MAX_CUE_SECONDS,
    cues,
    json_line,
    render,
    text_line,
    to_srt,
    to_webvtt,
)
from asr.transcription import Segment, Transcription, Word

_TIME = r"(\d\d):(\d\d):(\d\d)[,.](\d\d\d)"


def _seconds(match: tuple[str, ...]) -> float:
    hours, minutes, secs, millis = (int(x) for x in match)
    return hours * 3600 + minutes * 60 + secs + millis / 1000


def parse_srt(text: str) -> list[tuple[float, float, str]]:
    """(start, end, text) of every cue; asserts the SubRip layout as it goes."""
    found = []
    for number, block in enumerate(text.strip().split("\n\n"), start=1):
        if not block:
            continue
        lines = block.split("\n")
        assert lines[0] == str(number)
        times = re.fullmatch(f"{_TIME} --> {_TIME}", lines[1])
        assert times, lines[1]
        groups = times.groups()
        found.append((_seconds(groups[:4]), _seconds(groups[4:]), " ".join(lines[2:])))
    return found


def parse_vtt(text: str) -> list[tuple[float, float, str]]:
    """(start, end, text) of every cue of a WebVTT file."""
    header, *blocks = text.strip().split("\n\n")
    assert header == "WEBVTT"
    found = []
    for block in blocks:
        lines = block.split("\n")
        times = re.fullmatch(f"{_TIME} --> {_TIME}", lines[0])
        assert times and "," not in lines[0], lines[0]
        groups = times.groups()
        found.append((_seconds(groups[:4]), _seconds(groups[4:]), " ".join(lines[1:])))
    return found


def make_transcription(words_per_segment=(3, 40, 0, 5), gap_every: int = 0) -> Transcription:
    """Segments of made-up words, 0.3 s each; with ``gap_every``, a 2 s pause every n words."""
    segments, clock, n = [], 1.0, 0
    for count in words_per_segment:
        start = clock
        words = []
        for _ in range(count):
            n += 1
            if gap_every and n % gap_every == 0:
                clock += 2.0
            words.append(Word(f"word{n}", clock, clock + 0.25, 0.9))
            clock += 0.3
        segments.append(
            Segment(start, clock + 0.1, " ".join(w.word for w in words), 0.8, words, -1.0, 10)
        )
        clock += 1.0
    text = " ".join(s.text for s in segments if s.text)
    return Transcription("talk.wav", text, segments, duration=clock)


@pytest.mark.parametrize("gap_every", [0, 7])
def test_srt_and_vtt_parse_and_agree_with_the_words(gap_every):
    result = make_transcription(gap_every=gap_every)
    srt, vtt = parse_srt(to_srt(result)), parse_vtt(to_webvtt(result))
    assert srt == vtt
    assert " ".join(text for _, _, text in srt) == result.text
    for (start, end, text), following in zip(srt, srt[1:] + [(1e9, 0, "")], strict=True):
        assert start < end <= following[0]
        assert len(text) <= MAX_CUE_CHARACTERS
        assert end - start <= MAX_CUE_SECONDS + 1e-6
    # Every cue begins at its first word's start and lies inside one segment.
    starts = {round(w.start, 3) for w in result.words}
    for start, end, _ in srt:
        assert round(start, 3) in starts
        assert any(s.start - 1e-3 <= start and end <= s.end + 1e-3 for s in result.segments)


def test_cues_break_at_pauses():
    result = make_transcription(words_per_segment=(12,), gap_every=4)
    assert [c.text.split()[0] for c in cues(result)] == ["word1", "word4", "word8", "word12"]


def test_long_cues_wrap_into_lines():
    result = make_transcription(words_per_segment=(20,))
    for block in to_srt(result).strip().split("\n\n"):
        for line in block.split("\n")[2:]:
            assert len(line) <= LINE_CHARACTERS


def test_hours_in_timestamps():
    word = Word("late", 3725.5, 3726.25, 1.0)
    result = Transcription("x", "late", [Segment(3725.0, 3727.0, "late", 1.0, [word])])
    assert "01:02:05,500 --> 01:02:06,250" in to_srt(result)
    assert "01:02:05.500 --> 01:02:06.250" in to_webvtt(result)


def test_json_line_holds_everything_and_agrees_with_the_text():
    result = make_transcription()
    record = json.loads(json_line(result))
    assert "\n" not in json_line(result)
    assert record["file"] == "talk.wav" and record["text"] == result.text
    assert " ".join(s["text"] for s in record["segments"] if s["text"]) == record["text"]
    words = [w for s in record["segments"] for w in s["words"]]
    assert [w["word"] for w in words] == result.text.split()
    assert all(0 < w["confidence"] <= 1 and w["start"] <= w["end"] for w in words)
    # Four segments of 10 tokens and log-probability -1 each: exp(-4 / 40).
    assert record["confidence"] == pytest.approx(math.exp(-0.1), abs=1e-4)


def test_text_line_and_files():
    result = make_transcription(words_per_segment=(2,))
    assert text_line(result) == "talk.wav\tword1 word2"
    assert render(result, "text") == "talk.wav\tword1 word2\n"
    assert render(result, "text", as_file=True) == "word1 word2\n"
    assert json.loads(render(result, "jsonl", as_file=True))["text"] == "word1 word2"
    with pytest.raises(ValueError, match="unknown output format"):
        render(result, "docx")


def test_an_empty_transcription_has_no_cues():
    empty = Transcription("silence.wav", "", [], duration=3.0)
    assert to_srt(empty) == ""
    assert to_webvtt(empty) == "WEBVTT\n"
    assert json.loads(json_line(empty))["segments"] == []
    assert json.loads(json_line(empty))["confidence"] is None
