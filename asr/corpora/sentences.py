"""Everyday English sentences from a small grammar: the text of the synthetic corpus.

Sentences come from about 230 templates (statements in past, present and future, questions,
requests, negations, contractions such as "it's" and "don't", possessives such as "sarah's")
whose slots are filled from categorised word lists in ``asr/corpora/lexicon/*.txt``. Verbs are
grouped by what they can take as an object (food, drinks, clothes, people, places, things), so
"she peeled the potatoes" comes out but "she peeled the teacher" does not. The subject of a
clause decides the agreement of the words after it (``is``/``are``, ``doesn't``/``don't``,
``his``/``her``/``their``, "she walks" against "they walk").

``generate_sentences(count, seed)`` returns sentences in written form, with capitals and a full
stop or question mark (espeak uses them for intonation); ``asr.text.normalize_text`` of each is
the transcript: 3 to 14 words of lower-case letters, spaces and apostrophes, numbers spelled out.
The same count and seed always give the same list.

>>> generate_sentences(2, seed=0) == generate_sentences(2, seed=0)
True
>>> all(3 <= len(normalize_text(s).split()) <= 14 for s in generate_sentences(50, seed=1))
True
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from asr.text import normalize_text

LEXICON_DIR = Path(__file__).parent / "lexicon"
MIN_WORDS, MAX_WORDS = 3, 14
_FULL_ACCEPTANCE_WORDS = 11  # sentences this long or longer are always kept


@dataclass(frozen=True)
class Noun:
    """A noun; ``plural`` is None for a mass noun ("rice"); ``gender`` is "m", "f" or ""."""

    singular: str
    plural: str | None
    gender: str = ""


@dataclass(frozen=True)
class Verb:
    """The five forms of an English verb."""

    base: str
    third: str  # third person singular present: "eats"
    past: str
    participle: str
    gerund: str


@dataclass(frozen=True)
class Drink:
    """A drink and what it is served in; no containers means it is countable ("a latte")."""

    name: str
    containers: tuple[str, ...]


class Lexicon:
    """The categorised word lists of ``asr/corpora/lexicon``.

    Each file has one entry a line; ``#`` starts a comment; ``_`` joins the words of one entry
    ("ice_cream"); ``[name]`` lines start a section.
    """

    def __init__(self, directory: Path = LEXICON_DIR) -> None:
        self.directory = Path(directory)
        self.female_names = self._words("names_female")
        self.male_names = self._words("names_male")
        self.cities = self._words("cities")
        self.people = self._nouns("people")
        self.family = self._nouns("family")
        self.things = self._nouns("things")
        self.clothes = self._nouns("clothes")
        self.furniture = self._nouns("furniture")
        self.openings = self._nouns("openings")
        self.rooms = self._nouns("rooms")
        self.food = self._nouns("food")
        self.animals = self._nouns("animals")
        self.places = self._nouns("places")
        self.vehicles = self._nouns("vehicles")
        self.nature = self._nouns("nature")
        self.body = self._nouns("body")
        self.events = self._nouns("events")
        self.drinks = [
            Drink(fields[0], () if fields[1] == "*" else tuple(fields[1].split(",")))
            for fields in self._rows("drinks")
        ]
        self.sports = self._words("sports")
        self.instruments = self._words("instruments")
        self.hobbies = self._words("hobbies")
        self.adjectives = {
            kind: self._words(f"adjectives_{kind}")
            for kind in ("things", "people", "food", "places", "weather")
        }
        self.colors = self._words("colors")
        self.adverbs = self._words("adverbs")
        self.verbs = {
            kind: [Verb(*fields) for fields in self._rows(f"verbs_{kind}")]
            for kind in (
                "things",
                "food",
                "drinks",
                "clothes",
                "people",
                "places",
                "intransitive",
                "motion",
                "animals",
                "home",
                "chores",
                "linking",
                "other",
            )
        }
        self.verb_by_base = {verb.base: verb for verbs in self.verbs.values() for verb in verbs}
        self.times = self._sections("times")
        self.calendar = self._sections("calendar")

    def _rows(self, name: str) -> list[list[str]]:
        """Whitespace-separated fields of each entry line of ``name``.txt, "_" made a space."""
        rows = []
        text = (self.directory / f"{name}.txt").read_text(encoding="utf-8")
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                rows.append([field.replace("_", " ") for field in line.split()])
        return rows

    def _words(self, name: str) -> list[str]:
        return list(dict.fromkeys(row[0] for row in self._rows(name)))

    def _nouns(self, name: str) -> list[Noun]:
        nouns = []
        for row in self._rows(name):
            if len(row) not in (2, 3):
                raise ValueError(f"{name}.txt: expected 'singular plural [gender]', got {row}")
            plural = None if row[1] == "-" else row[1]
            nouns.append(Noun(row[0], plural, row[2] if len(row) == 3 else ""))
        return nouns

    def _sections(self, name: str) -> dict[str, list[str]]:
        sections: dict[str, list[str]] = {}
        current = None
        for row in self._rows(name):
            entry = " ".join(row)
            if entry.startswith("[") and entry.endswith("]"):
                current = sections.setdefault(entry[1:-1], [])
            elif current is None:
                raise ValueError(f"{name}.txt: entry {entry!r} before the first [section]")
            else:
                current.append(entry)
        return sections


@cache
def default_lexicon() -> Lexicon:
    """The lexicon shipped with the package, loaded once."""
    return Lexicon()


# -- agreement --------------------------------------------------------------------------------


# A clause's subject: its words, grammatical person ("1s", "2", "3s", "1p", "3p") and gender
# ("m", "f" or "n" for things), which choose the agreeing forms below.
@dataclass(frozen=True)
class _Subject:
    text: str
    person: str
    gender: str = "n"


_PRONOUNS = {
    "i": _Subject("i", "1s"),
    "you": _Subject("you", "2"),
    "he": _Subject("he", "3s", "m"),
    "she": _Subject("she", "3s", "f"),
    "we": _Subject("we", "1p"),
    "they": _Subject("they", "3p"),
}
_BE = {"1s": "am", "2": "are", "3s": "is", "1p": "are", "3p": "are"}
_WAS = {"1s": "was", "2": "were", "3s": "was", "1p": "were", "3p": "were"}
_OBJECT = {"1s": "me", "2": "you", "1p": "us", "3p": "them", "m": "him", "f": "her", "n": "it"}
_POSSESSIVE = {
    "1s": "my",
    "2": "your",
    "1p": "our",
    "3p": "their",
    "m": "his",
    "f": "her",
    "n": "its",
}
_CONTRACTED = {  # pronoun -> (be, will, have, would)
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


# -- templates ----------------------------------------------------------------------------------
# {SLOT} or {SLOT:arg} is filled by the method _slot_<SLOT>; [a|b|c] picks one alternative
# (alternatives may be empty and may hold slots). Subject slots (S, ST, SF, ... and the Q* and
# S* contraction slots) set the subject that {be}, {do}, {poss}, {VERB:pres} ... agree with.
# Verb slots: VT things, VF food, VD drinks, VC clothes, VP people, VPL places, VI no object,
# VM motion (+ "to ..."), VA animals, VH furniture, VL linking; forms base/pres/third/past/pp/ing.
TEMPLATES: tuple[str, ...] = (
    # past
    "{S} {VT:past} {T} {TP}",
    "{S} {VT:past} {T} in {R}",
    "{S} {VT:past} {T} at {PL}",
    "{S} {VF:past} {F} for {MEAL}",
    "{S} {VF:past} {F} {TP}",
    "{S} [finally|already|] {VF:past} {F}",
    "{S} {VD:past} {D} at {PL}",
    "{S} {VC:past} {C} {TP}",
    "{S} {VP:past} {P} {TP}",
    "{S} {VP:past} {P} at {EV:the}",
    "{S} {VM:past} to {PL} {TP}",
    "{S} {VM:past} to {PL} with {P}",
    "{S} {VI:past} {ADV}",
    "{S} {VI:past} {TP}",
    "{S} {VI:past} [before|after|during] {EV:the}",
    "{S} {VH:past} {FU} {TP}",
    "{S} {was} at {PL} {TP}",
    "{S} {was} [very|really|so|a bit|quite|] {AP} {TP}",
    "{S} {VL:past} [very|really|a little|quite|] {AP} after {EV:the}",
    "{S} saw {A:a} [in|near|by] {N:the}",
    "{S} took {VEH:the} to {CITY}",
    "{S} spent {DUR} in {CITY} {TP}",
    "{S} paid {PRICE} for {T:sg}",
    "{S} [slipped|fell|tripped] and hurt {poss} {B}",
    "{S} hurt {poss} {B} {TP}",
    "{S} didn't {VT:base} {T} {TP}",
    "{S} couldn't find {T} anywhere",
    "{S} {was} {VT:ing} {T} when {S} {VI:past}",
    "{S} {was} {VM:ing} to {PL} when it started to [rain|snow]",
    "{S} forgot to {VTC:base} {T}",
    "{S} decided to {VM:base} to {CITY}",
    "{S} bought {T:a} for {poss} {FAM}",
    "{S} bought {C:a} for {poss} {FAM}",
    "{S} gave {P} {T:a} [yesterday|last week|for christmas|for {poss} birthday]",
    "{S} {was} born in {CITY} in {MONTH}",
    "{S} lived in {CITY} for {COUNT} years",
    "{SVEH} {was} [late|delayed|full|crowded|cancelled|early] {TP}",
    "{S} missed {VEH:the} {TP}",
    "{SA} {VA:past} [all night|in the garden|under the bed|again|{TP}]",
    "the weather was {AW} in {CITY} {TP}",
    "it was [very|really|so|] {AW} [in {CITY}|outside|all day] {TP}",
    "{S} {was} waiting for {P} [at {PL}|for {DUR}|outside]",
    "{S} spent {DUR} looking for {T}",
    "{COUNT} {PEOPLE} {VI:past} {TP}",
    "there was {A:a} in {R} {TP}",
    "{S} {VT:past} {T} and {VT:past} {T}",
    "{S} {VI:past} [because|when] {S} {VI:past}",
    "{S} left {poss} {T:n} [at {PL}|in {R}|on {VEH:the}]",
    "{S} sold {poss} {VEH:n} {TP}",
    "{S} told {P} about {EV:the}",
    "{S} asked {P} to {VTC:base} {T}",
    "{S} helped {P} {VTC:base} {T}",
    "{S} {was} too {AP} to {VI:base}",
    "{NAME} said {S} {was} {AP}",
    # present perfect
    "{Shave} {VT:pp} {T}",
    "{Shave} just {VF:pp} {F}",
    "{S} {havent} {VT:pp} {T} yet",
    "{Shave} known {P} for {COUNT} years",
    "{S} {have} never been to {CITY}",
    "{S} {have} already {VPL:pp} {PL}",
    # present
    "{S} {FREQ} {VF:pres} {F:n} for {MEAL}",
    "{S} {VI:pres} {TH}",
    "{S} {FREQ} {VI:pres} [after work|in the evening|at night|on weekends|]",
    "{S} {dont} like {F:n}",
    "{S} {dont} [like|want|need] {T}",
    "{S} {dont} {VT:base} {T} anymore",
    "{Sbe} {VTC:ing} {T} [right now|at the moment|now|]",
    "{Sbe} {VM:ing} to {PL} [right now|now|with {P}|]",
    "{Sbe} [so|really|very|a bit|] {AP} [today|tonight|right now|this morning|]",
    "{Sbe} not {AP}, just {AP}",
    "{ST} {be} [really|very|too|so|] {AT}",
    "{ST} {be} [in|on|under|behind|next to] {FU}",
    "{ST} {be} in {R}",
    "{THERE} [on|under|next to|behind] {FU}",
    "{THERE} in {R}",
    "{SPL} {be} [always|usually|often|] {APL} {TH}",
    "it's [very|really|quite|so|] {AW} [today|outside|in {CITY}|this morning|tonight]",
    "{S} {VI:pres} {ADV}",
    "{S} {FREQ} {VM:pres} to {PL} on {DAY:pl}",
    "{S} {VP:pres} {P} every {DAY}",
    "{S} {pres:play} {SPORT} {TH}",
    "{S} {pres:play} the {INSTR} [beautifully|every day|in a band|badly|]",
    "{S} {pres:enjoy} {HOBBY} [in the {SEASON}|on weekends|with {P}|]",
    "{S} {pres:work} at {PL:a}",
    "{S} {pres:live} [in {CITY}|near {PL:the}|next to {PL:the}]",
    "{S} {have} {COUNT} {A:pl}",
    "{S} {pres:need} {COUNT} more {T:pl}",
    "{SF} {pres:taste} [really|very|a bit|too|] {AF}",
    "{SF} {be} [in the fridge|on the table|in the oven|ready|really {AF}]",
    "{S} {pres:want} to {VM:base} to {CITY} [next year|one day|someday|this summer]",
    "{S} {pres:need} to {VTC:base} {T} before {EV:the}",
    "it takes {MINUTES} to {VM:base} to {PL}",
    "{SPL} {pres:open} at {CLOCK}",
    "{SPL} {pres:close} at {CLOCK} on {DAY:pl}",
    "{S} {pres:know} {P} [very well|from school|from work|]",
    "{S} {VL:pres} [really|very|so|a bit|] {AP} [today|tonight|]",
    "{S} {VL:past} [really|very|a bit|] {AP} {TP}",
    "{S} {FREQ} {pres:take} {VEH:the} to [work|school|the city]",
    "{S} {pres:ride} {poss} [bike|bicycle|scooter|motorcycle] to [work|school]",
    "the [train|bus|ferry|plane] to {CITY} leaves at {CLOCK}",
    "{SA} {pres:love} {F:n}",
    "{S} {pres:feed} {A:the} every [morning|evening|day]",
    "[look|listen], {SA} {be} {VA:ing} [again|in the garden|]",
    "{S} [always|never|often|] {pres:forget} {poss} {T:n}",
    "{S} can't find {poss} {T:n}",
    "{S} lost {poss} favorite {T:n} {TP}",
    "that's my favorite {C:n}",
    "this is [my|our] favorite {PL:n}",
    "{ST} {pres:belong} to {P}",
    "{S} {pres:speak} [english|french|spanish|german|italian|japanese] [very well|at home|]",
    "{S} {pres:teach} {SPORT} at {PL:the}",
    "{S} {pres:watch} {EV:pl} [on weekends|at night|with {P}]",
    # future
    "{S} will {VTC:base} {T} {TF}",
    "{Swill} {VP:base} {P} {TF}",
    "{Sbe} going to {VP:base} {P} {TF}",
    "{Sbe} going to {VM:base} to {CITY} {TF}",
    "{S} won't {VI:base} {TF}",
    "{S} might {VM:base} to {PL} {TF}",
    "i think {S} will {VI:base} {TF}",
    "i hope {S} will {VI:base} {TF}",
    "i don't think {S} will {VI:base} [on time|{TF}]",
    "{Sbe} meeting {P} at {CLOCK} {TF}",
    "{SEV} {be} on {DAY} at {CLOCK}",
    "{SEV} {be} {TF}",
    "if it [rains|snows] {TF}, {Swill} [stay|rest|relax|read|cook|study|work] at home",
    "if it's {AW} {TF}, {Swill} {VM:base} to {PL}",
    "{Swill} [probably|definitely|] {VM:base} to {PL} after {EV:the}",
    "{Swould} like {D}",
    "{Swould} like to {VM:base} to {CITY} [someday|one day|next year]",
    "{Swould} love to {VP:base} {P}",
    "{Swould} rather [stay home|stay in|eat out|go out|sleep] [tonight|{TF}|]",
    # questions
    "did {SQ} {VT:base} {T} {TP}?",
    "did {SQ} {VP:base} {P} {TP}?",
    "{Qdo} {VF:base} {F:n}?",
    "{Qdo} know where {ST} {be}?",
    "{Qbe} {VTC:ing} {T} [right now|at the moment|today]?",
    "{Qhave} ever been to {CITY}?",
    "where did {SQ} [put|leave|find|buy|hide] {T}?",
    "what time {Qdo} usually [wake up|get up|leave|go to bed|have lunch|finish work]?",
    "why {Qbe} so {AP} [today|tonight|this morning|]?",
    "how much {Qdo:T} cost?",
    "how much {Qdo:C} cost?",
    "who {VT:past} {T}?",
    "which {C:n} {Qdo} want to [wear|buy|borrow]?",
    "can you {VTC:base} {T} for me?",
    "could you please {VH:base} {FU}?",
    "could you please [open|close|shut] {OPEN}?",
    "{S} forgot to [close|lock|shut] {OPEN}",
    "{Qdo} want me to [open|close] {OPEN}?",
    "could you {VTC:base} {T} [tomorrow|later|before {EV:the}]?",
    "would you like {D}?",
    "would you like some {F:n}?",
    "shall we {VM:base} to {PL} {TF}?",
    "why don't we {VM:base} to {PL} [instead|together|{TF}]?",
    "is there {PL:a} [near here|nearby|around here|in this town]?",
    "how long {Qhave} lived in {CITY}?",
    "when {Qbe} going to {VP:base} {P}?",
    "what {Qdo} want for {MEAL}?",
    "{Qdo} have {T:a}?",
    "whose {T:n} is this?",
    "whose {T:pl} are these?",
    "what {Qwas} doing {TP}?",
    "{Qbe} [still|] {AP}?",
    "{Qwas} at {PL} {TP}?",
    "{Qhave} seen {T}?",
    "how was [your|the] {EV:n}?",
    "did you enjoy {EV:the}?",
    "what did {SQ} think of {PL:the}?",
    "are you coming to {EV:the} {TF}?",
    "where {Qbe} going {TF}?",
    "{Qdo} [like|prefer|want] {D:n} or {D:n}?",
    "can {SQ} {VI:base} [well|yet|]?",
    "how often {Qdo} {VP:base} {P}?",
    "is it going to be {AW} {TF}?",
    "is this {NAME}'s {T:n}?",
    "how much is {T:sg}?",
    "how much are these {T:pl}?",
    # requests and exclamations
    "please {VH:base} {FU} [before you leave|when you go out|]",
    "please [open|close|shut|lock] {OPEN} [before you leave|when you go out|]",
    "please don't {VT:base} {T} [in {R}|on {FU}]",
    "let's {VM:base} to {PL} {TF}",
    "let's play {SPORT} [after lunch|{TF}]",
    "let me {VTC:base} {T} [for you|]",
    "remember to {VP:base} {P} {TF}",
    "don't forget to {VTC:base} {T} {TF}",
    "make sure you {VTC:base} {T} [before {EV:the}|{TF}]",
    "thank you for {VTC:ing} {T}",
    "thanks for {VP:ing} {P}",
    "please tell {P} {Swill} be late",
    "sorry, {S} [didn't|couldn't] {VP:base} {P} {TP}",
    # possessives, "it's" and friends
    "that's {NAME}'s {T:n}",
    "this is my {FAM}'s {T:n}",
    "those are {NAME}'s {T:pl}",
    "{NAME}'s birthday is [in {MONTH}|on {DAY}|next week]",
    "it's {NAME}'s turn to {VTC:base} {T}",
    "it's [already|nearly|almost|just after] {CLOCK}",
    "it's too {AW} to [go swimming|go hiking|go fishing|go camping|go sailing|go cycling|play "
    "outside|sit outside|walk to school]",
    "{S} {pres:want} {P} to {VM:base} to {PL}",
    "the {A:n} [in|near] {N:the} [looked|seemed] {AP}",
    # longer sentences of two clauses
    "{S} {VM:past} to {PL} {TP}, but it was closed",
    "{S} {was} so {AP} that {S} {VI:past} {ADV}",
    "when {S} {VI:past}, {S} {was} [very|really|] {AP}",
    "{S} {VF:past} {F} and {VD:past} {D} for {MEAL}",
    "after {EV:the}, {S} {VM:past} to {PL} with {P}",
    "{S} {pres:want} to {VM:base} to {CITY} [next year|one day], but {S} {dont} have the money",
    "if {S} {VI:pres} {TF}, {Swill} [call|text|email] {P}",
    "i think {S} left {poss} {T:n} [at {PL}|in {R}] {TP}",
    "{Qdo} think {S} will {VM:base} to {PL} {TF}?",
    "could you [remind|ask] {P} to {VTC:base} {T} before {EV:the}?",
    "{S} {was} [very|really] {AP} when {S} {VP:past} {P} at {EV:the}",
    "{SPL} {was} so {APL} that {S} {VM:past} home [early|right away]",
    "{Sbe} going to {VM:base} to {PL} {TF} to {VTC:base} {T}",
    "{Sbe} going to {VM:base} to {PL} {TF} with {P}",
    "{S} {pres:need} to {VTC:base} {T} and {VTC:base} {T} {TF}",
    "{S} told {P} that {S} {was} too {AP} to {VI:base}",
    "{S} asked {P} if {S} could {VTC:base} {T}",
    "{S} {was} [sitting|waiting|standing] [in|at|outside] {PL} when {S} {VP:past} {P}",
    "don't forget to {VTC:base} {T} before you [leave|go to bed|go out|go to work]",
    "{S} spent the whole [morning|afternoon|evening|day] looking for {T}",
    "{S} said that {SEV} {was} [really|very|] [fun|boring|great|long|interesting|short]",
    "{ST} {was} too {AT} for {P}",
    "{S} {pres:want} to learn the {INSTR} before {TF}",
    "{Shave} been {VI:ing} for {DUR}",
    "{Shave} been [living|working] in {CITY} since {MONTH}",
    "how long {Qhave} been [waiting|working|living] [here|in {CITY}|at {PL}]?",
    "{Qdo} [remember|know] where {S} [put|left] {poss} {T:n}?",
    "{S} {VT:past} {T} {TP}, and {S} {VT:past} {T}",
    "{S} usually {VM:pres} to {PL} {TH}, but {S} {pres:take} {VEH:the} when it rains",
    "{SF} {VL:past} so {AF} that {S} {VF:past} [all of it|the rest|another one]",
)


class _Sentence:
    """Fills one template; holds the random source and the current clause's subject."""

    _PATTERN = re.compile(r"\{(\w+)(?::(\w+))?\}")
    _ALTERNATIVES = re.compile(r"\[([^\[\]]*)\]")

    def __init__(self, rng: random.Random, lexicon: Lexicon) -> None:
        self.rng = rng
        self.lex = lexicon
        self.subject = _PRONOUNS["you"]

    def render(self, template: str) -> str:
        # Alternatives first (they may hold slots), then slots from left to right, so that
        # agreement follows the most recent subject.
        while True:
            text = self._ALTERNATIVES.sub(
                lambda m: self.rng.choice(m.group(1).split("|")), template
            )
            if text == template:
                break
            template = text
        text = self._PATTERN.sub(self._fill, template)
        text = re.sub(r"\s+", " ", text).strip()
        return _fix_articles(text.replace(" ,", ",").replace(" ?", "?"))

    def _fill(self, match: re.Match) -> str:
        slot, arg = match.group(1), match.group(2) or ""
        verb_kind = _VERB_SLOTS.get(slot)
        if verb_kind is not None:
            return self._verb(self.rng.choice(self.lex.verbs[verb_kind]), arg)
        handler: Callable[[str], str] = getattr(self, f"_slot_{slot}")
        return handler(arg)

    # -- small helpers ----------------------------------------------------------------------

    def _pick(self, items: list):
        return self.rng.choice(items)

    def _chance(self, p: float) -> bool:
        return self.rng.random() < p

    def _name(self) -> tuple[str, str]:
        if self._chance(0.5):
            return self._pick(self.lex.female_names).title(), "f"
        return self._pick(self.lex.male_names).title(), "m"

    def _gender(self, noun: Noun) -> str:
        return noun.gender or self._pick(["m", "f"])

    def _verb(self, verb: Verb, form: str) -> str:
        if form == "pres":
            return verb.third if self.subject.person == "3s" else verb.base
        forms = {"base": verb.base, "third": verb.third, "past": verb.past}
        forms.update({"pp": verb.participle, "ing": verb.gerund})
        return forms[form]

    def _possessive_determiner(self) -> str:
        return self._pick(["my", "my", "your", "his", "her", "their"])

    def _count_noun_phrase(self, nouns: list[Noun], arg: str, adjectives: list[str]) -> str:
        """A determiner, maybe an adjective, and a noun: "the old lamp", "some rice"."""
        noun = self._pick(nouns)
        adjective = f"{self._pick(adjectives)} " if self._chance(0.3) else ""
        if arg == "n":  # bare singular (or mass)
            return noun.singular
        if arg == "pl":  # bare plural, mass nouns stay singular
            return noun.plural or noun.singular
        if noun.plural is None:  # mass noun
            if arg in ("a", ""):
                determiner = self._pick(["some", "the", "my", "your", "some"])
            else:
                determiner = self._pick(["the", "my", "your", "this", "that"])
            return f"{determiner} {adjective}{noun.singular}"
        if arg == "a":
            return f"a {adjective}{noun.singular}"
        if arg == "sg" or (arg in ("", "the") and self._chance(0.75)):
            if arg == "the":
                determiner = "the"
            else:
                determiner = self._pick(
                    ["the", "the", "my", "your", "his", "her", "our", "their", "this", "that", "a"]
                )
            if arg == "sg" and determiner == "a":
                determiner = "the"
            return f"{determiner} {adjective}{noun.singular}"
        if arg == "the":
            return f"the {adjective}{noun.plural}"
        determiner = self._pick(["the", "my", "your", "these", "those", "some", "the", "our"])
        if self._chance(0.15):
            determiner = number_words(self.rng.randint(2, 9))
        return f"{determiner} {adjective}{noun.plural}"

    # -- subjects ---------------------------------------------------------------------------

    def _person_subject(self, kind: str = "") -> _Subject:
        """A person as subject; ``kind`` "3" (third singular), "pl" (plural) or "" (any)."""
        options = {
            "": ["pronoun"] * 8
            + ["name"] * 6
            + ["family"] * 5
            + ["role", "role", "owned"]
            + ["plural"] * 3,
            "3": ["he_she"] * 3 + ["name"] * 5 + ["family"] * 4 + ["role"] * 2 + ["owned"] * 2,
            "pl": ["we_they"] * 3 + ["plural"] * 4,
        }[kind]
        choice = self._pick(options)
        if choice == "pronoun":
            return _PRONOUNS[self._pick(["i", "i", "you", "he", "she", "we", "they"])]
        if choice == "he_she":
            return _PRONOUNS[self._pick(["he", "she"])]
        if choice == "we_they":
            return _PRONOUNS[self._pick(["we", "they"])]
        if choice == "name":
            name, gender = self._name()
            return _Subject(name, "3s", gender)
        if choice == "family":
            noun = self._pick(self.lex.family)
            if noun.plural and self._chance(0.15):
                return _Subject(f"{self._possessive_determiner()} {noun.plural}", "3p")
            return _Subject(
                f"{self._possessive_determiner()} {noun.singular}", "3s", self._gender(noun)
            )
        if choice == "role":
            noun = self._pick(self.lex.people)
            adjective = f"{self._pick(self.lex.adjectives['people'])} " if self._chance(0.3) else ""
            return _Subject(f"the {adjective}{noun.singular}", "3s", self._gender(noun))
        if choice == "owned":
            noun = self._pick(self.lex.family)
            return _Subject(f"{self._name()[0]}'s {noun.singular}", "3s", self._gender(noun))
        # plural: several people
        kind_of_plural = self._pick(["pair", "pair_me", "people", "family"])
        if kind_of_plural == "pair":
            return _Subject(f"{self._name()[0]} and {self._name()[0]}", "3p")
        if kind_of_plural == "pair_me":
            return _Subject(f"{self._name()[0]} and i", "1p")
        if kind_of_plural == "people":
            noun = self._pick([n for n in self.lex.people if n.plural])
            return _Subject(f"the {noun.plural}", "3p")
        plurals = [n.plural for n in self.lex.family if n.plural] + ["parents", "grandparents"]
        return _Subject(f"{self._possessive_determiner()} {self._pick(plurals)}", "3p")

    def _noun_subject(self, nouns: list[Noun], adjectives: list[str]) -> _Subject:
        noun = self._pick(nouns)
        adjective = f"{self._pick(adjectives)} " if adjectives and self._chance(0.25) else ""
        if noun.plural is not None and self._chance(0.3):
            determiner = self._pick(["the", "these", "those", "my", "your", "our"])
            return _Subject(f"{determiner} {adjective}{noun.plural}", "3p")
        determiner = self._pick(["the", "the", "this", "that", "my", "your", "our", "their"])
        return _Subject(f"{determiner} {adjective}{noun.singular}", "3s")

    def _subject_of(self, kind: str) -> _Subject:
        lex = self.lex
        if kind == "T":
            return self._noun_subject(lex.things, lex.adjectives["things"] + lex.colors)
        if kind == "C":
            return self._noun_subject(lex.clothes, lex.colors)
        if kind == "F":
            return self._noun_subject(lex.food, [])
        if kind == "A":
            subject = self._noun_subject(lex.animals, [])
            if self._chance(0.2):
                noun = self._pick(lex.animals)
                return _Subject(f"{self._name()[0]}'s {noun.singular}", "3s")
            return subject
        return self._person_subject(kind)

    def _set(self, subject: _Subject) -> str:
        self.subject = subject
        return subject.text

    def _slot_S(self, arg: str) -> str:
        return self._set(self._person_subject(arg))

    def _slot_ST(self, arg: str) -> str:
        return self._set(self._subject_of("T"))

    def _slot_SF(self, arg: str) -> str:
        return self._set(self._subject_of("F"))

    def _slot_SA(self, arg: str) -> str:
        return self._set(self._subject_of("A"))

    def _slot_SPL(self, arg: str) -> str:
        noun = self._pick(self.lex.places)
        return self._set(_Subject(f"the {noun.singular}", "3s"))

    def _slot_SEV(self, arg: str) -> str:
        noun = self._pick(self.lex.events)
        determiner = self._pick(["the", "the", "my", "your", "our", "her", "his"])
        return self._set(_Subject(f"{determiner} {noun.singular}", "3s"))

    def _slot_SVEH(self, arg: str) -> str:
        noun = self._pick(self.lex.vehicles)
        if self._chance(0.3):
            return self._set(_Subject(f"the {noun.plural}", "3p"))
        return self._set(_Subject(f"the {noun.singular}", "3s"))

    def _contracted(self, arg: str, index: int, full: str) -> str:
        subject = self._person_subject(arg)
        self.subject = subject
        if subject.text in _CONTRACTED:
            return _CONTRACTED[subject.text][index]
        return f"{subject.text} {full}"

    def _slot_Sbe(self, arg: str) -> str:
        subject = self._person_subject(arg)
        self.subject = subject
        if subject.text in _CONTRACTED:
            return _CONTRACTED[subject.text][0]
        if subject.person == "3s" and self._chance(0.3):
            return f"{subject.text}'s"  # "sarah's coming"
        return f"{subject.text} {_BE[subject.person]}"

    def _slot_Swill(self, arg: str) -> str:
        return self._contracted(arg, 1, "will")

    def _slot_Shave(self, arg: str) -> str:
        subject = self._person_subject(arg)
        self.subject = subject
        if subject.text in _CONTRACTED:
            return _CONTRACTED[subject.text][2]
        return f"{subject.text} {'has' if subject.person == '3s' else 'have'}"

    def _slot_Swould(self, arg: str) -> str:
        return self._contracted(arg, 3, "would")

    def _question_subject(self, arg: str) -> _Subject:
        if arg in ("T", "C"):
            return self._subject_of(arg)
        if self._chance(0.45):
            return _PRONOUNS["you"]
        subject = self._person_subject(arg)
        while subject.person in ("1s", "1p"):  # "have i lived ...?" reads oddly
            subject = self._person_subject(arg)
        return subject

    def _slot_SQ(self, arg: str) -> str:
        return self._set(self._question_subject(arg))

    def _slot_Qdo(self, arg: str) -> str:
        self.subject = self._question_subject(arg)
        return f"{'does' if self.subject.person == '3s' else 'do'} {self.subject.text}"

    def _slot_Qbe(self, arg: str) -> str:
        self.subject = self._question_subject(arg)
        return f"{_BE[self.subject.person]} {self.subject.text}"

    def _slot_Qhave(self, arg: str) -> str:
        self.subject = self._question_subject(arg)
        return f"{'has' if self.subject.person == '3s' else 'have'} {self.subject.text}"

    def _slot_Qwas(self, arg: str) -> str:
        self.subject = self._question_subject(arg)
        return f"{_WAS[self.subject.person]} {self.subject.text}"

    # -- words that agree with the subject ----------------------------------------------------

    def _slot_be(self, arg: str) -> str:
        return _BE[self.subject.person]

    def _slot_was(self, arg: str) -> str:
        return _WAS[self.subject.person]

    def _slot_have(self, arg: str) -> str:
        return "has" if self.subject.person == "3s" else "have"

    def _slot_havent(self, arg: str) -> str:
        return "hasn't" if self.subject.person == "3s" else "haven't"

    def _slot_dont(self, arg: str) -> str:
        return "doesn't" if self.subject.person == "3s" else "don't"

    def _slot_poss(self, arg: str) -> str:
        subject = self.subject
        return _POSSESSIVE[subject.gender if subject.person == "3s" else subject.person]

    def _slot_pres(self, arg: str) -> str:
        return self._verb(self.lex.verb_by_base[arg], "pres")

    # -- noun phrases -------------------------------------------------------------------------

    def _slot_P(self, arg: str) -> str:
        """A person as object."""
        choice = self._pick(["pronoun"] * 2 + ["name"] * 3 + ["family"] * 3 + ["role", "owned"])
        if choice == "pronoun":
            own = _OBJECT.get(self.subject.person)
            options = [p for p in ("me", "you", "him", "her", "us", "them") if p != own]
            return self._pick(options)
        if choice == "name":
            return self._name()[0]
        if choice == "family":
            return f"{self._possessive_determiner()} {self._pick(self.lex.family).singular}"
        if choice == "role":
            return f"the {self._pick(self.lex.people).singular}"
        return f"{self._name()[0]}'s {self._pick(self.lex.family).singular}"

    def _slot_NAME(self, arg: str) -> str:
        return self._name()[0]

    def _slot_FAM(self, arg: str) -> str:
        return self._pick(self.lex.family).singular

    def _slot_PEOPLE(self, arg: str) -> str:
        return self._pick([n for n in self.lex.people if n.plural]).plural

    def _slot_T(self, arg: str) -> str:
        adjectives = self.lex.adjectives["things"] + self.lex.colors
        return self._count_noun_phrase(self.lex.things, arg, adjectives)

    def _slot_C(self, arg: str) -> str:
        adjectives = self.lex.colors + ["old", "new", "warm", "clean", "dirty", "wet"]
        return self._count_noun_phrase(self.lex.clothes, arg, adjectives)

    def _slot_FU(self, arg: str) -> str:
        noun = self._pick(self.lex.furniture)
        return f"{self._pick(['the', 'the', 'the', 'my', 'your', 'our'])} {noun.singular}"

    def _slot_OPEN(self, arg: str) -> str:
        noun = self._pick(self.lex.openings)
        if self._chance(0.2):
            return f"{self._pick(['the', 'all the'])} {noun.plural}"
        return f"{self._pick(['the', 'the', 'the', 'my', 'your', 'our'])} {noun.singular}"

    def _slot_R(self, arg: str) -> str:
        noun = self._pick(self.lex.rooms)
        return f"{self._pick(['the', 'the', 'the', 'my', 'your', 'our'])} {noun.singular}"

    def _slot_F(self, arg: str) -> str:
        noun = self._pick(self.lex.food)
        adjective = f"{self._pick(self.lex.adjectives['food'])} " if self._chance(0.3) else ""
        if arg == "n":
            return noun.plural or noun.singular
        if noun.plural is None:
            return f"{self._pick(['some', 'the', 'some', 'more'])} {adjective}{noun.singular}"
        if self._chance(0.5):
            return f"{self._pick(['a', 'the', 'a', 'one', 'another'])} {adjective}{noun.singular}"
        determiner = self._pick(["some", "the", "two", "three", "a few", "all the"])
        return f"{determiner} {adjective}{noun.plural}"

    def _slot_D(self, arg: str) -> str:
        drink = self._pick(self.lex.drinks)
        if arg == "n":
            return drink.name if drink.containers else f"{drink.name}s"
        if not drink.containers:
            return f"{self._pick(['a', 'another', 'the'])} {drink.name}"
        if self._chance(0.6):
            container = self._pick(list(drink.containers))
            return f"{self._pick(['a', 'a', 'another'])} {container} of {drink.name}"
        return f"{self._pick(['some', 'the', 'more'])} {drink.name}"

    def _slot_A(self, arg: str) -> str:
        noun = self._pick(self.lex.animals)
        if arg == "pl":
            return noun.plural
        if arg == "n":
            return noun.singular
        if arg == "a":
            return f"a {noun.singular}"
        if arg == "the":
            return f"the {noun.singular}"
        return f"{self._pick(['a', 'the', 'my', 'our'])} {noun.singular}"

    def _slot_PL(self, arg: str) -> str:
        noun = self._pick(self.lex.places)
        adjective = f"{self._pick(self.lex.adjectives['places'])} " if self._chance(0.25) else ""
        if arg == "n":
            return noun.singular
        if arg == "a":
            return f"a {adjective}{noun.singular}"
        if arg == "the" or self._chance(0.8):
            return f"the {adjective}{noun.singular}"
        return f"a {adjective}{noun.singular}"

    def _slot_CITY(self, arg: str) -> str:
        return self._pick(self.lex.cities).title()

    def _slot_VEH(self, arg: str) -> str:
        noun = self._pick(self.lex.vehicles)
        if arg == "n":
            return noun.singular
        if arg == "the":
            return f"the {noun.singular}"
        return f"{self._pick(['the', 'a', 'my', 'our', 'the'])} {noun.singular}"

    def _slot_N(self, arg: str) -> str:
        noun = self._pick(self.lex.nature)
        return f"the {noun.singular}"

    def _slot_B(self, arg: str) -> str:
        return self._pick(self.lex.body).singular

    def _slot_EV(self, arg: str) -> str:
        noun = self._pick(self.lex.events)
        if arg == "n":
            return noun.singular
        if arg == "pl":
            return noun.plural
        if arg == "the":
            return f"the {noun.singular}"
        return f"{self._pick(['the', 'a', 'my', 'your', 'our'])} {noun.singular}"

    def _slot_THERE(self, arg: str) -> str:
        noun = self._pick(self.lex.things)
        if noun.plural is None:
            return f"there's some {noun.singular}"
        if self._chance(0.6):
            there = self._pick(["there is", "there's"])
            return f"{there} a {noun.singular}"
        count = self._pick(["some", "two", "three", "a few", "lots of"])
        return f"there are {count} {noun.plural}"

    def _slot_SPORT(self, arg: str) -> str:
        return self._pick(self.lex.sports)

    def _slot_INSTR(self, arg: str) -> str:
        return self._pick(self.lex.instruments)

    def _slot_HOBBY(self, arg: str) -> str:
        return self._pick(self.lex.hobbies)

    def _slot_MEAL(self, arg: str) -> str:
        return self._pick(self.lex.calendar["meals"])

    def _slot_DAY(self, arg: str) -> str:
        day = self._pick(self.lex.calendar["days"])
        return (f"{day}s" if arg == "pl" else day).title()

    def _slot_MONTH(self, arg: str) -> str:
        return self._pick(self.lex.calendar["months"]).title()

    def _slot_SEASON(self, arg: str) -> str:
        return self._pick(self.lex.calendar["seasons"])

    # -- times and numbers ----------------------------------------------------------------------

    def _slot_TP(self, arg: str) -> str:
        if self._chance(0.15):
            return f"{self._pick(['last', 'on'])} {self._slot_DAY('')}"
        return self._pick(self.lex.times["past"])

    def _slot_TF(self, arg: str) -> str:
        if self._chance(0.15):
            return f"{self._pick(['next', 'on', 'this'])} {self._slot_DAY('')}"
        return self._pick(self.lex.times["future"])

    def _slot_TH(self, arg: str) -> str:
        if self._chance(0.15):
            if self._chance(0.5):
                return f"every {self._slot_DAY('')}"
            return f"on {self._slot_DAY('pl' if self._chance(0.5) else '')}"
        return self._pick(self.lex.times["habitual"])

    def _slot_CLOCK(self, arg: str) -> str:
        """A time of day without "at": "half past six", "nine thirty", "noon"."""
        hour = number_words(self.rng.randint(1, 12))
        return self._pick(
            [
                hour,
                f"{hour} o'clock",
                f"half past {hour}",
                f"quarter past {hour}",
                f"quarter to {hour}",
                f"{hour} {self._pick(['fifteen', 'thirty', 'forty five', 'twenty'])}",
                self._pick(["noon", "midnight"]),
            ]
        )

    def _slot_MINUTES(self, arg: str) -> str:
        if self._chance(0.2):
            return self._pick(["an hour", "half an hour", "a few minutes", "a minute"])
        return f"{number_words(self._pick([2, 3, 5, 10, 15, 20, 25, 30, 40, 45]))} minutes"

    def _slot_COUNT(self, arg: str) -> str:
        return number_words(self.rng.randint(2, 12))

    def _slot_PRICE(self, arg: str) -> str:
        amount = self.rng.choice([self.rng.randint(2, 99), 100 * self.rng.randint(1, 9)])
        return f"{number_words(amount)} {self._pick(['dollars', 'pounds', 'euros'])}"

    def _slot_DUR(self, arg: str) -> str:
        if self._chance(0.25):
            return self._pick(["an hour", "half an hour", "a few minutes", "all day", "a week"])
        unit = self._pick(["minutes", "hours", "days", "weeks"])
        return f"{number_words(self.rng.randint(2, 12))} {unit}"

    # -- adjectives and adverbs -----------------------------------------------------------------

    def _slot_ADV(self, arg: str) -> str:
        return self._pick(self.lex.adverbs)

    def _slot_FREQ(self, arg: str) -> str:
        return self._pick(["always", "usually", "often", "sometimes", "rarely", "never"])

    def _slot_AP(self, arg: str) -> str:
        return self._pick(self.lex.adjectives["people"])

    def _slot_AT(self, arg: str) -> str:
        return self._pick(self.lex.adjectives["things"] + self.lex.colors)

    def _slot_AF(self, arg: str) -> str:
        return self._pick(self.lex.adjectives["food"])

    def _slot_APL(self, arg: str) -> str:
        return self._pick(self.lex.adjectives["places"])

    def _slot_AW(self, arg: str) -> str:
        return self._pick(self.lex.adjectives["weather"])


