"""Any corpus, given as Kaldi data directories or as tables (JSONL, CSV or TSV), into manifests.

Tables hold one utterance a row with an audio path and a transcript, and optionally an id, a
speaker, a duration and offsets into the file. Columns are recognised by these names (the first
present wins), which cover NeMo manifests, Common Voice TSVs and most hand-made lists:

=========  ===============================================================
audio      ``audio``, ``path``, ``audio_filepath``, ``audio_path``, ``file``, ``wav``, ``filename``
text       ``text``, ``transcript``, ``transcription``, ``sentence``
id         ``id``, ``utt_id``, ``utterance_id`` (default: the file name without suffix, plus
           the offset in milliseconds for a segment)
speaker    ``speaker``, ``speaker_id``, ``client_id``
duration   ``duration`` (seconds; measured from the audio when absent)
offset     ``offset``, ``start`` (seconds into the file: the row is a segment)
end        ``end`` (seconds; with an offset, instead of a duration)
=========  ===============================================================

Relative audio paths are resolved against the table's folder (or ``--audio-root``). Each
problem (a JSONL line that is not a JSON object, a row without audio or without text, a missing,
unreadable or truncated file, a duplicate id) is one line, counted in ``prepare.json``; the other
rows are prepared.

    python recipes/custom/prepare.py --out data/mine table train=train.csv dev=dev.tsv
    python recipes/custom/prepare.py --out data/mine kaldi train=kaldi/data/train test=...
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from asr.corpora.kaldi import read_data_dir
from asr.corpora.preparation import (
    AUDIO_WITHOUT_TRANSCRIPT,
    MALFORMED_LINE,
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

COLUMNS: dict[str, tuple[str, ...]] = {
    "audio": ("audio", "path", "audio_filepath", "audio_path", "file", "wav", "filename"),
    "text": ("text", "transcript", "transcription", "sentence"),
    "id": ("id", "utt_id", "utterance_id"),
    "speaker": ("speaker", "speaker_id", "client_id"),
    "duration": ("duration",),
    "offset": ("offset", "start"),
    "end": ("end",),
}


def read_rows(path: Path, problems: Problems) -> list[tuple[int, dict]]:
    """(line number, row) of a JSONL, CSV or TSV table; the format follows the suffix. A JSONL
    line that is not a JSON object is a problem, and the other lines are read."""
    if not path.is_file():
        raise UserError(f"table not found: {path}")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        rows = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                problems.add(MALFORMED_LINE, f"{path}:{number}: not valid JSON ({error.msg})")
                continue
            if not isinstance(row, dict):
                problems.add(MALFORMED_LINE, f"{path}:{number}: expected a JSON object")
                continue
            rows.append((number, row))
        return rows
    if suffix in (".csv", ".tsv"):
        with path.open(encoding="utf-8", newline="") as file:
            reader = csv.DictReader(file, delimiter="\t" if suffix == ".tsv" else ",")
            return [(number, row) for number, row in enumerate(reader, start=2)]
    raise UserError(f"{path}: a table must be .jsonl, .json, .csv or .tsv")


def _column(columns: Sequence[str], field: str) -> str | None:
    return next((name for name in COLUMNS[field] if name in columns), None)


def _seconds(value, where: str, problems: Problems) -> float | None | bool:
    """A float from a cell; None for an empty cell; False (after a problem) for garbage."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        problems.add(MALFORMED_LINE, f"{where}: {value!r} is not a number of seconds")
        return False
    if not math.isfinite(seconds) or seconds < 0:
        problems.add(MALFORMED_LINE, f"{where}: {value!r} is not a number of seconds")
        return False
    return seconds


