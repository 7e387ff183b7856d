"""The state of one sentence while its template is filled: the random source, the word lists and
the current subject, with the small choices every slot makes (a word, a coin flip, a name, a
verb form that agrees with the subject)."""

from __future__ import annotations

import random

from asr.corpora.grammar.english import PRONOUNS, Subject
from asr.corpora.grammar.word_lists import Lexicon, Noun, Verb


class Clause:
    """What the slots of one template share. The subject starts as "you" and changes with each
    subject slot, so the words after it agree with the most recent subject."""

    def __init__(self, rng: random.Random, lexicon: Lexicon) -> None:
        self.rng = rng
        self.lex = lexicon
        self.subject = PRONOUNS["you"]

    def set_subject(self, subject: Subject) -> str:
        """Make ``subject`` the current subject; its words."""
        self.subject = subject
        return subject.text

    def pick(self, items: list):
        return self.rng.choice(items)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def name(self) -> tuple[str, str]:
        """A first name, title-cased, and its gender "f" or "m"."""
        if self.chance(0.5):
            return self.pick(self.lex.female_names).title(), "f"
        return self.pick(self.lex.male_names).title(), "m"

    def gender(self, noun: Noun) -> str:
        return noun.gender or self.pick(["m", "f"])

    def verb(self, verb: Verb, form: str) -> str:
        """``form`` of ``verb``: base, third, past, participle, gerund, or present (agreeing with
        the subject)."""
        if form == "present":
            return verb.third if self.subject.person == "3s" else verb.base
        forms = {"base": verb.base, "third": verb.third, "past": verb.past}
        forms.update({"participle": verb.participle, "gerund": verb.gerund})
        return forms[form]

    def possessive_determiner(self) -> str:
        return self.pick(["my", "my", "your", "his", "her", "their"])
