"""Every decision of a simulated run, on one tape: drawn from a seed, or replayed.

Prior art: Hypothesis's choice sequence. A run does not ask "what random number?" but
"which of these n options?", and the answer (an index) is written on a tape. Recording
from a seed and replaying the tape give the same answers, so the tape *is* the run.
Index 0 is always the plainest answer (the first actor, no fault, no delay), and a tape
that runs out answers 0 from then on: a shrinker simplifies a run by deleting and
lowering entries, and every tape it invents is still a run that can be replayed.

`Choices` is also a `random.Random`, so code that takes an rng (the queue's backoff
jitter) draws through the tape without knowing it.
"""

import functools
import random
from collections.abc import Sequence
from dataclasses import dataclass

FLOAT_BITS = 53
ALIGN_AHEAD = 16
"""Replaying by question, how far ahead an answer to the same question is looked for."""


@functools.cache
def _question(label: str, options: tuple[str, ...]) -> str:
    """`maybe`'s question: the same few are asked at every step of every run."""
    return f"{label}: none | {' | '.join(options)}"


@dataclass(frozen=True)
class Choice:
    """One decision: its position on the tape, what it decided, and the answer."""

    index: int
    label: str
    value: int


class Choices(random.Random):
    """Answers questions from a seeded generator (`seed`) or from a tape (`tape`)."""

    def __init__(
        self,
        seed: int = 0,
        tape: Sequence[int] | None = None,
        labels: Sequence[str] | None = None,
    ) -> None:
        """With `labels` (the questions a tape's answers were given to), replay goes by
        question: an answer whose question is no longer asked is skipped, and a question
        with no answer of its own on the tape gets 0. Without them, by position."""
        super().__init__(seed)
        self._replay = None if tape is None else tuple(tape)
        self._keys = None if labels is None else tuple(_key(label) for label in labels)
        self._at = 0
        self.tape: list[int] = []
        self.labels: list[str] = []

    def below(self, n: int, label: str) -> int:
        """An index in [0, n). With one option there is nothing to decide and nothing is
        written on the tape."""
        if n <= 1:
            return 0
        if self._replay is None:
            value = int(random.Random.random(self) * n)
        else:
            value = min(self._replayed(label), n - 1)
        self.tape.append(value)
        self.labels.append(label)
        return value

    def _replayed(self, label: str) -> int:
        replay, at = self._replay, self._at
        if self._keys is None:
            self._at += 1
            return replay[at] if at < len(replay) else 0
        key = _key(label)
        for index in range(at, min(len(replay), at + ALIGN_AHEAD)):
            if self._keys[index] == key:
                self._at = index + 1
                return replay[index]
        return 0

    def chance(self, p: float, label: str) -> bool:
        """True with probability `p`. The tape holds the outcome: 1 for yes, 0 for no."""
        if p <= 0:
            return False
        if self._replay is None:
            fired = random.Random.random(self) < p
            self.tape.append(int(fired))
            self.labels.append(label)
            return fired
        return self.below(2, label) == 1

    def maybe(self, options: tuple[str, ...], p: float, label: str) -> str | None:
        """At most one of `options`, each with probability `p` (so none with 1 - p * n).

        One entry on the tape: 0 for none, i + 1 for `options[i]`.
        """
        n = len(options)
        if not n or p <= 0:
            return None
        question = _question(label, options)
        if self._replay is None:
            u = random.Random.random(self)
            value = min(int(u / p), n - 1) + 1 if u < min(1.0, p * n) else 0
            self.tape.append(value)
            self.labels.append(question)
        else:
            value = self.below(n + 1, question)
        return options[value - 1] if value else None

    # random.Random's two primitives, so every derived method draws through the tape.

    def random(self) -> float:
        return self.below(1 << FLOAT_BITS, "random") / (1 << FLOAT_BITS)

    def getrandbits(self, k: int) -> int:
        return self.below(1 << k, "bits") if k else 0


def _key(label: str) -> str:
    """The question a label asks, without the options offered (they change as a shrinker
    switches fault sites off)."""
    return label.partition(": ")[0]


def decisions(labels: Sequence[str], tape: Sequence[int]) -> list[Choice]:
    """A tape with its labels, one Choice per entry."""
    return [
        Choice(i, label, value) for i, (label, value) in enumerate(zip(labels, tape, strict=True))
    ]
