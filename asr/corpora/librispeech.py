"""LibriSpeech (Panayotov et al. 2015) from an extracted copy, into JSONL manifests.

The official layout, as the OpenSLR archives extract::

    LibriSpeech/<split>/<speaker>/<chapter>/<speaker>-<chapter>-<utterance>.flac
    LibriSpeech/<split>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt

where each ``.trans.txt`` line is ``<speaker>-<chapter>-<utterance> TRANSCRIPT`` (upper case).
``prepare`` writes ``<out>/<split>.jsonl`` for each of the seven standard splits found, by its
official name, and ``train-960.jsonl`` (all three training splits) when all three are there.
Each line holds ``id``, ``audio`` (absolute path), ``duration`` (seconds, from the audio),
``text`` (the transcript as LibriSpeech spells it), ``speaker`` and ``chapter``.

A missing split, a transcript line without its FLAC, a FLAC without a transcript line, a
malformed line or an unreadable FLAC is reported in one line, counted in ``prepare.json``, and
left out; the rest is prepared.

    python recipes/librispeech/prepare.py --root /data/LibriSpeech --out data/librispeech
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from asr.corpora.preparation import (
    AUDIO_WITHOUT_TRANSCRIPT,
    MALFORMED_LINE,
    MISSING_SPLIT,
    TRANSCRIPT_WITHOUT_AUDIO,
    Problems,
    add_common_arguments,
    check_audio,
    drop_duplicates,
    format_summary,
    write_corpus,
)
from asr.data import Utterance
from asr.errors import UserError, reports_user_errors

log = logging.getLogger(__name__)

SPLITS = (
    "train-clean-100",
    "train-clean-360",
    "train-other-500",
    "dev-clean",
    "dev-other",
    "test-clean",
    "test-other",
)
TRAIN_960 = ("train-clean-100", "train-clean-360", "train-other-500")


def find_root(path: str | Path) -> Path:
    """The folder holding the split folders: ``path`` itself or its ``LibriSpeech`` child."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"LibriSpeech folder not found: {path}")
    if (path / "LibriSpeech").is_dir():
        return path / "LibriSpeech"
    return path


def read_split(split_dir: Path, problems: Problems) -> list[Utterance]:
    """Utterances of one split folder (durations still unknown); problems are reported."""
    utterances = []
    for chapter_dir in sorted(p for p in split_dir.glob("*/*") if p.is_dir()):
        speaker, chapter = chapter_dir.parent.name, chapter_dir.name
        prefix = f"{speaker}-{chapter}"
        flacs = {p.stem: p for p in chapter_dir.glob("*.flac")}
        transcript_file = chapter_dir / f"{prefix}.trans.txt"
        transcripts: dict[str, str] = {}
        if transcript_file.is_file():
            lines = transcript_file.read_text(encoding="utf-8").splitlines()
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                utterance_id, _, text = line.strip().partition(" ")
                where = f"{transcript_file}:{number}"
                if not utterance_id.startswith(prefix + "-") or not text.strip():
                    problems.add(MALFORMED_LINE, f"{where}: expected '{prefix}-NNNN TRANSCRIPT'")
                elif utterance_id in transcripts:
                    problems.add(MALFORMED_LINE, f"{where}: {utterance_id} is transcribed twice")
                else:
                    transcripts[utterance_id] = text.strip()
        for utterance_id, text in transcripts.items():
            audio = flacs.get(utterance_id)
            if audio is None:
                problems.add(
                    TRANSCRIPT_WITHOUT_AUDIO,
                    f"{transcript_file}: {utterance_id} has no audio file {utterance_id}.flac",
                )
                continue
            utterances.append(
                Utterance(
                    id=utterance_id,
                    audio=audio.resolve(),
                    duration=float("nan"),
                    text=text,
                    speaker=speaker,
                    extra={"chapter": chapter},
                )
            )
        for stem in sorted(set(flacs) - set(transcripts)):
            problems.add(
                AUDIO_WITHOUT_TRANSCRIPT,
                f"{flacs[stem]} has no line in {transcript_file.name}"
                + ("" if transcript_file.is_file() else " (the file is missing)"),
            )
    return utterances


def prepare(
    root: str | Path,
    out_dir: str | Path,
    splits: Sequence[str] = SPLITS,
    verify: bool = True,
    workers: int = 1,
) -> dict:
    """Write a manifest per split found (and ``train-960``); returns the ``prepare.json`` dict."""
    unknown = [s for s in splits if s not in SPLITS]
    if unknown:
        raise UserError(f"unknown LibriSpeech split(s) {', '.join(unknown)}: choose from {SPLITS}")
    root = find_root(root)
    problems = Problems()
    prepared: dict[str, list[Utterance]] = {}
    for split in splits:
        split_dir = root / split
        if not split_dir.is_dir():
            problems.add(MISSING_SPLIT, f"split {split} not found: no folder {split_dir}")
            continue
        log.info("reading %s", split_dir)
        utterances = drop_duplicates(read_split(split_dir, problems), problems)
        prepared[split] = check_audio(utterances, problems, verify=verify, workers=workers)
    if all(split in prepared for split in TRAIN_960):
        prepared["train-960"] = [u for split in TRAIN_960 for u in prepared[split]]
    if not prepared:
        raise UserError(f"no LibriSpeech split found in {root} (looked for {', '.join(splits)})")
    settings = {"splits": list(splits), "verified_audio": verify}
    return write_corpus(out_dir, "librispeech", root, prepared, problems, settings)


@reports_user_errors
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="recipes/librispeech/prepare.py",
        description="Write JSONL manifests for an extracted LibriSpeech copy.",
    )
    parser.add_argument("--root", required=True, help="LibriSpeech folder (or its parent)")
    parser.add_argument(
        "--splits",
        nargs="+",
        default=list(SPLITS),
        metavar="SPLIT",
        help="splits to prepare (default: all seven)",
    )
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    summary = prepare(
        args.root, args.out, args.splits, verify=args.verify, workers=args.workers or 1
    )
    print(format_summary(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