_VERB_SLOTS = {
    "VT": "things",
    "VF": "food",
    "VD": "drinks",
    "VC": "clothes",
    "VP": "people",
    "VPL": "places",
    "VI": "intransitive",
    "VM": "motion",
    "VA": "animals",
    "VH": "home",
    "VTC": "chores",
    "VL": "linking",
}

# "an" before a vowel sound; the exceptions are spelled with a vowel but start with a
# consonant sound ("a university", "a one") or the reverse ("an hour").
_CONSONANT_SOUND = re.compile(r"^(uni|use|usu|eu|one|once|ukulele|uk)")
_VOWEL_SOUND = re.compile(r"^(hour|honest|honor|heir)")


def _fix_articles(text: str) -> str:
    words = text.split(" ")
    for i, word in enumerate(words[:-1]):
        if word.lower() in ("a", "an"):
            following = words[i + 1].lower()
            vowel = following[:1] in "aeiou" and not _CONSONANT_SOUND.match(following)
            words[i] = "an" if vowel or _VOWEL_SOUND.match(following) else "a"
    return " ".join(words)


def _written(text: str) -> str:
    """Capitalise the sentence and the pronoun "I"; end with a full stop unless a question."""
    text = re.sub(r"\bi\b", "I", text)
    text = text[:1].upper() + text[1:]
    return text if text.endswith("?") else f"{text}."


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
        sentence = _written(_Sentence(rng, lexicon).render(rng.choice(TEMPLATES)))
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
