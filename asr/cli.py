"""The ``asr`` command.

    asr train [key=value ...]            train (Hydra overrides; -m for sweeps)
    asr evaluate checkpoint=CKPT [...]   decode and score splits (Hydra overrides)
    asr transcribe --model CKPT IN...    transcribe files, folders, globs (docs/transcribe.md)
    asr score REF HYP                    WER/CER of Kaldi-style transcript files
    asr average RUN --last N|--best N    average the weights of a run's epoch checkpoints
    asr info CKPT                        what a checkpoint holds

A user's mistake (a missing file, an unknown config key, an unreadable checkpoint) is reported
as one line on stderr with a non-zero exit status, never as a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from asr import CONF_DIR
from asr.cpu import choose_omp_wait_policy
from asr.errors import UserError, exit_with_message, reports_user_errors


def _check_overrides(config_name: str, overrides: list[str]) -> None:
    """Compose the config once so an unknown or malformed key fails in one line, before Hydra."""
    if any(arg in ("-m", "--multirun") or arg.startswith("-") for arg in overrides):
        return  # sweeps and Hydra flags: Hydra reports its own errors
    from hydra import compose, initialize_config_dir

    plain = [o for o in overrides if not o.lstrip("+~").startswith("hydra.")]
    try:
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            compose(config_name, overrides=plain)
    except Exception as error:  # Hydra and OmegaConf raise many types; all mean a bad override
        parts = [str(error)]
        if error.__cause__ is not None:
            parts.append(str(error.__cause__))
        text = " ".join(" ".join(parts).split())
        text = text.split(" full_key:")[0]
        exit_with_message(f"bad configuration: {text}")


def _run_hydra(entry, config_name: str, argv: list[str]) -> None:
    _check_overrides(config_name, argv)
    sys.argv = [f"asr {config_name}", *argv]
    entry()


def cmd_transcribe(args: argparse.Namespace) -> int:
    """Transcribe files, folders and globs; a bad file is named in one line and skipped."""
    from tqdm import tqdm

    from asr.subtitles import FORMATS, SUFFIXES, render
    from asr.transcriber import Transcriber

    formats = list(dict.fromkeys(f.strip() for f in args.format.split(",") if f.strip()))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise UserError(f"unknown --format {args.format!r}; choose from {', '.join(FORMATS)}")
    for name, value, least in (
        ("--beam-size", args.beam_size, 1),
        ("--batch-size", args.batch_size, 1),
        ("--max-segment-seconds", args.max_segment_seconds, 1.0),
    ):
        if value is not None and value < least:
            raise UserError(f"{name} must be at least {least}, got {value}")
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
    for result in transcriber.iter_transcribe(list(outputs), on_segment=on_segment):
        bar.update(1)
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
    import os

    from asr.transcriber import expand_inputs

    names: dict[str, Path] = {}
    taken: set[str] = set()
    for item in inputs:
        for path in expand_inputs([item]):
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


def cmd_score(args: argparse.Namespace) -> int:
    from asr.metrics import read_transcripts, score, text_normalizer

    normalize = text_normalizer(args.normalization)
    references = read_transcripts(args.reference)
    hypotheses = read_transcripts(args.hypothesis)
    missing = sorted(set(references) - set(hypotheses))
    extra = sorted(set(hypotheses) - set(references))
    if extra:
        raise UserError(
            f"{args.hypothesis} has {len(extra)} utterance(s) not in {args.reference}, "
            f"e.g. {extra[0]!r}"
        )
    if missing:
        print(
            f"asr: {len(missing)} reference utterance(s) have no hypothesis and count as deleted",
            file=sys.stderr,
        )
    ids = sorted(references)
    refs = [normalize(references[i]) for i in ids]
    hyps = [normalize(hypotheses.get(i, "")) for i in ids]
    scores = score(refs, hyps)
    if args.json:
        print(json.dumps(scores.as_dict(), indent=2))
    else:
        w, c = scores.words, scores.chars
        print(f"utterances {scores.utterances}")
        print(
            f"WER {100 * scores.wer:.2f}% ({w.substitutions} sub, {w.deletions} del, "
            f"{w.insertions} ins of {w.reference_length} words)"
        )
        print(
            f"CER {100 * scores.cer:.2f}% ({c.substitutions} sub, {c.deletions} del, "
            f"{c.insertions} ins of {c.reference_length} characters)"
        )
    return 0


def cmd_average(args: argparse.Namespace) -> int:
    """Average the weights of the last or best N epoch checkpoints of a run (or listed files)."""
    from asr.checkpoint import (
        average_checkpoints,
        recognizer_from_payload,
        save_payload,
        select_checkpoints,
    )

    sources = [Path(p) for p in args.sources]
    if len(sources) == 1 and sources[0].is_dir():
        if args.last is None and args.best is None:
            raise UserError("give --last N or --best N to choose the checkpoints of a run")
        by, count = ("last", args.last) if args.last is not None else ("best", args.best)
        paths = select_checkpoints(sources[0], count, by)
        default_out = sources[0] / f"average_{by}{count}.pt"
    else:
        if args.last is not None or args.best is not None:
            raise UserError("--last and --best choose from a run folder; list files without them")
        paths = sources
        default_out = None
    if args.out is None and default_out is None:
        raise UserError("give --out PATH for the averaged checkpoint")
    out = Path(args.out) if args.out is not None else default_out
    payload = average_checkpoints(paths)
    recognizer_from_payload(payload, out)  # the average must load
    save_payload(out, payload)
    print(f"averaged {len(paths)} checkpoints ({', '.join(p.name for p in paths)}) into {out}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """What a checkpoint holds; the model is also rebuilt, to prove the file is usable."""
    from asr.checkpoint import checkpoint_summary, read_checkpoint, recognizer_from_payload

    payload = read_checkpoint(args.checkpoint)
    recognizer_from_payload(payload, args.checkpoint)
    info = checkpoint_summary(payload)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(_format_info(args.checkpoint, info))
    return 0


def _format_info(path: str, info: dict) -> str:
    model, attention = info["model"] or {}, dict(info["attention"] or {})
    listener, speller = model.get("listener") or {}, model.get("speller") or {}
    features, data = info["features"] or {}, info["training_data"]
    parameters = info["parameters"]
    parts = ", ".join(f"{k} {v:,}" for k, v in parameters.items() if k != "total")
    attention_type = attention.pop("type", "?")
    pyramid = listener.get("num_pyramid_layers", 3)
    rows = [
        ("checkpoint", f"{path} (las-asr {info['las_asr_version']}, format {info['format']})"),
        (
            "listener",
            f"{listener.get('num_layers', 1)} BLSTM + {pyramid} pyramidal BLSTM layers, "
            f"hidden size {listener.get('hidden_size', 256)} per direction "
            f"({2**pyramid}x shorter in time)",
        ),
        (
            "speller",
            f"{speller.get('num_layers', 1)} LSTM layer(s), hidden size "
            f"{speller.get('hidden_size', 256)}, embedding {speller.get('embedding_size', 128)}",
        ),
        ("attention", f"{attention_type} " + ", ".join(f"{k}={v}" for k, v in attention.items())),
        ("ctc", f"weight {model.get('ctc_weight', 0.3)}, layer {model.get('ctc_layer', -1)}"),
        ("parameters", f"{parameters['total']:,} ({parts})"),
        (
            "features",
            f"{features.get('num_mel_bins', 80)} log-mel bins, {features.get('window_ms', 25)} ms "
            f"window, {features.get('hop_ms', 10)} ms hop, {features.get('sample_rate')} Hz",
        ),
        (
            "vocabulary",
            f"{len(info['vocabulary'])} tokens: "
            + " ".join(repr(t) if t in (" ", "'") else t for t in info["vocabulary"]),
        ),
        (
            "training",
            f"{data['hours']} h of audio from {data['train_manifest']}, utterances "
            f"{data['utterance_seconds'][0]} to {data['utterance_seconds'][1]} s",
        ),
        (
            "metrics",
            ", ".join(
                f"{k} {100 * v:.2f}%" if k.endswith(("cer", "wer")) else f"{k} {v}"
                for k, v in info["metrics"].items()
            )
            or "none recorded",
        ),
        (
            "resumable",
            "no (weights only)"
            if info["resumable"] is None
            else f"yes, epoch {info['resumable']['epoch']}, step {info['resumable']['step']}",
        ),
    ]
    return "\n".join(f"{label:<11} {value}" for label, value in rows)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asr", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("train", help="train a model (Hydra overrides follow)", add_help=False)
    sub.add_parser("evaluate", help="decode and score splits (Hydra overrides)", add_help=False)
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
    p.add_argument("--batch-size", type=int, default=16, help="segments decoded together")
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
    p = sub.add_parser("score", help="WER and CER of a hypothesis file against a reference")
    p.add_argument("reference", help="Kaldi-style 'utt-id text' file")
    p.add_argument("hypothesis", help="Kaldi-style 'utt-id text' file")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument(
        "--normalization",
        default="standard",
        choices=["standard", "none", "timit39"],
        help="applied to both sides before scoring: standard (lower case, no punctuation; "
        "default), none (white space only), timit39 (TIMIT 61 -> 39 phones)",
    )
    p.set_defaults(func=cmd_score)
    p = sub.add_parser(
        "average", help="average the weights of a run's last or best N epoch checkpoints"
    )
    p.add_argument(
        "sources",
        nargs="+",
        help="a run folder (with checkpoints/epochNNN.pt, from trainer.keep_checkpoints) or "
        "checkpoint files",
    )
    choice = p.add_mutually_exclusive_group()
    choice.add_argument("--last", type=int, default=None, metavar="N", help="the last N epochs")
    choice.add_argument("--best", type=int, default=None, metavar="N", help="the best N by dev")
    p.add_argument("--out", default=None, help="output file (default: RUN/average_{last,best}N.pt)")
    p.set_defaults(func=cmd_average)
    p = sub.add_parser("info", help="show what a checkpoint holds")
    p.add_argument("checkpoint")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if argv and argv[0] in ("train", "evaluate", "transcribe"):
        # Before torch loads: it reads the policy once, when it starts its threads (asr/cpu.py).
        # Debug level: a diagnostic of the machine's load must not add a line to every command's
        # output (a user's mistake stays one line); training writes the policy into its log.
        choice = choose_omp_wait_policy()
        if choice is not None:
            logging.getLogger("asr").debug(choice)
    if argv and argv[0] in ("train", "evaluate"):
        if argv[0] == "train":
            from asr.train import main as entry
        else:
            from asr.evaluate import main as entry
        _run_hydra(entry, argv[0], argv[1:])
        return 0
    args = build_parser().parse_args(argv)
    return reports_user_errors(args.func)(args)


if __name__ == "__main__":
    sys.exit(main())
