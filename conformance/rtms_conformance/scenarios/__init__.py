"""The conformance scenarios, as data.

:mod:`.model` is the data model (:class:`Scenario` and what it is made of),
:mod:`.builders` the standard meeting and stream the scenarios vary, and one module
per theme holds the scenarios: :data:`SCENARIOS` plays :mod:`.happy_paths`,
:mod:`.handshakes`, :mod:`.liveness`, :mod:`.reconnects`, :mod:`.endings`,
:mod:`.odd_input` and :mod:`.application`, in that order.

Times are seconds from the moment the server starts serving the stream.  The
catalogue keeps every moment that depends on the client's speed (its first
handshakes, a reconnect finishing, an application command reaching the
server) at least 200 ms away from the server's scheduled output that could
race with it; connecting takes 10-50 ms on loopback.  Audio packets are due
every 400 ms (0.4, 0.8, 1.2 s), video and screen-share frames every 200 ms,
the standard meeting's events happen at 0.6 and 1.0 s and it ends at 1.3 s,
faults mostly strike at 0.65 s.  An application command happens *on an
event* (the n-th event of a kind), never at a wall-clock time, so that it
happens at the same point of the trace in every transport; "at time t" is
expressed as "on the event the server sends at t".
"""

from __future__ import annotations

from .application import APPLICATION
from .endings import ENDINGS
from .handshakes import HANDSHAKES
from .happy_paths import HAPPY_PATHS
from .liveness import LIVENESS
from .model import (
    CLIENT_ID,
    CLIENT_SECRET,
    Action,
    ClientSettings,
    CloseStream,
    Command,
    Failover,
    NotifyStopped,
    On,
    Pause,
    RequestStreamState,
    Scenario,
    ServerSettings,
    Stop,
    SubscribeEvents,
    SubscribeVideo,
    trace_lines,
)
from .odd_input import ODD_INPUT
from .reconnects import RECONNECTS

__all__ = [
    "CLIENT_ID",
    "CLIENT_SECRET",
    "SCENARIOS",
    "Action",
    "ClientSettings",
    "CloseStream",
    "Command",
    "Failover",
    "NotifyStopped",
    "On",
    "Pause",
    "RequestStreamState",
    "Scenario",
    "ServerSettings",
    "Stop",
    "SubscribeEvents",
    "SubscribeVideo",
    "by_name",
    "trace_lines",
]

SCENARIOS: tuple[Scenario, ...] = (
    *HAPPY_PATHS,
    *HANDSHAKES,
    *LIVENESS,
    *RECONNECTS,
    *ENDINGS,
    *ODD_INPUT,
    *APPLICATION,
)


def by_name(name: str) -> Scenario:
    """The catalogue's scenario called ``name``."""
    for scenario in SCENARIOS:
        if scenario.name == name:
            return scenario
    known = ", ".join(s.name for s in SCENARIOS)
    raise KeyError(f"no scenario {name!r} (known: {known})")
