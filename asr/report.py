"""Scoring decoded utterances, and the files ``asr evaluate`` writes per split and across splits.

:func:`score_decoded` is the one scoring function: ``asr evaluate`` and training's dev pass both
score with it, so a dev CER in the training log means what the evaluation report says.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

from asr.decoding import DecodedUtterance
from asr.metrics import Scores, score, utterance_errors, word_confusions, write_transcripts


def score_decoded(
    results: Sequence[DecodedUtterance], normalize: Callable[[str], str] | None = None
) -> Scores:
    """WER and CER over decoded utterances, references and hypotheses normalised alike."""
    normalize = normalize or (lambda text: text)
    return score(
        [normalize(r.reference) for r in results], [normalize(r.hypothesis) for r in results]
    )


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
    scores = score_decoded(results, normalize).as_dict()
    confusions = word_confusions(list(references.values()), list(hypotheses.values()))
    scores["confusions"] = confusions.most_common(top_confusions)
    (out_dir / "confusions.txt").write_text(format_confusions(scores["confusions"]))
    (out_dir / "scores.json").write_text(json.dumps(scores, indent=2))
    return scores


def write_nbest(
    path: Path, results: Sequence[DecodedUtterance], normalize: Callable[[str], str]
) -> None:
    """Each utterance's N-best list, one hypothesis a line, in id order then rank:
    ``utt-id rank score attention ctc lm text``, tab-separated, with a header line; ``score`` is
    what the search ranked by (before length normalisation), the others its parts' log-
    probabilities (``-`` where not scored); the text normalised as in ``hyp.txt``."""
    lines = ["utt-id\trank\tscore\tattention\tctc\tlm\ttext"]

    def number(value: float | None) -> str:
        return "-" if value is None else f"{value:.4f}"

    for r in sorted(results, key=lambda r: r.id):
        for rank, h in enumerate(r.transcript.nbest or [r.transcript], start=1):
            parts = (h.score, h.attention_score, h.ctc_score, h.lm_score)
            lines.append("\t".join([r.id, str(rank), *map(number, parts), normalize(h.text)]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


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
    """A Markdown table of per-split results (a phone model's table shows PER, not WER/CER).

    ``skipped`` counts the split's utterances left out (unreadable audio, filtered), which the
    error rates do not cover.
    """
    if unit == "phone":
        lines = ["| split | utterances | skipped | hours | PER % | phone S/D/I | RTF |"]
        lines.append("|---|---:|---:|---:|---:|---|---:|")
    else:
        lines = ["| split | utterances | skipped | hours | WER % | CER % | word S/D/I | RTF |"]
        lines.append("|---|---:|---:|---:|---:|---:|---|---:|")
    for row in rows:
        words = row["words"]
        rates = f"{100 * row['wer']:.2f}"
        if unit != "phone":
            rates += f" | {100 * row['cer']:.2f}"
        skipped = sum(row["skipped"].values())
        lines.append(
            f"| {row['split']} | {row['utterances']} | {skipped} | {row['hours']:.2f} | {rates} | "
            f"{words['substitutions']}/{words['deletions']}/{words['insertions']} | "
            f"{row['real_time_factor']:.4f} |"
        )
    return "\n".join(lines)
