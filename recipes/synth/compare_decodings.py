"""The demo's results: one checkpoint decoded four ways, side by side (recipes/synth/run.sh).

    python recipes/synth/compare_decodings.py CORPUS EXP LM_EXP [WORD_LM_EXP]

Reads ``EXP/eval_beam`` (attention only, beam 10), ``EXP/eval_beam_ctc`` (+ CTC prefix scores),
``EXP/eval_beam_ctc_lm`` (+ CTC + the character language model) and
``EXP/eval_beam_ctc_wordlm`` (+ CTC + the word language model), each an ``asr evaluate``
out_dir, with the acoustic (``EXP/summary.json``) and language models' (``LM_EXP/summary.json``,
``WORD_LM_EXP/summary.json``) training summaries; prints WER / CER per split and decoding, and
writes ``EXP/results.json`` (whose ``results`` are the last decoding's). A decoding not run (its
results.json absent) is left out.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

DECODINGS = {
    "eval_beam": "attention",
    "eval_beam_ctc": "+CTC",
    "eval_beam_ctc_lm": "+CTC+LM",
    "eval_beam_ctc_wordlm": "+CTC+word LM",
}


def _read(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def compare(
    corpus: Path, exp: Path, lm_exp: Path, word_lm_exp: Path | None = None
) -> tuple[dict, str]:
    """The recipe's results table (a dict for results.json) and its printed form."""
    decodings = {}
    for folder, name in DECODINGS.items():
        rows = _read(exp / folder / "results.json")
        if rows is None:
            continue
        decodings[name] = {
            "out_dir": str(exp / folder),
            "decoding": rows[0].get("decoding", {}),
            "results": {
                r["split"]: {"wer": r["wer"], "cer": r["cer"], "rtf": r["real_time_factor"]}
                for r in rows
            },
        }
    if not decodings:
        raise ValueError(f"no decoding results under {exp} ({', '.join(DECODINGS)})")
    corpus_summary = _read(corpus / "corpus.json") or {}
    train = _read(exp / "summary.json") or {}
    lm = _read(lm_exp / "summary.json") or {}
    word_lm = (_read(word_lm_exp / "summary.json") if word_lm_exp else None) or {}
    table = {
        "corpus": str(corpus),
        "test_oov_word_rate": corpus_summary.get("test_oov_rate"),
        "train_minutes": round(train.get("train_minutes", float("nan")), 1),
        "epochs": len(train.get("epochs", [])),
        "lm_train_minutes": round(lm.get("train_minutes", float("nan")), 1),
        "lm_dev_perplexity": lm.get("best_dev_perplexity"),
        "word_lm_train_minutes": round(word_lm.get("train_minutes", float("nan")), 1),
        "word_lm_dev_perplexity": word_lm.get("best_dev_perplexity"),
        "decodings": decodings,
        # The last decoding's scores (+CTC+word LM when it ran), where results.json kept them
        # before.
        "results_decoding": list(decodings)[-1],
        "results": list(decodings.values())[-1]["results"],
    }
    splits = list(next(iter(decodings.values()))["results"])
    names = list(decodings)
    header = ["split", *(f"{n} WER / CER" for n in names)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for split in splits:
        cells = [split]
        for name in names:
            r = decodings[name]["results"].get(split)
            cells.append(f"{100 * r['wer']:.2f}% / {100 * r['cer']:.2f}%" if r else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return table, "\n".join(lines)


def _rounded(value, digits: int = 2):
    """A number for the summary line (results.json keeps it whole); None stays None."""
    return round(value, digits) if isinstance(value, float) else value


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) not in (3, 4):
        print("usage: compare_decodings.py CORPUS EXP LM_EXP [WORD_LM_EXP]", file=sys.stderr)
        return 2
    corpus, exp, lm_exp, *word_lm_exp = map(Path, argv)
    try:
        table, printed = compare(corpus, exp, lm_exp, *word_lm_exp)
    except ValueError as error:
        print(f"compare_decodings: error: {error}", file=sys.stderr)
        return 2
    (exp / "results.json").write_text(json.dumps(table, indent=2))
    print(
        f"\ntraining: {table['train_minutes']} min, {table['epochs']} epochs; language model: "
        f"{table['lm_train_minutes']} min, dev perplexity {_rounded(table['lm_dev_perplexity'])}; "
        f"word language model: {table['word_lm_train_minutes']} min, dev perplexity "
        f"{_rounded(table['word_lm_dev_perplexity'])}; test OOV word rate "
        f"{_rounded(table['test_oov_word_rate'], 4)}"
    )
    print(f"\nSame checkpoint, beam 10, {len(table['decodings'])} decodings:\n{printed}\n")
    print(f"results written to {exp / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
