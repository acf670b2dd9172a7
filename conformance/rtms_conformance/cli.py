"""``rtms-proto fake-server``: serve a synthetic meeting to any RTMS client.

Prints (or writes) the ``meeting.rtms_started`` webhook body that points at
this server, optionally POSTs it (and the later ``rtms_interrupted`` /
``rtms_stopped`` bodies) to a webhook URL with a valid ``x-zm-signature``, and
serves a fresh meeting of that stream to every client that joins with it
(``ServerConfig.fresh_meetings``) until Ctrl-C / SIGTERM, ``--duration``
seconds, or ``--streams N`` meetings have ended.  The body is one line of
JSON, so ``rtms-proto fake-server | rtms-proto record --payload -`` works.

Credentials come from the options or, like the other commands, from Zoom's
variable names ``ZM_RTMS_CLIENT``, ``ZM_RTMS_SECRET`` and
``ZM_RTMS_WEBHOOK_SECRET``.  Usage errors and a port that cannot be bound are
one line on stderr (exit status 2).  It binds to loopback unless told
otherwise and never prints a secret.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import ipaddress
import os
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from rtms_proto.enums import StopReason

from .argtypes import port_number, positive_seconds, whole_count
from .meeting import MeetingSpec
from .net import RunningServer, post_webhook, serve
from .server import FakeRtmsServer, ServerConfig, StreamInfo, StreamSpec

__all__ = ["CLIENT_ENV", "SECRET_ENV", "WEBHOOK_SECRET_ENV", "build_parser", "fake_server_main"]

CLIENT_ENV = "ZM_RTMS_CLIENT"
SECRET_ENV = "ZM_RTMS_SECRET"
WEBHOOK_SECRET_ENV = "ZM_RTMS_WEBHOOK_SECRET"
"""Zoom's variable names, the ones ``rtms_transports`` and the other commands read."""

EXIT_USAGE = 2


class UsageError(Exception):
    """Bad arguments, or a port that cannot be bound: one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """Errors in one line, and never an echo of values (one of them may be a secret)."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments: "):
            words = message.removeprefix("unrecognized arguments: ").split()
            shown = [w.split("=", 1)[0] if w.startswith("-") else "<value>" for w in words]
            message = "unrecognized arguments: " + " ".join(shown)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(prog: str = "rtms-proto fake-server") -> argparse.ArgumentParser:
    """The argument parser of the ``fake-server`` subcommand."""
    parser = _Parser(
        prog=prog,
        description="Serve a synthetic RTMS meeting on loopback and print its rtms_started "
        "webhook body (one line of JSON), so that any RTMS client can be tested against it. "
        "Every client that joins with that body gets a fresh meeting, until Ctrl-C, "
        "--duration or --streams.",
        epilog="Record from it in one line: rtms-proto fake-server --client-id ID --duration 10 "
        "| rtms-proto record --payload - --out DIR --allow-host 127.0.0.1 --client-id ID "
        f"(with {SECRET_ENV} set for both).",
    )
    parser.add_argument(
        "--port", type=port_number, default=0, help="port to listen on (0: any free)"
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, loopback)"
    )
    parser.add_argument(
        "--tls", action="store_true", help="serve wss:// with a throwaway CA (needs trustme)"
    )
    parser.add_argument(
        "--client-id", metavar="ID", help=f"the app's Client ID (or set {CLIENT_ENV})"
    )
    parser.add_argument(
        "--client-secret",
        metavar="SECRET",
        help=f"the app's Client Secret (better: set {SECRET_ENV}); never printed",
    )
    parser.add_argument(
        "--duration",
        type=positive_seconds,
        metavar="SEC",
        help="stop after SEC seconds, ending a live meeting as Zoom does (default: until Ctrl-C)",
    )
    parser.add_argument(
        "--streams",
        type=whole_count,
        metavar="N",
        help="stop once N meetings that a client joined have ended (default: no limit)",
    )
    parser.add_argument(
        "--payload-out",
        type=Path,
        metavar="FILE",
        help="write the webhook body to FILE instead of stdout",
    )
    parser.add_argument(
        "--webhook-url", metavar="URL", help="POST the webhook bodies here (loopback only)"
    )
    parser.add_argument(
        "--webhook-secret",
        metavar="SECRET",
        help=f"Secret Token to sign webhooks with (better: set {WEBHOOK_SECRET_ENV}); "
        "never printed",
    )
    parser.add_argument("--meeting-uuid", help="instance id to use (default: random)")
    parser.add_argument("--rtms-stream-id", help="stream id to use (default: random)")
    return parser


def _url_host(host: str) -> str:
    """The host to put in URLs: a wildcard bind is reached through localhost."""
    try:
        if ipaddress.ip_address(host).is_unspecified:
            return "localhost"
    except ValueError:
        pass
    return host


