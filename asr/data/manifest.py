"""Manifests: JSONL files of utterances, read, written and filtered.

A manifest is a JSONL file, one utterance a line:
``{"id": str, "audio": str, "duration": float, "text": str, "speaker": str}``. ``audio`` is
absolute or relative to the manifest's folder. An optional ``offset`` (seconds) makes the line
a segment of its file: ``duration`` seconds from ``offset`` on (a Kaldi ``segments`` entry);
without it the utterance is the whole file. Other keys (a LibriSpeech chapter, TIMIT's words)
are kept in ``Utterance.extra`` and written back. Any corpus that can be written this way can be
trained on.

``validate`` drops utterances whose text the vocabulary cannot spell, whose duration is out of
bounds or whose length in tokens is impossible for that duration, counting each in a
:class:`~asr.data.skips.SkipCounter`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from asr.data.skips import SkipCounter
from asr.errors import UserError
from asr.text import Vocabulary

REQUIRED_KEYS = ("id", "audio", "text")
_KNOWN_KEYS = (*REQUIRED_KEYS, "duration", "speaker", "offset")


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


def read_manifest(path: str | Path) -> list[Utterance]:
    """Utterances of a JSONL manifest; a malformed line is a UserError naming file and line."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"manifest not found: {path}")
    utterances = []
    seen: set[str] = set()
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as error:
                raise UserError(f"{path}:{number}: not valid JSON ({error.msg})") from None
            missing = [key for key in REQUIRED_KEYS if key not in entry]
            if missing:
                raise UserError(f"{path}:{number}: missing key(s) {', '.join(missing)}")
            if entry["id"] in seen:
                raise UserError(f"{path}:{number}: duplicate utterance id {entry['id']!r}")
            seen.add(entry["id"])
            audio = Path(entry["audio"])
            if not audio.is_absolute():
                audio = path.parent / audio
            offset = entry.get("offset")
            if offset is not None and "duration" not in entry:
                raise UserError(f"{path}:{number}: a line with an offset needs a duration")
            utterances.append(
                Utterance(
                    id=str(entry["id"]),
                    audio=audio,
                    duration=float(entry.get("duration", math.nan)),
                    text=str(entry["text"]),
                    speaker=str(entry.get("speaker", "")),
                    offset=None if offset is None else float(offset),
                    extra={k: v for k, v in entry.items() if k not in _KNOWN_KEYS},
                )
            )
    return utterances


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
            entry = {
                "id": utt.id,
                "audio": audio,
                "duration": utt.duration,
                "text": utt.text,
                "speaker": utt.speaker,
            }
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

    The token bounds catch transcripts that cannot belong to their audio: more tokens a second
    than the model has frames to emit them from (CTC cannot align them, and the search's
    length limit cannot reach them), or far fewer than anyone speaks (a transcript of one word
    on 20 s of audio is usually a wrong or truncated one).
    """
    kept = []
    for utt in utterances:
        unknown = vocabulary.unknown_tokens(utt.text)
        units = "characters" if vocabulary.unit == "char" else "phones"
        if unknown:
            shown = " ".join(repr(ch) for ch in sorted(unknown))
            skips.skip(utt.id, "text outside vocabulary", f"text has {units} {shown}")
        elif not utt.text.strip():
            skips.skip(utt.id, "empty text", "empty transcript")
        elif not math.isnan(utt.duration) and not min_duration <= utt.duration <= max_duration:
            skips.skip(
                utt.id,
                "duration out of range",
                f"duration {utt.duration:.2f}s outside [{min_duration}, {max_duration}]",
            )
        elif not math.isnan(utt.duration) and not (
            min_tokens_per_second
            <= len(vocabulary.split(utt.text)) / max(utt.duration, 1e-3)
            <= max_tokens_per_second
        ):
            rate = len(vocabulary.split(utt.text)) / max(utt.duration, 1e-3)
            skips.skip(
                utt.id,
                "impossible length ratio",
                f"{rate:.1f} {units} a second, outside "
                f"[{min_tokens_per_second:g}, {max_tokens_per_second:g}]",
            )
        else:
            kept.append(utt)
    return kept
