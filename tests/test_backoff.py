"""Backoff schedule and the retry tracker: explicit times, injected jitter."""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtms_proto import InvalidConfig
from rtms_proto._backoff import Backoff, BackoffPolicy, Jitter, RetryPlan, backoff_delay

NO_JITTER = BackoffPolicy(jitter=Jitter.NONE, max_attempts=None, window=None)


def state(b: Backoff) -> tuple[int, float | None, bool]:
    # A plain snapshot: mypy would otherwise keep a property narrowed across calls.
    return (b.attempts, b.episode_start, b.in_episode)


def schedule(policy: BackoffPolicy, u: float, attempts: int) -> list[float | None]:
    return [backoff_delay(policy, n, u) for n in range(1, attempts + 1)]


# --- policy ------------------------------------------------------------------


def test_default_policy() -> None:
    p = BackoffPolicy()
    assert (p.initial, p.factor, p.cap, p.jitter, p.max_attempts, p.window) == (
        1.0,
        2.0,
        8.0,
        Jitter.EQUAL,
        6,
        60.0,
    )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"initial": 0.0}, "initial"),
        ({"initial": -1.0}, "initial"),
        ({"initial": math.nan}, "initial"),
        ({"initial": math.inf, "cap": math.inf}, "initial"),
        ({"factor": 0.99}, "factor"),
        ({"factor": math.nan}, "factor"),
        ({"factor": math.inf}, "factor"),
        ({"cap": 0.5}, "cap"),
        ({"cap": math.inf}, "cap"),
        ({"cap": math.nan}, "cap"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": -3}, "max_attempts"),
        ({"window": 0.0}, "window"),
        ({"window": -5.0}, "window"),
        ({"window": math.inf}, "window"),
        ({"window": math.nan}, "window"),
    ],
)
def test_policy_rejects_bad_values(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(InvalidConfig, match=f"^{field} must be"):
        BackoffPolicy(**kwargs)  # type: ignore[arg-type]


def test_invalid_config_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="initial"):
        BackoffPolicy(initial=-1.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"factor": 1.0},
        {"cap": 1.0},
        {"initial": 0.001, "cap": 0.001},
        {"max_attempts": 1},
        {"max_attempts": None},
        {"window": None},
        {"window": 0.001},
    ],
)
def test_policy_accepts_boundary_values(kwargs: dict[str, float | None]) -> None:
    p = BackoffPolicy(**kwargs)  # type: ignore[arg-type]
    for name, value in kwargs.items():
        assert getattr(p, name) == value


def test_policy_is_frozen() -> None:
    p = BackoffPolicy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.cap = 1.0  # type: ignore[misc]


def test_policy_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        BackoffPolicy(1.0)  # type: ignore[call-arg]


def test_signaling_preset() -> None:
    assert BackoffPolicy.signaling() == BackoffPolicy(window=60.0)


def test_media_preset() -> None:
    assert BackoffPolicy.media() == BackoffPolicy(window=65.0)


def test_media_preset_for_older_servers() -> None:
    old = dataclasses.replace(BackoffPolicy.media(), window=30.0)
    assert old.window == 30.0


def test_duplicate_signal_preset_is_zooms_schedule() -> None:
    p = BackoffPolicy.duplicate_signal()
    assert p.window == 60.0
    # Any u: the schedule is fixed.
    assert schedule(p, 0.0, 4) == [1.5, 3.0, 6.0, None]
    assert schedule(p, 0.999, 4) == [1.5, 3.0, 6.0, None]


def test_default_schedule_without_jitter_matches_zooms_client() -> None:
    # Zoom's own client retries at about +1, +3, +7 s after the drop.
    p = dataclasses.replace(BackoffPolicy.signaling(), jitter=Jitter.NONE)
    b = Backoff(p)
    now = 0.0
    starts = []
    for _ in range(3):
        plan = b.next_attempt(now, 0.5)
        assert plan is not None
        starts.append(plan.at)
        now = plan.at  # each retry fails at once
    assert starts == [1.0, 3.0, 7.0]


# --- backoff_delay -----------------------------------------------------------


def test_no_jitter_is_exponential_then_capped() -> None:
    assert schedule(NO_JITTER, 0.3, 7) == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0]


def test_full_jitter_exact() -> None:
    p = dataclasses.replace(NO_JITTER, jitter=Jitter.FULL)
    assert schedule(p, 0.25, 5) == [0.25, 0.5, 1.0, 2.0, 2.0]
    assert schedule(p, 0.0, 3) == [0.0, 0.0, 0.0]


