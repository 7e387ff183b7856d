"""The grammar's subject slots and the words that agree with the subject.

A subject slot ("{subject}", "{thing_subject}", "{subject_be}", "{do_subject}", ...) picks a
subject and makes it the clause's current subject; the agreeing slots ("{be}", "{was}",
"{do_not}", "{possessive}", "{present:VERB}", ...) read it. Every slot is a function
``(clause, option) -> text``; ``SUBJECT_SLOTS`` maps the template names to them.
"""

from __future__ import annotations

from collections.abc import Callable

from asr.corpora.grammar.clause import Clause
from asr.corpora.grammar.english import BE, CONTRACTED, POSSESSIVE, PRONOUNS, WAS, Subject
from asr.corpora.grammar.word_lists import Noun


def person_subject(c: Clause, kind: str = "") -> Subject:
    """A person as subject; ``kind`` "third_person" (singular), "plural" or "" (any)."""
    options = {
        "": ["pronoun"] * 8
        + ["name"] * 6
        + ["family"] * 5
        + ["role", "role", "owned"]
        + ["plural"] * 3,
        "third_person": ["he_she"] * 3
        + ["name"] * 5
        + ["family"] * 4
        + ["role"] * 2
        + ["owned"] * 2,
        "plural": ["we_they"] * 3 + ["plural"] * 4,
    }[kind]
    choice = c.pick(options)
    if choice == "pronoun":
        return PRONOUNS[c.pick(["i", "i", "you", "he", "she", "we", "they"])]
    if choice == "he_she":
        return PRONOUNS[c.pick(["he", "she"])]
    if choice == "we_they":
        return PRONOUNS[c.pick(["we", "they"])]
    if choice == "name":
        name, gender = c.name()
        return Subject(name, "3s", gender)
    if choice == "family":
        noun = c.pick(c.lex.family)
        if noun.plural and c.chance(0.15):
            return Subject(f"{c.possessive_determiner()} {noun.plural}", "3p")
        return Subject(f"{c.possessive_determiner()} {noun.singular}", "3s", c.gender(noun))
    if choice == "role":
        noun = c.pick(c.lex.people)
        adjective = f"{c.pick(c.lex.adjectives['people'])} " if c.chance(0.3) else ""
        return Subject(f"the {adjective}{noun.singular}", "3s", c.gender(noun))
    if choice == "owned":
        noun = c.pick(c.lex.family)
        return Subject(f"{c.name()[0]}'s {noun.singular}", "3s", c.gender(noun))
    # plural: several people
    kind_of_plural = c.pick(["pair", "pair_me", "people", "family"])
    if kind_of_plural == "pair":
        return Subject(f"{c.name()[0]} and {c.name()[0]}", "3p")
    if kind_of_plural == "pair_me":
        return Subject(f"{c.name()[0]} and i", "1p")
    if kind_of_plural == "people":
        noun = c.pick([n for n in c.lex.people if n.plural])
        return Subject(f"the {noun.plural}", "3p")
    plurals = [n.plural for n in c.lex.family if n.plural] + ["parents", "grandparents"]
    return Subject(f"{c.possessive_determiner()} {c.pick(plurals)}", "3p")


def noun_subject(c: Clause, nouns: list[Noun], adjectives: list[str]) -> Subject:
    noun = c.pick(nouns)
    adjective = f"{c.pick(adjectives)} " if adjectives and c.chance(0.25) else ""
    if noun.plural is not None and c.chance(0.3):
        determiner = c.pick(["the", "these", "those", "my", "your", "our"])
        return Subject(f"{determiner} {adjective}{noun.plural}", "3p")
    determiner = c.pick(["the", "the", "this", "that", "my", "your", "our", "their"])
    return Subject(f"{determiner} {adjective}{noun.singular}", "3s")


def subject_of(c: Clause, kind: str) -> Subject:
    """A subject of ``kind`` "thing", "clothing", "food" or "animal", else a person of that
    ``kind`` (see ``person_subject``)."""
    lex = c.lex
    if kind == "thing":
        return noun_subject(c, lex.things, lex.adjectives["things"] + lex.colors)
    if kind == "clothing":
        return noun_subject(c, lex.clothes, lex.colors)
    if kind == "food":
        return noun_subject(c, lex.food, [])
    if kind == "animal":
        subject = noun_subject(c, lex.animals, [])
        if c.chance(0.2):
            noun = c.pick(lex.animals)
            return Subject(f"{c.name()[0]}'s {noun.singular}", "3s")
        return subject
    return person_subject(c, kind)


# -- subjects: each sets the subject that the words after it agree with ---------------------


def subject(c: Clause, arg: str) -> str:
    return c.set_subject(person_subject(c, arg))


def thing_subject(c: Clause, arg: str) -> str:
    return c.set_subject(subject_of(c, "thing"))


def food_subject(c: Clause, arg: str) -> str:
    return c.set_subject(subject_of(c, "food"))


