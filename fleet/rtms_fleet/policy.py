"""Who records which stream: the fleet's ownership rules, pure and explicitly timed.

The :class:`Policy` of one node is fed what the node observes (webhooks read
back from the engine, lease entries of the key-value bucket, the results of its
own writes, its sessions ending, the engine coming and going) and the time
``now`` (any monotonic clock, in seconds); it answers with actions for the
adapter to perform: :class:`Claim`, :class:`Renew`, :class:`Release`,
:class:`Start`, :class:`Stop`, :class:`Failover`.  It does no I/O and reads no
clock, so every transition is tested in explicit time, like the Session.

The rules
    * A stream is recorded by the node holding its lease, a key whose entry
      expires ``lease`` seconds after its last write.  A claim creates the key
      (create-if-absent) or writes over a released entry (compare-and-set on
      its revision); the owner rewrites it (compare-and-set) every
      ``lease / 3``.  The revision of the claim is the fencing token.
    * The owner counts its lease valid until ``lease`` after it *sent* its last
      successful write (the server's expiry cannot come sooner), and stops the
      stream's sockets ``margin`` (``lease / 5``) before that: a node that
      cannot renew (engine lost, process paused) stops before anyone may take
      over, and :meth:`Policy.still_owner` is false from then on.
    * Other nodes expect an owned entry to expire ``lease`` after they saw its
      last write and claim then; a failed claim shows the current entry.
    * Claims stop at ``capacity`` streams (claiming, recording or stopping),
      while the engine is lost and while draining.  With a ``region``, a stream
      whose server is in another region is claimed ``region_delay`` later; each
      stream a node already holds delays its claims by ``spread`` more, so the
      least loaded node tends to win.
    * ``rtms_stopped`` (read by every node) ends the stream on its owner, which
      then marks the entry ended so that nobody claims it again; a new
      ``rtms_started`` for a live stream becomes a :class:`Failover` on the owner.
    * Draining hands every stream over: stop the sockets (Zoom keeps the
      stream), then mark the entry released for another node to claim at once.
      A node that gave a stream up (lost it, or its application stopped it)
      waits a lease before claiming that stream again.
"""

from __future__ import annotations

import enum
import heapq
import itertools
import math
from dataclasses import dataclass

from rtms_proto import InvalidConfig
from rtms_proto.enums import StopReason
from rtms_proto.webhooks import (
    Disposition,
    RtmsStarted,
    RtmsStopped,
    StreamTracker,
    WebhookEvent,
)

__all__ = [
    "DEFAULT_LEASE",
    "Action",
    "Claim",
    "Counts",
    "Failover",
    "Lease",
    "LeaseState",
    "Policy",
    "PolicyConfig",
    "Release",
    "Renew",
    "Start",
    "Stop",
    "StopWhy",
]


DEFAULT_LEASE = 30.0
"""Seconds a lease lasts unless configured.  An owner renews every third of it and
stops a fifth before it ends, so it rides out an engine outage of 14 s at worst
(the outage starts just before a renewal) and 24 s at best.  Losing the server
that leads a three-server JetStream cluster's bucket stops renewals for the
election (4 to 8.2 s measured on loopback, ``bench/bench_failover.py``); a
node that dies is replaced after about a lease, well inside the minute Zoom
waits for a client to come back."""


class LeaseState(enum.Enum):
    """What a lease entry says about its stream."""

    OWNED = "owned"
    """``owner`` records the stream."""
    RELEASED = "released"
    """Handed over: any node may claim it now."""
    ENDED = "ended"
    """The stream is over: nobody claims it."""


@dataclass(frozen=True, slots=True)
class Lease:
    """One entry of the lease bucket as read: its ``revision`` orders every write."""

    owner: str
    state: LeaseState
    revision: int


class StopWhy(enum.Enum):
    """Why a node stops its session of a stream."""

    ENDED = "ended"
    """``rtms_stopped`` arrived: end the stream (``notify_stopped``)."""
    LOST = "lost"
    """The lease is lost or about to be: close the sockets now, write nothing more."""
    HANDOVER = "handover"
    """Draining: close the sockets without ending the stream in Zoom, then release."""


