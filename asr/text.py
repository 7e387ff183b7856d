"""Characters as tokens: text normalisation and the speller's vocabulary.

The vocabulary is the 26 lower-case letters, space and apostrophe, plus three special tokens:
``<blank>`` (id 0, the CTC blank and the padding value of target tensors), ``<sos>`` (id 1, fed
to the speller before the first character) and ``<eos>`` (id 2, emitted after the last one).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

from asr.errors import TextError

BLANK, SOS, EOS = "<blank>", "<sos>", "<eos>"
SPECIAL_TOKENS = (BLANK, SOS, EOS)
DEFAULT_CHARACTERS = tuple(" '" + "abcdefghijklmnopqrstuvwxyz")

# Typographic variants that mean the same character.
_EQUIVALENTS = str.maketrans({"’": "'", "‘": "'", "`": "'", "-": " ", "–": " ", "—": " "})
# Punctuation that carries no spoken sound and is dropped before spelling.
_SILENT_PUNCTUATION = re.compile(r"[.,;:!?\"()\[\]{}]")
_SPACES = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Lower-case, strip accents and silent punctuation, fold hyphens and runs of white space.

    >>> normalize_text("  Don’t STOP—believing! ")
    "don't stop believing"
    """
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.lower().translate(_EQUIVALENTS)
    text = _SILENT_PUNCTUATION.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


class Vocabulary:
    """Maps normalised text to token ids and back.

    >>> vocab = Vocabulary()
    >>> vocab.decode(vocab.encode("it's ok"))
    "it's ok"
    >>> len(vocab)
    31
    """

    blank_id = 0
    sos_id = 1
    eos_id = 2

    def __init__(self, characters: Sequence[str] = DEFAULT_CHARACTERS) -> None:
        if len(set(characters)) != len(characters):
            raise ValueError("vocabulary characters must be distinct")
        if any(len(ch) != 1 for ch in characters):
            raise ValueError("vocabulary entries must be single characters")
        self.characters = tuple(characters)
        self.tokens = SPECIAL_TOKENS + self.characters
        self._ids = {ch: i for i, ch in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.tokens == other.tokens

    def unknown_characters(self, text: str) -> set[str]:
        """Characters of normalised ``text`` the vocabulary cannot spell."""
        return {ch for ch in normalize_text(text) if ch not in self._ids}

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (normalised first), without ``<sos>``/``<eos>``.

        Raises TextError naming the characters it cannot spell.
        """
        normalized = normalize_text(text)
        unknown = {ch for ch in normalized if ch not in self._ids}
        if unknown:
            shown = " ".join(repr(ch) for ch in sorted(unknown))
            raise TextError(f"text {text!r} has characters outside the vocabulary: {shown}")
        return [self._ids[ch] for ch in normalized]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``, stopping at ``<eos>`` and skipping the other special tokens."""
        chars = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if i >= len(SPECIAL_TOKENS):
                chars.append(self.tokens[i])
        return _SPACES.sub(" ", "".join(chars)).strip()

    def to_dict(self) -> dict:
        """Plain data for a checkpoint."""
        return {"characters": list(self.characters)}

    @classmethod
    def from_dict(cls, data: dict) -> Vocabulary:
        return cls(data["characters"])
