"""bench/system_emotion_bench.py: the order its turns run in (a stopped run must still be a random sample)."""

from __future__ import annotations

from _bench import load_bench
from _eval_fixtures import synthetic_examples

from mesa.eval import select_examples


def _bench():
    return load_bench("system_emotion_bench")


def test_turns_run_in_a_seeded_random_order_of_the_same_sample():
    bench = _bench()
    examples = synthetic_examples(40)
    order = bench.turn_order(examples, 30, seed=0)
    sample = select_examples(examples, 30, seed=0)
    assert sorted(e.id for e in order) == sorted(e.id for e in sample)  # the same turns ...
    assert [e.id for e in order] != [e.id for e in sample]  # ... not in corpus order
    assert [e.id for e in bench.turn_order(examples, 30, seed=0)] == [e.id for e in order]  # seeded
    assert bench.turn_order(examples, 30, seed=0, reverse=True) == order[::-1]
