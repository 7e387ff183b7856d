"""What CTC prefix scoring and shallow fusion cost: beam search attention-only, + CTC, + CTC + LM.

One randomly initialised acoustic model of a preset (``--model``, las_small by default) and a
character LSTM LM (``--lm-layers`` × ``--lm-hidden-size``, 1 × 512 by default) decode the same
batch of ``--utterances`` random utterances of ``--frames`` 10 ms frames, K = ``--beam-size``:

- attention only (λ = β = 0: the plain beam search),
- + CTC, ``ctc_weight`` = ``--ctc-weight`` (CTC prefix scores on the pre-beam),
- + CTC + LM, also ``lm_weight`` = ``--lm-weight``.

The random model would emit ``<eos>`` at once, so both length limits are set to exactly
``--steps`` characters: every search runs ``--steps`` + 1 speller steps. Each search runs once
untimed, then ``--repeats`` times, the three in turn (a change in the machine's load touches
all alike); the table gives the median wall-clock seconds, the real-time factor (seconds /
seconds of audio) and the ratio to attention-only (issue 12's bar: CTC + LM below 2x).

    python benchmarks/joint_search.py --threads 2 [--device cuda] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from asr.models import build_model
from asr.models.language_model import CharLSTMLM
from asr.search import beam_search
from asr.text import Vocabulary
from benchmarks.speed import NUM_FEATURES, load_model_config


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="las_small", help="conf/model/<name>.yaml")
    parser.add_argument("--attention", default="location", help="conf/attention/<name>.yaml")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--utterances", type=int, default=8)
    parser.add_argument("--frames", type=int, default=400, help="10 ms frames per utterance")
    parser.add_argument("--steps", type=int, default=50, help="characters each search spells")
    parser.add_argument("--beam-size", type=int, default=10)
    parser.add_argument("--ctc-weight", type=float, default=0.3)
    parser.add_argument("--lm-weight", type=float, default=0.3)
    parser.add_argument("--lm-layers", type=int, default=1)
    parser.add_argument("--lm-hidden-size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per search")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if min(args.utterances, args.frames, args.steps, args.beam_size, args.repeats) < 1:
        parser.error("--utterances, --frames, --steps, --beam-size and --repeats must be positive")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    torch.manual_seed(args.seed)
    vocab_size = len(Vocabulary())
    config = load_model_config(args.model, args.attention)
    if not config.get("ctc_weight"):
        config["ctc_weight"] = 0.3  # the head must exist; its training weight plays no part here
    model = build_model(config, vocab_size, NUM_FEATURES).to(device).eval()
    lm = (
        CharLSTMLM(vocab_size, hidden_size=args.lm_hidden_size, num_layers=args.lm_layers)
        .to(device)
        .eval()
    )
    features = torch.randn(args.utterances, args.frames, NUM_FEATURES, device=device)
    lens = torch.full((args.utterances,), args.frames, device=device)
    with torch.inference_mode():
        encoder_frames = int(model.encode(features[:1], lens[:1]).encoded_lens[0])
    ratio = args.steps / encoder_frames  # exactly --steps characters (module docstring)
    searches = {
        "attention only": {},
        f"+ CTC (λ={args.ctc_weight:g})": {"ctc_weight": args.ctc_weight},
        f"+ CTC + LM (β={args.lm_weight:g})": {
            "ctc_weight": args.ctc_weight,
            "language_model": lm,
            "lm_weight": args.lm_weight,
        },
    }

    def run(options: dict) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        results = beam_search(
            model,
            features,
            lens,
            beam_size=args.beam_size,
            max_length_ratio=ratio,
            min_length_ratio=ratio,
            **options,
        )
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        assert all(len(r[0].tokens) == args.steps for r in results)
        return time.perf_counter() - started

    audio_seconds = args.utterances * args.frames * 0.01
    for options in searches.values():
        run(options)  # warm-up
    # Round-robin, so that a change in the machine's load touches every search alike.
    times: dict[str, list[float]] = {name: [] for name in searches}
    for _ in range(args.repeats):
        for name, options in searches.items():
            times[name].append(run(options))
    rows = {}
    for name, seconds in times.items():
        median = statistics.median(seconds)
        rows[name] = {"seconds": median, "real_time_factor": median / audio_seconds}
    base = rows["attention only"]["seconds"]
    lines = [
        f"{args.model}, LM {args.lm_layers} x {args.lm_hidden_size}, beam {args.beam_size}, "
        f"{args.utterances} utterances x {args.frames * 0.01:g} s, {args.steps} characters, "
        f"{device.type}, {torch.get_num_threads()} threads, median of {args.repeats}",
        "",
        "| search | seconds | real-time factor | x attention only |",
        "|---|---:|---:|---:|",
    ]
    for name, row in rows.items():
        row["ratio"] = row["seconds"] / base
        lines.append(
            f"| {name} | {row['seconds']:.3f} | {row['real_time_factor']:.4f} | "
            f"{row['ratio']:.2f} |"
        )
    print("\n".join(lines))
    results = {"setup": vars(args) | {"device": str(device), "json": None}, "searches": rows}
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return results


if __name__ == "__main__":
    main()
