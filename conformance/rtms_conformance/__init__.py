"""rtms_conformance: a faithful fake Zoom RTMS server, and (later) the conformance suite.

The server:

* :mod:`~rtms_conformance.server_core` — the pure, Sans-I/O protocol core
  (:class:`FakeRtmsServer`, :class:`ServerConfig`, :class:`StreamSpec`);
* :mod:`~rtms_conformance.meeting`, :mod:`~rtms_conformance.timeline`,
  :mod:`~rtms_conformance.payloads` — the synthetic meeting and its media;
* :mod:`~rtms_conformance.faults` — scriptable fault injection;
* :mod:`~rtms_conformance.handshake` — what the server checks, which status it answers;
* :mod:`~rtms_conformance.webhooks` — webhook bodies and signatures;
* :mod:`~rtms_conformance.memory` — server and clients on one simulated clock;
* :mod:`~rtms_conformance.net` — real sockets (asyncio, a background thread, TLS via
  :mod:`~rtms_conformance.tls`) and webhook delivery;
* :mod:`~rtms_conformance.cli` — the ``fake-server`` command.
"""

from . import faults, timeline
from .meeting import MeetingScript, MeetingSpec, expected_audio
from .memory import MemoryNetwork, WsPeer
from .server_core import (
    Abort,
    Close,
    EmitWebhook,
    FakeRtmsServer,
    PauseReading,
    Send,
    ServerAction,
    ServerConfig,
    StreamInfo,
    StreamSpec,
    StreamStatus,
    TraceEntry,
)

__all__ = [
    "Abort",
    "Close",
    "EmitWebhook",
    "FakeRtmsServer",
    "MeetingScript",
    "MeetingSpec",
    "MemoryNetwork",
    "PauseReading",
    "Send",
    "ServerAction",
    "ServerConfig",
    "StreamInfo",
    "StreamSpec",
    "StreamStatus",
    "TraceEntry",
    "WsPeer",
    "expected_audio",
    "faults",
    "timeline",
]