@dataclass(frozen=True, slots=True)
class Claim:
    """Write a lease entry owned by this node: create it if ``after`` is None, else
    compare-and-set over revision ``after``.  Report :meth:`Policy.claimed` or
    :meth:`Policy.claim_failed`."""

    stream_id: str
    after: int | None


@dataclass(frozen=True, slots=True)
class Renew:
    """Rewrite the owned entry (compare-and-set over ``revision``); report
    :meth:`Policy.renewed` or :meth:`Policy.renew_failed`."""

    stream_id: str
    revision: int


@dataclass(frozen=True, slots=True)
class Release:
    """Mark the entry released (or ``ended``), compare-and-set over ``revision``;
    report :meth:`Policy.release_done`."""

    stream_id: str
    revision: int
    ended: bool


@dataclass(frozen=True, slots=True)
class Start:
    """Connect to the stream; ``takeover`` when another owner had it before."""

    stream_id: str
    started: RtmsStarted
    revision: int
    takeover: bool


@dataclass(frozen=True, slots=True)
class Stop:
    """Stop the session of the stream; report :meth:`Policy.session_ended` when it is over."""

    stream_id: str
    why: StopWhy
    stop_reason: StopReason | int | None = None


@dataclass(frozen=True, slots=True)
class Failover:
    """The owned stream moved to a new server: reconnect to ``started.server_url``."""

    stream_id: str
    started: RtmsStarted


