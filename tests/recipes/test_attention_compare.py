"""recipes/attention/compare.py on two briefly trained mechanisms: the table, the long-utterance
set and the alignment grid it promises."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from asr.data import read_manifest
from asr.metrics import read_transcripts, score
from tests.e2e_corpus import make_tiny_corpus
from tests.test_train import training_config

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_comparison_table_and_figure(tmp_path):
    from asr.train import train

    corpus = tmp_path / "corpus"
    make_tiny_corpus(corpus, repeats=2)
    runs = []
    for attention in ("location", "scaled_dot"):
        run = tmp_path / "sweep" / attention
        extra = [f"attention={attention}", "trainer.max_epochs=1", "model.speller.hidden_size=128"]
        train(training_config(corpus, run, extra))
        runs.append(run)

    out = tmp_path / "comparison"
    command = [sys.executable, str(ROOT / "recipes/attention/compare.py"), "--corpus", str(corpus)]
    command += ["--runs", *map(str, runs), "--out", str(out)]
    subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)

    table = json.loads((out / "results.json").read_text())
    assert [row["mechanism"] for row in table["runs"]] == ["location", "scaled_dot"]
    longest = max(u.duration for u in read_manifest(corpus / "train.jsonl"))
    concatenated = read_manifest(out / "concat3.jsonl")
    assert table["concat3_utterances"] == len(concatenated) >= 1
    assert all(u.duration > longest for u in concatenated)
    assert concatenated[0].text == "the cat sat down open the door good morning"
    references = {u.id: u.text for u in read_manifest(corpus / "test.jsonl")}
    long_references = {u.id: u.text for u in concatenated}
    for row in table["runs"]:
        hypotheses = read_transcripts(out / row["mechanism"] / "test.hyp")
        recomputed = score([references[i] for i in hypotheses], list(hypotheses.values()))
        assert (row["test_wer"], row["test_cer"]) == (recomputed.wer, recomputed.cer)
        hypotheses = read_transcripts(out / row["mechanism"] / "concat3.hyp")
        recomputed = score([long_references[i] for i in hypotheses], list(hypotheses.values()))
        assert row["concat3_wer"] == recomputed.wer and row["decode_rtf"] > 0
        buckets = row["wer_by_duration"]
        assert sum(b["utterances"] for b in buckets.values()) == table["test_utterances"] == 4
    markdown = (out / "results.md").read_text()
    assert markdown.count("\n| ") == 2 and "concat×3 WER" in markdown  # 2 rows below the header
    assert (out / "alignments.png").stat().st_size > 0
