"""The fleet's ownership policy in explicit time: every transition, no I/O.

Times are plain numbers of seconds; the lease is 10 s, so renewals are due
every 10/3 s and the fencing margin is 2 s.  The load spread is 0 unless a
test is about it.
"""

from __future__ import annotations

import pytest

from rtms_fleet.policy import (
    Claim,
    Failover,
    Lease,
    LeaseState,
    Policy,
    PolicyConfig,
    Release,
    Renew,
    Start,
    Stop,
    StopWhy,
)
from rtms_proto import InvalidConfig, parse_server_url
from rtms_proto.enums import Product, StopReason
from rtms_proto.webhooks import OtherWebhook, RtmsStarted, RtmsStopped, UrlValidation

LEASE = 10.0
RENEW = LEASE / 3
MARGIN = LEASE / 5
RETRY = 0.5


def started(sid: str = "s1", *, ts: int = 100, host: str = "rtms-sjc1.zoom.us") -> RtmsStarted:
    return RtmsStarted(
        product=Product.MEETING,
        event="meeting.rtms_started",
        event_ts=ts,
        instance_id=f"uuid-{sid}",
        id_key="meeting_uuid",
        rtms_stream_id=sid,
        server_url=parse_server_url(f"wss://{host}/signaling/{sid}"),
    )


def stopped(sid: str = "s1", *, ts: int = 200) -> RtmsStopped:
    return RtmsStopped(
        product=Product.MEETING,
        event="meeting.rtms_stopped",
        event_ts=ts,
        instance_id=f"uuid-{sid}",
        id_key="meeting_uuid",
        rtms_stream_id=sid,
        stop_reason=StopReason.MEETING_ENDED,
    )


def policy(**kwargs: object) -> Policy:
    config = {"node": "a", "lease": LEASE, "retry": RETRY, "spread": 0.0, **kwargs}
    return Policy(PolicyConfig(**config))  # type: ignore[arg-type]


def other(revision: int, state: LeaseState = LeaseState.OWNED) -> Lease:
    return Lease("b", state, revision)


def flags(p: Policy) -> tuple[bool, bool, bool]:
    """(ready, draining, drained)."""
    return p.ready, p.draining, p.drained


def owning(p: Policy, sid: str = "s1", *, at: float = 0.0, revision: int = 1) -> None:
    """Make ``p`` the owner of ``sid``: claimed at ``at``."""
    assert p.webhook(started(sid), now=at) == [Claim(sid, None)]
    actions = p.claimed(sid, revision, now=at)
    assert actions[0] == Start(sid, started(sid), revision, False)


# --------------------------------------------------------------------------- claims


def test_a_new_stream_is_claimed_at_once_and_started_when_the_claim_succeeds() -> None:
    p = policy()
    assert p.webhook(started(), now=5.0) == [Claim("s1", None)]
    assert p.held == 1 and p.owned() == []
    assert p.next_deadline() is None  # nothing to do until the claim answers
    assert p.claimed("s1", 7, now=5.1) == [Start("s1", started(), 7, False)]
    assert p.owned() == ["s1"]
    assert p.counts.claims == 1 and p.counts.takeovers == 0
    # Valid from when the claim was sent: renew a third of a lease later.
    assert p.next_deadline() == pytest.approx(5.0 + RENEW)


def test_a_claim_the_engine_knows_was_owned_before_is_a_takeover() -> None:
    p = policy()
    p.webhook(started(), now=0.0)  # this node never saw an owner
    assert p.claimed("s1", 1, owned_before=True, now=0.1) == [Start("s1", started(), 1, True)]
    assert p.counts.takeovers == 1


def test_webhooks_about_no_stream_change_nothing() -> None:
    p = policy()
    validation = UrlValidation(plain_token="t", event_ts=1)
    other_event = OtherWebhook(event="rtms.concurrency_limited", event_ts=1, payload={})
    assert p.webhook(validation, now=0.0) == []
    assert p.webhook(other_event, now=0.0) == []
    assert p.known() == [] and p.next_deadline() is None


def test_a_duplicate_start_changes_nothing() -> None:
    p = policy()
    owning(p)
    assert p.webhook(started(), now=1.0) == []
    assert p.owned() == ["s1"]


