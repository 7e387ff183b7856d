"""The grammar's times, calendar words and numbers: "{past_time}" ("last week", "on Monday"),
"{clock_time}" ("half past six"), "{weekday:plural}" ("Mondays"), "{price}", "{duration}" ....
Each slot is a function ``(clause, option) -> text``; ``TIME_SLOTS`` maps the template names to
them.
"""

from __future__ import annotations

from collections.abc import Callable

from asr.corpora.grammar.clause import Clause
from asr.corpora.grammar.english import number_words


def meal(c: Clause, arg: str) -> str:
    return c.pick(c.lex.calendar["meals"])


def weekday(c: Clause, arg: str) -> str:
    day = c.pick(c.lex.calendar["days"])
    return (f"{day}s" if arg == "plural" else day).title()


def month(c: Clause, arg: str) -> str:
    return c.pick(c.lex.calendar["months"]).title()


def season(c: Clause, arg: str) -> str:
    return c.pick(c.lex.calendar["seasons"])


def past_time(c: Clause, arg: str) -> str:
    if c.chance(0.15):
        return f"{c.pick(['last', 'on'])} {weekday(c, '')}"
    return c.pick(c.lex.times["past"])


def future_time(c: Clause, arg: str) -> str:
    if c.chance(0.15):
        return f"{c.pick(['next', 'on', 'this'])} {weekday(c, '')}"
    return c.pick(c.lex.times["future"])


def habitual_time(c: Clause, arg: str) -> str:
    if c.chance(0.15):
        if c.chance(0.5):
            return f"every {weekday(c, '')}"
        return f"on {weekday(c, 'plural' if c.chance(0.5) else '')}"
    return c.pick(c.lex.times["habitual"])


def clock_time(c: Clause, arg: str) -> str:
    """A time of day without "at": "half past six", "nine thirty", "noon"."""
    hour = number_words(c.rng.randint(1, 12))
    return c.pick(
        [
            hour,
            f"{hour} o'clock",
            f"half past {hour}",
            f"quarter past {hour}",
            f"quarter to {hour}",
            f"{hour} {c.pick(['fifteen', 'thirty', 'forty five', 'twenty'])}",
            c.pick(["noon", "midnight"]),
        ]
    )


def minutes(c: Clause, arg: str) -> str:
    if c.chance(0.2):
        return c.pick(["an hour", "half an hour", "a few minutes", "a minute"])
    return f"{number_words(c.pick([2, 3, 5, 10, 15, 20, 25, 30, 40, 45]))} minutes"


def count(c: Clause, arg: str) -> str:
    return number_words(c.rng.randint(2, 12))


def price(c: Clause, arg: str) -> str:
    amount = c.rng.choice([c.rng.randint(2, 99), 100 * c.rng.randint(1, 9)])
    return f"{number_words(amount)} {c.pick(['dollars', 'pounds', 'euros'])}"


def duration(c: Clause, arg: str) -> str:
    if c.chance(0.25):
        return c.pick(["an hour", "half an hour", "a few minutes", "all day", "a week"])
    unit = c.pick(["minutes", "hours", "days", "weeks"])
    return f"{number_words(c.rng.randint(2, 12))} {unit}"


TIME_SLOTS: dict[str, Callable[[Clause, str], str]] = {
    "meal": meal,
    "weekday": weekday,
    "month": month,
    "season": season,
    "past_time": past_time,
    "future_time": future_time,
    "habitual_time": habitual_time,
    "clock_time": clock_time,
    "minutes": minutes,
    "count": count,
    "price": price,
    "duration": duration,
}
