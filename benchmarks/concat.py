"""The search on 3x-long input: consecutive utterances joined and decoded whole (issue 12).

    python -m benchmarks.concat --model exp/best.pt --lm exp/lm/best.pt \\
        --manifest data/synth/test.jsonl --utterances 99 [--join 3] [--gaps 0 0.3]

The first ``--utterances`` of the manifest are decoded one by one and, in consecutive groups
of ``--join``, as one long utterance each (their waveforms back to back with ``--gaps``
seconds of silence between them; each gap is one run). No segmentation: the search itself
sees the whole 3x input, which is where attention decoders loop or stop early (Chorowski &
Jaitly 2017; joint CTC/attention, Watanabe et al. 2017, is meant to keep them on track).
Every ``--decodings`` (conf/decoding/<name>.yaml) decodes both. Printed per decoding and gap:

- WER and CER of the joined utterances against their references joined, and of the single
  utterances decoded the same way (``delta_wer``: joined minus single, in points);
- loops: hypotheses with a phrase repeated 4 times in a row that their reference does not
  have (:func:`asr.transcriber.has_loop`), and hypotheses more than 1.25x their reference's
  characters;
- early stops: hypotheses under 0.75x their reference's characters;
- ``max_length_ends``: hypotheses whose ``<eos>`` the search forced at the length limit;
- decoding seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import yaml

from asr.transcriber import has_loop

CONF = Path(__file__).resolve().parent.parent / "conf" / "decoding"
LONG, SHORT = 1.25, 0.75  # hypothesis / reference characters beyond which it looped / stopped


def join_utterances(
    waveforms: Sequence[np.ndarray], texts: Sequence[str], gap_samples: int
) -> tuple[np.ndarray, str]:
    """Waveforms (S_i,) back to back with ``gap_samples`` of silence between them, and their
    texts joined by spaces.

    >>> wave, text = join_utterances([np.ones(3), np.ones(2)], ["a b", "c"], 1)
    >>> wave.tolist(), text
    ([1.0, 1.0, 1.0, 0.0, 1.0, 1.0], 'a b c')
    """
    gap = np.zeros(gap_samples, dtype=np.float32)
    parts: list[np.ndarray] = []
    for k, wave in enumerate(waveforms):
        if k:
            parts.append(gap)
        parts.append(np.asarray(wave, dtype=np.float32))
    return np.concatenate(parts), " ".join(texts)


def group_consecutive(items: Sequence, size: int) -> list[list]:
    """Consecutive groups of ``size`` (a shorter remainder is dropped).

    >>> group_consecutive([1, 2, 3, 4, 5, 6, 7], 3)
    [[1, 2, 3], [4, 5, 6]]
    """
    return [list(items[i : i + size]) for i in range(0, len(items) - size + 1, size)]


def failures(references: Sequence[str], hypotheses: Sequence) -> dict[str, int]:
    """Loops, early stops and forced ends of ``hypotheses`` (asr.search.Hypothesis, with text)
    against their ``references``."""
    counts = {"loops": 0, "too_long": 0, "early_stops": 0, "max_length_ends": 0}
    for reference, hypothesis in zip(references, hypotheses, strict=True):
        ratio = len(hypothesis.text) / max(1, len(reference))
        counts["loops"] += has_loop(hypothesis.text.split()) and not has_loop(reference.split())
        counts["too_long"] += ratio > LONG
        counts["early_stops"] += ratio < SHORT
        counts["max_length_ends"] += bool(hypothesis.reached_limit and hypothesis.tokens)
    return counts


def decode(recognizer, waveforms, options, language_model, batch_size: int) -> list:
    """Hypotheses of ``waveforms`` (each (S,), decoded whole), in length-sorted batches."""
    from asr.audio import pad_waveforms

    device = next(recognizer.parameters()).device
    order = sorted(range(len(waveforms)), key=lambda i: waveforms[i].shape[0])
    hypotheses: list = [None] * len(waveforms)
    for first in range(0, len(order), batch_size):
        batch = order[first : first + batch_size]
        padded, lens = pad_waveforms([torch.from_numpy(waveforms[i]) for i in batch])
        decoded = recognizer.transcribe_batch(
            padded.to(device), lens.to(device), options, language_model
        )
        for i, hypothesis in zip(batch, decoded, strict=True):
            hypotheses[i] = hypothesis
    return hypotheses


def decoding_options(name: str, beam_size: int | None, overrides: list[str] = ()):
    """conf/decoding/<name>.yaml with ``beam_size`` and ``key=value`` overrides (YAML values)."""
    from asr.recognizer import DecodingOptions

    path = CONF / f"{name}.yaml"
    if not path.is_file():
        raise SystemExit(f"no decoding config {path}")
    cfg = yaml.safe_load(path.read_text())
    if beam_size is not None:
        cfg["beam_size"] = beam_size
    for override in overrides:
        key, sep, value = override.partition("=")
        if not sep or key not in cfg:
            raise SystemExit(f"--set takes KEY=VALUE with a key of {path.name}, got {override!r}")
        cfg[key] = yaml.safe_load(value)
    return DecodingOptions.from_config(cfg)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="checkpoint (.pt)")
    parser.add_argument("--lm", default=None, help="language model (.pt) for lm_weight > 0")
    parser.add_argument("--manifest", required=True, type=Path)
    parser.add_argument("--utterances", type=int, default=99)
    parser.add_argument("--join", type=int, default=3, help="utterances per long one")
    parser.add_argument("--gaps", type=float, nargs="+", default=[0.0, 0.3], help="seconds")
    parser.add_argument(
        "--decodings", nargs="+", default=["beam", "joint_no_lm", "joint"], help="conf/decoding"
    )
    parser.add_argument("--beam-size", type=int, default=None, help="default: the config's")
    parser.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="decoding keys changed in every --decodings, e.g. sentence_restarts=true",
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from asr.audio import load_audio
    from asr.checkpoint import load_language_model, read_checkpoint, recognizer_from_payload
    from asr.metrics import score

    recognizer = recognizer_from_payload(read_checkpoint(args.model), args.model)
    recognizer = recognizer.to(args.device).eval()
    language_model = None
    if args.lm:
        lm, vocabulary = load_language_model(args.lm, args.device)
        language_model = recognizer.check_language_model(lm, vocabulary, args.lm)
    rows = []
    with args.manifest.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip() and len(rows) < args.utterances:
                rows.append(json.loads(line))
    rows = rows[: len(rows) // args.join * args.join]
    for row in rows:
        audio = Path(row["audio"])
        audio = audio if audio.is_absolute() else args.manifest.parent / audio
        row["wave"] = load_audio(audio, recognizer.sample_rate).numpy().astype(np.float32)
    singles = [row["wave"] for row in rows]
    single_texts = [row["text"] for row in rows]
    seconds = sum(w.shape[0] for w in singles) / recognizer.sample_rate

    table = []
    for name in args.decodings:
        options = decoding_options(name, args.beam_size, args.set)
        if options.uses_language_model and language_model is None:
            raise SystemExit(f"conf/decoding/{name}.yaml needs --lm")
        started = time.monotonic()
        single = decode(recognizer, singles, options, language_model, args.batch_size)
        single_seconds = time.monotonic() - started
        single_scores = score(single_texts, [h.text for h in single])
        for gap in args.gaps:
            joined = [
                join_utterances(
                    [r["wave"] for r in group],
                    [r["text"] for r in group],
                    int(gap * recognizer.sample_rate),
                )
                for group in group_consecutive(rows, args.join)
            ]
            texts = [text for _, text in joined]
            started = time.monotonic()
            hypotheses = decode(
                recognizer, [w for w, _ in joined], options, language_model, args.batch_size
            )
            joined_seconds = time.monotonic() - started
            joined_scores = score(texts, [h.text for h in hypotheses])
            numbers = {
                "decoding": " ".join([name, *args.set]),
                "beam_size": options.beam_size,
                "gap_seconds": gap,
                "utterances": len(rows),
                "joined": len(joined),
                "audio_minutes": round(seconds / 60, 2),
                "wer_joined": round(100 * joined_scores.wer, 2),
                "wer_single": round(100 * single_scores.wer, 2),
                "delta_wer": round(100 * (joined_scores.wer - single_scores.wer), 2),
                "cer_joined": round(100 * joined_scores.cer, 2),
                "cer_single": round(100 * single_scores.cer, 2),
                **{f"joined_{k}": v for k, v in failures(texts, hypotheses).items()},
                **{f"single_{k}": v for k, v in failures(single_texts, single).items()},
                "seconds_joined": round(joined_seconds, 1),
                "seconds_single": round(single_seconds, 1),
            }
            table.append(numbers)
            print(json.dumps(numbers), flush=True)
    if args.json:
        args.json.write_text(json.dumps(table, indent=2) + "\n")
    return table


if __name__ == "__main__":
    main()
    sys.exit(0)