def test_an_entry_owned_elsewhere_is_claimed_when_it_should_have_expired() -> None:
    p = policy()
    assert p.lease_seen("s1", other(3), now=0.0) == []  # read before its webhook
    assert p.webhook(started(), now=1.0) == []
    assert p.next_deadline() == pytest.approx(LEASE)
    assert p.tick(now=LEASE - 0.01) == []
    # Only if absent: an owned entry is never written over.
    assert p.tick(now=LEASE) == [Claim("s1", None)]
    assert p.claimed("s1", 9, now=LEASE + 0.1) == [Start("s1", started(), 9, True)]
    assert p.counts.takeovers == 1


def test_a_renewal_seen_elsewhere_pushes_the_claim_back() -> None:
    p = policy()
    p.webhook(started(), now=0.0)
    p.claim_failed("s1", other(2), now=0.0)
    assert p.next_deadline() == pytest.approx(LEASE)
    assert p.lease_seen("s1", other(3), now=4.0) == []
    assert p.next_deadline() == pytest.approx(4.0 + LEASE)
    assert p.tick(now=LEASE) == []


def test_a_failed_claim_on_the_same_entry_is_retried_after_the_retry_delay() -> None:
    p = policy()
    p.lease_seen("s1", other(3), now=0.0)
    p.webhook(started(), now=0.0)
    assert p.tick(now=LEASE) == [Claim("s1", None)]
    # Not expired yet in the engine: try again shortly.
    assert p.claim_failed("s1", other(3), now=LEASE + 0.01) == []
    assert p.next_deadline() == pytest.approx(LEASE + 0.01 + RETRY)
    assert p.tick(now=LEASE + 0.01 + RETRY) == [Claim("s1", None)]


def test_a_claim_that_cannot_reach_the_engine_is_retried() -> None:
    p = policy()
    p.webhook(started(), now=0.0)
    assert p.claim_failed("s1", None, now=0.2) == []
    assert p.tick(now=0.2 + RETRY) == [Claim("s1", None)]


def test_an_expired_entry_is_claimed_at_once() -> None:
    p = policy()
    p.webhook(started(), now=0.0)
    p.claim_failed("s1", other(3), now=0.0)
    assert p.lease_seen("s1", None, now=1.0) == [Claim("s1", None)]
    assert p.claimed("s1", 4, now=1.0)[0] == Start("s1", started(), 4, True)


def test_a_released_entry_is_claimed_at_once_over_its_revision() -> None:
    p = policy()
    p.webhook(started(), now=0.0)
    p.claim_failed("s1", other(3), now=0.0)
    assert p.lease_seen("s1", other(4, LeaseState.RELEASED), now=2.0) == [Claim("s1", 4)]
    assert p.claimed("s1", 5, now=2.0)[0] == Start("s1", started(), 5, True)


def test_an_ended_entry_is_never_claimed() -> None:
    p = policy()
    p.webhook(started(), now=0.0)
    p.claim_failed("s1", other(3), now=0.0)
    assert p.lease_seen("s1", other(4, LeaseState.ENDED), now=1.0) == []
    assert p.known() == [] and p.next_deadline() is None
    assert p.tick(now=100.0) == []
    # An ended entry read before the webhook is not kept either.
    p.lease_seen("s2", other(5, LeaseState.ENDED), now=1.0)
    p.lease_seen("s2", None, now=1.0)
    assert p.webhook(started("s2"), now=2.0) == [Claim("s2", None)]


def test_a_claim_lost_to_another_node_is_not_started() -> None:
    p = policy()
    p.webhook(started(), now=0.0)
    assert p.lease_seen("s1", other(1), now=0.01) == []  # the answer decides
    assert p.claim_failed("s1", other(1), now=0.02) == []
    assert p.owned() == [] and p.held == 0
    # Late answers are ignored.
    assert p.claim_failed("s1", other(1), now=0.03) == []
    assert p.claim_failed("nope", None, now=0.03) == []


# --------------------------------------------------------------------------- renewals


