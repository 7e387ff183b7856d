"""Skip accounting: bad utterances never stop a job.

Every utterance that cannot be used (text the vocabulary cannot spell, audio that cannot be
read, ...) becomes a :class:`Skipped` record or a call to :meth:`SkipCounter.skip`; the counter
logs each one once with its id and counts it by reason, so the run's summary can report it.
``Skipped`` records travel in ``Batch.skipped``, so they reach the main process even from
data-loading workers.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Skipped:
    """An utterance that could not be used, and why."""

    id: str
    reason: str
    message: str


class SkipCounter:
    """Counts skipped utterances by reason, and logs each one once."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._seen: set[str] = set()

    def add(self, skipped: Sequence[Skipped]) -> None:
        for item in skipped:
            self.skip(item.id, item.reason, item.message)

    def skip(self, key: str, reason: str, message: str) -> None:
        """Count and log one skip; ``key`` is the utterance id, or ``file:line`` for a manifest
        line that is no utterance. A key already skipped is not counted again (an utterance
        whose audio cannot be read is met again every epoch)."""
        if key in self._seen:
            return
        self._seen.add(key)
        self.counts[reason] += 1
        log.warning("skipping %s: %s", key, message)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        if not self.counts:
            return "no utterances skipped"
        parts = ", ".join(f"{n} {reason}" for reason, n in sorted(self.counts.items()))
        return f"{self.total} utterances skipped ({parts})"
