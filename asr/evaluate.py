"""Decode splits with a checkpoint and score them: ``asr evaluate checkpoint=CKPT [splits=[test]]``.

A split named ``NAME`` reads ``data.NAME_manifest`` when the data config has that key, else
``<data.corpus_dir>/NAME.jsonl`` (so ``splits=[dev-clean,test-other]`` reads the manifests
``recipes/librispeech/prepare.py`` wrote).

Per split, under ``<out_dir>/<split>/``: ``hyp.txt`` and ``ref.txt`` (Kaldi style, ``utt-id
text``, both normalised), ``errors.txt`` (each utterance's WER, CER, S/D/I counts and word
alignment with errors marked), ``confusions.txt`` (the most frequent substitutions, deletions
and insertions) and ``scores.json`` (WER, CER, the substitution/deletion/insertion/hit counts
behind both, and the confusions). Across splits: ``results.json`` and ``results.md``, and the
table is printed.

``normalization`` (default: the data config's, else ``standard``) is applied identically to
references and hypotheses before scoring; see :mod:`asr.metrics` for the choices. For a phone
model the word error rate is the phone error rate, and the table says PER.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from asr import CONF_DIR
from asr.data import SkipCounter, UtteranceDataset, read_manifest
from asr.decoding import DecodedUtterance, decode_dataset
from asr.errors import UserError, reports_user_errors
from asr.metrics import score, text_normalizer, utterance_errors, word_confusions, write_transcripts
from asr.recognizer import DecodingOptions

log = logging.getLogger(__name__)
# conf/evaluate.yaml writes results beside the checkpoint: ${dirname:${checkpoint}}.
OmegaConf.register_new_resolver("dirname", lambda path: str(Path(path).parent), replace=True)


def write_split_report(
    out_dir: Path,
    results: Sequence[DecodedUtterance],
    normalize: Callable[[str], str],
    top_confusions: int = 20,
) -> dict:
    """Write hyp/ref/errors/confusions/scores for one split; returns its scores as a dict.

    ``normalize`` is applied to references and hypotheses alike before anything is written.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    results = sorted(results, key=lambda r: r.id)  # files in id order, as Kaldi sorts them
    references = {r.id: normalize(r.reference) for r in results}
    hypotheses = {r.id: normalize(r.hypothesis) for r in results}
    write_transcripts(out_dir / "ref.txt", references)
    write_transcripts(out_dir / "hyp.txt", hypotheses)
    with (out_dir / "errors.txt").open("w", encoding="utf-8") as out:
        for r in results:
            errors = utterance_errors(references[r.id], hypotheses[r.id])
            words = errors["words"]
            out.write(
                f"{r.id} WER {100 * errors['wer']:.1f}% CER {100 * errors['cer']:.1f}% "
                f"S {words['substitutions']} D {words['deletions']} I {words['insertions']} "
                f"N {words['reference_length']}\n"
                f"{errors['alignment']}\n\n"
            )
    scores = score(list(references.values()), list(hypotheses.values())).as_dict()
    confusions = word_confusions(list(references.values()), list(hypotheses.values()))
    scores["confusions"] = confusions.most_common(top_confusions)
    (out_dir / "confusions.txt").write_text(format_confusions(scores["confusions"]))
    (out_dir / "scores.json").write_text(json.dumps(scores, indent=2))
    return scores


def format_confusions(confusions: dict) -> str:
    """The most frequent errors as three plain-text lists, most frequent first."""
    lines = ["substitutions (count reference -> hypothesis)"]
    lines += [
        f"{c['count']:6d}  {c['reference']} -> {c['hypothesis']}"
        for c in confusions["substitutions"]
    ]
    for kind in ("deletions", "insertions"):
        lines += ["", f"{kind} (count word)"]
        lines += [f"{c['count']:6d}  {c['word']}" for c in confusions[kind]]
    return "\n".join(lines) + "\n"


def results_table(rows: Sequence[dict], unit: str = "char") -> str:
    """A Markdown table of per-split results (a phone model's table shows PER, not WER/CER)."""
    if unit == "phone":
        lines = ["| split | utterances | hours | PER % | phone S/D/I | RTF |"]
        lines.append("|---|---:|---:|---:|---|---:|")
    else:
        lines = ["| split | utterances | hours | WER % | CER % | word S/D/I | RTF |"]
        lines.append("|---|---:|---:|---:|---:|---|---:|")
    for row in rows:
        words = row["words"]
        rates = f"{100 * row['wer']:.2f}"
        if unit != "phone":
            rates += f" | {100 * row['cer']:.2f}"
        lines.append(
            f"| {row['split']} | {row['utterances']} | {row['hours']:.2f} | {rates} | "
            f"{words['substitutions']}/{words['deletions']}/{words['insertions']} | "
            f"{row['real_time_factor']:.4f} |"
        )
    return "\n".join(lines)


def split_manifest(data: DictConfig, split: str) -> Path:
    """``data.<split>_manifest``, else ``<data.corpus_dir>/<split>.jsonl`` when it exists."""
    key = f"{split}_manifest"
    if data.get(key) is not None:
        return Path(data[key])
    corpus_dir = data.get("corpus_dir")
    if corpus_dir is not None and (Path(corpus_dir) / f"{split}.jsonl").is_file():
        return Path(corpus_dir) / f"{split}.jsonl"
    where = f" and no {Path(corpus_dir) / f'{split}.jsonl'}" if corpus_dir is not None else ""
    raise UserError(f"no manifest for split {split!r}: set data.{key}=PATH (no such key{where})")


def evaluate(cfg: DictConfig) -> list[dict]:
    from asr.checkpoint import load_recognizer
    from asr.train import check_config, select_device

    check_config(cfg)
    device = select_device(cfg.device)
    normalize = text_normalizer(cfg.normalization)
    recognizer = load_recognizer(cfg.checkpoint, device)
    unit = recognizer.vocabulary.unit
    if unit == "phone" and cfg.normalization == "standard":
        log.warning(
            "scoring a phone model with normalization=standard, which splits hyphenated "
            "phones; use normalization=none, or timit39 for TIMIT"
        )
    options = DecodingOptions.from_config(cfg.decoding)
    out_dir = Path(cfg.out_dir)
    manifests = {split: split_manifest(cfg.data, split) for split in cfg.splits}
    rows = []
    for split, manifest in manifests.items():
        skips = SkipCounter()
        dataset = UtteranceDataset(
            read_manifest(manifest),
            recognizer.vocabulary,
            recognizer.sample_rate,
            encode_text=False,
        )
        started = time.monotonic()
        results = decode_dataset(
            recognizer, dataset, options, device, skips, batch_size=cfg.batch_size, desc=split
        )
        elapsed = time.monotonic() - started
        scores = write_split_report(out_dir / split, results, normalize, cfg.top_confusions)
        audio_seconds = sum(r.duration for r in results)
        rows.append(
            {
                "split": split,
                "manifest": str(manifest),
                "unit": unit,
                "normalization": cfg.normalization,
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
    table = results_table(rows, unit)
    (out_dir / "results.md").write_text(table + "\n")
    print(f"\nResults for {cfg.checkpoint} (beam {options.beam_size}):\n{table}\n")
    return rows


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="evaluate")
@reports_user_errors
def main(cfg: DictConfig) -> None:
    evaluate(cfg)
