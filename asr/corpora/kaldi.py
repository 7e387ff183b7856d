"""A Kaldi data directory (``wav.scp``, ``text``, optional ``segments`` and ``utt2spk``) as a
JSONL manifest.

- ``wav.scp``: ``<recording-id> <audio file>`` lines. A command line (``<recording-id> sph2pipe
  -f wav x.sph |``) is refused with one line unless ``run_commands`` is set: then it runs once,
  here, through ``/bin/sh``, and its output (audio in any format soundfile reads) is saved as
  ``<out>/audio/<split>/<recording-id>.wav``, which the manifest points at. Commands come from
  the data file, so running them is the user's explicit choice. Archive entries
  (``foo.ark:1234``) are refused: las-asr reads audio files.
- ``text``: ``<utterance-id> <transcript>``.
- ``segments`` (optional): ``<utterance-id> <recording-id> <start> <end>`` in seconds; ``end``
  -1 means the end of the recording. Without it each recording is one utterance with the
  recording's id.
- ``utt2spk`` (optional): ``<utterance-id> <speaker-id>``.

Relative audio paths are resolved against ``root`` (default: the current folder, where Kaldi
recipes run from). Problems (a transcript without audio, audio without a transcript, malformed
lines, refused or failed commands, unreadable audio) are reported one line each and counted.
"""

from __future__ import annotations

import io
import logging
import re
import subprocess
from pathlib import Path

import soundfile

from asr.corpora.preparation import (
    AUDIO_WITHOUT_TRANSCRIPT,
    MALFORMED_LINE,
    TRANSCRIPT_WITHOUT_AUDIO,
    Problems,
)
from asr.data import Utterance
from asr.errors import UserError

log = logging.getLogger(__name__)

COMMAND_REFUSED = "command refused"
COMMAND_FAILED = "command failed"
ARCHIVE_REFUSED = "archive entry refused"
COMMAND_TIMEOUT_SECONDS = 600
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")
_ARCHIVE = re.compile(r"\.ark:\d+$")


def read_table(path: Path, problems: Problems, fields: int | None = None) -> dict[str, str]:
    """``{first token: rest of line}`` of a Kaldi table file; ``fields`` checks the token count.

    A duplicate key or a line with the wrong number of fields is a problem and left out.
    """
    table: dict[str, str] = {}
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        key, _, rest = line.strip().partition(" ")
        rest = rest.strip()
        if fields is not None and len(line.split()) != fields:
            problems.add(MALFORMED_LINE, f"{path}:{number}: expected {fields} fields")
        elif key in table:
            problems.add(MALFORMED_LINE, f"{path}:{number}: {key!r} appears twice")
        else:
            table[key] = rest
    return table


def _run_command(command: str, target: Path) -> None:
    """Run a wav.scp command and save its audio output as ``target`` (16-bit WAV)."""
    try:
        done = subprocess.run(
            ["/bin/sh", "-c", command],
            capture_output=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"no output after {COMMAND_TIMEOUT_SECONDS} s") from None
    if done.returncode != 0:
        error = done.stderr.decode(errors="replace").strip().splitlines()
        raise RuntimeError(f"exit status {done.returncode}" + (f" ({error[-1]})" if error else ""))
    try:
        samples, rate = soundfile.read(io.BytesIO(done.stdout), dtype="int16", always_2d=True)
    except Exception:
        raise RuntimeError(f"its output ({len(done.stdout)} bytes) is not audio") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(target, samples, rate, subtype="PCM_16")


