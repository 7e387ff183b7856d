"""Decode splits with a checkpoint and score them: ``asr evaluate checkpoint=CKPT [splits=[test]]``.

Per split, under ``<out_dir>/<split>/``: ``hyp.txt`` and ``ref.txt`` (Kaldi style, ``utt-id
text``), ``errors.txt`` (each utterance's WER, CER and word alignment with errors marked) and
``scores.json``. Across splits: ``results.json`` and ``results.md``, and the table is printed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader
from tqdm import tqdm

from asr import CONF_DIR
from asr.data import BucketBatchSampler, SkipCounter, UtteranceDataset, collate, read_manifest
from asr.errors import UserError, reports_user_errors
from asr.metrics import score, utterance_errors, write_transcripts
from asr.recognizer import DecodingOptions, Recognizer, Transcript

log = logging.getLogger(__name__)
# conf/evaluate.yaml writes results beside the checkpoint: ${dirname:${checkpoint}}.
OmegaConf.register_new_resolver("dirname", lambda path: str(Path(path).parent), replace=True)


@dataclass
class DecodedUtterance:
    id: str
    reference: str
    hypothesis: str
    duration: float  # seconds of audio
    transcript: Transcript


def decode_dataset(
    recognizer: Recognizer,
    dataset: UtteranceDataset,
    options: DecodingOptions,
    device: torch.device,
    skips: SkipCounter,
    desc: str = "decoding",
    progress: bool = True,
) -> list[DecodedUtterance]:
    """Decode every usable utterance, in length-sorted batches; bad ones are counted in skips."""
    recognizer.eval()
    sampler = BucketBatchSampler(
        dataset.durations(), float("inf"), options.batch_size, shuffle=False
    )
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate)
    results = []
    audio_seconds, started = 0.0, time.monotonic()
    bar = tqdm(loader, desc=desc, unit="batch", leave=False, disable=not progress)
    for batch in bar:
        skips.add(batch.skipped)
        if len(batch) == 0:
            continue
        lens = batch.waveform_lens
        transcripts = recognizer.transcribe_batch(
            batch.waveforms.to(device), lens.to(device), options
        )
        for i, transcript in enumerate(transcripts):
            duration = float(lens[i]) / recognizer.sample_rate
            results.append(
                DecodedUtterance(
                    batch.ids[i], batch.texts[i], transcript.text, duration, transcript
                )
            )
            audio_seconds += duration
        bar.set_postfix(rtf=f"{(time.monotonic() - started) / max(audio_seconds, 1e-9):.4f}")
    bar.close()
    return results


def write_split_report(
    out_dir: Path, results: Sequence[DecodedUtterance], vocabulary_normalize
) -> dict:
    """Write hyp/ref/errors/scores for one split; returns its scores as a dict."""
    out_dir.mkdir(parents=True, exist_ok=True)
    references = {r.id: vocabulary_normalize(r.reference) for r in results}
    hypotheses = {r.id: r.hypothesis for r in results}
    write_transcripts(out_dir / "ref.txt", references)
    write_transcripts(out_dir / "hyp.txt", hypotheses)
    with (out_dir / "errors.txt").open("w", encoding="utf-8") as out:
        for r in results:
            errors = utterance_errors(references[r.id], hypotheses[r.id])
            out.write(
                f"{r.id} WER {100 * errors['wer']:.1f}% CER {100 * errors['cer']:.1f}%\n"
                f"{errors['alignment']}\n\n"
            )
    scores = score(list(references.values()), list(hypotheses.values())).as_dict()
    (out_dir / "scores.json").write_text(json.dumps(scores, indent=2))
    return scores


def results_table(rows: Sequence[dict]) -> str:
    """A Markdown table of per-split results."""
    header = "| split | utterances | hours | WER % | CER % | word S/D/I | RTF |"
    lines = [header, "|---|---:|---:|---:|---:|---|---:|"]
    for row in rows:
        words = row["words"]
        lines.append(
            f"| {row['split']} | {row['utterances']} | {row['hours']:.2f} | "
            f"{100 * row['wer']:.2f} | {100 * row['cer']:.2f} | "
            f"{words['substitutions']}/{words['deletions']}/{words['insertions']} | "
            f"{row['real_time_factor']:.4f} |"
        )
    return "\n".join(lines)


def evaluate(cfg: DictConfig) -> list[dict]:
    from asr.checkpoint import load_recognizer
    from asr.text import normalize_text
    from asr.train import check_config, select_device

    check_config(cfg)
    device = select_device(cfg.device)
    recognizer = load_recognizer(cfg.checkpoint, device)
    options = DecodingOptions.from_config(cfg.decoding)
    out_dir = Path(cfg.out_dir)
    rows = []
    for split in cfg.splits:
        key = f"{split}_manifest"
        if key not in cfg.data or cfg.data[key] is None:
            raise UserError(f"no manifest for split {split!r}: set data.{key}=PATH")
        skips = SkipCounter()
        dataset = UtteranceDataset(
            read_manifest(cfg.data[key]), recognizer.vocabulary, recognizer.sample_rate
        )
        started = time.monotonic()
        results = decode_dataset(recognizer, dataset, options, device, skips, desc=split)
        elapsed = time.monotonic() - started
        scores = write_split_report(out_dir / split, results, normalize_text)
        audio_seconds = sum(r.duration for r in results)
        rows.append(
            {
                "split": split,
                "manifest": str(cfg.data[key]),
                "hours": audio_seconds / 3600,
                "real_time_factor": elapsed / max(audio_seconds, 1e-9),
                "skipped": dict(skips.counts),
                "decoding": OmegaConf.to_container(cfg.decoding, resolve=True),
                **scores,
            }
        )
        if skips.total:
            log.warning("%s: %s", split, skips.summary())
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(rows, indent=2))
    table = results_table(rows)
    (out_dir / "results.md").write_text(table + "\n")
    print(f"\nResults for {cfg.checkpoint} (beam {options.beam_size}):\n{table}\n")
    return rows


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="evaluate")
@reports_user_errors
def main(cfg: DictConfig) -> None:
    evaluate(cfg)
