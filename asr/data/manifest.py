"""Manifests: JSONL files of utterances, read, written and filtered.

A manifest is a JSONL file, one utterance a line:
``{"id": str, "audio": str, "duration": float, "text": str, "speaker": str}``. ``audio`` is
absolute or relative to the manifest's folder. An optional ``offset`` (seconds) makes the line
a segment of its file: ``duration`` seconds from ``offset`` on (a Kaldi ``segments`` entry);
without it the utterance is the whole file. Other keys (a LibriSpeech chapter, TIMIT's words)
are kept in ``Utterance.extra`` and written back. Any corpus that can be written this way can be
trained on.

Every field's type is checked as a line is read; a bad line is skipped and counted with one log
line naming the file and the line (see :func:`read_manifest`). ``validate`` drops utterances
whose text the vocabulary cannot spell, whose duration (from the manifest, else the audio
header) is out of bounds or whose length in tokens is impossible for that duration, counting
each in a :class:`~asr.data.skips.SkipCounter`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from asr.audio import audio_duration
from asr.data.skips import SkipCounter
from asr.errors import AudioError, UserError
from asr.text import Vocabulary

REQUIRED_KEYS = ("id", "audio", "text")
_KNOWN_KEYS = (*REQUIRED_KEYS, "duration", "speaker", "offset")
# Skip reasons of manifest lines.
BAD_LINE = "bad manifest line"
DUPLICATE_ID = "duplicate id"


@dataclass(frozen=True)
class Utterance:
    id: str
    audio: Path
    duration: float
    text: str
    speaker: str = ""
    # Start in seconds of a segment of ``audio`` lasting ``duration``; None: the whole file.
    offset: float | None = None
    # Other manifest keys, kept as they were (not compared).
    extra: Mapping = field(default_factory=dict, compare=False)


def read_manifest(path: str | Path, skips: SkipCounter | None = None) -> list[Utterance]:
    """Utterances of a JSONL manifest; a bad line is skipped, logged and counted in ``skips``.

    Every field is type-checked: ``id``, ``audio`` and ``text`` must be strings (an id ``5`` is
    refused, not converted: ids are compared as text everywhere, so ``5`` and ``"5"`` would be
    one utterance in a report and two in a manifest); ``duration`` a positive number of seconds,
    ``offset`` a number >= 0 (and then a ``duration`` is needed) and ``speaker`` a string, each of
    the three optional (absent or null; a ``duration`` of NaN, which an older ``write_manifest``
    wrote for an unknown one, is absent too, and ``validate`` reads it from the audio header).
    A line that breaks a rule, is not a JSON object, lacks a required key or repeats an earlier
    id is skipped with one log line naming the file, the line and the problem. A manifest of which
    no line is usable is a UserError naming the first problem.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"manifest not found: {path}")
    skips = SkipCounter() if skips is None else skips
    utterances = []
    problems: list[tuple[str, str, str]] = []  # (file:line, reason, message)
    first_line: dict[str, int] = {}
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            try:
                utt = _utterance(raw, path)
                if utt.id in first_line:
                    raise _BadLine(
                        f"duplicate utterance id {utt.id!r} (first on line {first_line[utt.id]})",
                        DUPLICATE_ID,
                    )
            except _BadLine as bad:
                problems.append((f"{path}:{number}", bad.reason, str(bad)))
                continue
            first_line[utt.id] = number
            utterances.append(utt)
    if problems and not utterances:
        where, _, message = problems[0]
        more = f" (and {len(problems) - 1} more bad lines)" if len(problems) > 1 else ""
        raise UserError(f"{where}: {message}{more}: no line of {path} is a usable utterance")
    for where, reason, message in problems:
        skips.skip(where, reason, message)
    return utterances


class _BadLine(ValueError):
    """A manifest line that cannot be an utterance; ``reason`` is the skip counter's key."""

    def __init__(self, message: str, reason: str = BAD_LINE) -> None:
        super().__init__(message)
        self.reason = reason


