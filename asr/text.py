"""Text as tokens: text normalisation and the speller's vocabulary.

A vocabulary spells in one of two units:

- ``char`` (the default): the 26 lower-case letters, space and apostrophe; text is normalised
  with :func:`normalize_text` and spelled one character a token.
- ``phone``: a phone set such as TIMIT's 61 phones; a transcript is phones separated by white
  space (``"h# sh ix hh eh"``), each phone one token, and decoding joins them with spaces.

Both add three special tokens: ``<blank>`` (id 0, the CTC blank and the padding value of target
tensors), ``<sos>`` (id 1, fed to the speller before the first token) and ``<eos>`` (id 2,
emitted after the last one). The unit is stored in the checkpoint with the tokens; a checkpoint
written before phones existed holds only ``characters`` and loads as a character vocabulary.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence

from asr.errors import TextError

BLANK, SOS, EOS = "<blank>", "<sos>", "<eos>"
SPECIAL_TOKENS = (BLANK, SOS, EOS)
DEFAULT_CHARACTERS = tuple(" '" + "abcdefghijklmnopqrstuvwxyz")
UNITS = ("char", "phone")

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
    >>> phones = Vocabulary(["h#", "sh", "iy"], unit="phone")
    >>> phones.encode("h# sh iy h#"), phones.decode([3, 4, 5, 3])
    ([3, 4, 5, 3], 'h# sh iy h#')
    """

    blank_id = 0
    sos_id = 1
    eos_id = 2

    def __init__(self, units: Sequence[str] = DEFAULT_CHARACTERS, unit: str = "char") -> None:
        if unit not in UNITS:
            raise ValueError(f"vocabulary unit must be one of {', '.join(UNITS)}, not {unit!r}")
        if len(set(units)) != len(units):
            raise ValueError("vocabulary entries must be distinct")
        if unit == "char" and any(len(ch) != 1 for ch in units):
            raise ValueError("vocabulary entries must be single characters")
        if unit == "phone" and any(not p or p.split() != [p] or p in SPECIAL_TOKENS for p in units):
            raise ValueError(
                "phones must be non-empty, without white space, and not special tokens"
            )
        self.unit = unit
        self.units = tuple(units)
        self.tokens = SPECIAL_TOKENS + self.units
        self._ids = {token: i for i, token in enumerate(self.tokens)}

    @property
    def characters(self) -> tuple[str, ...]:
        """The spelled units (characters, or phones for a phone vocabulary)."""
        return self.units

    @classmethod
    def from_transcripts(cls, texts: Iterable[str], unit: str = "phone") -> Vocabulary:
        """The vocabulary of every unit in ``texts``, sorted (for a phone set read from data)."""
        if unit == "char":
            found = {ch for text in texts for ch in normalize_text(text)}
        else:
            found = {phone for text in texts for phone in text.split()}
        return cls(sorted(found), unit=unit)

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Vocabulary)
            and self.tokens == other.tokens
            and self.unit == other.unit
        )

    def split(self, text: str) -> list[str]:
        """The units of ``text`` after normalisation: its characters, or its phones."""
        if self.unit == "char":
            return list(normalize_text(text))
        return text.split()

    def normalize(self, text: str) -> str:
        """``text`` in the form this vocabulary spells and decodes it."""
        if self.unit == "char":
            return normalize_text(text)
        return " ".join(text.split())

    def unknown_tokens(self, text: str) -> set[str]:
        """Units of normalised ``text`` the vocabulary cannot spell."""
        return {unit for unit in self.split(text) if unit not in self._ids}

    unknown_characters = unknown_tokens

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (normalised first), without ``<sos>``/``<eos>``.

        Raises TextError naming the units it cannot spell.
        """
        units = self.split(text)
        unknown = {unit for unit in units if unit not in self._ids}
        if unknown:
            shown = " ".join(repr(unit) for unit in sorted(unknown))
            kind = "characters" if self.unit == "char" else "phones"
            raise TextError(f"text {text!r} has {kind} outside the vocabulary: {shown}")
        return [self._ids[unit] for unit in units]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``, stopping at ``<eos>`` and skipping the other special tokens."""
        units = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if i >= len(SPECIAL_TOKENS):
                units.append(self.tokens[i])
        if self.unit == "phone":
            return " ".join(units)
        return _SPACES.sub(" ", "".join(units)).strip()

    def to_dict(self) -> dict:
        """Plain data for a checkpoint; a character vocabulary keeps the original layout."""
        if self.unit == "char":
            return {"unit": "char", "characters": list(self.units)}
        return {"unit": self.unit, "phones": list(self.units)}

    @classmethod
    def from_dict(cls, data: dict) -> Vocabulary:
        unit = data.get("unit", "char")  # checkpoints before phone units hold characters only
        return cls(data["characters"] if unit == "char" else data["phones"], unit=unit)