def fake_server_main(argv: Sequence[str] | None = None) -> int:
    """Run the ``fake-server`` subcommand; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        client_id = args.client_id or os.environ.get(CLIENT_ENV)
        if not client_id:
            raise UsageError(f"no client id: pass --client-id or set {CLIENT_ENV}")
        secret = args.client_secret or os.environ.get(SECRET_ENV)
        if not secret:
            raise UsageError(f"no client secret: set {SECRET_ENV} or pass --client-secret")
        webhook_secret = args.webhook_secret or os.environ.get(WEBHOOK_SECRET_ENV)
        if args.webhook_url and not webhook_secret:
            raise UsageError(
                f"--webhook-url needs a webhook secret: set {WEBHOOK_SECRET_ENV} "
                "or pass --webhook-secret"
            )
        return asyncio.run(_main(args, client_id, secret, webhook_secret))
    except UsageError as exc:
        sys.stderr.write(f"{parser.prog}: error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:  # pragma: no cover - Ctrl-C before the handler is installed
        return 128 + signal.SIGINT


async def _main(
    args: argparse.Namespace, client_id: str, secret: str, webhook_secret: str | None
) -> int:
    loop = asyncio.get_running_loop()
    ssl_context = None
    ca_path: Path | None = None
    url_host = _url_host(args.host)
    if args.tls:
        from .tls import make_test_ca

        names = ["localhost", "127.0.0.1", "::1"]
        if url_host not in names:
            names.append(url_host)
        tls = make_test_ca(names)
        ssl_context = tls.server_context
        if args.payload_out is not None:
            ca_path = args.payload_out.with_name(args.payload_out.name + ".ca.pem")
        else:
            ca_path = Path(tempfile.mkdtemp(prefix="rtms-fake-")) / "ca.pem"
        tls.write_ca(ca_path)
    # Message timestamps are epoch_ms + loop time: anchor them to the wall clock.
    config = ServerConfig(
        client_id=client_id,
        client_secret=secret,
        epoch_ms=round(time.time() * 1000 - loop.time() * 1000),
        fresh_meetings=True,
        video_pictures=True,
    )
    meeting_uuid = args.meeting_uuid or base64.b64encode(secrets.token_bytes(16)).decode()
    stream_id = args.rtms_stream_id or secrets.token_hex(16)
    async with contextlib.AsyncExitStack() as stack:
        try:
            running = await stack.enter_async_context(
                serve(
                    config,
                    host=args.host,
                    port=args.port,
                    ssl_context=ssl_context,
                    url_host=url_host,
                    webhook_url=args.webhook_url,
                    webhook_secret=webhook_secret,
                )
            )
        except OSError as exc:
            raise UsageError(
                f"cannot listen on {args.host}:{args.port}: "
                f"{os.strerror(exc.errno) if exc.errno else exc}"
            ) from None
        spec = StreamSpec(
            meeting_uuid=meeting_uuid, rtms_stream_id=stream_id, meeting=MeetingSpec()
        )
        info = running.add_stream(spec)
        body = running.rtms_started_body(info)
        _report(running, info, ca_path, args)
        if args.payload_out is not None:
            args.payload_out.write_bytes(body + b"\n")
        else:
            sys.stdout.write(body.decode() + "\n")
            sys.stdout.flush()
        if args.webhook_url:
            await _post(loop, args.webhook_url, body, webhook_secret)
        await _serve_until_done(loop, running, info, args)
    return 0


def _report(
    running: RunningServer, info: StreamInfo, ca_path: Path | None, args: argparse.Namespace
) -> None:
    err = sys.stderr
    print(f"fake RTMS server listening on {running.base_url}", file=err)
    print(f"stream {info.rtms_stream_id}: {info.signaling_url}", file=err)
    if ca_path is not None:
        print(f"TLS CA certificate (trust it in the client): {ca_path}", file=err)
    if args.payload_out is not None:
        print(f"webhook body written to {args.payload_out}", file=err)
    print(
        f"clients must allow the host {running.base_url.split('//', 1)[1].rsplit(':', 1)[0]}"
        " (it is not a Zoom host); stop with Ctrl-C",
        file=err,
    )


async def _post(loop: asyncio.AbstractEventLoop, url: str, body: bytes, secret: str | None) -> None:
    assert secret is not None
    try:
        status = await loop.run_in_executor(None, post_webhook, url, body, secret)
        print(f"webhook POSTed to {url}: HTTP {status}", file=sys.stderr)
    except (OSError, ValueError) as exc:
        print(f"webhook POST to {url} failed: {exc}", file=sys.stderr)


async def _serve_until_done(
    loop: asyncio.AbstractEventLoop,
    running: RunningServer,
    info: StreamInfo,
    args: argparse.Namespace,
) -> None:
    """Serve meeting after meeting until Ctrl-C / SIGTERM, ``--duration`` or ``--streams``;
    a live meeting is then ended as Zoom ends one (state updates, close frames, stop webhook)."""
    interrupted = asyncio.Event()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, interrupted.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows, threads
            pass
    deadline = None if args.duration is None else loop.time() + args.duration
    limit = args.streams
    sid = info.rtms_stream_id
    served = 0
    try:
        stop = asyncio.ensure_future(interrupted.wait())
        while limit is None or served < limit:
            change = asyncio.ensure_future(_more_served(running, sid, served))
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            done, _ = await asyncio.wait(
                {change, stop}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if change not in done:
                change.cancel()
                break  # a signal or the deadline
            served = running.status(sid).served
            last = limit is not None and served >= limit
            more = "" if last else "; the next client gets a fresh meeting"
            print(f"stream {sid}: meeting {served} ended{more}", file=sys.stderr)
        stop.cancel()
        status = running.status(sid)
        if not status.ended and status.signaling_handshakes:
            print("stopping: ending the meeting", file=sys.stderr)
            running.end_stream(sid, StopReason.MEETING_ENDED)
        # Let the close frames and the stop webhook go out.
        await asyncio.sleep(0.5)
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


async def _more_served(running: RunningServer, sid: str, seen: int) -> None:
    """Return once more than ``seen`` meetings of the stream have ended."""

    def more(core: FakeRtmsServer) -> bool:
        return core.status(sid).served > seen

    await running.wait_for(more, timeout=None)


if __name__ == "__main__":  # pragma: no cover - python -m rtms_conformance.cli
    sys.exit(fake_server_main())
