"""``asr score``, ``asr average`` and ``asr info``: the commands around checkpoints and
transcripts that decode nothing."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from asr.errors import UserError


def add_parsers(sub: argparse._SubParsersAction) -> None:
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