def test_equal_jitter_exact() -> None:
    p = dataclasses.replace(NO_JITTER, jitter=Jitter.EQUAL)
    assert schedule(p, 0.5, 5) == [0.75, 1.5, 3.0, 6.0, 6.0]
    assert schedule(p, 0.0, 4) == [0.5, 1.0, 2.0, 4.0]


def test_jitter_is_deterministic_in_u() -> None:
    p = BackoffPolicy(jitter=Jitter.FULL)
    assert backoff_delay(p, 3, 0.123) == backoff_delay(p, 3, 0.123)
    assert backoff_delay(p, 3, 0.1) != backoff_delay(p, 3, 0.2)


def test_cap_below_first_doubling() -> None:
    p = BackoffPolicy(initial=2.0, factor=3.0, cap=5.0, jitter=Jitter.NONE, max_attempts=None)
    assert schedule(p, 0.0, 4) == [2.0, 5.0, 5.0, 5.0]


def test_factor_one_is_constant() -> None:
    p = BackoffPolicy(initial=3.0, factor=1.0, cap=10.0, jitter=Jitter.NONE, max_attempts=None)
    assert schedule(p, 0.0, 4) == [3.0, 3.0, 3.0, 3.0]


def test_max_attempts() -> None:
    p = BackoffPolicy(jitter=Jitter.NONE, max_attempts=3)
    assert schedule(p, 0.0, 5) == [1.0, 2.0, 4.0, None, None]


def test_huge_attempt_number_is_capped_not_overflowing() -> None:
    assert backoff_delay(NO_JITTER, 10_000, 0.0) == 8.0
    slow = BackoffPolicy(
        initial=1.0, factor=1.0001, cap=50.0, jitter=Jitter.NONE, max_attempts=None
    )
    assert backoff_delay(slow, 10**9, 0.0) == 50.0


@pytest.mark.parametrize("attempt", [0, -1])
def test_attempt_is_one_based(attempt: int) -> None:
    with pytest.raises(InvalidConfig, match="1-based"):
        backoff_delay(BackoffPolicy(), attempt, 0.5)


@pytest.mark.parametrize("u", [-0.1, 1.0, 1.5, math.nan, math.inf])
def test_u_outside_unit_interval(u: float) -> None:
    with pytest.raises(InvalidConfig, match=r"u must be in \[0, 1\)"):
        backoff_delay(BackoffPolicy(), 1, u)


def test_bad_u_raises_even_when_exhausted() -> None:
    with pytest.raises(InvalidConfig, match="u must be"):
        backoff_delay(BackoffPolicy(max_attempts=1), 2, 1.0)


# --- Backoff tracker ---------------------------------------------------------


def test_fresh_tracker() -> None:
    p = BackoffPolicy.media()
    b = Backoff(p)
    assert b.policy is p
    assert b.attempts == 0
    assert b.episode_start is None
    assert not b.in_episode


def test_window_expiry_with_explicit_times() -> None:
    p = BackoffPolicy(jitter=Jitter.NONE, max_attempts=None, window=10.0)
    b = Backoff(p)

    assert b.next_attempt(2.0, 0.0) == RetryPlan(attempt=1, delay=1.0, at=3.0)
    assert b.episode_start == 2.0
    assert b.in_episode
    # Failures keep coming; the window stays anchored at t=2.
    assert b.next_attempt(3.25, 0.0) == RetryPlan(attempt=2, delay=2.0, at=5.25)
    assert b.next_attempt(7.0, 0.0) == RetryPlan(attempt=3, delay=4.0, at=11.0)
    # 11.5 + 8 would overshoot the end (12): start exactly at the end instead.
    assert b.next_attempt(11.5, 0.0) == RetryPlan(attempt=4, delay=0.5, at=12.0)
    assert b.episode_start == 2.0
    # That retry fails at the end: the window is spent.
    assert b.next_attempt(12.0, 0.0) is None
    assert b.next_attempt(30.0, 0.0) is None
    assert b.attempts == 4
    assert b.episode_start == 2.0
    assert b.in_episode


def test_signaling_window_with_equal_jitter() -> None:
    b = Backoff(BackoffPolicy.signaling())
    assert b.next_attempt(0.0, 0.5) == RetryPlan(attempt=1, delay=0.75, at=0.75)
    assert b.next_attempt(1.25, 0.5) == RetryPlan(attempt=2, delay=1.5, at=2.75)
    assert b.next_attempt(5.0, 0.0) == RetryPlan(attempt=3, delay=2.0, at=7.0)
    # Long interruptions: each failure comes late; the window counts from t=0.
    assert b.next_attempt(50.0, 0.5) == RetryPlan(attempt=4, delay=6.0, at=56.0)
    assert b.next_attempt(57.0, 0.5) == RetryPlan(attempt=5, delay=3.0, at=60.0)
    assert b.next_attempt(60.5, 0.0) is None


