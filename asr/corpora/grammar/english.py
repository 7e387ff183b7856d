"""The closed-class English the sentence grammar needs: the subject of a clause and the words
that agree with it (pronouns, "am/is/are", "was/were", "his/her/their", contractions), number
words, "a" or "an", and the written form of a sentence."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Subject:
    """A clause's subject: its words, grammatical person ("1s", "2", "3s", "1p", "3p") and gender
    ("m", "f" or "n" for things), which choose the agreeing forms below."""

    text: str
    person: str
    gender: str = "n"


PRONOUNS = {
    "i": Subject("i", "1s"),
    "you": Subject("you", "2"),
    "he": Subject("he", "3s", "m"),
    "she": Subject("she", "3s", "f"),
    "we": Subject("we", "1p"),
    "they": Subject("they", "3p"),
}
BE = {"1s": "am", "2": "are", "3s": "is", "1p": "are", "3p": "are"}
WAS = {"1s": "was", "2": "were", "3s": "was", "1p": "were", "3p": "were"}
OBJECT = {"1s": "me", "2": "you", "1p": "us", "3p": "them", "m": "him", "f": "her", "n": "it"}
POSSESSIVE = {
    "1s": "my",
    "2": "your",
    "1p": "our",
    "3p": "their",
    "m": "his",
    "f": "her",
    "n": "its",
}
CONTRACTED = {  # pronoun -> (be, will, have, would)
    "i": ("i'm", "i'll", "i've", "i'd"),
    "you": ("you're", "you'll", "you've", "you'd"),
    "he": ("he's", "he'll", "he's", "he'd"),
    "she": ("she's", "she'll", "she's", "she'd"),
    "we": ("we're", "we'll", "we've", "we'd"),
    "they": ("they're", "they'll", "they've", "they'd"),
}

_NUMBERS = (
    *("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"),
    *("eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen"),
    *("eighteen", "nineteen"),
)
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")


def number_words(n: int) -> str:
    """English words for 0 <= n < 1000.

    >>> number_words(45), number_words(300), number_words(112)
    ('forty five', 'three hundred', 'one hundred and twelve')
    """
    if not 0 <= n < 1000:
        raise ValueError(f"number_words handles 0..999, got {n}")
    if n < 20:
        return _NUMBERS[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f" {_NUMBERS[ones]}" if ones else "")
    hundreds, rest = divmod(n, 100)
    words = f"{_NUMBERS[hundreds]} hundred"
    return words + (f" and {number_words(rest)}" if rest else "")


# "an" before a vowel sound; the exceptions are spelled with a vowel but start with a
# consonant sound ("a university", "a one") or the reverse ("an hour").
_CONSONANT_SOUND = re.compile(r"^(uni|use|usu|eu|one|once|ukulele|uk)")
_VOWEL_SOUND = re.compile(r"^(hour|honest|honor|heir)")


def fix_articles(text: str) -> str:
    """The article before each word as the word sounds: "an apple", "a university", "an hour"."""
    words = text.split(" ")
    for i, word in enumerate(words[:-1]):
        if word.lower() in ("a", "an"):
            following = words[i + 1].lower()
            vowel = following[:1] in "aeiou" and not _CONSONANT_SOUND.match(following)
            words[i] = "an" if vowel or _VOWEL_SOUND.match(following) else "a"
    return " ".join(words)


def written_form(text: str) -> str:
    """Capitalise the sentence and the pronoun "I"; end with a full stop unless a question."""
    text = re.sub(r"\bi\b", "I", text)
    text = text[:1].upper() + text[1:]
    return text if text.endswith("?") else f"{text}."