UNKNOWN_WORD = "<unk>"


class WordVocabulary:
    """Maps normalised text to word ids and back: the units of a word language model.

    Ids 0-2 are the character vocabulary's special tokens (``<blank>`` pads, ``<sos>`` starts a
    sentence, ``<eos>`` ends it), id 3 is ``<unk>``, which every word outside the list maps to;
    the words follow in the order given. Text is normalised as :func:`normalize_text` does and
    split at spaces, so "don't" and "sarah's" are words.

    >>> words = WordVocabulary(["the", "cat"])
    >>> words.encode("The dog, the CAT"), words.decode([4, 3, 5])
    ([4, 3, 4, 5], 'the <unk> cat')
    """

    blank_id, sos_id, eos_id = Vocabulary.blank_id, Vocabulary.sos_id, Vocabulary.eos_id
    unk_id = len(SPECIAL_TOKENS)
    unit = "word"

    def __init__(self, words: Sequence[str]) -> None:
        if len(set(words)) != len(words):
            raise ValueError("word vocabulary entries must be distinct")
        if any(not w or w.split() != [w] or w != normalize_text(w) for w in words):
            raise ValueError("words must be normalised text without spaces")
        reserved = {*SPECIAL_TOKENS, UNKNOWN_WORD}
        if reserved & set(words):
            raise ValueError(f"words must not be special tokens: {sorted(reserved & set(words))}")
        self.words = tuple(words)
        self.tokens = (*SPECIAL_TOKENS, UNKNOWN_WORD, *self.words)
        self._ids = {token: i for i, token in enumerate(self.tokens)}

    @classmethod
    def from_counts(cls, counts: Mapping[str, int], min_count: int = 1) -> WordVocabulary:
        """The words seen at least ``min_count`` times, most frequent first (ties by spelling)."""
        if min_count < 1:
            raise ValueError(f"min_count must be at least 1, got {min_count}")
        kept = [w for w, n in counts.items() if n >= min_count]
        return cls(sorted(kept, key=lambda w: (-counts[w], w)))

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WordVocabulary) and self.tokens == other.tokens

    def split(self, text: str) -> list[str]:
        return normalize_text(text).split()

    def id(self, word: str) -> int:
        """The id of ``word``; ``<unk>``'s for a word outside the list."""
        return self._ids.get(word, self.unk_id)

    def encode(self, text: str) -> list[int]:
        """Word ids of ``text`` (normalised first), without ``<sos>``/``<eos>``; never fails:
        unknown words are ``<unk>``."""
        return [self.id(word) for word in self.split(text)]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``, stopping at ``<eos>``; ``<unk>`` is kept as such."""
        words = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if i >= len(SPECIAL_TOKENS):
                words.append(self.tokens[i])
        return " ".join(words)

    def to_dict(self) -> dict:
        return {"unit": "word", "words": list(self.words)}

    @classmethod
    def from_dict(cls, data: dict) -> WordVocabulary:
        return cls(data["words"])


def vocabulary_from_dict(data: dict) -> Vocabulary | WordVocabulary:
    """The vocabulary a checkpoint stores: a :class:`WordVocabulary` for ``unit: word``, else a
    :class:`Vocabulary` (characters or phones)."""
    if data.get("unit") == "word":
        return WordVocabulary.from_dict(data)
    return Vocabulary.from_dict(data)