Action = Claim | Renew | Release | Start | Stop | Failover


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicyConfig:
    """One node's rules; the durations are seconds."""

    node: str
    lease: float = DEFAULT_LEASE
    capacity: int = 10
    region: str | None = None
    region_delay: float = 1.0
    spread: float = 0.05
    retry: float = 0.5
    """How soon a claim or renewal that could not reach the engine is tried again."""

    def __post_init__(self) -> None:
        if not isinstance(self.node, str) or not self.node:
            raise InvalidConfig("node must be a non-empty name")
        if self.region is not None and (not isinstance(self.region, str) or not self.region):
            raise InvalidConfig("region must be a region code (e.g. sjc) or None")
        if not (math.isfinite(self.lease) and self.lease >= 0.5):
            raise InvalidConfig("lease must be a number of seconds >= 0.5")
        if isinstance(self.capacity, bool) or not isinstance(self.capacity, int):
            raise InvalidConfig("capacity must be an int >= 0")
        if self.capacity < 0:
            raise InvalidConfig("capacity must be an int >= 0")
        for name in ("region_delay", "spread", "retry"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise InvalidConfig(f"{name} must be a number of seconds >= 0")
        if self.retry <= 0:
            raise InvalidConfig("retry must be a number of seconds > 0")

    @property
    def renew_every(self) -> float:
        return self.lease / 3

    @property
    def margin(self) -> float:
        return self.lease / 5


class _Phase(enum.Enum):
    IDLE = "idle"
    CLAIMING = "claiming"
    RUNNING = "running"
    STOPPING = "stopping"
    RELEASING = "releasing"


@dataclass(slots=True)
class _Stream:
    started: RtmsStarted
    seen_at: float
    lease: Lease | None = None
    lease_seen_at: float = 0.0
    had_owner: bool = False
    stopped: bool = False
    phase: _Phase = _Phase.IDLE
    retry_at: float = -math.inf
    sent_at: float = 0.0  # when the pending claim or renewal was sent
    revision: int = 0
    valid_until: float = -math.inf
    next_renew: float = math.inf
    renewing: bool = False
    stopping: StopWhy | None = None
    over: bool = False  # the stream ended for good: forget it once released


@dataclass(slots=True)
class Counts:
    """What a node's policy did since it started (for metrics)."""

    claims: int = 0
    takeovers: int = 0
    handovers: int = 0
    lost: int = 0
    ended: int = 0


class Policy:
    """The ownership decisions of one node (see the module docstring for the rules).

    Every input takes ``now`` keyword-only and returns the actions to perform,
    in order; :meth:`next_deadline` says when to call :meth:`tick` next.
    """

    def __init__(self, config: PolicyConfig) -> None:
        self.config = config
        self._streams: dict[str, _Stream] = {}
        self._pending: dict[str, tuple[Lease, float]] = {}
        self._tracker = StreamTracker()
        self._engine_up = True
        self._draining = False
        self._held = 0
        self.counts = Counts()
        # The timers: each stream's next due time, and a heap of them with stale entries
        # skipped, recomputed for the streams an input touched (for all of them when
        # something global changed), so that one input costs O(log n), not O(n).
        self._due: dict[str, float] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._order = itertools.count()
        self._dirty: set[str] = set()
        self._all_dirty = False

    # --- what the node asks --------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """The engine is reachable and the node is not draining."""
        return self._engine_up and not self._draining

    @property
    def draining(self) -> bool:
        return self._draining

    @property
    def drained(self) -> bool:
        """Draining, and no stream is held any more."""
        return self._draining and self.held == 0

    @property
    def held(self) -> int:
        """Streams counted against capacity: claiming, recording, stopping or releasing."""
        return self._held

    def owned(self) -> list[str]:
        """The streams whose sessions run here (recording or stopping)."""
        return [
            sid for sid, s in self._streams.items() if s.phase in (_Phase.RUNNING, _Phase.STOPPING)
        ]

    def known(self) -> list[str]:
        """Every live stream this node knows of."""
        return list(self._streams)

    def still_owner(self, stream_id: str, *, now: float) -> bool:
        """Whether this node may still write for ``stream_id`` (the fencing rule)."""
        s = self._streams.get(stream_id)
        if s is None or s.phase not in (_Phase.RUNNING, _Phase.STOPPING):
            return False
        if s.stopping is StopWhy.LOST:
            return False
        return now < s.valid_until - self.config.margin

    def next_deadline(self) -> float | None:
        """When :meth:`tick` has something to do, or None."""
        self._flush()
        heap = self._heap
        while heap and self._due.get(heap[0][2]) != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    # --- inputs --------------------------------------------------------------------------

    def webhook(self, event: WebhookEvent, *, now: float) -> list[Action]:
        """A webhook read back from the engine (every node reads every one)."""
        disposition = self._tracker.observe(event)
        actions: list[Action] = []
        if isinstance(event, RtmsStarted | RtmsStopped):
            self._dirty.add(event.rtms_stream_id)
        if isinstance(event, RtmsStarted):
            s = self._streams.get(event.rtms_stream_id)
            if disposition is Disposition.NEW_STREAM or (
                disposition is Disposition.FAILOVER and s is None
            ):
                s = self._streams[event.rtms_stream_id] = _Stream(started=event, seen_at=now)
                pending = self._pending.pop(event.rtms_stream_id, None)
                if pending is not None:
                    self._record(s, *pending)
            elif disposition is Disposition.FAILOVER and s is not None:
                s.started = event
                if s.phase is _Phase.RUNNING:
                    actions.append(Failover(event.rtms_stream_id, event))
        elif isinstance(event, RtmsStopped) and disposition in (
            Disposition.STOPPED,
            Disposition.UNKNOWN_STOP,
        ):
            actions.extend(self._stopped(event))
        actions.extend(self.tick(now=now))
        return actions

    def lease_seen(self, stream_id: str, lease: Lease | None, *, now: float) -> list[Action]:
        """An entry of the bucket as watched (None: deleted or expired)."""
        self._dirty.add(stream_id)
        s = self._streams.get(stream_id)
        if s is None:
            # Its webhook has not been read yet (a node reads the entries first):
            # keep the latest entry until it is, as many as the bucket holds.
            if lease is None or lease.state is LeaseState.ENDED:
                self._pending.pop(stream_id, None)
            else:
                self._pending[stream_id] = (lease, now)
            return []
        actions = self._observe(s, stream_id, lease, now)
        actions.extend(self.tick(now=now))
        return actions

    def claimed(
        self, stream_id: str, revision: int, *, owned_before: bool = False, now: float
    ) -> list[Action]:
        """The claim succeeded with ``revision``; ``owned_before`` when the engine
        knows an earlier owner (this policy may not have seen it)."""
        self._dirty.add(stream_id)
        s = self._streams[stream_id]
        cfg = self.config
        s.revision = revision
        s.valid_until = s.sent_at + cfg.lease
        s.next_renew = s.sent_at + cfg.renew_every
        s.lease = Lease(cfg.node, LeaseState.OWNED, revision)
        s.lease_seen_at = s.sent_at
        if s.stopped or self._draining:
            # Nothing to record (ended) or to keep (draining): give it back unused.
            self._set_phase(s, _Phase.RELEASING)
            s.over = s.stopped
            return [Release(stream_id, revision, ended=s.stopped)]
        self._set_phase(s, _Phase.RUNNING)
        takeover = s.had_owner or owned_before
        s.had_owner = True
        self.counts.claims += 1
        if takeover:
            self.counts.takeovers += 1
        actions: list[Action] = [Start(stream_id, s.started, revision, takeover)]
        actions.extend(self.tick(now=now))
        return actions

    def claim_failed(self, stream_id: str, current: Lease | None, *, now: float) -> list[Action]:
        """The claim failed: ``current`` is the entry that won, or None when the
        engine could not be reached (try again after ``retry``)."""
        self._dirty.add(stream_id)
        s = self._streams.get(stream_id)
        if s is None or s.phase is not _Phase.CLAIMING:
            return []
        self._set_phase(s, _Phase.IDLE)
        s.retry_at = now + self.config.retry
        actions = [] if current is None else self._observe(s, stream_id, current, now)
        actions.extend(self.tick(now=now))
        return actions

    def renewed(self, stream_id: str, revision: int, *, now: float) -> list[Action]:
        """The renewal succeeded with ``revision``: valid ``lease`` after it was sent."""
        self._dirty.add(stream_id)
        s = self._streams.get(stream_id)
        if s is None or not s.renewing:
            return []
        # Still renewing means still the owner: losing or ending clears ``renewing``.
        s.renewing = False
        s.revision = revision
        s.valid_until = s.sent_at + self.config.lease
        s.next_renew = s.sent_at + self.config.renew_every
        s.lease = Lease(self.config.node, LeaseState.OWNED, revision)
        s.lease_seen_at = s.sent_at
        return self.tick(now=now)

    def renew_failed(self, stream_id: str, *, lost: bool, now: float) -> list[Action]:
        """The renewal failed: ``lost`` when the entry is not ours any more (changed or
        expired), else the engine could not be reached (try again after ``retry``)."""
        self._dirty.add(stream_id)
        s = self._streams.get(stream_id)
        if s is None or not s.renewing:
            return []
        s.renewing = False
        if lost:
            return self._lose(s, stream_id) + self.tick(now=now)
        s.next_renew = now + self.config.retry
        return self.tick(now=now)

    def session_ended(self, stream_id: str, *, over: bool, now: float) -> list[Action]:
        """The node's session of the stream is over; ``over`` when the stream itself
        ended (in Zoom, or for good), not just the sockets here."""
        self._dirty.add(stream_id)
        s = self._streams.get(stream_id)
        if s is None or s.phase not in (_Phase.RUNNING, _Phase.STOPPING):
            return []
        s.renewing = False
        s.next_renew = math.inf
        if s.stopping is StopWhy.LOST or now >= s.valid_until - self.config.margin:
            return self._forget_ownership(s, stream_id, now) + self.tick(now=now)
        ended = s.stopped or (over and s.stopping is not StopWhy.HANDOVER)
        if s.stopping is StopWhy.HANDOVER and not ended:
            self.counts.handovers += 1
        s.over = ended
        self._set_phase(s, _Phase.RELEASING)
        return [Release(stream_id, s.revision, ended=ended)]

    def release_done(self, stream_id: str, lease: Lease | None, *, now: float) -> list[Action]:
        """The release was written (``lease``, the entry written) or failed (None:
        the entry will expire by itself)."""
        self._dirty.add(stream_id)
        s = self._streams.get(stream_id)
        if s is None or s.phase is not _Phase.RELEASING:
            return []
        actions = self._forget_ownership(s, stream_id, now)
        s = self._streams.get(stream_id)
        if s is not None and lease is not None:
            actions.extend(self._observe(s, stream_id, lease, now))
        actions.extend(self.tick(now=now))
        return actions

    def engine_lost(self, *, now: float) -> list[Action]:
        """The engine is unreachable: claim nothing; owned streams go on while fenced."""
        self._engine_up = False
        self._all_dirty = True
        return self.tick(now=now)

    def engine_back(self, *, now: float) -> list[Action]:
        """The engine answers again."""
        self._engine_up = True
        self._all_dirty = True
        return self.tick(now=now)

    def drain(self, *, now: float) -> list[Action]:
        """Hand every stream over and claim no more (:attr:`drained` says when done)."""
        self._draining = True
        self._all_dirty = True
        actions: list[Action] = []
        for sid, s in self._streams.items():
            if s.phase is _Phase.RUNNING:
                self._set_phase(s, _Phase.STOPPING)
                s.stopping = StopWhy.HANDOVER
                actions.append(Stop(sid, StopWhy.HANDOVER))
        actions.extend(self.tick(now=now))
        return actions

    def tick(self, *, now: float) -> list[Action]:
        """Perform what is due at ``now``: renewals, fencing stops, claims."""
        self._flush()
        cfg = self.config
        heap = self._heap
        due: list[str] = []
        while heap and heap[0][0] <= now:
            at, _, sid = heapq.heappop(heap)
            if self._due.get(sid) == at:
                del self._due[sid]
                due.append(sid)
        actions: list[Action] = []
        for sid in due:
            self._dirty.add(sid)
            s = self._streams[sid]
            if s.phase in (_Phase.RUNNING, _Phase.STOPPING) and s.stopping is not StopWhy.LOST:
                if now >= s.valid_until - cfg.margin:
                    actions.extend(self._lose(s, sid))
                elif not s.renewing and now >= s.next_renew:
                    s.renewing = True
                    s.sent_at = now
                    actions.append(Renew(sid, s.revision))
        held = self._held  # the spread delay counts what was held before this tick
        for sid in due:
            s = self._streams[sid]
            claim = self._claim_due(s, held)
            if claim is not None and claim <= now and self._held < cfg.capacity:
                self._set_phase(s, _Phase.CLAIMING)
                s.sent_at = now
                # Over a released entry by compare-and-set; otherwise only if absent
                # (an owned entry must have expired in the engine, whatever we think).
                lease = s.lease
                released = lease is not None and lease.state is LeaseState.RELEASED
                actions.append(Claim(sid, lease.revision if released and lease else None))
        return actions

    # --- internals -----------------------------------------------------------------------

    def _observe(self, s: _Stream, stream_id: str, lease: Lease | None, now: float) -> list[Action]:
        mine = s.phase in (_Phase.RUNNING, _Phase.STOPPING, _Phase.RELEASING)
        if mine and lease is not None and lease.revision <= s.revision:
            return []  # our own write (or an older one) coming back
        if mine and s.renewing and lease is not None and lease.owner == self.config.node:
            return []  # our renewal, seen before its answer: the answer decides
        if mine and s.phase is not _Phase.RELEASING:
            # Someone else wrote over our entry, or it expired: we are not the owner.
            # Once stopping for that reason, the new owner's renewals change nothing:
            # the stop was given once.
            actions = [] if s.stopping is StopWhy.LOST else self._lose(s, stream_id)
            self._record(s, lease, now)
            return actions
        if s.phase is _Phase.CLAIMING or s.phase is _Phase.RELEASING:
            return []  # the claim's or release's own answer decides
        self._record(s, lease, now)
        if lease is not None and lease.state is LeaseState.ENDED:
            self._delete(stream_id)
        return []

    def _record(self, s: _Stream, lease: Lease | None, now: float) -> None:
        """Remember the entry; any entry means the stream had an owner."""
        if lease is None:
            s.lease = None
            return
        if s.lease is None or lease.revision != s.lease.revision:
            s.lease_seen_at = now
        s.lease = lease
        s.had_owner = True

    def _lose(self, s: _Stream, stream_id: str) -> list[Action]:
        """Stop recording at once: the lease is lost or could expire before we renew."""
        self.counts.lost += 1
        self._set_phase(s, _Phase.STOPPING)
        s.stopping = StopWhy.LOST
        s.renewing = False
        s.next_renew = math.inf
        return [Stop(stream_id, StopWhy.LOST)]

    def _forget_ownership(self, s: _Stream, stream_id: str, now: float) -> list[Action]:
        if s.over or s.stopped:
            self.counts.ended += 1
            self._delete(stream_id)
            return []
        self._set_phase(s, _Phase.IDLE)
        s.stopping = None
        s.valid_until = -math.inf
        # Given up here (lost, or stopped by the application): other nodes get the
        # first chance, so that a stream that fails on this node does not bounce back.
        s.retry_at = now + self.config.lease
        return []

    def _stopped(self, event: RtmsStopped) -> list[Action]:
        sid = event.rtms_stream_id
        s = self._streams.get(sid)
        if s is None:
            return []
        s.stopped = True
        if s.phase is _Phase.RUNNING:
            self._set_phase(s, _Phase.STOPPING)
            s.stopping = StopWhy.ENDED
            return [Stop(sid, StopWhy.ENDED, event.stop_reason)]
        if s.phase is _Phase.IDLE:
            self._delete(sid)
        return []

    def _set_phase(self, s: _Stream, phase: _Phase) -> None:
        if (s.phase is _Phase.IDLE) != (phase is _Phase.IDLE):
            self._held += 1 if s.phase is _Phase.IDLE else -1
            self._all_dirty = True  # room and the spread delay changed for every claim
        s.phase = phase

    def _delete(self, stream_id: str) -> None:
        self._set_phase(self._streams[stream_id], _Phase.IDLE)
        del self._streams[stream_id]
        self._due.pop(stream_id, None)

    def _claim_due(self, s: _Stream, held: int) -> float | None:
        """When this node would claim ``s`` (None: it would not), ``held`` streams held."""
        cfg = self.config
        if not self._engine_up or self._draining or cfg.capacity == 0:
            return None
        if s.phase is not _Phase.IDLE or s.stopped:
            return None
        lease = s.lease
        if lease is None:
            due = s.seen_at
        elif lease.state is LeaseState.RELEASED:
            due = s.lease_seen_at
        else:  # owned elsewhere (an ended entry makes the stream forgotten)
            due = s.lease_seen_at + cfg.lease
        if cfg.region is not None and s.started.server_url.region != cfg.region.lower():
            due += cfg.region_delay
        return max(due + cfg.spread * held, s.retry_at)

    def _due_of(self, s: _Stream) -> float | None:
        """The earliest of the stream's timers: fence, renewal, claim."""
        cfg = self.config
        times: list[float] = []
        if s.phase in (_Phase.RUNNING, _Phase.STOPPING) and s.stopping is not StopWhy.LOST:
            times.append(s.valid_until - cfg.margin)
            if not s.renewing:
                times.append(s.next_renew)
        if self._held < cfg.capacity:
            claim = self._claim_due(s, self._held)
            if claim is not None:
                times.append(claim)
        return min(times) if times else None

    def _flush(self) -> None:
        """Recompute the due times of the touched streams (of all, if need be)."""
        if self._all_dirty:
            self._all_dirty = False
            self._dirty.clear()
            touched: list[str] = list(self._streams)
        else:
            touched = list(self._dirty)
            self._dirty.clear()
        for sid in touched:
            s = self._streams.get(sid)
            due = None if s is None else self._due_of(s)
            if due is None:
                self._due.pop(sid, None)
            elif self._due.get(sid) != due:
                self._due[sid] = due
                heapq.heappush(self._heap, (due, next(self._order), sid))
        if len(self._heap) > 2 * len(self._due) + 64:
            self._heap = [(due, next(self._order), sid) for sid, due in self._due.items()]
            heapq.heapify(self._heap)