def read_table_corpus(
    path: str | Path, problems: Problems, audio_root: str | Path | None = None
) -> list[Utterance]:
    """Utterances of one table (durations from the table where given, else measured later)."""
    path = Path(path)
    rows = read_rows(path, problems)
    columns = sorted({key for _, row in rows for key in row})
    names = {field: _column(columns, field) for field in COLUMNS}
    for field in ("audio", "text"):
        if rows and names[field] is None:
            raise UserError(
                f"{path} has no {field} column: name one of {', '.join(COLUMNS[field])} "
                f"(found {', '.join(columns)})"
            )
    root = Path(audio_root) if audio_root is not None else path.parent
    utterances = []
    for number, row in rows:
        where = f"{path}:{number}"

        def cell(field: str, row: Mapping = row) -> str:
            value = row.get(names[field]) if names[field] else None
            return "" if value is None else str(value).strip()

        if not cell("audio"):
            problems.add(TRANSCRIPT_WITHOUT_AUDIO, f"{where}: no audio path")
            continue
        if not cell("text"):
            problems.add(AUDIO_WITHOUT_TRANSCRIPT, f"{where}: {cell('audio')} has no text")
            continue
        times = [_seconds(cell(f) or None, where, problems) for f in ("offset", "end", "duration")]
        if any(t is False for t in times):
            continue
        offset, end, duration = times
        if offset is not None and end is not None:
            if end <= offset:
                problems.add(MALFORMED_LINE, f"{where}: end {end} is not after offset {offset}")
                continue
            duration = end - offset
        elif offset is None and end is not None:
            offset, duration = 0.0, end
        audio = Path(cell("audio")).expanduser()
        audio = audio if audio.is_absolute() else root / audio
        utterance_id = cell("id") or audio.stem
        if not cell("id") and offset is not None:
            utterance_id += f"_{round(1000 * offset):08d}"
        utterances.append(
            Utterance(
                id=utterance_id,
                audio=audio.resolve(),
                duration=math.nan if duration is None else duration,
                text=cell("text"),
                speaker=cell("speaker"),
                offset=offset,
            )
        )
    return utterances


def _pairs(values: Sequence[str]) -> dict[str, Path]:
    """``NAME=PATH`` arguments as a dict; a bare path takes its stem as the split name."""
    splits = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep:
            name, path = Path(value).stem, value
        if not name or name in splits:
            raise UserError(f"give each split once as NAME=PATH, got {value!r}")
        splits[name] = Path(path)
    return splits


def prepare_tables(
    tables: Mapping[str, str | Path],
    out_dir: str | Path,
    audio_root: str | Path | None = None,
    verify: bool = True,
    workers: int = 1,
) -> dict:
    """One manifest per table: ``{split name: table path}``; returns the ``prepare.json``."""
    problems = Problems()
    splits = {}
    for name, table in tables.items():
        utterances = drop_duplicates(read_table_corpus(table, problems, audio_root), problems)
        splits[name] = check_audio(utterances, problems, verify=verify, workers=workers)
    settings = {"tables": {k: str(v) for k, v in tables.items()}, "verified_audio": verify}
    return write_corpus(
        out_dir, "custom", ", ".join(map(str, tables.values())), splits, problems, settings
    )


def prepare_kaldi(
    data_dirs: Mapping[str, str | Path],
    out_dir: str | Path,
    root: str | Path | None = None,
    run_commands: bool = False,
    verify: bool = True,
    workers: int = 1,
) -> dict:
    """One manifest per Kaldi data directory: ``{split name: dir}``; returns ``prepare.json``."""
    problems = Problems()
    out_dir = Path(out_dir)
    splits = {}
    for name, data_dir in data_dirs.items():
        utterances = read_data_dir(
            data_dir, problems, out_dir / "audio" / name, root=root, run_commands=run_commands
        )
        utterances = drop_duplicates(utterances, problems)
        splits[name] = check_audio(utterances, problems, verify=verify, workers=workers)
    settings = {
        "kaldi_dirs": {k: str(v) for k, v in data_dirs.items()},
        "run_commands": run_commands,
        "verified_audio": verify,
    }
    source = ", ".join(map(str, data_dirs.values()))
    return write_corpus(out_dir, "kaldi", source, splits, problems, settings)


@reports_user_errors
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="recipes/custom/prepare.py",
        description="Write JSONL manifests for Kaldi data directories or JSONL/CSV/TSV tables.",
    )
    add_common_arguments(parser)
    sub = parser.add_subparsers(dest="source", required=True)
    kaldi = sub.add_parser("kaldi", help="Kaldi data directories (wav.scp, text, ...)")
    kaldi.add_argument("splits", nargs="+", metavar="NAME=DIR", help="e.g. train=data/train")
    kaldi.add_argument(
        "--root", default=None, help="folder relative wav.scp paths start from (default: .)"
    )
    kaldi.add_argument(
        "--run-commands",
        action="store_true",
        help="run wav.scp command entries ('... |') once through /bin/sh and keep their audio",
    )
    table = sub.add_parser("table", help="JSONL, CSV or TSV tables (audio path, text, ...)")
    table.add_argument("splits", nargs="+", metavar="NAME=TABLE", help="e.g. train=train.csv")
    table.add_argument("--audio-root", default=None, help="folder relative audio paths start from")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    common = dict(verify=args.verify, workers=args.workers or 1)
    if args.source == "kaldi":
        summary = prepare_kaldi(
            _pairs(args.splits), args.out, args.root, args.run_commands, **common
        )
    else:
        summary = prepare_tables(_pairs(args.splits), args.out, args.audio_root, **common)
    print(format_summary(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
