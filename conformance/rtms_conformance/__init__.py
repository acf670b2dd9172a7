"""rtms_conformance: a faithful fake Zoom RTMS server, and the conformance suite run on it.

The package sits between the core and the drivers: it imports ``rtms_proto``
only, never a transport (``rtms_transports``) nor the application.

The server:

* :mod:`~rtms_conformance.server` — the pure, Sans-I/O protocol core
  (:class:`FakeRtmsServer`, :class:`ServerConfig`, :class:`StreamSpec`),
  composed of parts with one concern each (see :mod:`rtms_conformance.server.core`);
* :mod:`~rtms_conformance.meeting`, :mod:`~rtms_conformance.timeline`,
  :mod:`~rtms_conformance.payloads` — the synthetic meeting and its media;
* :mod:`~rtms_conformance.faults` — scriptable fault injection;
* :mod:`~rtms_conformance.webhooks` — webhook bodies and signatures;
* :mod:`~rtms_conformance.memory` — server and clients on one simulated clock;
* :mod:`~rtms_conformance.net` — real sockets (asyncio, a background thread, TLS via
  :mod:`~rtms_conformance.tls`) and webhook delivery;
* :mod:`~rtms_conformance.cli` — the ``fake-server`` command.

The conformance suite (every transport must produce the same trace as the
in-memory reference):

* :mod:`~rtms_conformance.scenarios` — the catalogue: server script, client
  configuration, application commands and the expected trace of each scenario
  (the data model in ``scenarios.model``, the scenarios in one module per theme);
* :mod:`~rtms_conformance.trace` — how what the application saw becomes a trace;
* :mod:`~rtms_conformance.harness` — what a transport's adapter implements, and
  the in-memory reference adapter;
* :mod:`~rtms_conformance.adapters` — finding adapters by name;
* :mod:`~rtms_conformance.runner` — runs scenarios and compares traces;
* :mod:`~rtms_conformance.plugin` — the pytest plugin (``--rtms-adapter``);
* ``python -m rtms_conformance`` — the same from the command line.

Registering a transport's adapter
    An adapter (a :class:`~rtms_conformance.harness.Harness`: subclass
    ``AsyncioHarness``, ``TrioHarness`` or ``ThreadedHarness`` and write
    ``run_stream``) can always be named as ``module:factory``.  To give it a
    short name, the package that ships it declares an entry point in the
    ``rtms_conformance.adapters`` group; the name is then accepted by
    ``python -m rtms_conformance --adapter``, ``pytest --rtms-adapter`` and
    :func:`rtms_conformance.adapters.load_adapter`.  In ``pyproject.toml``::

        [project.entry-points."rtms_conformance.adapters"]
        my-transport = "my_package.conformance:MyAdapter"

    This is how ``rtms_transports`` registers ``asyncio``, ``trio`` and
    ``blocking`` (``rtms_transports.conformance``); only ``memory``, the
    in-memory reference, is built in.

The names below are imported on first use, so that importing a submodule (the
pytest plugin is loaded in every pytest run) does not load the server.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from . import faults, timeline
    from .meeting import MeetingScript, MeetingSpec, expected_audio
    from .memory import MemoryNetwork, WsPeer
    from .server import (
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

_SUBMODULES = frozenset({"faults", "timeline"})
_HOME = {
    **dict.fromkeys(("MeetingScript", "MeetingSpec", "expected_audio"), ".meeting"),
    **dict.fromkeys(("MemoryNetwork", "WsPeer"), ".memory"),
    **dict.fromkeys(
        (
            "Abort",
            "Close",
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
        ),
        ".server",
    ),
}


def __getattr__(name: str) -> object:
    """Import a public name on first access (PEP 562) and keep it."""
    if name in _SUBMODULES:
        value: object = importlib.import_module(f".{name}", __name__)
    elif name in _HOME:
        value = getattr(importlib.import_module(_HOME[name], __name__), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
