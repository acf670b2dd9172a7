"""Gates on the core as a whole: purity and a frozen public surface."""

from __future__ import annotations

import ast
import inspect
import pathlib

import rtms_proto

CORE = pathlib.Path(rtms_proto.__file__).parent

BANNED = {
    "asyncio",
    "trio",
    "socket",
    "ssl",
    "select",
    "selectors",
    "threading",
    "time",
    "random",
    "secrets",
    "os",
    "subprocess",
    "multiprocessing",
    "logging",
    "datetime",
}


def _imports(path: pathlib.Path) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def test_core_imports_no_io_clock_or_randomness() -> None:
    offenders = [
        f"{path.name}:{line} imports {name}"
        for path in sorted(CORE.rglob("*.py"))
        for line, name in _imports(path)
        if name.split(".")[0] in BANNED
    ]
    assert offenders == []


def test_purity_check_sees_banned_imports(tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import time\nfrom os import path\nfrom . import relative\n")
    assert [name for _, name in _imports(bad)] == ["time", "os"]


def test_public_names_are_frozen() -> None:
    assert sorted(rtms_proto.__all__) == sorted(
        [
            "Action",
            "AudioParams",
            "BackoffPolicy",
            "ChatParams",
            "CloseSocket",
            "ConnState",
            "ConnectionClosed",
            "ConnectionOptions",
            "Credentials",
            "DEFAULT_ALLOWED_HOSTS",
            "DeskshareParams",
            "DisallowedHost",
            "Event",
            "EventType",
            "FailureReason",
            "InvalidConfig",
            "Jitter",
            "Layout",
            "LocalProtocolError",
            "MediaConnection",
            "MediaParams",
            "MediaType",
            "OpenSocket",
            "Output",
            "Product",
            "RemoteProtocolError",
            "RtmsError",
            "SendBytes",
            "ServerUrl",
            "Session",
            "SessionConfig",
            "SessionPhase",
            "SignalingConnection",
            "SocketId",
            "SocketRole",
            "StatusTable",
            "StreamIdentity",
            "TranscriptParams",
            "VideoParams",
            "WebhookError",
            "actions",
            "audio",
            "backoff_delay",
            "enums",
            "events",
            "handshake_signature",
            "messages",
            "parse_server_url",
            "webhooks",
        ]
    )
    for name in rtms_proto.__all__:
        assert getattr(rtms_proto, name) is not None


PUBLIC_MODULES = {"actions", "audio", "enums", "events", "messages", "webhooks"}


def test_only_the_public_modules_have_public_names() -> None:
    """Implementation modules start with ``_``: ``__all__`` is the whole surface."""
    names = {p.stem for p in CORE.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
    public = {n for n in names if not n.startswith("_")}
    assert public == PUBLIC_MODULES
    assert set(rtms_proto.__all__) >= PUBLIC_MODULES


SESSION_INPUTS = [
    "start",
    "socket_opened",
    "receive_data",
    "receive_eof",
    "socket_failed",
    "handle_timer",
    "subscribe_events",
    "subscribe_video",
    "request_stream_state",
    "request_session_state",
    "close_stream",
    "stop",
    "notify_stopped",
    "failover",
]
CONNECTION_INPUTS = [
    "start",
    "socket_opened",
    "receive_data",
    "receive_batches",
    "receive_eof",
    "socket_failed",
    "handle_timer",
    "close",
]


def test_now_is_the_last_argument_and_keyword_only_on_every_input() -> None:
    """One place for the time on every input, so a call can never pass it as something else."""
    cases = [(rtms_proto.Session, name) for name in SESSION_INPUTS] + [
        (cls, name)
        for cls in (rtms_proto.SignalingConnection, rtms_proto.MediaConnection)
        for name in CONNECTION_INPUTS
    ]
    for cls, name in cases:
        params = list(inspect.signature(getattr(cls, name)).parameters.values())
        assert params[-1].name == "now", (cls, name)
        assert params[-1].kind is inspect.Parameter.KEYWORD_ONLY, (cls, name)
        assert params[-1].default is inspect.Parameter.empty, (cls, name)
        assert [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY] == ["now"]