def animal_subject(c: Clause, arg: str) -> str:
    return c.set_subject(subject_of(c, "animal"))


def place_subject(c: Clause, arg: str) -> str:
    noun = c.pick(c.lex.places)
    return c.set_subject(Subject(f"the {noun.singular}", "3s"))


def event_subject(c: Clause, arg: str) -> str:
    noun = c.pick(c.lex.events)
    determiner = c.pick(["the", "the", "my", "your", "our", "her", "his"])
    return c.set_subject(Subject(f"{determiner} {noun.singular}", "3s"))


def vehicle_subject(c: Clause, arg: str) -> str:
    noun = c.pick(c.lex.vehicles)
    if c.chance(0.3):
        return c.set_subject(Subject(f"the {noun.plural}", "3p"))
    return c.set_subject(Subject(f"the {noun.singular}", "3s"))


def contracted(c: Clause, arg: str, index: int, full: str) -> str:
    """A person and the verb ``full``, contracted after a pronoun (``CONTRACTED[...][index]``)."""
    subject = person_subject(c, arg)
    c.subject = subject
    if subject.text in CONTRACTED:
        return CONTRACTED[subject.text][index]
    return f"{subject.text} {full}"


def subject_be(c: Clause, arg: str) -> str:
    subject = person_subject(c, arg)
    c.subject = subject
    if subject.text in CONTRACTED:
        return CONTRACTED[subject.text][0]
    if subject.person == "3s" and c.chance(0.3):
        return f"{subject.text}'s"  # "sarah's coming"
    return f"{subject.text} {BE[subject.person]}"


def subject_will(c: Clause, arg: str) -> str:
    return contracted(c, arg, 1, "will")


def subject_have(c: Clause, arg: str) -> str:
    subject = person_subject(c, arg)
    c.subject = subject
    if subject.text in CONTRACTED:
        return CONTRACTED[subject.text][2]
    return f"{subject.text} {'has' if subject.person == '3s' else 'have'}"


def subject_would(c: Clause, arg: str) -> str:
    return contracted(c, arg, 3, "would")


def question_subject_of(c: Clause, arg: str) -> Subject:
    """The subject of a question: ``arg`` "thing" or "clothing", else a person, often "you"."""
    if arg in ("thing", "clothing"):
        return subject_of(c, arg)
    if c.chance(0.45):
        return PRONOUNS["you"]
    subject = person_subject(c, arg)
    while subject.person in ("1s", "1p"):  # "have i lived ...?" reads oddly
        subject = person_subject(c, arg)
    return subject


def question_subject(c: Clause, arg: str) -> str:
    return c.set_subject(question_subject_of(c, arg))


def do_subject(c: Clause, arg: str) -> str:
    c.subject = question_subject_of(c, arg)
    return f"{'does' if c.subject.person == '3s' else 'do'} {c.subject.text}"


def be_subject(c: Clause, arg: str) -> str:
    c.subject = question_subject_of(c, arg)
    return f"{BE[c.subject.person]} {c.subject.text}"


def have_subject(c: Clause, arg: str) -> str:
    c.subject = question_subject_of(c, arg)
    return f"{'has' if c.subject.person == '3s' else 'have'} {c.subject.text}"


def was_subject(c: Clause, arg: str) -> str:
    c.subject = question_subject_of(c, arg)
    return f"{WAS[c.subject.person]} {c.subject.text}"


# -- words that agree with the subject --------------------------------------------------------


def be(c: Clause, arg: str) -> str:
    return BE[c.subject.person]


def was(c: Clause, arg: str) -> str:
    return WAS[c.subject.person]


def have(c: Clause, arg: str) -> str:
    return "has" if c.subject.person == "3s" else "have"


def have_not(c: Clause, arg: str) -> str:
    return "hasn't" if c.subject.person == "3s" else "haven't"


def do_not(c: Clause, arg: str) -> str:
    return "doesn't" if c.subject.person == "3s" else "don't"


def possessive(c: Clause, arg: str) -> str:
    subject = c.subject
    return POSSESSIVE[subject.gender if subject.person == "3s" else subject.person]


def present(c: Clause, arg: str) -> str:
    return c.verb(c.lex.verb_by_base[arg], "present")


SUBJECT_SLOTS: dict[str, Callable[[Clause, str], str]] = {
    "subject": subject,
    "thing_subject": thing_subject,
    "food_subject": food_subject,
    "animal_subject": animal_subject,
    "place_subject": place_subject,
    "event_subject": event_subject,
    "vehicle_subject": vehicle_subject,
    "subject_be": subject_be,
    "subject_will": subject_will,
    "subject_have": subject_have,
    "subject_would": subject_would,
    "question_subject": question_subject,
    "do_subject": do_subject,
    "be_subject": be_subject,
    "have_subject": have_subject,
    "was_subject": was_subject,
    "be": be,
    "was": was,
    "have": have,
    "have_not": have_not,
    "do_not": do_not,
    "possessive": possessive,
    "present": present,
}
