"""Long recordings against the same utterances one by one: WER, word times, memory, speed.

    python benchmarks/long_audio.py --model exp/best.pt --manifest data/synth/test.jsonl \\
        --max-minutes 10 [--file-minutes 10] [--gap-seconds 0.5] [--beam-size 4] \\
        [--decoding joint --lm exp/lm/best.pt]

Utterances of the manifest, in order, are written back to back with ``--gap-seconds`` of
silence between them into long files of ``--file-minutes`` (streamed to disk, never held whole),
until ``--max-minutes`` of audio. The long files are transcribed with :class:`asr.Transcriber`
(segmentation, batching, word times); the same utterances are also decoded one by one, whole,
as ``asr evaluate`` does; both with the checkpoint's decoding settings, or those of
``--decoding`` (conf/decoding/<name>.yaml: ``joint`` is CTC/attention + LM, with ``--lm``).
Printed:

- WER of the long files (each file's transcript against its utterances' texts joined) and of
  the utterances one by one;
- segments whose text still loops after the transcriber's retries (a phrase 4 times in a row),
  and the shortest file transcript's characters against its reference's (lost segments);
- word start error: each hypothesis word that the WER alignment matches to a reference word,
  against the start espeak-ng reported for it (the manifest's ``words``), offset by the word's
  utterance's place in the long file: median, mean, 90th percentile and mean signed error;
- peak resident memory (ru_maxrss) after a 1-minute file and after all the long files: equal
  numbers mean memory does not grow with the length of the file;
- real-time factors.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import torch

from asr.audio import audio_duration

GAP_NOISE_DB: float | None = None  # --gap-noise-db


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


def read_utterances(manifest: Path, max_seconds: float, gap: float) -> list[dict]:
    rows, total = [], 0.0
    with manifest.open(encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            row = json.loads(line)
            audio = Path(row["audio"])
            row["audio"] = audio if audio.is_absolute() else manifest.parent / audio
            if "words" not in row:
                raise SystemExit(f"{manifest} has no 'words' (word start times) for {row['id']}")
            duration = audio_duration(row["audio"])
            if total + duration > max_seconds:
                break
            rows.append(row)
            total += duration + gap
    return rows


def write_long_files(
    rows: list[dict], out: Path, file_seconds: float, gap: float, rate: int
) -> list[dict]:
    """Concatenate utterances into files of about ``file_seconds``; returns each file's
    path, reference text and reference word starts (seconds from the file's start)."""
    out.mkdir(parents=True, exist_ok=True)
    files: list[dict] = []
    handle = None
    for row in rows:
        samples, file_rate = soundfile.read(row["audio"], dtype="float32", always_2d=True)
        if file_rate != rate:
            raise SystemExit(f"{row['audio']} is at {file_rate} Hz, the model wants {rate}")
        if handle is None or files[-1]["seconds"] >= file_seconds:
            if handle is not None:
                handle.close()
            path = out / f"long{len(files):03d}.wav"
            handle = soundfile.SoundFile(path, "w", rate, 1, subtype="PCM_16")
            files.append({"path": path, "texts": [], "words": [], "seconds": 0.0})
        current = files[-1]
        offset = current["seconds"]
        handle.write(samples.mean(axis=1))
        silence = np.zeros(int(gap * rate), dtype=np.float32)
        if GAP_NOISE_DB is not None:
            noise = np.random.default_rng(len(current["texts"])).standard_normal(silence.shape)
            silence += (10 ** (GAP_NOISE_DB / 20) * noise).astype(np.float32)
        handle.write(silence)
        current["texts"].append(row["text"])
        current["words"] += [(word, offset + float(start)) for word, start in row["words"]]
        current["seconds"] += samples.shape[0] / rate + int(gap * rate) / rate
    if handle is not None:
        handle.close()
    return files


def decoding_config(name: str) -> dict:
    """The keys of conf/decoding/<name>.yaml."""
    import yaml

    path = Path(__file__).resolve().parent.parent / "conf" / "decoding" / f"{name}.yaml"
    if not path.is_file():
        raise SystemExit(f"no decoding config {path}")
    return yaml.safe_load(path.read_text())


def word_start_errors(reference: list[tuple[str, float]], words) -> list[float]:
    """Signed start errors (hypothesis - reference) of the words the WER alignment matches."""
    import jiwer

    ref_words = [w for w, _ in reference]
    hyp_words = [w.word for w in words]
    if not ref_words or not hyp_words:
        return []
    alignment = jiwer.process_words(" ".join(ref_words), " ".join(hyp_words)).alignments[0]
    errors = []
    for chunk in alignment:
        if chunk.type == "equal":
            for k in range(chunk.ref_end_idx - chunk.ref_start_idx):
                hyp = words[chunk.hyp_start_idx + k]
                errors.append(hyp.start - reference[chunk.ref_start_idx + k][1])
    return errors


def decode_one_by_one(transcriber, rows: list[dict]) -> list[str]:
    """Each utterance whole, in length-sorted batches: the ``asr evaluate`` way."""
    from asr.audio import load_audio, pad_waveforms, probe_audio

    recognizer, options = transcriber.recognizer, transcriber.options
    order = sorted(range(len(rows)), key=lambda i: probe_audio(rows[i]["audio"]).frames)
    texts = [""] * len(rows)
    for first in range(0, len(order), transcriber.batch_size):
        batch = order[first : first + transcriber.batch_size]
        waves = [load_audio(rows[i]["audio"], recognizer.sample_rate) for i in batch]
        padded, lens = pad_waveforms(waves)
        device = transcriber.device
        for i, t in zip(
            batch,
            recognizer.transcribe_batch(
                padded.to(device), lens.to(device), options, transcriber.language_model
            ),
            strict=True,
        ):
            texts[i] = t.text
    return texts


def build_transcriber(args: argparse.Namespace):
    """The transcriber of the command line: the checkpoint's decoding settings, or those of
    ``--decoding`` (with its ``beam_size`` unless ``--beam-size``), and ``--lm``."""
    from asr import Transcriber
    from asr.vad import VadOptions

    decoding = None
    beam_size = args.beam_size
    if args.decoding is not None:
        decoding = decoding_config(args.decoding)
        if beam_size is None:
            beam_size = decoding["beam_size"]
    vad = VadOptions()
    if args.padding_seconds is not None:
        vad = VadOptions(padding_seconds=args.padding_seconds)
    return Transcriber.from_checkpoint(
        args.model,
        device=args.device,
        beam_size=beam_size,
        batch_size=args.batch_size,
        max_segment_seconds=args.max_segment_seconds,
        vad=vad,
        lm=args.lm,
        decoding=decoding,
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="checkpoint (.pt)")
    parser.add_argument("--manifest", required=True, type=Path, help="JSONL with 'words'")
    parser.add_argument("--max-minutes", type=float, default=10.0)
    parser.add_argument("--file-minutes", type=float, default=None, help="default: max")
    parser.add_argument("--gap-seconds", type=float, default=0.5)
    parser.add_argument(
        "--beam-size", type=int, default=None, help="default: the transcriber's (4)"
    )
    parser.add_argument(
        "--decoding",
        default=None,
        help="conf/decoding/<name>.yaml over the checkpoint's decoding (e.g. joint; its "
        "beam_size unless --beam-size)",
    )
    parser.add_argument("--lm", default=None, help="language model (.pt) for lm_weight > 0")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-segment-seconds", type=float, default=None)
    parser.add_argument("--padding-seconds", type=float, default=None, help="VAD context")
    parser.add_argument(
        "--gap-noise-db", type=float, default=None, help="fill gaps with noise at this dBFS"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)

    from asr.metrics import score
    from asr.transcriber import has_loop

    transcriber = build_transcriber(args)
    global GAP_NOISE_DB
    GAP_NOISE_DB = args.gap_noise_db
    rate = transcriber.sample_rate
    rows = read_utterances(args.manifest, 60 * args.max_minutes, args.gap_seconds)
    file_seconds = 60 * (args.file_minutes or args.max_minutes)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = write_long_files(rows, tmp, file_seconds, args.gap_seconds, rate)
        minute = write_long_files(rows, tmp / "minute", 60.0, args.gap_seconds, rate)[0]
        transcriber.transcribe(minute["path"])  # one minute: the memory baseline
        rss_short = peak_rss_mb()

        started = time.monotonic()
        results = transcriber.transcribe_many([f["path"] for f in files])
        long_seconds = time.monotonic() - started
        rss_long = peak_rss_mb()

    audio_seconds = sum(f["seconds"] for f in files)
    long_scores = score([" ".join(f["texts"]) for f in files], [r.text for r in results])
    errors = []
    for f, r in zip(files, results, strict=True):
        errors += word_start_errors(f["words"], r.words)
    errors = np.array(errors)
    segments = [s.end - s.start for r in results for s in r.segments]
    # A segment still looping after the transcriber's retries, and each file's characters
    # against its reference's (well below 1: segments stopped early or were lost).
    loops = sum(has_loop(s.text.split()) for r in results for s in r.segments)
    length_ratios = [
        len(r.text) / max(1, len(" ".join(f["texts"]))) for f, r in zip(files, results, strict=True)
    ]

    started = time.monotonic()
    one_by_one = decode_one_by_one(transcriber, rows)
    short_seconds = time.monotonic() - started
    short_scores = score([row["text"] for row in rows], one_by_one)

    numbers = {
        "model": str(args.model),
        "utterances": len(rows),
        "long_files": len(files),
        "audio_minutes": round(audio_seconds / 60, 2),
        "gap_seconds": args.gap_seconds,
        "gap_noise_db": args.gap_noise_db,
        "padding_seconds": transcriber.vad.padding_seconds,
        "decoding": args.decoding,
        "beam_size": transcriber.options.beam_size,
        "ctc_weight": transcriber.options.ctc_weight,
        "lm_weight": transcriber.options.lm_weight,
        "segments": len(segments),
        "segment_seconds_max": round(max(segments, default=0.0), 2),
        "segment_seconds_mean": round(float(np.mean(segments)) if segments else 0.0, 2),
        "segments_with_loops": loops,
        "hypothesis_length_ratio_min": round(min(length_ratios), 3),
        "wer_long": round(100 * long_scores.wer, 2),
        "wer_one_by_one": round(100 * short_scores.wer, 2),
        "cer_long": round(100 * long_scores.cer, 2),
        "cer_one_by_one": round(100 * short_scores.cer, 2),
        "matched_words": int(errors.size),
        "word_start_error_median_ms": round(1000 * float(np.median(np.abs(errors))), 1),
        "word_start_error_mean_ms": round(1000 * float(np.mean(np.abs(errors))), 1),
        "word_start_error_p90_ms": round(1000 * float(np.percentile(np.abs(errors), 90)), 1),
        "word_start_bias_ms": round(1000 * float(np.mean(errors)), 1),
        "peak_rss_mb_after_1_min_file": round(rss_short, 1),
        "peak_rss_mb_after_long_files": round(rss_long, 1),
        "rtf_long": round(long_seconds / audio_seconds, 4),
        "rtf_one_by_one": round(
            short_seconds / sum(soundfile.info(r["audio"]).duration for r in rows), 4
        ),
        "threads": args.threads,
    }
    width = max(map(len, numbers))
    for key, value in numbers.items():
        print(f"{key:<{width}}  {value}")
    if args.json:
        args.json.write_text(json.dumps(numbers, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
