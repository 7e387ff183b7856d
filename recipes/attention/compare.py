"""Compare attention mechanisms trained by ``recipes/attention/run.sh``: one table, one figure.

For every run directory (``best.pt`` + ``summary.json``), greedy-decodes

- the test split: WER, CER, and WER by utterance duration bucket;
- the test split concatenated three utterances at a time (``concat3``), keeping only groups longer
  than the longest training utterance: speech longer than anything seen in training, where
  Chorowski et al. (2015, §4.1) found content-only attention fails and location-aware does not;

and reports training time (from ``summary.json``), decoding real-time factor and parameters.
Writes ``results.json``, ``results.md``, ``alignments.png`` (one test utterance, every
mechanism) and each run's hypotheses (``<run>/test.hyp``, ``<run>/concat3.hyp``, Kaldi style) to
``--out``.

    python recipes/attention/compare.py --corpus data/synth_small_seed0 \\
        --runs exp/attention_small/* --out exp/attention_small/comparison
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from asr.audio import load_audio, save_audio
from asr.checkpoint import load_recognizer
from asr.data import SkipCounter, Utterance, UtteranceDataset, read_manifest, write_manifest
from asr.decoding import decode_dataset
from asr.metrics import score, write_transcripts
from asr.plotting import plot_alignment_grid
from asr.recognizer import DecodingOptions

BUCKETS = ((0.0, 2.0), (2.0, 3.0), (3.0, 4.5), (4.5, float("inf")))  # seconds


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", required=True, help="directory with train/test.jsonl")
    parser.add_argument("--runs", nargs="+", required=True, help="training run directories")
    parser.add_argument("--out", required=True, help="where the table and figure go")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    return parser.parse_args()


def concatenated_test_set(
    test: list[Utterance], longest_train: float, out_dir: Path, sample_rate: int
) -> list[Utterance]:
    """Groups of three consecutive test utterances joined end to end, kept when longer than
    ``longest_train`` seconds; written once as WAV files and a manifest under ``out_dir``."""
    manifest = out_dir / "concat3.jsonl"
    if manifest.exists():
        return read_manifest(manifest)
    utterances = []
    for start in range(0, len(test) - 2, 3):
        group = test[start : start + 3]
        if sum(u.duration for u in group) <= longest_train:
            continue
        audio = torch.cat([load_audio(u.audio, sample_rate) for u in group])
        utt_id = "+".join(u.id for u in group)
        path = out_dir / "concat3" / f"{start:05d}.wav"
        save_audio(path, audio, sample_rate)
        text = " ".join(u.text for u in group)
        utterances.append(Utterance(utt_id, path, len(audio) / sample_rate, text, "concat3"))
    write_manifest(manifest, utterances)
    return utterances


def decode(recognizer, utterances, options, device, name, batch_size=32):
    """Decoded utterances and the real-time factor of decoding them."""
    dataset = UtteranceDataset(utterances, recognizer.vocabulary, recognizer.sample_rate)
    started = time.monotonic()
    decoded = decode_dataset(
        recognizer, dataset, options, device, SkipCounter(), batch_size=batch_size, desc=name
    )
    seconds = time.monotonic() - started
    return decoded, seconds / sum(d.duration for d in decoded)


@dataclass
class Panel:
    """What the alignment figure needs of a transcript."""

    text: str
    alignment: torch.Tensor  # (U + 1, T')


def score_decoded(decoded):
    """WER and CER of decoded utterances against their references."""
    return score([d.reference for d in decoded], [d.hypothesis for d in decoded])


def evaluate_run(run, recognizer, test, concat, shown, options, device, out, batch_size=32):
    """The table row of one run, and its transcript of the figure's utterance."""
    summary = json.loads((run / "summary.json").read_text())
    decoded, rtf = decode(recognizer, test, options, device, f"{run.name} test", batch_size)
    scores = score_decoded(decoded)
    by_length = {}
    for low, high in BUCKETS:
        inside = [d for d in decoded if low <= d.duration < high]
        bucket = score_decoded(inside)
        name = f">= {low:g} s" if high == float("inf") else f"{low:g}-{high:g} s"
        by_length[name] = {"wer": bucket.wer if inside else None, "utterances": len(inside)}
    decoded_long, _ = decode(recognizer, concat, options, device, f"{run.name} concat3", batch_size)
    long_scores = score_decoded(decoded_long)
    for split, results in (("test", decoded), ("concat3", decoded_long)):
        write_transcripts(out / run.name / f"{split}.hyp", {d.id: d.hypothesis for d in results})
    row = {
        "mechanism": run.name,
        "test_wer": scores.wer,
        "test_cer": scores.cer,
        "wer_by_duration": by_length,
        "concat3_wer": long_scores.wer,
        "concat3_cer": long_scores.cer,
        "train_minutes": summary["train_minutes"],
        "epochs": len(summary["epochs"]),
        "best_dev_cer": summary["best_dev_cer"],
        "decode_rtf": rtf,
        "parameters": sum(p.numel() for p in recognizer.model.parameters()),
    }
    audio = load_audio(shown.audio, recognizer.sample_rate).to(device)
    (transcript,) = recognizer.transcribe_batch(
        audio[None], torch.tensor([len(audio)], device=device), options
    )
    return row, {"text": transcript.text, "alignment": transcript.alignment.float().contiguous()}