def test_the_owner_renews_every_third_of_a_lease_and_stays_valid() -> None:
    p = policy()
    owning(p)
    assert p.tick(now=RENEW - 0.01) == []
    assert p.tick(now=RENEW) == [Renew("s1", 1)]
    assert p.tick(now=RENEW + 0.1) == []  # one renewal at a time
    assert p.next_deadline() == pytest.approx(LEASE - MARGIN)  # the fence, if unanswered
    # Our own write seen before its answer is no loss.
    assert p.lease_seen("s1", Lease("a", LeaseState.OWNED, 2), now=RENEW + 0.01) == []
    assert p.renewed("s1", 2, now=RENEW + 0.05) == []
    assert p.still_owner("s1", now=RENEW + LEASE - MARGIN - 0.01)
    assert p.next_deadline() == pytest.approx(2 * RENEW)
    assert p.tick(now=2 * RENEW) == [Renew("s1", 2)]
    assert p.renewed("nope", 3, now=2 * RENEW) == []


def test_a_long_run_of_renewals_keeps_exact_deadlines() -> None:
    p = policy()
    owning(p, "s1")
    owning(p, "s2", revision=2)
    at = 0.0
    revisions = {"s1": 1, "s2": 2}
    for _ in range(300):  # many superseded timers: the old ones are dropped, never fired
        at += RENEW
        assert p.next_deadline() == pytest.approx(at)
        actions = p.tick(now=at)
        assert actions == [Renew(sid, revisions[sid]) for sid in ("s1", "s2")]
        for sid in ("s1", "s2"):
            revisions[sid] += 2
            assert p.renewed(sid, revisions[sid], now=at + 0.01) == []
    assert p.still_owner("s1", now=at + LEASE - MARGIN - 0.01)
    assert p.counts.lost == 0


def test_an_owner_that_cannot_renew_stops_before_its_lease_can_expire() -> None:
    p = policy()
    owning(p)
    assert p.tick(now=RENEW) == [Renew("s1", 1)]
    assert p.renew_failed("s1", lost=False, now=RENEW + 0.2) == []
    assert p.tick(now=RENEW + 0.2 + RETRY) == [Renew("s1", 1)]
    p.renew_failed("s1", lost=False, now=RENEW + 1.0)
    fence = LEASE - MARGIN  # valid until LEASE after the claim was sent, minus the margin
    assert p.still_owner("s1", now=fence - 0.01)
    assert p.next_deadline() is not None and p.next_deadline() <= fence  # type: ignore[operator]
    # Retries go on until the fence; at the fence, stop.
    now = RENEW + 1.0
    while (deadline := p.next_deadline()) is not None and deadline < fence:
        now = deadline
        for action in p.tick(now=now):
            assert action == Renew("s1", 1)
            p.renew_failed("s1", lost=False, now=now)
    assert p.tick(now=fence) == [Stop("s1", StopWhy.LOST)]
    assert not p.still_owner("s1", now=fence)
    assert p.tick(now=fence + 5) == []  # no renewal after losing it
    # The session ends; the lease is not ours to release.
    assert p.session_ended("s1", over=False, now=fence + 0.5) == []
    assert p.counts.lost == 1 and p.owned() == []


def test_a_renewal_answered_after_the_lease_was_given_up_changes_nothing() -> None:
    p = policy()
    owning(p)
    p.tick(now=RENEW)
    assert p.tick(now=LEASE - MARGIN) == [Stop("s1", StopWhy.LOST)]
    assert p.renewed("s1", 2, now=LEASE - MARGIN + 0.1) == []
    assert not p.still_owner("s1", now=LEASE - MARGIN + 0.1)


def test_a_paused_owner_stops_before_renewing_when_it_wakes_up() -> None:
    p = policy()
    owning(p)
    # Nothing ran for two leases (SIGSTOP): the first tick stops, it does not renew.
    assert p.tick(now=2 * LEASE) == [Stop("s1", StopWhy.LOST)]
    assert not p.still_owner("s1", now=2 * LEASE)


def test_a_session_ending_after_the_fence_releases_nothing() -> None:
    p = policy()
    owning(p)
    assert not p.still_owner("s1", now=LEASE)
    # No release (the entry may be someone else's by now).
    assert p.session_ended("s1", over=False, now=LEASE) == []
    assert p.owned() == []
    # Others get a lease to take it; then this node claims it again, only if absent.
    assert p.tick(now=2 * LEASE - 0.01) == []
    assert p.tick(now=2 * LEASE) == [Claim("s1", None)]


