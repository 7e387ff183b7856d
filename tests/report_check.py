"""Recompute an ``asr evaluate`` report from its own hyp/ref files, independently of asr.metrics.

Edit distances come from a plain dynamic programme here; substitution, deletion and insertion
counts from jiwer directly. Every number in ``scores.json``, ``results.json``, ``results.md``,
``errors.txt`` and ``confusions.txt`` must agree with them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jiwer
import pytest


def edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    row = list(range(len(hypothesis) + 1))
    for i, r in enumerate(reference, start=1):
        previous, row[0] = row[0], i
        for j, h in enumerate(hypothesis, start=1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (r != h))
    return row[-1]


def read_kaldi(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        utterance_id, _, text = line.partition(" ")
        out[utterance_id] = text
    return out


def jiwer_counts(references: list[str], hypotheses: list[str]) -> tuple[int, int, int]:
    """(S, D, I) from jiwer, with one-sided empty pairs counted by hand."""
    pairs = [(r, h) for r, h in zip(references, hypotheses, strict=True) if r and h]
    s = d = i = 0
    if pairs:
        out = jiwer.process_words([r for r, _ in pairs], [h for _, h in pairs])
        s, d, i = out.substitutions, out.deletions, out.insertions
    for r, h in zip(references, hypotheses, strict=True):
        if not (r and h):
            d += len(r.split())
            i += len(h.split())
    return s, d, i


def check_report(eval_dir: Path, splits: list[str], unit: str = "char") -> list[dict]:
    """Assert the report of ``splits`` under ``eval_dir`` matches a recomputation; return rows."""
    rows = json.loads((eval_dir / "results.json").read_text())
    assert [row["split"] for row in rows] == splits
    table = (eval_dir / "results.md").read_text()
    assert ("PER %" in table) == (unit == "phone")
    for row in rows:
        folder = eval_dir / row["split"]
        refs = read_kaldi(folder / "ref.txt")
        hyps = read_kaldi(folder / "hyp.txt")
        assert list(refs) == list(hyps) and len(refs) == row["utterances"] > 0
        ids = list(refs)
        ref_words = [refs[i].split() for i in ids]
        hyp_words = [hyps[i].split() for i in ids]
        words = sum(len(r) for r in ref_words)
        word_errors = sum(edit_distance(r, h) for r, h in zip(ref_words, hyp_words, strict=True))
        chars = sum(len(refs[i]) for i in ids)
        char_errors = sum(edit_distance(list(refs[i]), list(hyps[i])) for i in ids)
        assert row["wer"] == pytest.approx(word_errors / max(words, 1))
        assert row["cer"] == pytest.approx(char_errors / max(chars, 1))
        counts = row["words"]
        assert counts["reference_length"] == words
        assert counts["substitutions"] + counts["deletions"] + counts["insertions"] == word_errors
        s, d, i = jiwer_counts([refs[k] for k in ids], [hyps[k] for k in ids])
        assert (counts["substitutions"], counts["deletions"], counts["insertions"]) == (s, d, i)

        scores = json.loads((folder / "scores.json").read_text())
        assert scores["wer"] == row["wer"] and scores["words"] == counts
        confusions = scores["confusions"]
        if s + d + i <= 20:  # everything fits in the top-20 lists
            assert sum(c["count"] for c in confusions["substitutions"]) == s
            assert sum(c["count"] for c in confusions["deletions"]) == d
            assert sum(c["count"] for c in confusions["insertions"]) == i
        text = (folder / "confusions.txt").read_text()
        for c in confusions["substitutions"]:
            assert f"{c['count']:6d}  {c['reference']} -> {c['hypothesis']}" in text

        errors = (folder / "errors.txt").read_text()
        headers = re.findall(
            r"^(\S+) WER ([\d.]+)% CER [\d.]+% S (\d+) D (\d+) I (\d+) N (\d+)$", errors, flags=re.M
        )
        assert [h[0] for h in headers] == ids
        for (utterance_id, wer, *sdin), r, h in zip(headers, ref_words, hyp_words, strict=True):
            s_, d_, i_, n_ = map(int, sdin)
            assert s_ + d_ + i_ == edit_distance(r, h) and n_ == len(r), utterance_id
            assert float(wer) == pytest.approx(100 * edit_distance(r, h) / max(len(r), 1), abs=0.05)
        # The skipped column: utterances of the split the error rates do not cover.
        skipped = sum(row["skipped"].values())
        assert f"| {row['split']} | {row['utterances']} | {skipped} |" in table
        assert f"{100 * row['wer']:.2f}" in table
        assert f"{counts['substitutions']}/{counts['deletions']}/{counts['insertions']}" in table
    return rows
