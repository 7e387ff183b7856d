"""The ``asr`` command.

    asr train [key=value ...]            train (Hydra overrides; -m for sweeps)
    asr evaluate checkpoint=CKPT [...]   decode and score splits (Hydra overrides)
    asr transcribe --model CKPT FILE...  print one transcript per audio file
    asr score REF HYP                    WER/CER of Kaldi-style transcript files
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

from asr import CONF_DIR
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
    import torch

    from asr.audio import load_audio
    from asr.checkpoint import load_recognizer
    from asr.recognizer import DecodingOptions

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    recognizer = load_recognizer(args.model, device)
    options = DecodingOptions(beam_size=args.beam_size)
    failures = 0
    audio_seconds, started = 0.0, time.monotonic()
    for path in args.files:
        try:
            waveform = load_audio(path, recognizer.sample_rate)
        except UserError as error:
            print(f"asr: skipping {path}: {error}", file=sys.stderr)
            failures += 1
            continue
        lens = torch.tensor([len(waveform)], device=device)
        transcript = recognizer.transcribe_batch(waveform[None].to(device), lens, options)[0]
        audio_seconds += len(waveform) / recognizer.sample_rate
        print(f"{path}\t{transcript.text}", flush=True)
    elapsed = time.monotonic() - started
    print(
        f"asr: {len(args.files) - failures} of {len(args.files)} files transcribed, "
        f"{audio_seconds:.1f} s of audio, real-time factor "
        f"{elapsed / max(audio_seconds, 1e-9):.3f}, {failures} failed",
        file=sys.stderr,
    )
    return 1 if failures else 0


def cmd_score(args: argparse.Namespace) -> int:
    from asr.metrics import read_transcripts, score
    from asr.text import normalize_text

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
    refs = [normalize_text(references[i]) for i in ids]
    hyps = [normalize_text(hypotheses.get(i, "")) for i in ids]
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


def cmd_info(args: argparse.Namespace) -> int:
    from asr.checkpoint import read_checkpoint

    payload = read_checkpoint(args.checkpoint)
    config = payload["config"]
    num_parameters = sum(
        v.numel() for k, v in payload["recognizer"].items() if k.startswith("model.")
    )
    info = {
        "las_asr_version": payload["las_asr_version"],
        "format": payload["format"],
        "parameters": num_parameters,
        "features": config.get("features"),
        "model": config.get("model"),
        "attention": config.get("attention"),
        "vocabulary": "".join(payload["vocabulary"]["characters"]),
        "training_data": config.get("data", {}).get("train_manifest"),
        "metrics": payload.get("metrics"),
    }
    print(json.dumps(info, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asr", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("train", help="train a model (Hydra overrides follow)", add_help=False)
    sub.add_parser("evaluate", help="decode and score splits (Hydra overrides)", add_help=False)
    p = sub.add_parser("transcribe", help="print one transcript per audio file")
    p.add_argument("--model", required=True, help="checkpoint file (.pt)")
    p.add_argument("--beam-size", type=int, default=1, help="1 = greedy search (default)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    p.add_argument("files", nargs="+", help="audio files (wav, flac, mp3, ogg, ...)")
    p.set_defaults(func=cmd_transcribe)
    p = sub.add_parser("score", help="WER and CER of a hypothesis file against a reference")
    p.add_argument("reference", help="Kaldi-style 'utt-id text' file")
    p.add_argument("hypothesis", help="Kaldi-style 'utt-id text' file")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_score)
    p = sub.add_parser("info", help="show what a checkpoint holds")
    p.add_argument("checkpoint")
    p.set_defaults(func=cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
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
