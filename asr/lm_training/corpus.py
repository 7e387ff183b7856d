"""The language model's text: sentences read from manifests and text files, spelled and batched.

A training or dev source is a path: a ``.jsonl`` file is a manifest (asr.data.manifest) and
gives its utterances' ``text``; any other file (``.gz`` read compressed) gives one sentence a
line, streamed, so LibriSpeech's 800M-word ``librispeech-lm-norm.txt`` never sits in memory.
Every sentence is normalised and spelled by the acoustic model's :class:`~asr.text.Vocabulary`
(``Vocabulary.encode``), so the LM and the speller predict the same tokens; a sentence the
vocabulary cannot spell, an empty one and one over ``max_sentence_tokens`` are skipped and
counted by reason (:class:`SentenceCounts`), never fatal.

Batches are length-bucketed within a buffer of ``buffer_sentences`` sentences (the whole corpus
when it is smaller): sorted by a jittered length, cut so that a batch holds at most
``max_batch_tokens`` padded output tokens, and shuffled. The order depends only on the seed and
the epoch, which is what lets a resumed run skip the batches it already trained on.
"""

from __future__ import annotations

import gzip
import logging
import random
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from asr.data import SkipCounter, read_manifest
from asr.errors import TextError, UserError
from asr.text import Vocabulary, WordVocabulary, normalize_text

log = logging.getLogger(__name__)

OUTSIDE_VOCABULARY, EMPTY, TOO_LONG = "outside the vocabulary", "empty", "too long"
_SHOWN_SKIPS = 5  # skipped sentences logged one by one; the rest are only counted


def is_manifest(path: str | Path) -> bool:
    return Path(path).suffix == ".jsonl"


def read_lines(path: str | Path) -> Iterator[str]:
    """The raw sentences of one source: a manifest's texts, or a text file's lines (streamed)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"text file not found: {path}")
    if is_manifest(path):
        # Manifests are small (one line an utterance); bad lines are logged and skipped there.
        yield from (utt.text for utt in read_manifest(path, SkipCounter()))
        return
    opener = gzip.open if path.suffix == ".gz" else open
    # Undecodable bytes become U+FFFD, which no vocabulary spells: the line is skipped, counted.
    with opener(path, "rt", encoding="utf-8", errors="replace") as lines:
        yield from lines


@dataclass
class SentenceCounts:
    """What one pass over the sources used and skipped."""

    sentences: int = 0
    tokens: int = 0  # output tokens: each sentence's tokens and its <eos>
    skipped: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        skipped = ", ".join(f"{n} {reason}" for reason, n in sorted(self.skipped.items()))
        return f"{self.sentences} sentences, {self.tokens} tokens; skipped: {skipped or 'none'}"


class SentenceSource:
    """The sentences of ``paths``, spelled as token-id lists, re-readable once per epoch.

    Args:
        paths: manifests (``.jsonl``) and text files, read in order.
        vocabulary: the acoustic model's vocabulary.
        max_sentences: use at most this many sentences (null: all).
        max_sentence_tokens: skip longer sentences (a stray paragraph on one line).

    ``counts`` holds the last complete pass's :class:`SentenceCounts`.
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        vocabulary: Vocabulary,
        max_sentences: int | None = None,
        max_sentence_tokens: int = 1000,
    ) -> None:
        if not paths:
            raise UserError("no text to read: give at least one manifest or text file")
        for path in paths:
            if not Path(path).is_file():
                raise UserError(f"text file not found: {path}")
        if max_sentences is not None and max_sentences < 1:
            raise UserError(f"text.max_sentences must be positive or null, got {max_sentences}")
        self.paths = [Path(p) for p in paths]
        self.vocabulary = vocabulary
        self.max_sentences = max_sentences
        self.max_sentence_tokens = max_sentence_tokens
        self.counts: SentenceCounts | None = None

    def __iter__(self) -> Iterator[list[int]]:
        counts, shown = SentenceCounts(), 0
        for path in self.paths:
            for number, line in enumerate(read_lines(path), start=1):
                if self.max_sentences is not None and counts.sentences >= self.max_sentences:
                    self.counts = counts
                    return
                reason, ids = self._spell(line)
                if reason is not None:
                    counts.skipped[reason] += 1
                    if shown < _SHOWN_SKIPS and self.counts is None:  # first pass only
                        shown += 1
                        log.warning("skipping %s:%d (%s): %r", path, number, reason, line[:80])
                    continue
                counts.sentences += 1
                counts.tokens += len(ids) + 1
                yield ids
        self.counts = counts

    def _spell(self, line: str) -> tuple[str | None, list[int]]:
        try:
            ids = self.vocabulary.encode(line)
        except TextError:
            return OUTSIDE_VOCABULARY, []
        if not ids:
            return EMPTY, []
        if len(ids) > self.max_sentence_tokens:
            return TOO_LONG, []
        return None, ids

    def count(self) -> SentenceCounts:
        """Read every sentence once (for a dev set) and return the counts."""
        for _ in self:
            pass
        return self.counts


