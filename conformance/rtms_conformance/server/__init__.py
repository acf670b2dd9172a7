"""The fake RTMS server: a pure, Sans-I/O core composed of parts, one concern a module.

Import the server from here (or from :mod:`rtms_conformance`):
:class:`FakeRtmsServer`, its configuration and stream specs, and the values it
produces.  Its drivers live beside this package: :mod:`rtms_conformance.memory`
(a simulated clock) and :mod:`rtms_conformance.net` (real sockets).

The parts (see :mod:`.core` for how they fit): :mod:`.output`, :mod:`.endings`,
:mod:`.media`, :mod:`.handshakes` (with the pure :mod:`.checks`),
:mod:`.signaling`, :mod:`.liveness`, :mod:`.timeline`, :mod:`.connections`
(over the WebSocket layer :mod:`.ws_server` and the URLs in :mod:`.routes`)
and :mod:`.schedule`, acting on the plain data of :mod:`.state`; the public
values are in :mod:`.types`.
"""

from __future__ import annotations

from .core import FakeRtmsServer
from .types import (
    ALL_SCOPES,
    Abort,
    Close,
    ConnId,
    EmitWebhook,
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
    "ALL_SCOPES",
    "Abort",
    "Close",
    "ConnId",
    "EmitWebhook",
    "FakeRtmsServer",
    "PauseReading",
    "Send",
    "ServerAction",
    "ServerConfig",
    "StreamInfo",
    "StreamSpec",
    "StreamStatus",
    "TraceEntry",
]