def test_clamped_retry_is_exactly_at_window_end() -> None:
    # Here 2.09 + ((0.1 + 60.0) - 2.09) rounds past the end: `at` must not.
    end = 0.1 + 60.0
    b = Backoff(BackoffPolicy(factor=100.0, cap=100.0, jitter=Jitter.NONE, window=60.0))
    assert b.next_attempt(0.1, 0.0) is not None
    assert b.next_attempt(2.09, 0.0) == RetryPlan(attempt=2, delay=end - 2.09, at=end)


def test_failure_exactly_at_window_end_gives_up() -> None:
    b = Backoff(BackoffPolicy(window=4.0, jitter=Jitter.NONE))
    assert b.next_attempt(0.0, 0.0) is not None
    assert b.next_attempt(4.0, 0.0) is None
    assert b.attempts == 1


def test_attempts_exhausted_inside_window() -> None:
    b = Backoff(BackoffPolicy.duplicate_signal())
    plans = []
    now = 100.0
    for _ in range(3):
        plan = b.next_attempt(now, 0.7)
        assert plan is not None
        plans.append(plan)
        now = plan.at
    assert plans == [
        RetryPlan(attempt=1, delay=1.5, at=101.5),
        RetryPlan(attempt=2, delay=3.0, at=104.5),
        RetryPlan(attempt=3, delay=6.0, at=110.5),
    ]
    assert b.next_attempt(now, 0.7) is None
    assert b.next_attempt(now + 1, 0.7) is None
    assert b.attempts == 3


def test_no_window_never_expires() -> None:
    b = Backoff(NO_JITTER)
    assert b.next_attempt(0.0, 0.0) == RetryPlan(attempt=1, delay=1.0, at=1.0)
    assert b.next_attempt(1e9, 0.0) == RetryPlan(attempt=2, delay=2.0, at=1e9 + 2.0)


def test_reset_starts_a_new_episode() -> None:
    b = Backoff(BackoffPolicy(jitter=Jitter.NONE, window=10.0))
    assert b.next_attempt(0.0, 0.0) is not None
    assert b.next_attempt(1.0, 0.0) is not None
    b.reset()
    assert state(b) == (0, None, False)
    # Well past the old window: a fresh episode, first delay again.
    assert b.next_attempt(100.0, 0.0) == RetryPlan(attempt=1, delay=1.0, at=101.0)
    assert state(b) == (1, 100.0, True)
    assert b.next_attempt(105.0, 0.0) == RetryPlan(attempt=2, delay=2.0, at=107.0)


def test_reset_after_giving_up() -> None:
    b = Backoff(BackoffPolicy(jitter=Jitter.NONE, max_attempts=1))
    assert b.next_attempt(0.0, 0.0) is not None
    assert b.next_attempt(1.0, 0.0) is None
    b.reset()
    assert b.next_attempt(2.0, 0.0) == RetryPlan(attempt=1, delay=1.0, at=3.0)


def test_reset_outside_episode_is_harmless() -> None:
    b = Backoff(BackoffPolicy())
    b.reset()
    assert b.attempts == 0
    assert not b.in_episode


@pytest.mark.parametrize("u", [-0.5, 1.0, math.nan])
def test_bad_u_changes_nothing(u: float) -> None:
    b = Backoff(BackoffPolicy(jitter=Jitter.NONE))
    with pytest.raises(InvalidConfig, match="u must be"):
        b.next_attempt(5.0, u)
    assert b.attempts == 0
    assert b.episode_start is None
    assert b.next_attempt(6.0, 0.0) == RetryPlan(attempt=1, delay=1.0, at=7.0)


@pytest.mark.parametrize("now", [math.nan, math.inf, -math.inf])
def test_non_finite_now_is_rejected(now: float) -> None:
    b = Backoff(BackoffPolicy())
    with pytest.raises(InvalidConfig, match="now must be"):
        b.next_attempt(now, 0.5)
    assert not b.in_episode


def test_clock_going_backwards_is_rejected() -> None:
    b = Backoff(BackoffPolicy(jitter=Jitter.NONE))
    assert b.next_attempt(10.0, 0.0) is not None
    with pytest.raises(InvalidConfig, match="monotonic"):
        b.next_attempt(9.0, 0.0)
    assert b.attempts == 1
    assert b.episode_start == 10.0
    assert b.next_attempt(11.0, 0.0) == RetryPlan(attempt=2, delay=2.0, at=13.0)