def main() -> None:
    args = parse_args()
    corpus, out = Path(args.corpus), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device)
    train = read_manifest(corpus / "train.jsonl")
    test = read_manifest(corpus / "test.jsonl")
    longest_train = max(u.duration for u in train)
    options = DecodingOptions(beam_size=1)
    # One utterance for the figure: the first test utterance of 3-4 s (else the longest).
    shown = next((u for u in test if 3.0 <= u.duration <= 4.0), max(test, key=lambda u: u.duration))

    rows, panels, concat = [], [], None
    for run in sorted(Path(r) for r in args.runs):
        if not (run / "summary.json").exists():  # written when training ends
            print(f"skipping {run}: training has not finished")
            continue
        cached = out / run.name / "row.json", out / run.name / "figure.pt"
        if (
            all(path.exists() for path in cached)
            and min(path.stat().st_mtime for path in cached) > (run / "best.pt").stat().st_mtime
        ):  # decoded already, and the model is unchanged
            row = json.loads(cached[0].read_text())
            figure = torch.load(cached[1], weights_only=True)
        else:
            recognizer = load_recognizer(run / "best.pt", device).eval()
            if concat is None:
                concat = concatenated_test_set(test, longest_train, out, recognizer.sample_rate)
            row, figure = evaluate_run(
                run, recognizer, test, concat, shown, options, device, out, args.batch_size
            )
            cached[0].write_text(json.dumps(row, indent=2))
            torch.save(figure, cached[1])
        rows.append(row)
        panels.append((run.name, Panel(figure["text"], figure["alignment"])))
        print(
            f"{run.name}: test WER {row['test_wer']:.2%} CER {row['test_cer']:.2%}, "
            f"concat3 WER {row['concat3_wer']:.2%}, RTF {row['decode_rtf']:.4f}"
        )

    concat = read_manifest(out / "concat3.jsonl") if concat is None else concat
    table = {
        "corpus": str(corpus),
        "test_utterances": len(test),
        "concat3_utterances": len(concat),
        "longest_train_seconds": longest_train,
        "figure_utterance": {"id": shown.id, "text": shown.text},
        "runs": rows,
    }
    (out / "results.json").write_text(json.dumps(table, indent=2))
    (out / "results.md").write_text(markdown(table))
    plot_alignment_grid(panels, out / "alignments.png")
    print(markdown(table))
    print(f"written to {out}/results.json, results.md, alignments.png")


def percent(rate: float | None) -> str:
    return "–" if rate is None else f"{rate:.1%}"


def markdown(table: dict) -> str:
    buckets = list(table["runs"][0]["wer_by_duration"]) if table["runs"] else []
    header = (
        "| mechanism | test WER | test CER | "
        + " | ".join(f"WER {b}" for b in buckets)
        + " | concat×3 WER | concat×3 CER | train min | decode RTF | params |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for row in sorted(table["runs"], key=lambda r: r["test_wer"]):
        cells = [
            row["mechanism"],
            f"{row['test_wer']:.1%}",
            f"{row['test_cer']:.1%}",
            *(percent(row["wer_by_duration"][b]["wer"]) for b in buckets),
            f"{row['concat3_wer']:.1%}",
            f"{row['concat3_cer']:.1%}",
            f"{row['train_minutes']:.1f}",
            f"{row['decode_rtf']:.4f}",
            f"{row['parameters'] / 1e6:.2f} M",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if table["runs"]:
        counts = ", ".join(
            f"{b}: {n}"
            for b, n in ((b, table["runs"][0]["wer_by_duration"][b]["utterances"]) for b in buckets)
        )
        lines.append("")
        lines.append(
            f"Test: {table['test_utterances']} utterances ({counts}); concat×3: "
            f"{table['concat3_utterances']} groups of three test utterances, each longer than "
            f"the longest training utterance ({table['longest_train_seconds']:.2f} s). "
            "Greedy decoding."
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