def bucketed_batches(
    sentences: Iterable[list[int]],
    max_batch_tokens: int,
    max_batch_size: int,
    buffer_sentences: int,
    rng: random.Random | None = None,
) -> Iterator[list[list[int]]]:
    """Batches of sentences of similar length, at most ``max_batch_tokens`` padded outputs.

    ``rng`` jitters the lengths (±10%, so bucket members change per epoch) and shuffles the
    batches of each buffer; without it the batches go from the shortest to the longest.
    """
    if min(max_batch_tokens, max_batch_size, buffer_sentences) < 1:
        raise UserError("text.max_batch_tokens, max_batch_size and buffer_sentences must be >= 1")
    buffer: list[list[int]] = []
    for ids in sentences:
        buffer.append(ids)
        if len(buffer) >= buffer_sentences:
            yield from _cut(buffer, max_batch_tokens, max_batch_size, rng)
            buffer = []
    if buffer:
        yield from _cut(buffer, max_batch_tokens, max_batch_size, rng)


def _cut(buffer, max_batch_tokens, max_batch_size, rng) -> list[list[list[int]]]:
    if rng is None:
        keys = [len(ids) for ids in buffer]
    else:
        keys = [len(ids) * rng.uniform(0.9, 1.1) for ids in buffer]
    order = sorted(range(len(buffer)), key=keys.__getitem__)
    batches, current, longest = [], [], 0
    for i in order:
        outputs = len(buffer[i]) + 1  # the tokens and <eos>
        widest = max(longest, outputs)
        full = widest * (len(current) + 1) > max_batch_tokens or len(current) >= max_batch_size
        if current and full:
            batches.append(current)
            current, widest = [], outputs
        current.append(buffer[i])
        longest = widest
    if current:
        batches.append(current)
    if rng is not None:
        rng.shuffle(batches)
    return batches


def word_vocabulary(
    paths: Sequence[str | Path], characters: Vocabulary, min_count: int = 1
) -> WordVocabulary:
    """The words of the training text for a word LM: those seen at least ``min_count`` times
    whose every character ``characters`` (the acoustic model's vocabulary) spells, most frequent
    first; one pass over the sources.
    """
    if min_count < 1:
        raise UserError(f"text.min_word_count must be at least 1, got {min_count}")
    counts: Counter = Counter()
    for path in paths:
        for line in read_lines(path):
            counts.update(normalize_text(line).split())
    spelled = {w: n for w, n in counts.items() if not characters.unknown_characters(w)}
    words = WordVocabulary.from_counts(spelled, min_count)
    if not words.words:
        raise UserError(f"no word seen {min_count} times or more in {', '.join(map(str, paths))}")
    return words


def collate_sentences(batch: Sequence[list[int]]) -> tuple[Tensor, Tensor]:
    """(B, U) token ids padded with ``<blank>``, and (B,) lengths: CharLSTMLM.loss's input.

    >>> tokens, lens = collate_sentences([[3, 4], [5]])
    >>> tokens.tolist(), lens.tolist()
    ([[3, 4], [5, 0]], [2, 1])
    """
    lens = torch.tensor([len(ids) for ids in batch])
    tokens = torch.full((len(batch), int(lens.max())), Vocabulary.blank_id, dtype=torch.long)
    for row, ids in enumerate(batch):
        tokens[row, : len(ids)] = torch.tensor(ids)
    return tokens, lens
