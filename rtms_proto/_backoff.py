"""Reconnect backoff: when to retry, and when to give up (docs/architecture.md).

Pure: the caller passes the clock (``now``) and the jitter draw (``u`` in
[0, 1)), so every schedule is reproducible in a test.

Zoom keeps an interrupted stream alive only for a fixed time after the
interruption (signaling 60 s, media 65 s, 30 s on older servers; docs/protocol.md
§7, §8.6). A retry started after that is wasted, so besides a count limit a
policy has a ``window`` measured from the *first* failure of an episode.
Failed attempts never move the window: otherwise a flapping connection could
keep retrying forever.  Nor does a handshake that succeeds: a connection
dropped right after its handshake is no recovery, so an episode ends only when
the new connection has proved itself (``settle``, applied by the Session).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import assert_never

from ._errors import InvalidConfig

__all__ = ["Backoff", "BackoffPolicy", "Jitter", "RetryPlan", "backoff_delay"]


class Jitter(enum.Enum):
    """How the drawn ``u`` spreads a delay ``d``, so that clients don't retry in lockstep."""

    NONE = "none"
    """``d``: fixed schedules, such as Zoom's 1.5/3/6 s duplicate-signal retries."""
    FULL = "full"
    """``u * d``: the widest spread, the delay may be zero."""
    EQUAL = "equal"
    """``d/2 + u * d/2``: spread, but always at least half the base delay."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BackoffPolicy:
    """Exponential backoff ``min(cap, initial * factor**(attempt-1))``, jittered.

    ``max_attempts`` bounds the retries of one episode and ``window`` (seconds
    from the episode's first failure) bounds when a retry may start; ``None``
    disables either bound.

    ``settle`` (seconds) is how long a reconnected socket must stay open, with
    at least one message received after its handshake, before the episode is
    over and the next loss starts a fresh one with a fresh window.  The
    default, 15 s, is more than Zoom's 10 s keep-alive interval, so a healthy
    socket always has delivered something by then; a server that completes
    handshakes and drops (or goes silent) keeps the episode, and its limits,
    running.
    """

    initial: float = 1.0
    factor: float = 2.0
    cap: float = 8.0
    jitter: Jitter = Jitter.EQUAL
    max_attempts: int | None = 6
    window: float | None = 60.0
    settle: float = 15.0

    def __post_init__(self) -> None:
        # `not x > 0` rather than `x <= 0`, so that NaN is rejected too.
        if not (math.isfinite(self.initial) and self.initial > 0):
            raise InvalidConfig(f"initial must be a finite number > 0, got {self.initial!r}")
        if not (math.isfinite(self.factor) and self.factor >= 1):
            raise InvalidConfig(f"factor must be a finite number >= 1, got {self.factor!r}")
        if not (math.isfinite(self.cap) and self.cap >= self.initial):
            raise InvalidConfig(
                f"cap must be a finite number >= initial ({self.initial!r}), got {self.cap!r}"
            )
        if self.max_attempts is not None and self.max_attempts < 1:
            raise InvalidConfig(f"max_attempts must be >= 1 or None, got {self.max_attempts!r}")
        if self.window is not None and not (math.isfinite(self.window) and self.window > 0):
            raise InvalidConfig(f"window must be a finite number > 0 or None, got {self.window!r}")
        if not (math.isfinite(self.settle) and self.settle >= 0):
            raise InvalidConfig(f"settle must be a finite number >= 0, got {self.settle!r}")

    @classmethod
    def signaling(cls) -> BackoffPolicy:
        """Signaling reconnects: Zoom waits 60 s after losing the signaling socket."""
        return cls(window=60.0)

    @classmethod
    def media(cls) -> BackoffPolicy:
        """Media reconnects: Zoom waits 65 s (older servers 30 s: use ``replace(window=30.0)``)."""
        return cls(window=65.0)

    @classmethod
    def duplicate_signal(cls) -> BackoffPolicy:
        """Retries after "duplicate signal request": Zoom's samples wait 1.5, 3, 6 s, then stop.

        The server rejects a new signaling handshake while the old socket is
        still alive; it goes away within seconds, so a short fixed schedule fits.
        """
        return cls(
            initial=1.5, factor=2.0, cap=6.0, jitter=Jitter.NONE, max_attempts=3, window=60.0
        )


def _base_delay(policy: BackoffPolicy, attempt: int) -> float:
    try:
        grown = policy.initial * policy.factor ** (attempt - 1)
    except OverflowError:
        # A huge attempt number (max_attempts=None) is simply capped.
        return policy.cap
    return min(grown, policy.cap)


def backoff_delay(policy: BackoffPolicy, attempt: int, u: float) -> float | None:
    """Delay before the 1-based ``attempt``, or ``None`` when the attempts are used up.

    ``u`` is the caller's uniform draw in [0, 1): the core never draws random
    numbers itself. The result lies in [0, ``policy.cap``]. The window is not
    applied here (it needs the clock); :class:`Backoff` applies it.
    """
    if attempt < 1:
        raise InvalidConfig(f"attempt is 1-based, got {attempt!r}")
    if not 0.0 <= u < 1.0:
        raise InvalidConfig(f"u must be in [0, 1), got {u!r}")
    if policy.max_attempts is not None and attempt > policy.max_attempts:
        return None
    base = _base_delay(policy, attempt)
    match policy.jitter:
        case Jitter.NONE:
            return base
        case Jitter.FULL:
            return u * base
        case Jitter.EQUAL:
            return base / 2 + u * base / 2
        case _:
            assert_never(policy.jitter)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPlan:
    """Retry number ``attempt`` starts at ``at`` (= the failure's ``now`` + ``delay``)."""

    attempt: int
    delay: float
    at: float


class Backoff:
    """Retry state of one connection scope: an episode runs from a failure to a reset.

    Owned by a connection machine: call :meth:`next_attempt` on each failure and
    :meth:`reset` once a new connection has proved itself (``policy.settle``).

    Window rule: with ``window`` set, the episode's window is
    ``[episode_start, episode_start + window]``. A retry may be scheduled to
    start at any time in it; a delay that would overshoot the end is shortened
    so that the retry starts exactly at the end (a last chance that still
    reaches the server, rather than giving up early with time left). A failure
    observed at or after the end gets no retry: so the end-of-window retry is
    the last, and repeated failures at the same ``now`` cannot spin.
    """

    __slots__ = ("_attempts", "_episode_start", "_policy")

    def __init__(self, policy: BackoffPolicy) -> None:
        self._policy = policy
        self._attempts = 0
        self._episode_start: float | None = None

    @property
    def policy(self) -> BackoffPolicy:
        return self._policy

    @property
    def attempts(self) -> int:
        """Retries planned in this episode (a ``None`` answer plans none)."""
        return self._attempts

    @property
    def episode_start(self) -> float | None:
        """``now`` of the episode's first failure; ``None`` outside an episode."""
        return self._episode_start

    @property
    def in_episode(self) -> bool:
        return self._episode_start is not None

    def next_attempt(self, now: float, u: float) -> RetryPlan | None:
        """Plan the retry after a failure at ``now``, or ``None``: give up.

        The first failure after construction or :meth:`reset` starts the
        episode. Once this returns ``None`` it keeps doing so until
        :meth:`reset` (time only moves forward). Bad arguments raise
        :class:`InvalidConfig` and change nothing.
        """
        if not math.isfinite(now):
            raise InvalidConfig(f"now must be a finite number, got {now!r}")
        start = now if self._episode_start is None else self._episode_start
        if now < start:
            raise InvalidConfig(
                f"now ({now!r}) is before the episode start ({start!r}): "
                "the clock must be monotonic"
            )
        attempt = self._attempts + 1
        delay = backoff_delay(self._policy, attempt, u)
        self._episode_start = start
        if delay is None:
            return None
        at = now + delay
        if self._policy.window is not None:
            end = start + self._policy.window
            if now >= end:
                return None
            if at > end:
                # Exactly the end, not now + (end - now), which may round past it.
                delay, at = end - now, end
        self._attempts = attempt
        return RetryPlan(attempt=attempt, delay=delay, at=at)

    def reset(self) -> None:
        """The connection proved itself: the next failure starts a fresh episode."""
        self._attempts = 0
        self._episode_start = None