def test_a_renewal_refused_means_the_lease_is_lost() -> None:
    p = policy()
    owning(p)
    p.tick(now=RENEW)
    assert p.renew_failed("s1", lost=True, now=RENEW + 0.1) == [Stop("s1", StopWhy.LOST)]
    assert not p.still_owner("s1", now=RENEW + 0.1)
    assert p.renew_failed("s1", lost=True, now=RENEW + 0.2) == []


def test_another_nodes_write_over_ours_means_the_lease_is_lost() -> None:
    p = policy()
    owning(p)
    assert p.lease_seen("s1", other(5), now=1.0) == [Stop("s1", StopWhy.LOST)]
    assert p.session_ended("s1", over=False, now=1.5) == []
    # Now it is someone else's: their entry could expire a lease after it was seen,
    # but a node that gave a stream up waits a lease from then.
    assert p.next_deadline() == pytest.approx(1.5 + LEASE)


def test_a_lost_stream_is_stopped_once_whatever_the_new_owner_writes() -> None:
    p = policy()
    owning(p)
    assert p.lease_seen("s1", other(5), now=1.0) == [Stop("s1", StopWhy.LOST)]
    # The session takes a while to close; the new owner renews meanwhile.
    assert p.lease_seen("s1", other(6), now=2.0) == []
    assert p.lease_seen("s1", None, now=2.5) == []
    assert p.lease_seen("s1", other(7), now=3.0) == []
    assert p.counts.lost == 1
    assert p.session_ended("s1", over=False, now=3.5) == []


def test_our_entry_vanishing_means_the_lease_is_lost() -> None:
    p = policy()
    owning(p)
    assert p.lease_seen("s1", None, now=1.0) == [Stop("s1", StopWhy.LOST)]
    assert p.lease_seen("s1", Lease("a", LeaseState.OWNED, 1), now=1.1) == []


# --------------------------------------------------------------------------- routing


def test_rtms_stopped_ends_the_stream_on_its_owner_which_marks_it_ended() -> None:
    p = policy()
    owning(p)
    assert p.webhook(stopped(), now=1.0) == [Stop("s1", StopWhy.ENDED, StopReason.MEETING_ENDED)]
    assert p.still_owner("s1", now=1.0)  # the last events are still ours to write
    assert p.webhook(stopped(), now=1.1) == []  # a duplicate
    assert p.session_ended("s1", over=True, now=1.2) == [Release("s1", 1, ended=True)]
    assert p.release_done("s1", Lease("a", LeaseState.ENDED, 2), now=1.3) == []
    assert p.known() == [] and p.counts.ended == 1
    # A late retry of the start is a duplicate: nothing is claimed.
    assert p.webhook(started(), now=2.0) == []


def test_rtms_stopped_for_a_stream_owned_elsewhere_is_forgotten() -> None:
    p = policy()
    p.lease_seen("s1", other(3), now=0.0)
    p.webhook(started(), now=0.0)
    assert p.webhook(stopped(), now=1.0) == []
    assert p.known() == [] and p.tick(now=100.0) == []
    assert p.webhook(stopped("s9"), now=1.0) == []  # a stop for an unknown stream


def test_rtms_stopped_while_claiming_releases_the_claim_as_ended() -> None:
    p = policy()
    p.webhook(started(), now=0.0)
    p.webhook(stopped(), now=0.01)
    assert p.claimed("s1", 1, now=0.02) == [Release("s1", 1, ended=True)]
    assert p.release_done("s1", None, now=0.03) == []
    assert p.known() == []


def test_rtms_stopped_while_handing_over_ends_it_instead() -> None:
    p = policy()
    owning(p)
    p.drain(now=1.0)
    p.webhook(stopped(), now=1.1)
    assert p.session_ended("s1", over=False, now=1.2) == [Release("s1", 1, ended=True)]


def test_a_new_start_for_an_owned_stream_is_a_failover_on_the_owner() -> None:
    p = policy()
    owning(p)
    moved = started(ts=150, host="rtms-iad2.zoom.us")
    assert p.webhook(moved, now=1.0) == [Failover("s1", moved)]
    # An older start arriving late is no failover back.
    assert p.webhook(started(ts=120), now=1.1) == []


