"""The choice tape: a run's decisions, recorded from a seed and replayed from the tape.

Replay must give the same answers whatever the questions cost to compute, a tape that runs
out must answer 0 (the plainest answer), and an answer out of range must still be an
answer: the shrinker edits tapes blindly, and every tape it invents has to be a run.
"""

import random

from runtime.choices import Choices


def ask(choices: Choices) -> list[object]:
    """A fixed sequence of questions, the way a run asks them."""
    return [
        choices.below(5, "next actor"),
        choices.chance(0.5, "switch on crash@started"),
        choices.maybe(("crash", "pause"), 0.3, "fault after w1 started"),
        choices.below(3, "next: w1 | w2 | reaper"),
        round(choices.uniform(0.0, 8.0), 6),  # random.Random's own method, through the tape
        choices.below(1, "only one option"),
    ]


def test_a_replayed_tape_gives_the_same_answers_and_the_same_tape():
    for seed in range(50):
        recorded = Choices(seed)
        answers = ask(recorded)
        replayed = Choices(seed=999, tape=recorded.tape)
        assert ask(replayed) == answers
        assert replayed.tape == recorded.tape
        assert replayed.labels == recorded.labels


def test_one_option_is_no_decision_and_leaves_the_tape_alone():
    choices = Choices(0)
    assert choices.below(1, "forced") == 0
    assert choices.tape == []


def test_a_tape_that_runs_out_answers_the_plainest_answer():
    choices = Choices(tape=[])
    assert ask(choices) == [0, False, None, 0, 0.0, 0]


def test_an_answer_out_of_range_is_clamped_not_refused():
    choices = Choices(tape=[9, 7, 99])
    assert choices.below(3, "x") == 2
    assert choices.chance(0.5, "y") is True
    assert choices.maybe(("crash", "pause"), 0.1, "z") == "pause"
    assert choices.tape == [2, 1, 2]  # the tape records what was actually answered


def test_zero_always_means_no():
    choices = Choices(tape=[0, 0])
    assert choices.chance(0.99, "fault fires") is False
    assert choices.maybe(("crash",), 0.99, "fault") is None


def test_the_drawn_frequencies_follow_the_probabilities():
    choices = Choices(7)
    fired = sum(choices.chance(0.2, "c") for _ in range(5000))
    picked = [choices.maybe(("a", "b"), 0.1, "m") for _ in range(5000)]
    assert 900 < fired < 1100
    assert 400 < picked.count("a") < 600 and 400 < picked.count("b") < 600


def test_it_is_a_random_random_for_code_that_takes_an_rng():
    choices = Choices(3)
    assert isinstance(choices, random.Random)
    values = [choices.randint(1, 6) for _ in range(20)]
    replayed = Choices(tape=choices.tape)
    assert [replayed.randint(1, 6) for _ in range(20)] == values


def test_replay_by_question_skips_answers_to_questions_no_longer_asked():
    """A shrinker switched a fault site off: the run no longer asks whether it fires, so
    that answer must not land on the next question."""
    tape = [1, 1, 2]
    labels = ["fault after w1 started: none | crash", "next: w1 | w2", "step ms"]
    choices = Choices(tape=tape, labels=labels)
    assert choices.below(2, "next: w1 | w2") == 1  # the fault question is skipped
    assert choices.below(10, "step ms") == 2


def test_replay_by_question_answers_0_to_a_question_the_tape_never_answered():
    choices = Choices(tape=[3], labels=["step ms"])
    assert choices.below(2, "next: w1 | w2") == 0
    assert choices.below(10, "step ms") == 3  # still there for its own question


def test_replay_by_question_ignores_the_options_offered():
    """The options change as sites are switched off; the question stays the same."""
    choices = Choices(tape=[1], labels=["fault after w1 started: none | crash | pause"])
    assert choices.maybe(("pause",), 0.1, "fault after w1 started") == "pause"
