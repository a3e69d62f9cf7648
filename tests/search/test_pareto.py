"""The front and the choice: dominated points are off the front, failing points are never chosen."""

from __future__ import annotations

from pipeline.search.pareto import Measured, choose, dominates, front


def m(name, size, ms, q, passed=True):
    return Measured(name, name, size, ms, q, passed)


def test_front_keeps_exactly_the_undominated_points():
    a, b, c = m("a", 100, 10.0, 0.02), m("b", 200, 9.0, 0.01), m("c", 100, 10.0, 0.03)
    d = m("d", 150, 11.0, 0.05)  # worse than a on every axis
    assert dominates(a, c) and dominates(a, d) and not dominates(a, b) and not dominates(b, a)
    assert [p.name for p in front([a, b, c, d])] == ["a", "b"]


def test_identical_points_do_not_dominate_each_other():
    a, b = m("a", 100, 10.0, 0.02), m("b", 100, 10.0, 0.02)
    assert [p.name for p in front([a, b])] == ["a", "b"]


def test_choice_follows_the_objective_among_passing_points_only():
    small_bad = m("small-bad", 50, 8.0, 0.9, passed=False)
    small, fast, faithful = m("small", 80, 12.0, 0.05), m("fast", 120, 7.0, 0.04), m("faithful", 200, 11.0, 0.001)
    pts = [small_bad, small, fast, faithful]
    assert choose(pts, "smallest").name == "small"
    assert choose(pts, "fastest").name == "fast"
    assert choose(pts, "faithful").name == "faithful"
    assert choose([small_bad], "smallest") is None


def test_a_missing_measure_counts_as_worst():
    timed, untimed = m("timed", 100, 10.0, 0.02), m("untimed", 100, None, 0.02)
    assert dominates(timed, untimed)
    assert choose([untimed, timed], "fastest").name == "timed"


def test_a_noise_level_difference_does_not_outrank_a_real_one():
    """Shaped like the measured ort-cpu-int4 case: same size, KL equal to three digits, one point twice as fast."""
    slow = m("acc0", 4_560_000, 0.26, 0.021412)
    fast = m("acc4", 4_560_000, 0.13, 0.021431)
    assert choose([slow, fast], "smallest").name == "acc4"
    assert choose([fast, slow], "smallest").name == "acc4"


def test_a_real_difference_on_the_objective_still_wins_over_everything_else():
    smaller = m("smaller", 900, 50.0, 0.09)
    larger = m("larger", 1000, 5.0, 0.01)  # 11 % larger: not a tie
    assert choose([larger, smaller], "smallest").name == "smaller"
    closer, near = m("closer", 1000, 10.0, 0.010), m("near", 500, 5.0, 0.0103)  # 3 % apart: not a tie
    assert choose([near, closer], "faithful").name == "closer"
    tied = m("tied", 500, 5.0, 0.0101)  # 1 % from the best KL: tied, and smaller
    assert choose([closer, tied], "faithful").name == "tied"