def test_a_failover_for_a_stream_owned_elsewhere_is_what_a_takeover_uses() -> None:
    p = policy()
    p.lease_seen("s1", other(3), now=0.0)
    p.webhook(started(), now=0.0)
    moved = started(ts=150, host="rtms-iad2.zoom.us")
    assert p.webhook(moved, now=1.0) == []
    assert p.tick(now=LEASE) == [Claim("s1", None)]
    assert p.claimed("s1", 4, now=LEASE)[0] == Start("s1", moved, 4, True)


def test_a_stream_that_ended_in_zoom_is_marked_ended_even_without_a_webhook() -> None:
    p = policy()
    owning(p)
    assert p.session_ended("s1", over=True, now=1.0) == [Release("s1", 1, ended=True)]
    # The write failed: still forgotten here (the entry expires by itself).
    assert p.release_done("s1", None, now=1.1) == []
    assert p.known() == [] and p.tick(now=100.0) == []


def test_a_session_stopped_by_the_application_is_released_for_another_node() -> None:
    p = policy()
    owning(p)
    assert p.session_ended("s1", over=False, now=1.0) == [Release("s1", 1, ended=False)]
    assert p.release_done("s1", Lease("a", LeaseState.RELEASED, 2), now=1.1) == []
    # Other nodes claim it at once; this one only a lease later (no bouncing back).
    assert p.next_deadline() == pytest.approx(1.1 + LEASE)
    assert p.tick(now=1.1 + LEASE) == [Claim("s1", 2)]


# --------------------------------------------------------------------------- drain


def test_drain_hands_every_stream_over_and_claims_nothing_more() -> None:
    p = policy()
    owning(p, "s1")
    owning(p, "s2", revision=2)
    assert flags(p) == (True, False, False)
    assert p.drain(now=1.0) == [Stop("s1", StopWhy.HANDOVER), Stop("s2", StopWhy.HANDOVER)]
    assert flags(p) == (False, True, False)
    assert p.session_ended("s1", over=False, now=1.1) == [Release("s1", 1, ended=False)]
    assert p.session_ended("s2", over=False, now=1.1) == [Release("s2", 2, ended=False)]
    assert p.release_done("s1", Lease("a", LeaseState.RELEASED, 3), now=1.2) == []
    assert p.release_done("s2", None, now=1.2) == []
    assert flags(p) == (False, True, True) and p.counts.handovers == 2
    # Released entries and new streams are left to other nodes.
    assert p.webhook(started("s3"), now=2.0) == []
    assert p.tick(now=100.0) == [] and p.next_deadline() is None
    assert p.release_done("s1", None, now=2.0) == []  # a late answer


def test_a_claim_answered_during_a_drain_is_released_unused() -> None:
    p = policy()
    p.webhook(started(), now=0.0)
    p.drain(now=0.01)
    assert flags(p) == (False, True, False)
    assert p.claimed("s1", 1, now=0.02) == [Release("s1", 1, ended=False)]
    p.release_done("s1", Lease("a", LeaseState.RELEASED, 2), now=0.03)
    assert flags(p) == (False, True, True) and p.counts.claims == 0


def test_a_lease_lost_during_a_hand_over_is_not_released() -> None:
    p = policy()
    owning(p)
    p.drain(now=1.0)
    assert p.lease_seen("s1", other(4), now=1.1) == [Stop("s1", StopWhy.LOST)]
    assert p.session_ended("s1", over=False, now=1.2) == []
    assert p.drained


# --------------------------------------------------------------------------- placement


def test_capacity_bounds_claims_and_a_freed_slot_is_used() -> None:
    p = policy(capacity=1)
    assert p.webhook(started("s1"), now=0.0) == [Claim("s1", None)]
    assert p.webhook(started("s2"), now=0.0) == []
    p.claimed("s1", 1, now=0.0)
    assert p.tick(now=1.0) == []
    assert p.next_deadline() == pytest.approx(RENEW)  # only the renewal: no room for s2
    p.webhook(stopped("s1"), now=1.0)
    p.session_ended("s1", over=True, now=1.1)
    assert p.release_done("s1", None, now=1.2) == [Claim("s2", None)]


