"""Interleaved CPU-thread-time rounds: every timer runs once per round; min and median per unit of work."""

import pytest

from adaptstep.core.timing import interleaved, thread_seconds


def test_interleaved_runs_the_timers_in_turn_and_summarises_per_unit():
    calls = []
    durations = {"a": iter([5.0, 1.0, 3.0, 2.0, 4.0]), "b": iter([10.0] * 5)}

    def timer(name):
        def run():
            calls.append(name)
            return next(durations[name])
        return run

    table = interleaved({"a": timer("a"), "b": timer("b")}, rounds=5, units={"a": 2.0}).set_index("name")
    assert calls == ["a", "b"] * 5  # interleaved, not one timer's rounds after the other's
    assert table.loc["a", "min_seconds"] == 0.5 and table.loc["a", "median_seconds"] == 1.5
    assert table.loc["b", "min_seconds"] == 10.0 and (table["rounds"] == 5).all()


def test_interleaved_needs_at_least_five_rounds():
    with pytest.raises(ValueError, match="rounds must be an int >= 5"):
        interleaved({"a": lambda: 1.0}, rounds=3)


def test_thread_seconds_counts_cpu_time_not_sleep():
    import time

    assert thread_seconds(lambda: time.sleep(0.05)) < 0.02
    assert thread_seconds(lambda: sum(range(200_000))) > 0
