"""What a transcribed recording is: a :class:`Transcription` of :class:`Segment` s of
:class:`Word` s, and how a decoded segment (an :class:`asr.search.Hypothesis`) becomes one.

Words, times and confidence: each alignment row's expected listener frame (the attention
weights' mean position) times the listener's frame duration (10 ms × 2^pyramid layers), plus the
segment's start, says where the speller looked as it emitted that token. A word starts at the
middle of the frame the space before it looked at (the boundary), or, for a segment's first word,
at the start of the frame its first letter looked at; it ends at the boundary after it (the
following space or ``<eos>``). A word's confidence is the geometric mean of its characters'
probabilities; a segment's and a file's is the geometric mean over all their tokens, ``<eos>``
included. With N-best decoding (``DecodingOptions.nbest`` > 1) each segment also lists its N best
transcripts with their scores (:class:`Alternative`), the first being the segment's own.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import torch

from asr.search import Hypothesis
from asr.text import Vocabulary


@dataclass
class Word:
    """One word: its spelling, start and end in seconds from the file's start, and confidence."""

    word: str
    start: float
    end: float
    confidence: float


@dataclass
class Alternative:
    """One of a segment's N best transcripts and the search's scores of it (log-probabilities;
    ``ctc``/``lm`` None where that model did not score it)."""

    text: str
    score: float  # what the search ranked by, before length normalisation
    attention: float
    ctc: float | None = None
    lm: float | None = None


@dataclass
class Segment:
    """One decoded stretch of audio between pauses; times in seconds from the file's start."""

    start: float
    end: float
    text: str
    confidence: float  # geometric mean of the token probabilities, <eos> included
    words: list[Word] = field(default_factory=list)
    log_probability: float = 0.0  # sum over the tokens, to combine segments' confidences
    num_tokens: int = 0
    alternatives: list[Alternative] = field(default_factory=list)  # the N best, when asked


@dataclass
class Transcription:
    """What a recording said. ``error`` is set (and the rest empty) when it could not be read;
    ``warnings`` name what was transcribed but may be off (a truncated file, narrowband audio)."""

    source: str
    text: str = ""
    segments: list[Segment] = field(default_factory=list)
    duration: float = 0.0  # seconds of audio
    error: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def words(self) -> list[Word]:
        return [word for segment in self.segments for word in segment.words]

    @property
    def confidence(self) -> float | None:
        """Geometric mean of all token probabilities; None without any segment."""
        tokens = sum(s.num_tokens for s in self.segments)
        if not tokens:
            return None
        return math.exp(sum(s.log_probability for s in self.segments) / tokens)

    def to_dict(self) -> dict:
        """Plain data for JSON: times rounded to milliseconds, confidences to 4 digits."""
        return {
            "file": self.source,
            "text": self.text,
            "duration": round(self.duration, 3),
            "confidence": _round(self.confidence, 4),
            "segments": [
                {
                    "start": round(s.start, 3),
                    "end": round(s.end, 3),
                    "text": s.text,
                    "confidence": _round(s.confidence, 4),
                    "words": [
                        {
                            "word": w.word,
                            "start": round(w.start, 3),
                            "end": round(w.end, 3),
                            "confidence": _round(w.confidence, 4),
                        }
                        for w in s.words
                    ],
                    **(
                        {"nbest": [_alternative(a) for a in s.alternatives]}
                        if s.alternatives
                        else {}
                    ),
                }
                for s in self.segments
            ],
            **({"error": self.error} if self.error else {}),
            **({"warnings": list(self.warnings)} if self.warnings else {}),
        }


def _alternative(alternative: Alternative) -> dict:
    return {
        "text": alternative.text,
        "score": _round(alternative.score, 4),
        "attention": _round(alternative.attention, 4),
        "ctc": _round(alternative.ctc, 4),
        "lm": _round(alternative.lm, 4),
    }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def make_segment(
    hypothesis: Hypothesis,
    start: float,
    end: float,
    frame_seconds: float,
    vocabulary: Vocabulary,
) -> Segment:
    """Text, words with times and confidences of a segment decoded from ``start`` to ``end``
    seconds of its file (module docstring); ``frame_seconds`` is one listener frame."""
    characters = [vocabulary.tokens[t] for t in hypothesis.tokens]
    alignment = hypothesis.alignment.float()  # (U + 1, T')
    positions = torch.arange(alignment.size(1), dtype=torch.float32)
    weights = alignment / alignment.sum(dim=1, keepdim=True).clamp(min=1e-9)
    expected = (weights * positions).sum(dim=1)  # (U + 1,) expected frame of each row
    # Where each row looks, as the middle of its frame and as the frame's start, in seconds.
    middles = (start + (expected + 0.5) * frame_seconds).clamp(start, end).tolist()
    onsets = (start + expected * frame_seconds).clamp(start, end).tolist()
    log_probs = hypothesis.log_probs.float()  # (U + 1,)

    if vocabulary.unit == "phone":  # each phone is a token and a "word"
        spans = [(i, i + 1) for i in range(len(characters))]
    else:
        spans = [(m.start(), m.end()) for m in re.finditer(r"[^ ]+", "".join(characters))]
    words: list[Word] = []
    for first, last in spans:
        # A word starts where the speller looked as it spelled the space before it, the
        # boundary; the first word, with no space before it, where its first letter's
        # attention begins (measured best, see docs/transcribe.md). It ends at the boundary
        # after it: the space or <eos> that follows.
        word_start = middles[first - 1] if first > 0 else onsets[first]
        if words:  # starts never go backwards
            word_start = max(word_start, words[-1].start)
        word_end = min(max(middles[last], word_start + frame_seconds), end)
        word_start = min(word_start, word_end)
        confidence = math.exp(float(log_probs[first:last].mean()))
        words.append(Word("".join(characters[first:last]), word_start, word_end, confidence))
    total = float(log_probs.sum())
    return Segment(
        start=start,
        end=end,
        text=" ".join(w.word for w in words),
        confidence=math.exp(total / log_probs.numel()),
        words=words,
        log_probability=total,
        num_tokens=log_probs.numel(),
        alternatives=[
            Alternative(
                " ".join(n.text.split()), n.score, n.attention_score, n.ctc_score, n.lm_score
            )
            for n in hypothesis.nbest
        ],
    )
