"""What every corpus importer shares: counted problems, audio checks, manifests and a summary.

An importer (``librispeech``, ``timit``, ``kaldi``, ``custom``) reads a corpus in its own layout
into :class:`asr.data.Utterance` records, reporting each problem it meets (a transcript line
without audio, audio without a transcript, a malformed line, a missing split) as one line through
:class:`Problems` and carrying on with the rest. :func:`check_audio` then opens every audio file
(decoding it in full with ``verify``, reading its header otherwise), drops the unreadable and
truncated ones as problems too and fills in exact durations; :func:`write_corpus` writes one
JSONL manifest per split (docs/design.md) and ``prepare.json`` with the statistics and the
problem counts.
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

from asr.audio import audio_duration, load_audio
from asr.data import Utterance, truncated_wav, write_manifest
from asr.errors import AudioError, UserError

log = logging.getLogger(__name__)

# Kinds of problem, as counted in prepare.json.
MISSING_SPLIT = "missing split"
TRANSCRIPT_WITHOUT_AUDIO = "transcript without audio"
AUDIO_WITHOUT_TRANSCRIPT = "audio without transcript"
MISSING_AUDIO_FILE = "missing audio file"
UNREADABLE_AUDIO = "unreadable audio"
TRUNCATED_AUDIO = "truncated audio"
MALFORMED_LINE = "malformed line"
DUPLICATE_ID = "duplicate id"

SUMMARY_FILE = "prepare.json"
# Durations are measured at this rate; any rate gives the same seconds up to one sample.
_PROBE_RATE = 16000


class Problems:
    """Problems met while preparing a corpus: each is logged as one line and counted by kind."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, kind: str, message: str) -> None:
        self.counts[kind] += 1
        log.warning("%s: %s", kind, message)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        if not self.counts:
            return "no problems"
        parts = ", ".join(f"{n} {kind}" for kind, n in sorted(self.counts.items()))
        return f"{self.total} problems ({parts})"


def _probe(item: tuple[str, float | None, float, bool]) -> tuple[float | None, str, str]:
    """(duration in seconds, "", "") of one utterance's audio, or (None, kind, message) of its
    problem."""
    audio, offset, duration, verify = item
    segment = offset is not None and not math.isnan(duration)
    try:
        if verify:
            waveform = load_audio(
                audio,
                _PROBE_RATE,
                min_samples=1,
                offset=offset or 0.0,
                duration=duration if segment else None,
            )
            seconds = len(waveform) / _PROBE_RATE
            available = seconds
        else:
            total = audio_duration(audio)
            available = total - (offset or 0.0)
            seconds = duration if segment else available
            if available <= 0:
                raise AudioError(f"audio file {audio} ends before the offset {offset:.2f} s")
        # libsndfile reads a cut-off WAV as the samples it holds: only its header tells.
        truncation = None if segment else truncated_wav(audio)
        if truncation:
            return None, TRUNCATED_AUDIO, truncation
        if segment and available < duration - 0.01:
            message = (
                f"segment of {audio} from {offset:.2f} s for {duration:.2f} s runs past the end "
                f"of the file ({offset + available:.2f} s)"
            )
            return None, UNREADABLE_AUDIO, message
        return seconds, "", ""
    except AudioError as error:
        missing = "does not exist" in str(error)
        return None, MISSING_AUDIO_FILE if missing else UNREADABLE_AUDIO, str(error)


def check_audio(
    utterances: Sequence[Utterance],
    problems: Problems,
    verify: bool = True,
    workers: int = 1,
) -> list[Utterance]:
    """The utterances whose audio can be read, with durations measured from the audio.

    With ``verify`` every file is decoded in full (a corrupt FLAC fails here instead of during
    training, and the duration is the decoded length); without it only the header is read.
    ``workers`` > 1 checks files in that many processes.
    """
    items = [(str(u.audio), u.offset, u.duration, verify) for u in utterances]
    if workers > 1 and len(items) > 64:
        context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            results = list(pool.map(_probe, items, chunksize=32))
    else:
        results = [_probe(item) for item in items]
    kept = []
    for utt, (seconds, kind, message) in zip(utterances, results, strict=True):
        if seconds is None:
            problems.add(kind, f"{utt.id}: {message}")
        else:
            kept.append(replace(utt, duration=round(seconds, 4)))
    return kept


def drop_duplicates(utterances: Iterable[Utterance], problems: Problems) -> list[Utterance]:
    """The utterances with the first of each id; later ones are problems."""
    seen: set[str] = set()
    kept = []
    for utt in utterances:
        if utt.id in seen:
            problems.add(DUPLICATE_ID, f"utterance id {utt.id!r} appears again ({utt.audio})")
            continue
        seen.add(utt.id)
        kept.append(utt)
    return kept


def split_statistics(utterances: Sequence[Utterance]) -> dict:
    seconds = sum(u.duration for u in utterances)
    return {
        "utterances": len(utterances),
        "hours": round(seconds / 3600, 4),
        "speakers": len({u.speaker for u in utterances}),
    }


def write_corpus(
    out_dir: str | Path,
    corpus: str,
    source: str | Path,
    splits: Mapping[str, Sequence[Utterance]],
    problems: Problems,
    settings: Mapping | None = None,
) -> dict:
    """Write ``<out_dir>/<split>.jsonl`` for each non-empty split and ``prepare.json``.

    Returns the summary written to ``prepare.json``. An empty split is a problem, not a file;
    no usable utterance at all is a UserError.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not any(splits.values()):
        raise UserError(f"no usable utterances found in {source} ({problems.summary()})")
    statistics = {}
    for name, utterances in splits.items():
        if not utterances:
            problems.add(MISSING_SPLIT, f"split {name} has no usable utterances; not written")
            continue
        write_manifest(out_dir / f"{name}.jsonl", sorted(utterances, key=lambda u: u.id))
        statistics[name] = split_statistics(utterances)
    summary = {
        "corpus": corpus,
        "source": str(source),
        "manifests": {name: f"{name}.jsonl" for name in statistics},
        "splits": statistics,
        "problems": dict(sorted(problems.counts.items())),
        "settings": dict(settings or {}),
        "prepared_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    (out_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def format_summary(summary: Mapping) -> str:
    """A small table of the splits written, and the problem counts."""
    lines = [f"{'split':<18} {'utterances':>10} {'hours':>9} {'speakers':>8}"]
    for name, stats in summary["splits"].items():
        lines.append(
            f"{name:<18} {stats['utterances']:>10} {stats['hours']:>9.3f} {stats['speakers']:>8}"
        )
    problems = summary["problems"]
    if problems:
        counts = ", ".join(f"{n} {kind}" for kind, n in problems.items())
        lines.append(f"problems: {counts} (each was reported above in one line)")
    else:
        lines.append("problems: none")
    return "\n".join(lines)


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def add_common_arguments(parser) -> None:
    """``--out``, ``--workers`` and ``--no-verify``, shared by every importer's command line."""
    parser.add_argument("--out", required=True, help="folder for the manifests and prepare.json")
    parser.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help="processes that check the audio files (default: CPU cores, at most 8)",
    )
    parser.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        help="read only audio headers instead of decoding every file (faster; a corrupt file "
        "is then found, and skipped, during training)",
    )