def test_deadlines_stay_exact_while_claims_come_and_go_over_many_streams() -> None:
    p = policy(spread=0.1, capacity=100)
    waiting = [f"w{i}" for i in range(40)]
    for sid in waiting:
        p.lease_seen(sid, other(1), now=0.0)
        assert p.webhook(started(sid), now=0.0) == []
    for i in range(10):  # each claim shifts every other claim by the spread, and back
        assert p.webhook(started(f"n{i}"), now=1.0) == [Claim(f"n{i}", None)]
        assert p.next_deadline() is None or p.next_deadline() == pytest.approx(LEASE + 0.1)
        assert p.claim_failed(f"n{i}", other(7), now=1.0) == []
        assert p.webhook(stopped(f"n{i}"), now=1.0) == []
    assert p.next_deadline() == pytest.approx(LEASE)
    claims = p.tick(now=LEASE)
    assert claims[0] == Claim("w0", None)
    # The spread: each claim made in this tick does not delay the others of the same tick.
    assert claims == [Claim(sid, None) for sid in waiting]


def test_capacity_zero_only_receives() -> None:
    p = policy(capacity=0)
    assert p.webhook(started(), now=0.0) == []
    assert p.lease_seen("s1", None, now=1.0) == []
    assert p.next_deadline() is None and p.tick(now=100.0) == []


def test_a_region_prefers_its_own_streams_and_takes_others_later() -> None:
    p = policy(region="sjc", region_delay=1.5)
    assert p.webhook(started("s1", host="rtms-sjc1.zoom.us"), now=0.0) == [Claim("s1", None)]
    assert p.webhook(started("s2", host="rtms-iad1.zoom.us"), now=0.0) == []
    assert p.webhook(started("s3", host="rtms.zoom.us"), now=0.0) == []  # no region
    p.claim_failed("s1", other(1), now=0.0)
    assert p.tick(now=1.49) == []
    assert p.tick(now=1.5) == [Claim("s2", None), Claim("s3", None)]


def test_region_codes_match_whatever_their_case() -> None:
    p = policy(region="SJC")
    assert p.webhook(started("s1", host="rtms-sjc1.zoom.us"), now=0.0) == [Claim("s1", None)]


def test_a_node_without_region_claims_every_stream_at_once() -> None:
    p = policy()
    assert p.webhook(started("s2", host="rtms-iad1.zoom.us"), now=0.0) == [Claim("s2", None)]


def test_each_held_stream_delays_new_claims_by_the_spread() -> None:
    p = policy(spread=0.1)
    owning(p, "s1")
    assert p.webhook(started("s2"), now=0.5) == []
    assert p.tick(now=0.6) == [Claim("s2", None)]
    p.claimed("s2", 2, now=0.6)
    assert p.webhook(started("s3"), now=1.0) == []
    assert p.tick(now=1.19) == []
    assert p.tick(now=1.2) == [Claim("s3", None)]


# --------------------------------------------------------------------------- engine


def test_engine_lost_stops_claims_and_keeps_owned_streams_while_fenced() -> None:
    p = policy()
    owning(p)
    assert p.engine_lost(now=1.0) == []
    assert flags(p) == (False, False, False) and p.still_owner("s1", now=1.0)
    assert p.webhook(started("s2"), now=1.5) == []
    assert p.tick(now=RENEW) == [Renew("s1", 1)]  # the owner keeps trying to renew
    assert p.engine_back(now=RENEW + 0.1) == [Claim("s2", None)]
    assert flags(p) == (True, False, False)
    assert p.renewed("s1", 2, now=RENEW + 0.2) == []
    assert p.still_owner("s1", now=RENEW + LEASE - MARGIN - 0.01)


def test_inputs_about_unknown_streams_change_nothing() -> None:
    p = policy()
    assert p.session_ended("s1", over=True, now=0.0) == []
    assert p.renew_failed("s1", lost=True, now=0.0) == []
    assert p.release_done("s1", None, now=0.0) == []
    assert not p.still_owner("s1", now=0.0)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("node", ""),
        ("region", ""),
        ("lease", 0.1),
        ("lease", float("nan")),
        ("capacity", -1),
        ("capacity", True),
        ("capacity", 1.5),
        ("region_delay", -1.0),
        ("spread", float("inf")),
        ("retry", 0.0),
    ],
)
def test_bad_configuration_is_refused(field: str, value: object) -> None:
    with pytest.raises(InvalidConfig, match=field):
        policy(**{field: value})
