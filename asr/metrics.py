"""Word and character error rates with jiwer, and Kaldi-style transcript files.

Rates are corpus-level: the sum of every utterance's errors over the sum of reference lengths,
not a mean of per-utterance rates. Words are white-space separated; characters include the single
spaces between words (runs of white space count as one space, ends are stripped). For a phone
recogniser the "words" are phones, so the word error rate is the phone error rate (PER).

Scoring normalises both sides the same way, with one of :data:`NORMALIZATIONS`:

- ``standard``: :func:`asr.text.normalize_text` (lower case, accents and silent punctuation
  removed, hyphens split): the form the character vocabulary spells.
- ``none``: white space folded, nothing else (the texts are compared as they are).
- ``timit39``: TIMIT's 61 phones folded to the 39 of Lee & Hon (1989), ``q`` removed: the
  standard TIMIT phone error rate.

>>> scores = score(["the cat sat", "a dog"], ["the cat sat down", "a fog"])
>>> scores.wer, scores.words.insertions, scores.words.substitutions
(0.4, 1, 1)
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import jiwer

from asr.errors import UserError


@dataclass
class ErrorCounts:
    """Edit operations of an alignment; ``reference_length`` = hits + substitutions + deletions."""

    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    hits: int = 0
    reference_length: int = 0

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float:
        """(S + D + I) / N; an empty reference counts as length 1 (so 0 when nothing was said).

        This matches jiwer 4: an empty reference with a two-word hypothesis has rate 2.0.
        """
        return self.errors / max(self.reference_length, 1)

    def __add__(self, other: ErrorCounts) -> ErrorCounts:
        return ErrorCounts(
            *(getattr(self, f.name) + getattr(other, f.name) for f in dataclasses.fields(self))
        )


@dataclass
class Scores:
    """Corpus-level error rates and the counts behind them."""

    wer: float
    cer: float
    words: ErrorCounts
    chars: ErrorCounts
    utterances: int

    def as_dict(self) -> dict:
        """Plain data for JSON: rates, utterance count and both sets of counts."""
        return dataclasses.asdict(self)


def _clean(text: str) -> str:
    """Words joined by single spaces: the form both the word and the character scores see."""
    return " ".join(text.split())


def _count(references: list[str], hypotheses: list[str], unit: str) -> ErrorCounts:
    """Edit counts summed over pairs of cleaned texts; ``unit`` is "words" or "chars"."""

    def tokens(text: str) -> list[str]:
        return text.split() if unit == "words" else list(text)

    counts = ErrorCounts()
    pairs = []  # pairs with both sides non-empty, for jiwer
    for reference, hypothesis in zip(references, hypotheses, strict=True):
        if reference and hypothesis:
            pairs.append((reference, hypothesis))
        else:
            # jiwer 3 rejects empty references: one empty side is all deletions or insertions.
            counts.deletions += len(tokens(reference))
            counts.insertions += len(tokens(hypothesis))
            counts.reference_length += len(tokens(reference))
    if pairs:
        process = jiwer.process_words if unit == "words" else jiwer.process_characters
        output = process([r for r, _ in pairs], [h for _, h in pairs])
        counts += ErrorCounts(
            substitutions=output.substitutions,
            deletions=output.deletions,
            insertions=output.insertions,
            hits=output.hits,
            reference_length=output.hits + output.substitutions + output.deletions,
        )
    return counts


def score(references: Sequence[str], hypotheses: Sequence[str]) -> Scores:
    """Corpus WER and CER of ``hypotheses`` against ``references`` (paired by position).

    Empty strings are allowed on either side: an empty reference makes every hypothesis word an
    insertion, an empty hypothesis makes every reference word a deletion.
    """
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    references = [_clean(text) for text in references]
    hypotheses = [_clean(text) for text in hypotheses]
    words = _count(references, hypotheses, "words")
    chars = _count(references, hypotheses, "chars")
    return Scores(
        wer=words.rate, cer=chars.rate, words=words, chars=chars, utterances=len(references)
    )


NORMALIZATIONS = ("standard", "none", "timit39")


def text_normalizer(name: str) -> Callable[[str], str]:
    """The scoring normalisation called ``name`` (see the module docstring).

    >>> text_normalizer("standard")("Hello, World!"), text_normalizer("none")(" a  B ")
    ('hello world', 'a B')
    >>> text_normalizer("timit39")("h# ix q ax-h pcl p h#")
    'sil ih ah sil p sil'
    """
    if name == "standard":
        from asr.text import normalize_text

        return normalize_text
    if name == "none":
        return _clean
    if name == "timit39":
        from asr.corpora.timit import fold_phones

        return fold_phones
    raise UserError(
        f"unknown text normalisation {name!r}; choose one of {', '.join(NORMALIZATIONS)}"
    )


def _alignment_columns(reference: str, hypothesis: str) -> list[tuple[str, str, str]]:
    """Aligned (reference word, hypothesis word, mark) columns; ``*`` fills the missing side
    and the mark is "", S, D or I."""
    ref_words, hyp_words = reference.split(), hypothesis.split()
    columns: list[tuple[str, str, str]] = []  # (reference word, hypothesis word, mark)
    if ref_words and hyp_words:
        chunks = jiwer.process_words(reference, hypothesis).alignments[0]
    else:  # jiwer 3 cannot align an empty side; one side empty is all deletions or insertions
        chunks = []
        columns = [(word, "*", "D") for word in ref_words] + [("*", w, "I") for w in hyp_words]
    marks = {"equal": "", "substitute": "S", "delete": "D", "insert": "I"}
    for chunk in chunks:
        ref_span = ref_words[chunk.ref_start_idx : chunk.ref_end_idx]
        hyp_span = hyp_words[chunk.hyp_start_idx : chunk.hyp_end_idx]
        length = max(len(ref_span), len(hyp_span))
        ref_span += ["*"] * (length - len(ref_span))
        hyp_span += ["*"] * (length - len(hyp_span))
        columns += [(r, h, marks[chunk.type]) for r, h in zip(ref_span, hyp_span, strict=True)]
    return columns


def _alignment_lines(reference: str, hypothesis: str) -> str:
    """Three lines, REF / HYP / operations, with ``*`` for missing words and S, D, I marks."""
    columns = _alignment_columns(reference, hypothesis)
    widths = [max(len(r), len(h), len(m)) for r, h, m in columns]
    rows = []
    for label, index in (("REF:", 0), ("HYP:", 1), ("    ", 2)):
        cells = [column[index].ljust(width) for column, width in zip(columns, widths, strict=True)]
        rows.append(" ".join([label, *cells]).rstrip())
    return "\n".join(rows)


def utterance_errors(reference: str, hypothesis: str) -> dict:
    """One utterance's scores and a word alignment for a human reader.

    Returns ``{"wer", "cer", "words": counts, "chars": counts, "alignment": str}``.

    >>> print(utterance_errors("the cat sat", "the hat sat down")["alignment"])
    REF: the cat sat *
    HYP: the hat sat down
             S       I
    """
    scores = score([reference], [hypothesis])
    return {
        "wer": scores.wer,
        "cer": scores.cer,
        "words": dataclasses.asdict(scores.words),
        "chars": dataclasses.asdict(scores.chars),
        "alignment": _alignment_lines(_clean(reference), _clean(hypothesis)),
    }


@dataclass
class Confusions:
    """How often each word was substituted by each other word, deleted, and inserted."""

    substitutions: Counter = dataclasses.field(default_factory=Counter)  # (ref, hyp) -> n
    deletions: Counter = dataclasses.field(default_factory=Counter)  # ref word -> n
    insertions: Counter = dataclasses.field(default_factory=Counter)  # hyp word -> n

    def most_common(self, n: int = 20) -> dict:
        """The ``n`` most frequent of each kind, as plain data (ties in first-seen order)."""
        return {
            "substitutions": [
                {"reference": r, "hypothesis": h, "count": c}
                for (r, h), c in self.substitutions.most_common(n)
            ],
            "deletions": [{"word": w, "count": c} for w, c in self.deletions.most_common(n)],
            "insertions": [{"word": w, "count": c} for w, c in self.insertions.most_common(n)],
        }


def word_confusions(references: Sequence[str], hypotheses: Sequence[str]) -> Confusions:
    """Count the word (or phone) errors of each aligned pair by what was confused.

    The totals equal :func:`score`'s substitution, deletion and insertion counts.

    >>> c = word_confusions(["the cat sat", "a dog"], ["the hat sat down", "dog"])
    >>> dict(c.substitutions), dict(c.deletions), dict(c.insertions)
    ({('cat', 'hat'): 1}, {'a': 1}, {'down': 1})
    """
    confusions = Confusions()
    for reference, hypothesis in zip(references, hypotheses, strict=True):
        for ref_word, hyp_word, mark in _alignment_columns(_clean(reference), _clean(hypothesis)):
            if mark == "S":
                confusions.substitutions[ref_word, hyp_word] += 1
            elif mark == "D":
                confusions.deletions[ref_word] += 1
            elif mark == "I":
                confusions.insertions[hyp_word] += 1
    return confusions


def read_transcripts(path: str | PathLike) -> dict[str, str]:
    """Read Kaldi-style ``utt-id text`` lines into ``{utt-id: text}``, in file order.

    The text may be empty (a line holding only the id). Blank lines are skipped. A line that starts
    with white space, a duplicate id, an unreadable or missing file raise UserError naming it.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise UserError(f"transcript file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"cannot read transcript file {path}: {error}") from None
    transcripts: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if line[0].isspace():
            raise UserError(f"{path}:{number}: line starts with white space instead of an id")
        utterance_id, *rest = line.split(maxsplit=1)
        text = _clean(rest[0]) if rest else ""
        if utterance_id in transcripts:
            raise UserError(f"{path}:{number}: utterance id {utterance_id!r} appears twice")
        transcripts[utterance_id] = text
    return transcripts


def write_transcripts(path: str | PathLike, transcripts: Mapping[str, str]) -> None:
    """Write ``{utt-id: text}`` as ``utt-id text`` lines (white space in text folded to spaces)."""
    lines = []
    for utterance_id, text in transcripts.items():
        if utterance_id.split() != [utterance_id]:
            raise ValueError(f"utterance id {utterance_id!r} must be non-empty without white space")
        text = _clean(text)
        lines.append(f"{utterance_id} {text}" if text else utterance_id)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