def _utterance(raw: bytes, manifest: Path) -> Utterance:
    """The utterance of one manifest line, or _BadLine saying what is wrong with it."""
    try:
        entry = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise _BadLine("not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise _BadLine(f"not valid JSON ({error.msg})") from None
    if not isinstance(entry, dict):
        raise _BadLine(f"expected a JSON object, got {_shown(entry)}")
    missing = [key for key in REQUIRED_KEYS if key not in entry]
    if missing:
        raise _BadLine(f"missing key(s) {', '.join(missing)}")
    for key in REQUIRED_KEYS:
        if not isinstance(entry[key], str):
            raise _BadLine(f"{key} must be a string, got {_shown(entry[key])}")
    for key in ("id", "audio"):
        if not entry[key].strip():
            raise _BadLine(f"{key} is empty")
    speaker = entry.get("speaker")
    if speaker is not None and not isinstance(speaker, str):
        raise _BadLine(f"speaker must be a string, got {_shown(speaker)}")
    duration = _seconds(entry, "duration")
    if duration is not None and math.isnan(duration):
        duration = None  # unknown, as write_manifest once wrote it; validate reads the header
    if duration is not None and not 0 < duration < math.inf:
        raise _BadLine(f"duration must be a positive number of seconds, got {_shown(duration)}")
    offset = _seconds(entry, "offset")
    if offset is not None and not 0 <= offset < math.inf:
        raise _BadLine(f"offset must be a number of seconds >= 0, got {_shown(offset)}")
    if offset is not None and duration is None:
        raise _BadLine("a line with an offset needs a duration")
    audio = Path(entry["audio"])
    if not audio.is_absolute():
        audio = manifest.parent / audio
    return Utterance(
        id=entry["id"],
        audio=audio,
        duration=math.nan if duration is None else duration,
        text=entry["text"],
        speaker=speaker or "",
        offset=offset,
        extra={k: v for k, v in entry.items() if k not in _KNOWN_KEYS},
    )


def _seconds(entry: dict, key: str) -> float | None:
    """``entry[key]`` as float seconds; None when absent or null; _BadLine when not a number."""
    value = entry.get(key)
    if value is None:
        return None
    # bool is an int in Python, but ``true`` seconds is a mistake, not 1 s.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _BadLine(f"{key} must be a number of seconds, got {_shown(value)}")
    return float(value)


def _shown(value: object) -> str:
    """A JSON value as it was written (null, 5, "abc"), cut to a readable length."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def write_manifest(path: str | Path, utterances: Sequence[Utterance]) -> None:
    """Write utterances as JSONL with audio paths relative to the manifest's folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for utt in utterances:
            try:
                audio = str(utt.audio.resolve().relative_to(path.parent.resolve()))
            except ValueError:
                audio = str(utt.audio.resolve())
            entry = {"id": utt.id, "audio": audio, "duration": utt.duration}
            if math.isnan(utt.duration):
                del entry["duration"]  # unknown: NaN is not JSON, and absent reads back as unknown
            entry.update(text=utt.text, speaker=utt.speaker)
            if utt.offset is not None:
                entry["offset"] = utt.offset
            entry.update({k: v for k, v in utt.extra.items() if k not in entry})
            out.write(json.dumps(entry, ensure_ascii=False) + "\n")


def validate(
    utterances: Sequence[Utterance],
    vocabulary: Vocabulary,
    skips: SkipCounter,
    min_duration: float = 0.0,
    max_duration: float = math.inf,
    min_tokens_per_second: float = 0.0,
    max_tokens_per_second: float = math.inf,
) -> list[Utterance]:
    """Utterances whose text can be spelled and whose duration is within bounds.

    An utterance without a duration gets the one its audio file's header gives, so the bounds
    hold for it too (a file that cannot be read is skipped as unreadable audio). The token
    bounds catch transcripts that cannot belong to their audio: more tokens a second than the
    model has frames to emit them from (CTC cannot align them, and the search's length limit
    cannot reach them), or far fewer than anyone speaks (a transcript of one word on 20 s of
    audio is usually a wrong or truncated one).
    """
    kept = []
    units = "characters" if vocabulary.unit == "char" else "phones"
    for utt in utterances:
        unknown = vocabulary.unknown_tokens(utt.text)
        if unknown:
            shown = " ".join(repr(ch) for ch in sorted(unknown))
            skips.skip(utt.id, "text outside vocabulary", f"text has {units} {shown}")
            continue
        if not utt.text.strip():
            skips.skip(utt.id, "empty text", "empty transcript")
            continue
        if math.isnan(utt.duration):
            try:
                utt = replace(utt, duration=audio_duration(utt.audio))
            except AudioError as error:
                skips.skip(utt.id, "unreadable audio", str(error))
                continue
        rate = len(vocabulary.split(utt.text)) / max(utt.duration, 1e-3)
        if not min_duration <= utt.duration <= max_duration:
            skips.skip(
                utt.id,
                "duration out of range",
                f"duration {utt.duration:.2f}s outside [{min_duration}, {max_duration}]",
            )
        elif not min_tokens_per_second <= rate <= max_tokens_per_second:
            skips.skip(
                utt.id,
                "impossible length ratio",
                f"{rate:.1f} {units} a second, outside "
                f"[{min_tokens_per_second:g}, {max_tokens_per_second:g}]",
            )
        else:
            kept.append(utt)
    return kept
