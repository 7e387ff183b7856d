"""Everyday English sentences from a small grammar: the text of the synthetic corpus.

Sentences come from about 230 templates (statements in past, present and future, questions,
requests, negations, contractions such as "it's" and "don't", possessives such as "sarah's"),
data in ``asr/corpora/grammar/templates.txt`` (whose header explains every slot), whose slots are
filled from categorised word lists in ``asr/corpora/lexicon/*.txt``. Verbs are
grouped by what they can take as an object (food, drinks, clothes, people, places, things), so
"she peeled the potatoes" comes out but "she peeled the teacher" does not. The subject of a
clause decides the agreement of the words after it (``is``/``are``, ``doesn't``/``don't``,
``his``/``her``/``their``, "she walks" against "they walk").

``generate_sentences(count, seed)`` returns sentences in written form, with capitals and a full
stop or question mark (espeak uses them for intonation); ``asr.text.normalize_text`` of each is
the transcript: 3 to 14 words of lower-case letters, spaces and apostrophes, numbers spelled out.
The same count and seed always give the same list.

This module is the expansion engine (alternatives, then slots, then the acceptance of a
sentence). The slots are functions in ``asr.corpora.grammar``: ``subjects`` (the subject and
the words that agree with it), ``phrases`` (noun phrases, adjectives, adverbs) and ``times``
(times, calendar words, numbers), over ``clause`` (one sentence's state), ``english``
(agreement tables, number words, "a"/"an") and ``word_lists`` (the lexicon files).

>>> generate_sentences(2, seed=0) == generate_sentences(2, seed=0)
True
>>> all(3 <= len(normalize_text(s).split()) <= 14 for s in generate_sentences(50, seed=1))
True
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from pathlib import Path

from asr.corpora.grammar.clause import Clause
from asr.corpora.grammar.english import fix_articles, number_words, written_form
from asr.corpora.grammar.phrases import PHRASE_SLOTS
from asr.corpora.grammar.subjects import SUBJECT_SLOTS
from asr.corpora.grammar.times import TIME_SLOTS
from asr.corpora.grammar.word_lists import Lexicon, default_lexicon
from asr.text import normalize_text

__all__ = [
    "MAX_WORDS",
    "MIN_WORDS",
    "TEMPLATES",
    "Lexicon",
    "default_lexicon",
    "generate_sentences",
    "load_templates",
    "number_words",
    "render",
]

TEMPLATES_FILE = Path(__file__).parent / "grammar" / "templates.txt"
MIN_WORDS, MAX_WORDS = 3, 14
_FULL_ACCEPTANCE_WORDS = 11  # sentences this long or longer are always kept

# Verb slots: the verb list (``asr/corpora/lexicon/verbs_<kind>.txt``) each draws from.
VERB_SLOTS = {
    "thing_verb": "things",
    "food_verb": "food",
    "drink_verb": "drinks",
    "clothing_verb": "clothes",
    "person_verb": "people",
    "place_verb": "places",
    "intransitive_verb": "intransitive",
    "motion_verb": "motion",
    "animal_verb": "animals",
    "furniture_verb": "home",
    "chore_verb": "chores",
    "linking_verb": "linking",
}
SLOTS: dict[str, Callable[[Clause, str], str]] = {**SUBJECT_SLOTS, **PHRASE_SLOTS, **TIME_SLOTS}

_SLOT = re.compile(r"\{(\w+)(?::(\w+))?\}")
_ALTERNATIVES = re.compile(r"\[([^\[\]]*)\]")


def load_templates(path: Path = TEMPLATES_FILE) -> tuple[str, ...]:
    """The templates of ``path``, one a line, in order; blank lines and "#" comments skipped.

    Raises ValueError naming the line of a slot that no slot function fills.
    """
    templates = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        for slot, _ in _SLOT.findall(line):
            if slot not in SLOTS and slot not in VERB_SLOTS:
                raise ValueError(f"{path}:{number}: unknown slot {{{slot}}} in {line!r}")
        templates.append(line)
    return tuple(templates)


TEMPLATES: tuple[str, ...] = load_templates()


def render(template: str, rng: random.Random, lexicon: Lexicon) -> str:
    """One sentence (lower case, no final stop) from ``template``, drawing from ``rng``."""
    clause = Clause(rng, lexicon)

    def fill(match: re.Match) -> str:
        slot, option = match.group(1), match.group(2) or ""
        verb_kind = VERB_SLOTS.get(slot)
        if verb_kind is not None:
            return clause.verb(rng.choice(lexicon.verbs[verb_kind]), option)
        return SLOTS[slot](clause, option)

    # Alternatives first (they may hold slots), then slots from left to right, so that
    # agreement follows the most recent subject.
    while True:
        text = _ALTERNATIVES.sub(lambda m: rng.choice(m.group(1).split("|")), template)
        if text == template:
            break
        template = text
    text = _SLOT.sub(fill, template)
    text = re.sub(r"\s+", " ", text).strip()
    return fix_articles(text.replace(" ,", ",").replace(" ?", "?"))


def generate_sentences(count: int, seed: int = 0, lexicon: Lexicon | None = None) -> list[str]:
    """``count`` distinct everyday English sentences, the same for the same seed.

    Sentences are in written form ("Could you close the window?"); ``normalize_text`` of each
    is a distinct transcript of 3 to 14 words. Raises ValueError when the grammar runs out of
    new sentences (it can make well over a million).
    """
    if count < 0:
        raise ValueError(f"count must be non-negative, got {count}")
    lexicon = lexicon or default_lexicon()
    rng = random.Random(seed)
    sentences: list[str] = []
    seen: set[str] = set()
    failures = 0
    while len(sentences) < count:
        sentence = written_form(render(rng.choice(TEMPLATES), rng, lexicon))
        transcript = normalize_text(sentence)
        length = len(transcript.split())
        # Favour longer sentences (acceptance grows with the square of the length) so that an
        # utterance lasts about three seconds on average.
        if rng.random() >= (length / _FULL_ACCEPTANCE_WORDS) ** 2:
            continue
        if transcript in seen or not MIN_WORDS <= length <= MAX_WORDS:
            failures += 1
            if failures > 1000 + 10 * count:
                raise ValueError(f"the grammar could only make {len(sentences)} distinct sentences")
            continue
        seen.add(transcript)
        sentences.append(sentence)
    return sentences
