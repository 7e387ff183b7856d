"""The grammar's noun phrases, adjectives and adverbs.

Each slot is a function ``(clause, option) -> text``; ``PHRASE_SLOTS`` maps the template names
("{thing}", "{thing:the}", "{adverb}", ...) to them. The options of a noun phrase: "bare" (no
determiner), "plural" (bare plural), "singular", "a" and "the"; no option lets the slot choose.
"""

from __future__ import annotations

from collections.abc import Callable

from asr.corpora.grammar.clause import Clause
from asr.corpora.grammar.english import OBJECT, number_words
from asr.corpora.grammar.word_lists import Noun


def count_noun_phrase(c: Clause, nouns: list[Noun], arg: str, adjectives: list[str]) -> str:
    """A determiner, maybe an adjective, and a noun: "the old lamp", "some rice"."""
    noun = c.pick(nouns)
    adjective = f"{c.pick(adjectives)} " if c.chance(0.3) else ""
    if arg == "bare":  # singular (or mass)
        return noun.singular
    if arg == "plural":  # mass nouns stay singular
        return noun.plural or noun.singular
    if noun.plural is None:  # mass noun
        if arg in ("a", ""):
            determiner = c.pick(["some", "the", "my", "your", "some"])
        else:
            determiner = c.pick(["the", "my", "your", "this", "that"])
        return f"{determiner} {adjective}{noun.singular}"
    if arg == "a":
        return f"a {adjective}{noun.singular}"
    if arg == "singular" or (arg in ("", "the") and c.chance(0.75)):
        if arg == "the":
            determiner = "the"
        else:
            determiner = c.pick(
                ["the", "the", "my", "your", "his", "her", "our", "their", "this", "that", "a"]
            )
        if arg == "singular" and determiner == "a":
            determiner = "the"
        return f"{determiner} {adjective}{noun.singular}"
    if arg == "the":
        return f"the {adjective}{noun.plural}"
    determiner = c.pick(["the", "my", "your", "these", "those", "some", "the", "our"])
    if c.chance(0.15):
        determiner = number_words(c.rng.randint(2, 9))
    return f"{determiner} {adjective}{noun.plural}"


# -- noun phrases -----------------------------------------------------------------------------


def person(c: Clause, arg: str) -> str:
    """A person as object."""
    choice = c.pick(["pronoun"] * 2 + ["name"] * 3 + ["family"] * 3 + ["role", "owned"])
    if choice == "pronoun":
        own = OBJECT.get(c.subject.person)
        options = [p for p in ("me", "you", "him", "her", "us", "them") if p != own]
        return c.pick(options)
    if choice == "name":
        return c.name()[0]
    if choice == "family":
        return f"{c.possessive_determiner()} {c.pick(c.lex.family).singular}"
    if choice == "role":
        return f"the {c.pick(c.lex.people).singular}"
    return f"{c.name()[0]}'s {c.pick(c.lex.family).singular}"


def name(c: Clause, arg: str) -> str:
    return c.name()[0]


def family_member(c: Clause, arg: str) -> str:
    return c.pick(c.lex.family).singular


def people(c: Clause, arg: str) -> str:
    return c.pick([n for n in c.lex.people if n.plural]).plural


def thing(c: Clause, arg: str) -> str:
    adjectives = c.lex.adjectives["things"] + c.lex.colors
    return count_noun_phrase(c, c.lex.things, arg, adjectives)


def clothing(c: Clause, arg: str) -> str:
    adjectives = c.lex.colors + ["old", "new", "warm", "clean", "dirty", "wet"]
    return count_noun_phrase(c, c.lex.clothes, arg, adjectives)


def furniture(c: Clause, arg: str) -> str:
    noun = c.pick(c.lex.furniture)
    return f"{c.pick(['the', 'the', 'the', 'my', 'your', 'our'])} {noun.singular}"


def opening(c: Clause, arg: str) -> str:
    noun = c.pick(c.lex.openings)
    if c.chance(0.2):
        return f"{c.pick(['the', 'all the'])} {noun.plural}"
    return f"{c.pick(['the', 'the', 'the', 'my', 'your', 'our'])} {noun.singular}"


def room(c: Clause, arg: str) -> str:
    noun = c.pick(c.lex.rooms)
    return f"{c.pick(['the', 'the', 'the', 'my', 'your', 'our'])} {noun.singular}"


def food(c: Clause, arg: str) -> str:
    noun = c.pick(c.lex.food)
    adjective = f"{c.pick(c.lex.adjectives['food'])} " if c.chance(0.3) else ""
    if arg == "plural":
        return noun.plural or noun.singular
    if noun.plural is None:
        return f"{c.pick(['some', 'the', 'some', 'more'])} {adjective}{noun.singular}"
    if c.chance(0.5):
        return f"{c.pick(['a', 'the', 'a', 'one', 'another'])} {adjective}{noun.singular}"
    determiner = c.pick(["some", "the", "two", "three", "a few", "all the"])
    return f"{determiner} {adjective}{noun.plural}"


