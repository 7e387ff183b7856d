"""The word lists of the sentence grammar, read from ``asr/corpora/lexicon/*.txt``: nouns with
their plurals (and gender for people), verbs with their five forms grouped by what they take as
object, drinks with their containers, adjectives by what they describe, and sectioned lists
(times, calendar)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

LEXICON_DIR = Path(__file__).parent.parent / "lexicon"


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
