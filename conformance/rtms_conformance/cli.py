"""``rtms-proto fake-server``: serve a synthetic meeting to any RTMS client.

Prints (or writes) the ``meeting.rtms_started`` webhook body that points at
this server, optionally POSTs it (and the later ``rtms_interrupted`` /
``rtms_stopped`` bodies) to a webhook URL with a valid ``x-zm-signature``, and
serves until ``--duration`` has passed or Ctrl-C.  It binds to loopback unless
told otherwise and never prints the client secret.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import ipaddress
import os
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from rtms_proto.enums import StopReason

from .meeting import MeetingSpec
from .net import RunningServer, post_webhook, serve
from .server import ServerConfig, StreamInfo, StreamSpec

__all__ = ["build_parser", "fake_server_main"]

SECRET_ENV = "RTMS_CLIENT_SECRET"
WEBHOOK_SECRET_ENV = "RTMS_WEBHOOK_SECRET"


def build_parser(prog: str = "rtms-proto fake-server") -> argparse.ArgumentParser:
    """The argument parser of the ``fake-server`` subcommand."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Serve a synthetic RTMS meeting on loopback and print its rtms_started "
        "webhook body, so that any RTMS client can be tested against it.",
    )
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, loopback)"
    )
    parser.add_argument(
        "--tls", action="store_true", help="serve wss:// with a throwaway CA (needs trustme)"
    )
    parser.add_argument("--client-id", required=True, help="the app's Client ID")
    parser.add_argument(
        "--client-secret",
        help=f"the app's Client Secret (or set {SECRET_ENV}; never printed)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        help="end the meeting after SEC seconds (default: run until Ctrl-C)",
    )
    parser.add_argument(
        "--payload-out", type=Path, help="write the webhook body to FILE instead of stdout"
    )
    parser.add_argument("--webhook-url", help="POST the webhook bodies here (loopback only)")
    parser.add_argument(
        "--webhook-secret", help=f"Secret Token to sign webhooks with (or {WEBHOOK_SECRET_ENV})"
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
    secret = args.client_secret or os.environ.get(SECRET_ENV)
    if not secret:
        parser.error(f"--client-secret (or {SECRET_ENV}) is required")
    webhook_secret = args.webhook_secret or os.environ.get(WEBHOOK_SECRET_ENV)
    if args.webhook_url and not webhook_secret:
        parser.error("--webhook-url needs --webhook-secret")
    if args.duration is not None and not args.duration > 0:
        parser.error("--duration must be positive")
    try:
        return asyncio.run(_main(args, secret, webhook_secret))
    except KeyboardInterrupt:  # pragma: no cover - Ctrl-C before the handler is installed
        return 130


async def _main(args: argparse.Namespace, secret: str, webhook_secret: str | None) -> int:
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
        client_id=args.client_id,
        client_secret=secret,
        epoch_ms=round(time.time() * 1000 - loop.time() * 1000),
    )
    meeting_uuid = args.meeting_uuid or base64.b64encode(secrets.token_bytes(16)).decode()
    stream_id = args.rtms_stream_id or secrets.token_hex(16)
    async with serve(
        config,
        host=args.host,
        port=args.port,
        ssl_context=ssl_context,
        url_host=url_host,
        webhook_url=args.webhook_url,
        webhook_secret=webhook_secret,
    ) as running:
        spec = StreamSpec(
            meeting_uuid=meeting_uuid,
            rtms_stream_id=stream_id,
            meeting=MeetingSpec(duration=args.duration),
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
        await _serve_until_done(loop, running, info)
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
    loop: asyncio.AbstractEventLoop, running: RunningServer, info: StreamInfo
) -> None:
    """Serve until the stream has ended (and its sockets closed) or Ctrl-C / SIGTERM."""
    interrupted = asyncio.Event()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, interrupted.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows, threads
            pass
    try:
        ended = asyncio.ensure_future(
            running.wait_for(lambda core: core.status(info).ended, timeout=None)
        )
        stop = asyncio.ensure_future(interrupted.wait())
        await asyncio.wait({ended, stop}, return_when=asyncio.FIRST_COMPLETED)
        for task in (ended, stop):
            task.cancel()
        if interrupted.is_set() and not running.status(info).ended:
            print("stopping: ending the stream", file=sys.stderr)
            running.end_stream(info, StopReason.MEETING_ENDED)
        # Let the close frames and the stop webhook go out.
        await asyncio.sleep(0.5)
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


if __name__ == "__main__":  # pragma: no cover - python -m rtms_conformance.cli
    sys.exit(fake_server_main())
