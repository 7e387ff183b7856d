"""Decode splits with a checkpoint and score them: ``asr evaluate checkpoint=CKPT [splits=[test]]``.

A split named ``NAME`` reads ``data.NAME_manifest`` when the data config has that key, else
``<data.corpus_dir>/NAME.jsonl`` (so ``splits=[dev-clean,test-other]`` reads the manifests
``recipes/librispeech/prepare.py`` wrote).

Per split, under ``<out_dir>/<split>/``: ``hyp.txt`` and ``ref.txt`` (Kaldi style, ``utt-id
text``, both normalised), ``errors.txt`` (each utterance's WER, CER, S/D/I counts and word
alignment with errors marked), ``confusions.txt`` (the most frequent substitutions, deletions
and insertions) and ``scores.json`` (WER, CER, the substitution/deletion/insertion/hit counts
behind both, and the confusions), and with ``decoding.nbest`` > 1 ``nbest.txt`` (each
utterance's N best hypotheses with their scores, :func:`asr.report.write_nbest`). Across
splits: ``results.json`` and ``results.md`` (with the utterances skipped per split), and the
table is printed (asr/report.py writes them all).

``normalization`` (default: the data config's, else ``standard``) is applied identically to
references and hypotheses before scoring; see :mod:`asr.metrics` for the choices. For a phone
model the word error rate is the phone error rate, and the table says PER. A split with no
usable utterance is refused: its error rates would read 0%.

``lm=LM.pt`` (a ``asr train-lm`` file with the acoustic model's vocabulary) is the language
model that ``decoding.lm_weight`` (shallow fusion) and ``decoding.lm_rescore_weight`` (N-best
rescoring) use, e.g. ``asr evaluate checkpoint=CKPT decoding=joint lm=exp/lm/best.pt``.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from asr import CONF_DIR
from asr.checkpoint import load_language_model, load_recognizer
from asr.config import check_config
from asr.data import SkipCounter, UtteranceDataset, read_manifest
from asr.decoding import decode_dataset
from asr.devices import select_device
from asr.errors import UserError, reports_user_errors
from asr.metrics import text_normalizer
from asr.recognizer import DecodingOptions
from asr.report import results_table, write_nbest, write_split_report

log = logging.getLogger(__name__)
# conf/evaluate.yaml writes results beside the checkpoint: ${dirname:${checkpoint}}.
OmegaConf.register_new_resolver("dirname", lambda path: str(Path(path).parent), replace=True)


def split_manifest(data: DictConfig, split: str) -> Path:
    """``data.<split>_manifest``, else ``<data.corpus_dir>/<split>.jsonl`` when it exists."""
    key = f"{split}_manifest"
    if data.get(key) is not None:
        return Path(data[key])
    corpus_dir = data.corpus_dir
    if corpus_dir is not None and (Path(corpus_dir) / f"{split}.jsonl").is_file():
        return Path(corpus_dir) / f"{split}.jsonl"
    where = f" and no {Path(corpus_dir) / f'{split}.jsonl'}" if corpus_dir is not None else ""
    raise UserError(f"no manifest for split {split!r}: set data.{key}=PATH (no such key{where})")


def evaluate(cfg: DictConfig) -> list[dict]:
    """Decode and score ``cfg.splits``; returns one row of results per split."""
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
    # cfg.get: the `lm` key joins the evaluate schema with the LM training (conf/evaluate.yaml).
    lm_path = cfg.lm
    language_model = None
    if lm_path is not None:
        loaded = load_language_model(lm_path, device)
        language_model = recognizer.check_language_model(*loaded, lm_path)
        if not options.uses_language_model:
            log.warning(
                "lm=%s is loaded but decoding.lm_weight and lm_rescore_weight are 0", lm_path
            )
    recognizer.check_options(options, language_model)  # before any split is decoded
    out_dir = Path(cfg.out_dir)
    manifests = {split: split_manifest(cfg.data, split) for split in cfg.splits}
    rows = []
    for split, manifest in manifests.items():
        skips = SkipCounter()
        utterances = read_manifest(manifest, skips)  # a bad line is counted, not fatal
        dataset = UtteranceDataset(
            utterances, recognizer.vocabulary, recognizer.sample_rate, encode_text=False
        )
        started = time.monotonic()
        results = decode_dataset(
            recognizer,
            dataset,
            options,
            device,
            skips,
            cfg.batch_size,
            desc=split,
            max_seconds=cfg.max_utterance_seconds,
            language_model=language_model,
        )
        elapsed = time.monotonic() - started
        if not results:
            raise UserError(
                f"split {split!r}: no usable utterance in {manifest} ({len(utterances)} listed, "
                f"{skips.summary()}): nothing to score"
            )
        scores = write_split_report(out_dir / split, results, normalize, cfg.top_confusions)
        if options.nbest > 1:
            write_nbest(out_dir / split / "nbest.txt", results, normalize)
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
                "lm": None if lm_path is None else str(lm_path),
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