def test_retry_plan_is_frozen() -> None:
    plan = RetryPlan(attempt=1, delay=1.0, at=2.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.at = 3.0  # type: ignore[misc]


# --- properties --------------------------------------------------------------

units = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)


@st.composite
def policies(draw: st.DrawFn) -> BackoffPolicy:
    initial = draw(st.floats(min_value=0.001, max_value=100.0))
    return BackoffPolicy(
        initial=initial,
        factor=draw(st.floats(min_value=1.0, max_value=10.0)),
        cap=initial * draw(st.floats(min_value=1.0, max_value=1000.0)),
        jitter=draw(st.sampled_from(Jitter)),
        max_attempts=draw(st.none() | st.integers(min_value=1, max_value=30)),
        window=draw(st.none() | st.floats(min_value=0.01, max_value=1000.0)),
    )


@given(policies(), st.integers(min_value=1, max_value=200), units)
def test_delay_within_zero_and_cap(policy: BackoffPolicy, attempt: int, u: float) -> None:
    delay = backoff_delay(policy, attempt, u)
    if policy.max_attempts is not None and attempt > policy.max_attempts:
        assert delay is None
    else:
        assert delay is not None
        assert 0.0 <= delay <= policy.cap


@given(policies(), units)
def test_delay_non_decreasing_in_attempt(policy: BackoffPolicy, u: float) -> None:
    delays = [d for d in schedule(policy, u, 40) if d is not None]
    assert delays == sorted(delays)


@given(policies(), units)
def test_undelayed_base_grows_by_factor_up_to_cap(policy: BackoffPolicy, u: float) -> None:
    base_policy = dataclasses.replace(policy, jitter=Jitter.NONE, max_attempts=None)
    bases = schedule(base_policy, u, 40)
    assert bases[0] == policy.initial
    for prev, cur in itertools.pairwise(bases):
        assert prev is not None
        assert cur is not None
        assert prev <= cur <= policy.cap
        assert cur == policy.cap or math.isclose(cur, prev * policy.factor, rel_tol=1e-9)


@given(policies(), units)
def test_jitter_bounds_against_base(policy: BackoffPolicy, u: float) -> None:
    base = backoff_delay(dataclasses.replace(policy, jitter=Jitter.NONE), 1, u)
    delay = backoff_delay(policy, 1, u)
    assert base is not None
    assert delay is not None
    if policy.jitter is Jitter.EQUAL:
        assert base / 2 <= delay <= base
    else:
        assert 0.0 <= delay <= base


@given(
    policies(),
    st.floats(min_value=0.0, max_value=1e6),
    st.lists(st.tuples(st.floats(min_value=0.0, max_value=100.0), units), max_size=40),
)
def test_tracker_invariants(
    policy: BackoffPolicy, start: float, failures: list[tuple[float, float]]
) -> None:
    b = Backoff(policy)
    now = start
    given_up = False
    for i, (gap, u) in enumerate(failures):
        if i > 0:
            now += gap
        before = b.attempts
        end = None if policy.window is None else start + policy.window
        inside = end is None or now < end
        allowed = policy.max_attempts is None or before < policy.max_attempts
        plan = b.next_attempt(now, u)
        assert b.episode_start == start
        assert b.in_episode
        if plan is None:
            assert not (inside and allowed)
            assert b.attempts == before
            given_up = True
            continue
        assert not given_up, "a retry after giving up"
        assert inside
        assert allowed
        assert plan.attempt == before + 1 == b.attempts == i + 1
        assert 0.0 <= plan.delay <= policy.cap
        assert plan.at >= now
        if end is not None:
            assert plan.at <= end
        raw = backoff_delay(policy, plan.attempt, u)
        assert raw is not None
        if end is None or now + raw <= end:
            assert plan == RetryPlan(attempt=plan.attempt, delay=raw, at=now + raw)
        else:
            assert plan == RetryPlan(attempt=plan.attempt, delay=end - now, at=end)


@given(policies(), st.lists(units, min_size=1, max_size=40))
def test_instant_failures_end_in_giving_up(policy: BackoffPolicy, us: list[float]) -> None:
    # Each retry fails the moment it starts: plans follow each other and stay in bounds.
    b = Backoff(policy)
    now = 0.0
    for u in us:
        plan = b.next_attempt(now, u)
        if plan is None:
            break
        assert policy.window is None or plan.at <= policy.window
        now = plan.at
    else:
        return
    assert (policy.max_attempts is not None and b.attempts == policy.max_attempts) or (
        policy.window is not None and now >= policy.window
    )