def recordings(
    data_dir: Path,
    problems: Problems,
    root: Path,
    audio_dir: Path,
    run_commands: bool = False,
) -> dict[str, Path]:
    """``{recording-id: audio file}`` from wav.scp, with commands run or refused."""
    scp = data_dir / "wav.scp"
    found = {}
    for recording, entry in read_table(scp, problems).items():
        where = f"{scp}: recording {recording}"
        if not entry:
            problems.add(MALFORMED_LINE, f"{where} has no audio")
        elif entry.endswith("|"):
            command = entry[:-1].strip()
            if not run_commands:
                problems.add(
                    COMMAND_REFUSED,
                    f"{where} is a command ({command!r}); rerun with --run-commands to run it "
                    f"once through /bin/sh, or list audio files in wav.scp",
                )
                continue
            target = audio_dir / f"{_UNSAFE_NAME.sub('_', recording)}.wav"
            if not target.is_file():
                try:
                    _run_command(command, target)
                except RuntimeError as error:
                    problems.add(COMMAND_FAILED, f"{where}: {command!r} failed: {error}")
                    continue
            found[recording] = target.resolve()
        elif _ARCHIVE.search(entry):
            problems.add(
                ARCHIVE_REFUSED,
                f"{where} is an archive entry ({entry}); las-asr reads audio files, so write "
                f"the audio out (e.g. wav-copy) and list the files",
            )
        else:
            path = Path(entry)
            found[recording] = path if path.is_absolute() else (root / path).resolve()
    return found


def read_data_dir(
    data_dir: str | Path,
    problems: Problems,
    audio_dir: str | Path,
    root: str | Path | None = None,
    run_commands: bool = False,
) -> list[Utterance]:
    """Utterances of a Kaldi data directory (durations of whole recordings still unknown)."""
    data_dir = Path(data_dir)
    for name in ("wav.scp", "text"):
        if not (data_dir / name).is_file():
            raise UserError(f"{data_dir} is not a Kaldi data directory: no {name}")
    root = Path.cwd() if root is None else Path(root)
    audio = recordings(data_dir, problems, root, Path(audio_dir), run_commands)
    texts = read_table(data_dir / "text", problems)
    speakers = {}
    if (data_dir / "utt2spk").is_file():
        speakers = read_table(data_dir / "utt2spk", problems, fields=2)
    scp_ids = set(read_table_keys(data_dir / "wav.scp"))
    # (recording, start, end or None) of each utterance
    spans: dict[str, tuple[str, float | None, float | None]] = {}
    segments_file = data_dir / "segments"
    if segments_file.is_file():
        for utterance, rest in read_table(segments_file, problems, fields=4).items():
            recording, start, end = rest.split()
            try:
                start_s, end_s = float(start), float(end)
            except ValueError:
                problems.add(MALFORMED_LINE, f"{segments_file}: {utterance}: bad times {rest!r}")
                continue
            if start_s < 0 or (end_s != -1 and end_s <= start_s):
                problems.add(MALFORMED_LINE, f"{segments_file}: {utterance}: bad times {rest!r}")
                continue
            spans[utterance] = (recording, start_s, None if end_s == -1 else end_s)
    else:
        spans = {recording: (recording, None, None) for recording in scp_ids}

    utterances = []
    for utterance, text in texts.items():
        span = spans.get(utterance)
        if span is None:
            where = "segments" if segments_file.is_file() else "wav.scp"
            problems.add(TRANSCRIPT_WITHOUT_AUDIO, f"{data_dir}: {utterance} is not in {where}")
            continue
        recording, start, end = span
        if recording not in audio:
            if recording not in scp_ids:
                problems.add(
                    TRANSCRIPT_WITHOUT_AUDIO,
                    f"{data_dir}: {utterance}'s recording {recording} is not in wav.scp",
                )
            continue  # a refused or failed wav.scp entry, reported already
        utterances.append(
            Utterance(
                id=utterance,
                audio=audio[recording],
                duration=float("nan") if end is None else round(end - start, 4),
                text=text,
                speaker=speakers.get(utterance, ""),
                offset=start,
                extra={"recording": recording} if segments_file.is_file() else {},
            )
        )
    for utterance in sorted(set(spans) - set(texts)):
        problems.add(AUDIO_WITHOUT_TRANSCRIPT, f"{data_dir}: {utterance} has no line in text")
    return utterances


def read_table_keys(path: Path) -> list[str]:
    """First tokens of a table file's non-blank lines (no checks: read_table reports those)."""
    return [
        line.split()[0] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