def drink(c: Clause, arg: str) -> str:
    chosen = c.pick(c.lex.drinks)
    if arg == "plural":
        return chosen.name if chosen.containers else f"{chosen.name}s"
    if not chosen.containers:
        return f"{c.pick(['a', 'another', 'the'])} {chosen.name}"
    if c.chance(0.6):
        container = c.pick(list(chosen.containers))
        return f"{c.pick(['a', 'a', 'another'])} {container} of {chosen.name}"
    return f"{c.pick(['some', 'the', 'more'])} {chosen.name}"


def animal(c: Clause, arg: str) -> str:
    noun = c.pick(c.lex.animals)
    if arg == "plural":
        return noun.plural
    if arg == "bare":
        return noun.singular
    if arg == "a":
        return f"a {noun.singular}"
    if arg == "the":
        return f"the {noun.singular}"
    return f"{c.pick(['a', 'the', 'my', 'our'])} {noun.singular}"


def place(c: Clause, arg: str) -> str:
    noun = c.pick(c.lex.places)
    adjective = f"{c.pick(c.lex.adjectives['places'])} " if c.chance(0.25) else ""
    if arg == "bare":
        return noun.singular
    if arg == "a":
        return f"a {adjective}{noun.singular}"
    if arg == "the" or c.chance(0.8):
        return f"the {adjective}{noun.singular}"
    return f"a {adjective}{noun.singular}"


def city(c: Clause, arg: str) -> str:
    return c.pick(c.lex.cities).title()


def vehicle(c: Clause, arg: str) -> str:
    noun = c.pick(c.lex.vehicles)
    if arg == "bare":
        return noun.singular
    if arg == "the":
        return f"the {noun.singular}"
    return f"{c.pick(['the', 'a', 'my', 'our', 'the'])} {noun.singular}"


def nature(c: Clause, arg: str) -> str:
    noun = c.pick(c.lex.nature)
    return f"the {noun.singular}"


def body_part(c: Clause, arg: str) -> str:
    return c.pick(c.lex.body).singular


def event(c: Clause, arg: str) -> str:
    noun = c.pick(c.lex.events)
    if arg == "bare":
        return noun.singular
    if arg == "plural":
        return noun.plural
    if arg == "the":
        return f"the {noun.singular}"
    return f"{c.pick(['the', 'a', 'my', 'your', 'our'])} {noun.singular}"


def there_is(c: Clause, arg: str) -> str:
    noun = c.pick(c.lex.things)
    if noun.plural is None:
        return f"there's some {noun.singular}"
    if c.chance(0.6):
        there = c.pick(["there is", "there's"])
        return f"{there} a {noun.singular}"
    count = c.pick(["some", "two", "three", "a few", "lots of"])
    return f"there are {count} {noun.plural}"


def sport(c: Clause, arg: str) -> str:
    return c.pick(c.lex.sports)


def instrument(c: Clause, arg: str) -> str:
    return c.pick(c.lex.instruments)


def hobby(c: Clause, arg: str) -> str:
    return c.pick(c.lex.hobbies)


# -- adjectives and adverbs ---------------------------------------------------------------------


def adverb(c: Clause, arg: str) -> str:
    return c.pick(c.lex.adverbs)


def frequency(c: Clause, arg: str) -> str:
    return c.pick(["always", "usually", "often", "sometimes", "rarely", "never"])


def person_adjective(c: Clause, arg: str) -> str:
    return c.pick(c.lex.adjectives["people"])


def thing_adjective(c: Clause, arg: str) -> str:
    return c.pick(c.lex.adjectives["things"] + c.lex.colors)


def food_adjective(c: Clause, arg: str) -> str:
    return c.pick(c.lex.adjectives["food"])


def place_adjective(c: Clause, arg: str) -> str:
    return c.pick(c.lex.adjectives["places"])


def weather_adjective(c: Clause, arg: str) -> str:
    return c.pick(c.lex.adjectives["weather"])


PHRASE_SLOTS: dict[str, Callable[[Clause, str], str]] = {
    "person": person,
    "name": name,
    "family_member": family_member,
    "people": people,
    "thing": thing,
    "clothing": clothing,
    "furniture": furniture,
    "opening": opening,
    "room": room,
    "food": food,
    "drink": drink,
    "animal": animal,
    "place": place,
    "city": city,
    "vehicle": vehicle,
    "nature": nature,
    "body_part": body_part,
    "event": event,
    "there_is": there_is,
    "sport": sport,
    "instrument": instrument,
    "hobby": hobby,
    "adverb": adverb,
    "frequency": frequency,
    "person_adjective": person_adjective,
    "thing_adjective": thing_adjective,
    "food_adjective": food_adjective,
    "place_adjective": place_adjective,
    "weather_adjective": weather_adjective,
}
