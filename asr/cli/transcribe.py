"""``asr transcribe``: files, folders and globs to text, JSON lines or subtitles."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from asr.errors import UserError
from asr.inputs import expand_input


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "transcribe",
        help="transcribe audio files, folders and globs (any format, rate, channels, length)",
    )
    p.add_argument("--model", required=True, help="checkpoint file (.pt)")
    p.add_argument(
        "--format",
        default="text",
        help="text (file<TAB>transcript), jsonl, srt or vtt; several, comma-separated, with "
        "--output-dir (default: text)",
    )
    p.add_argument("--output-dir", default=None, help="write one file per input and format here")
    p.add_argument(
        "--beam-size",
        type=int,
        default=None,
        help="beams of the search; 1 = greedy (default: 4, see docs/transcribe.md)",
    )
    p.add_argument(
        "--lm",
        default=None,
        metavar="LM.pt",
        help="language model (asr train-lm, characters or words) for shallow fusion; needs an "
        "LM weight > 0",
    )
    p.add_argument(
        "--lm-weight",
        type=float,
        default=None,
        help="shallow-fusion weight of --lm (default: the checkpoint's decoding.lm_weight)",
    )
    p.add_argument(
        "--oov-penalty",
        type=float,
        default=None,
        help="a word --lm's log-probability for leaving its word list (default: the checkpoint's "
        "decoding.oov_penalty, -23.03)",
    )
    p.add_argument(
        "--sentence-restarts",
        action="store_true",
        default=None,
        help="let a word --lm end a sentence after any word and begin another, for recordings "
        "whose segments hold several sentences (default: the checkpoint's "
        "decoding.sentence_restarts)",
    )
    p.add_argument(
        "--ctc-weight",
        type=float,
        default=None,
        help="joint CTC/attention weight in [0, 1) (default: the checkpoint's decoding.ctc_weight)",
    )
    p.add_argument(
        "--nbest",
        type=int,
        default=None,
        help="N best transcripts per segment with their scores, in jsonl output (default: 1)",
    )
    p.add_argument("--batch-size", type=int, default=16, help="segments decoded together")
    p.add_argument(
        "--low-confidence",
        type=float,
        default=None,
        help="warn when a file's average confidence is below this: the model may not fit the "
        "audio (default: asr.transcriber.LOW_CONFIDENCE, 0.63, measured on the demo model; "
        "0 never warns)",
    )
    p.add_argument(
        "--max-segment-seconds",
        type=float,
        default=None,
        help="longest piece decoded at once (default: 20 s or the longest training utterance)",
    )
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if present)")
    p.add_argument("--plot-attention", default=None, metavar="DIR", help="alignment per segment")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("inputs", nargs="+", help="audio files, folders (recursive) or glob patterns")
    p.set_defaults(func=cmd_transcribe)


def cmd_transcribe(args: argparse.Namespace) -> int:
    """Transcribe files, folders and globs; a bad file is named in one line and skipped."""
    from tqdm import tqdm

    from asr.subtitles import FORMATS, SUFFIXES, render
    from asr.transcriber import LOW_CONFIDENCE, Transcriber

    formats = list(dict.fromkeys(f.strip() for f in args.format.split(",") if f.strip()))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise UserError(f"unknown --format {args.format!r}; choose from {', '.join(FORMATS)}")
    for name, value, least in (
        ("--beam-size", args.beam_size, 1),
        ("--batch-size", args.batch_size, 1),
        ("--max-segment-seconds", args.max_segment_seconds, 1.0),
        ("--nbest", args.nbest, 1),
        ("--lm-weight", args.lm_weight, 0.0),
        ("--ctc-weight", args.ctc_weight, 0.0),
    ):
        if value is not None and value < least:
            raise UserError(f"{name} must be at least {least}, got {value}")
    if args.nbest is not None and args.beam_size is not None and args.nbest > args.beam_size:
        raise UserError(f"--nbest {args.nbest} needs --beam-size {args.nbest} or more")
    if args.lm_weight is not None and args.lm_weight > 0 and args.lm is None:
        raise UserError("--lm-weight needs --lm LM.pt")
    if args.oov_penalty is not None and args.oov_penalty > 0:
        raise UserError(f"--oov-penalty is a log-probability (<= 0), got {args.oov_penalty}")
    decoding = {
        key: value
        for key, value in (
            ("nbest", args.nbest),
            ("lm_weight", args.lm_weight),
            ("ctc_weight", args.ctc_weight),
            ("oov_penalty", args.oov_penalty),
            ("sentence_restarts", args.sentence_restarts),
        )
        if value is not None
    }
    outputs = _output_names(args.inputs)
    if not outputs:
        raise UserError("no audio files found in " + " ".join(args.inputs))
    if args.output_dir is None and len(formats) > 1:
        raise UserError("several --format values need --output-dir (one file per input each)")
    if args.output_dir is None and formats[0] in ("srt", "vtt") and len(outputs) > 1:
        raise UserError(f"--format {formats[0]} for several files needs --output-dir")

    transcriber = Transcriber.from_checkpoint(
        args.model,
        device=args.device,
        beam_size=args.beam_size,
        batch_size=args.batch_size,
        max_segment_seconds=args.max_segment_seconds,
        lm=args.lm,
        decoding=decoding,
        low_confidence=LOW_CONFIDENCE
        if args.low_confidence is None
        else args.low_confidence or None,
    )
    options = transcriber.options
    if args.lm is not None and not options.uses_language_model:
        raise UserError(
            f"--lm {args.lm} is not used: the checkpoint's decoding.lm_weight is 0; give "
            "--lm-weight (e.g. 0.3)"
        )
    bar = tqdm(
        total=len(outputs),
        unit="file",
        disable=True if args.no_progress else None,  # None: only on a terminal
        file=sys.stderr,
        dynamic_ncols=True,
    )
    started = time.monotonic()
    decoded_seconds = 0.0
    segment_counts: dict[str, int] = {}

    def on_segment(source: str, segment, alignment) -> None:
        nonlocal decoded_seconds
        decoded_seconds += segment.end - segment.start
        speed = decoded_seconds / max(time.monotonic() - started, 1e-9)
        bar.set_postfix(audio_s_per_s=f"{speed:.1f}")
        if args.plot_attention is not None:
            from types import SimpleNamespace

            from asr.plotting import plot_alignments

            number = segment_counts.get(source, 0)
            segment_counts[source] = number + 1
            name = outputs[source].as_posix().replace("/", "__")
            title = f"{Path(source).name} {segment.start:.2f}-{segment.end:.2f} s"
            view = SimpleNamespace(alignment=alignment, text=segment.text)
            plot_alignments([(title, view)], Path(args.plot_attention) / f"{name}.{number:04d}.png")

    failures, audio_seconds = 0, 0.0
    # The inputs are expanded once, here: the transcriber takes the files as they are.
    for result in transcriber.transcribe_sources(list(outputs), on_segment=on_segment):
        bar.update(1)
        for warning in result.warnings:  # transcribed, but perhaps poorly: say why
            bar.write(f"asr: warning: {warning}", file=sys.stderr)
        if not result.ok:
            failures += 1
            bar.write(f"asr: skipping {result.source}: {result.error}", file=sys.stderr)
            continue
        audio_seconds += result.duration
        if args.output_dir is None:
            sys.stdout.write(render(result, formats[0]))
            sys.stdout.flush()
            continue
        for output_format in formats:
            path = Path(args.output_dir) / outputs[result.source]
            path = path.with_name(path.name + SUFFIXES[output_format])
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render(result, output_format, as_file=True), encoding="utf-8")
    bar.close()
    elapsed = time.monotonic() - started
    print(
        f"asr: {len(outputs) - failures} of {len(outputs)} files transcribed, "
        f"{audio_seconds / 3600:.3f} h of audio ({audio_seconds:.1f} s) in {elapsed:.1f} s, "
        f"real-time factor {elapsed / max(audio_seconds, 1e-9):.3f}, {failures} failed",
        file=sys.stderr,
    )
    return 1 if failures else 0


def _output_names(inputs: Sequence[str]) -> dict[str, Path]:
    """Every file the inputs name, in order, mapped to its name under --output-dir (no suffix).

    A file found in a folder keeps its path below that folder; any other file its own name.
    Names that would clash get ``-2``, ``-3``... appended.
    """
    names: dict[str, Path] = {}
    taken: set[str] = set()
    for item in inputs:
        for path in expand_input(item):
            if path in names:
                continue
            if os.path.isdir(item):
                stem = Path(os.path.relpath(path, item)).with_suffix("")
            else:
                stem = Path(Path(path).name).with_suffix("")
            candidate, number = stem, 1
            while candidate.as_posix() in taken:
                number += 1
                candidate = stem.with_name(f"{stem.name}-{number}")
            taken.add(candidate.as_posix())
            names[path] = candidate
    return names
