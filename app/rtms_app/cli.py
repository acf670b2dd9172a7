"""The ``rtms-proto`` command (also ``python -m rtms_app``).

Subcommands:

``demo``
    start the built-in fake RTMS server on loopback (TLS with a throwaway CA),
    record its synthetic meeting for ``--duration`` seconds with live progress,
    and list the files written.  No Zoom account, no network.
``record``
    join the stream of an ``rtms_started`` webhook body and record it until it
    ends.
``listen``
    receive Zoom's webhooks over HTTP and record every stream into its own
    folder, concurrently; with ``--engine``, as one node of a fleet sharing
    the streams through NATS JetStream (:mod:`.fleet_listen`).  Every
    ``listen`` answers ``GET /healthz``, ``/readyz`` and ``/metrics``
    (:mod:`.observability`).
``replay``
    re-run a ``--save-wire`` recording through the core and write the files
    again, into a new or empty ``--out`` folder (``--in-place``: the
    recording's own folder).
``fake-server``
    the fake RTMS server alone, a fresh meeting for every client (see
    ``rtms-proto fake-server --help``); ``rtms-proto fake-server | rtms-proto
    record --payload -`` records from it.

``record`` refuses an ``--out`` folder that is not empty (``--force``: write
into it anyway) and ``demo`` takes the next free ``DIR-2``, ``DIR-3`` ...,
so that two recordings are never mixed; a recording that never connected
leaves no folder behind.

Exit status: 0 when the stream ended normally, 1 when it could not be joined
or ended on an error (a file that cannot be written: the line names the file
and the cause, and the files keep what was written), 2 for bad arguments or
configuration (including a refused host), 128 + the signal number after
Ctrl-C (SIGINT) or SIGTERM.  Errors are one line on stderr; secrets are never
printed, and text from the network (reasons, names, ids) is printed through
:func:`~.terminal.printable`, in the log too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import enum
import json
import logging
import os
import secrets
import signal
import ssl
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NoReturn

from rtms_conformance.argtypes import port_number, positive_seconds
from rtms_proto import (
    DEFAULT_ALLOWED_HOSTS,
    AudioParams,
    Credentials,
    DeskshareParams,
    InvalidConfig,
    Layout,
    LocalProtocolError,
    MediaParams,
    MediaType,
    RtmsError,
    SessionConfig,
    VideoParams,
    WebhookError,
    __version__,
)
from rtms_proto import events as ev
from rtms_proto.enums import AudioChannel, AudioSampleRate, Codec, DataOption
from rtms_proto.webhooks import Disposition, RtmsStarted, WebhookErrorKind, WebhookRejected
from rtms_transports import CA_ENV, CLIENT_ENV, SECRET_ENV, TransportOptions, session_config

from ._signals import on_signals
from .observability import Observability
from .progress import Progress, format_bytes
from .recording import FLAVOURS, OK_ENDS, StreamJob, run_job
from .sinks import (
    Recorder,
    RecorderOptions,
    Stats,
    WireFormatError,
    WrittenFile,
    read_wire_header,
    replay,
)
from .sinks._files import safe_name
from .terminal import printable
from .webhook_server import StreamAction, WebhookReceiver, WebhookServer

__all__ = ["build_parser", "main"]

PROG = "rtms-proto"
WEBHOOK_SECRET_ENV = "ZM_RTMS_WEBHOOK_SECRET"
WIRE_NAME = "wire.rtms"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

_MEDIA = {
    "audio": MediaType.AUDIO,
    "video": MediaType.VIDEO,
    "deskshare": MediaType.DESKSHARE,
    "transcript": MediaType.TRANSCRIPT,
    "chat": MediaType.CHAT,
}
_ALL_MEDIA = MediaType.AUDIO | MediaType.VIDEO | MediaType.DESKSHARE
_ALL_MEDIA |= MediaType.TRANSCRIPT | MediaType.CHAT
_RATES = {8000: AudioSampleRate.SR_8K, 16000: AudioSampleRate.SR_16K}
_RATES |= {32000: AudioSampleRate.SR_32K, 48000: AudioSampleRate.SR_48K}
_CODECS = {"jpg": Codec.JPG, "png": Codec.PNG, "h264": Codec.H264}


class UsageError(Exception):
    """Bad arguments or configuration: one line on stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """Errors in one line, and never an echo of values (one of them may be a secret)."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments: "):
            words = message.removeprefix("unrecognized arguments: ").split()
            shown = [
                w.split("=", 1)[0] + "=<value>"
                if "=" in w
                else w
                if w.startswith("-")
                else "<value>"
                for w in words
            ]
            message = "unrecognized arguments: " + " ".join(shown)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# --------------------------------------------------------------------------- arguments


def _media(text: str) -> MediaType:
    flags = MediaType.UNDEFINED
    for word in text.replace(" ", "").lower().split(","):
        if word == "all":
            flags |= _ALL_MEDIA
        elif word in _MEDIA:
            flags |= _MEDIA[word]
        elif word:
            raise argparse.ArgumentTypeError(
                f"unknown media type {word!r} (use {', '.join(_MEDIA)} or all)"
            )
    if not flags:
        raise argparse.ArgumentTypeError("name at least one media type")
    return flags


def _add_media_options(p: argparse.ArgumentParser, default_media: str) -> None:
    g = p.add_argument_group("what to record")
    g.add_argument(
        "--media",
        type=_media,
        default=_media(default_media),
        metavar="LIST",
        help=f"comma-separated: audio,video,deskshare,transcript,chat or all "
        f"(default: {default_media})",
    )
    g.add_argument(
        "--layout",
        choices=["split", "unified"],
        default="split",
        help="one socket per media type (split, default) or one for all (unified)",
    )
    g.add_argument(
        "--audio-streams",
        choices=["mixed", "per-speaker"],
        default="mixed",
        help="one mixed track (audio.wav, default) or one per speaker (audio-<user id>.wav)",
    )
    g.add_argument(
        "--sample-rate",
        type=int,
        choices=sorted(_RATES),
        default=16000,
        help="audio sample rate in Hz (default 16000)",
    )
    g.add_argument(
        "--channels", type=int, choices=[1, 2], default=1, help="audio channels (default 1)"
    )
    g.add_argument(
        "--video-codec",
        choices=sorted(_CODECS),
        default="jpg",
        help="video and screen share as JPEG files (default), PNG files or an H.264 stream",
    )
    g.add_argument(
        "--buffer-data",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="Zoom keeps a stream's audio from the moment it started (up to 60 s) until you "
        "connect, and delivers that backlog first: a recording started 10 s into a meeting "
        "then begins with those 10 s of audio, while video and transcript start when you "
        "connect.  --no-buffer-data starts the audio when you connect (default: Zoom's, "
        "which keeps the backlog; docs/protocol.md §6.7)",
    )
    g.add_argument(
        "--no-gap-fill",
        dest="gap_fill",
        action="store_false",
        help="write audio packets back to back instead of filling gaps with silence",
    )


def _add_run_options(p: argparse.ArgumentParser, *, wire: bool = True) -> None:
    p.add_argument(
        "--transport",
        choices=FLAVOURS,
        default="asyncio",
        help="I/O library to run the session on (default asyncio)",
    )
    if wire:
        p.add_argument(
            "--save-wire",
            nargs="?",
            const="",
            default=None,
            metavar="FILE",
            help=f"also save the raw inbound frames for 'replay' (default FILE: DIR/{WIRE_NAME})",
        )
    p.add_argument("-q", "--quiet", action="store_true", help="no live progress and no summary")
    p.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log connections, reconnects (socket, delay, reason) and, for listen, every "
        "webhook decision with its reason to stderr (-vv: also our debug lines); "
        "secrets are never logged",
    )


def _add_server_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("Zoom app and server")
    g.add_argument("--client-id", metavar="ID", help=f"the app's Client ID (or set {CLIENT_ENV})")
    g.add_argument(
        "--client-secret",
        metavar="SECRET",
        help=f"the app's Client Secret (better: set {SECRET_ENV}, which other users cannot "
        "see in the process list); never printed",
    )
    g.add_argument(
        "--ca-file",
        metavar="PEM",
        help=f"trust these CA certificates instead of the system's (or set {CA_ENV})",
    )
    g.add_argument(
        "--allow-host",
        action="extend",
        nargs="+",
        default=[],
        metavar="HOST",
        help="also connect to this host (and its subdomains): server URLs outside "
        f"Zoom's domains ({', '.join(DEFAULT_ALLOWED_HOSTS)}) are refused otherwise",
    )
    g.add_argument(
        "--proxy",
        metavar="URL",
        help="connect through this proxy: http://, socks5:// (name resolved here) or "
        "socks5h:// (by the proxy), [user:password@]host[:port]; 'direct' for none. "
        "Default: from the environment (no_proxy, wss_proxy, https_proxy, all_proxy), "
        "where a password is not in the process list",
    )


def _capacity(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a whole number >= 0") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be a whole number >= 0")
    return value


def _add_fleet_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "fleet (many nodes on NATS JetStream; needs: pip install 'rtms-proto[fleet]')"
    )
    g.add_argument(
        "--engine",
        metavar="URLS",
        help="nats://HOST:PORT[,nats://HOST2:PORT...]: run as one node of a fleet",
    )
    g.add_argument("--node", metavar="NAME", help="this node's name (default: <host>-<pid>)")
    g.add_argument(
        "--capacity",
        type=_capacity,
        default=10,
        metavar="N",
        help="streams recorded at once (default 10; 0: receive webhooks only)",
    )
    g.add_argument(
        "--lease",
        type=positive_seconds,
        default=30.0,  # rtms_fleet.DEFAULT_LEASE (a test keeps them equal)
        metavar="SECONDS",
        help="ownership lease, the same on every node: a dead node's streams move after"
        " it; it must outlast a NATS leader election (default 30)",
    )
    g.add_argument("--region", metavar="CODE", help="prefer streams on RTMS servers of this region")
    g.add_argument(
        "--publish",
        action="store_true",
        help="also publish every event on NATS subjects rtms.<stream id>.<kind>",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``rtms-proto`` argument parser."""
    parser = _Parser(
        prog=PROG,
        description="Receive Zoom Realtime Media Streams (RTMS) into files: audio as WAV, "
        "transcripts as JSON lines and WebVTT, chat, events, video frames.",
        epilog="Start with 'rtms-proto demo': it needs no Zoom account and no network.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = sub.add_parser(
        "demo",
        help="record a synthetic meeting from the built-in fake server (no Zoom needed)",
        description="Start the built-in fake RTMS server on loopback (TLS with a throwaway "
        "CA), record its synthetic meeting with live progress, and list the files written.",
    )
    demo.add_argument(
        "--out",
        type=Path,
        default=Path("rtms-demo"),
        metavar="DIR",
        help="default: rtms-demo; when DIR is not empty, a fresh DIR-2, DIR-3 ... is used "
        "(and named)",
    )
    demo.add_argument(
        "--duration",
        type=positive_seconds,
        default=10.0,
        metavar="SEC",
        help="length of the meeting in seconds (default 10)",
    )
    _add_run_options(demo)
    _add_media_options(demo, "all")
    demo.set_defaults(func=_cmd_demo)

    record = sub.add_parser(
        "record",
        help="record the stream of an rtms_started webhook until it ends",
        description="Connect to the stream described by an rtms_started webhook body (the "
        "whole body, or just its payload) and record it until the stream ends. Ctrl-C "
        "closes the stream gracefully and keeps what was written.",
    )
    record.add_argument(
        "--payload",
        required=True,
        metavar="FILE",
        help="the webhook body or its payload, as JSON ('-': standard input, where the "
        "first JSON document is read without waiting for the end of input, so that "
        "'rtms-proto fake-server | rtms-proto record --payload -' works)",
    )
    record.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="DIR",
        help="output folder; one that is not empty is refused unless --force",
    )
    record.add_argument(
        "--force",
        action="store_true",
        help="write into a folder that is not empty (files of the same name are replaced, "
        "others stay: two recordings may then be mixed)",
    )
    _add_run_options(record)
    _add_server_options(record)
    _add_media_options(record, "audio,transcript")
    record.set_defaults(func=_cmd_record)

    listen = sub.add_parser(
        "listen",
        help="receive Zoom webhooks and record every stream",
        description="An HTTP endpoint for Zoom's webhooks: verifies x-zm-signature, answers "
        "endpoint.url_validation, and records every stream concurrently into "
        "DIR/<rtms_stream_id>/ until its rtms_stopped. Stop with Ctrl-C.",
    )
    listen.add_argument("--port", required=True, type=port_number, help="TCP port to listen on")
    listen.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; behind a proxy)"
    )
    listen.add_argument(
        "--out", type=Path, default=Path("recordings"), metavar="DIR", help="default: recordings"
    )
    listen.add_argument(
        "--webhook-secret",
        metavar="SECRET",
        help=f"the app's webhook Secret Token (better: set {WEBHOOK_SECRET_ENV}); never printed",
    )
    listen.add_argument(
        "--once", action="store_true", help="exit when the first stream's recording is done"
    )
    _add_run_options(listen, wire=False)
    listen.add_argument(
        "--save-wire",
        action="store_true",
        help=f"also save each stream's raw inbound frames (DIR/<stream>/{WIRE_NAME})",
    )
    _add_server_options(listen)
    _add_media_options(listen, "audio,transcript")
    _add_fleet_options(listen)
    listen.set_defaults(func=_cmd_listen)

    rep = sub.add_parser(
        "replay",
        help="re-run a --save-wire recording and write its files again",
        description="Feed the raw inbound frames saved with --save-wire through a fresh "
        "session (no network) and write the files again: into a new or empty --out folder, "
        "or with --in-place over the recording's own files.",
    )
    rep.add_argument("file", type=Path, metavar="FILE", help="the wire recording")
    where = rep.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="where to write; one that is not empty is refused unless --force",
    )
    where.add_argument(
        "--in-place",
        action="store_true",
        help="rewrite the files in FILE's folder (the recording's own files are replaced)",
    )
    rep.add_argument(
        "--force", action="store_true", help="write into an --out folder that is not empty"
    )
    rep.add_argument(
        "--gap-fill",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="override the recording's gap filling",
    )
    rep.add_argument("-q", "--quiet", action="store_true", help="no summary")
    rep.add_argument("-v", "--verbose", action="count", default=0, help=argparse.SUPPRESS)
    rep.set_defaults(func=_cmd_replay)

    sub.add_parser(
        "fake-server",
        help="serve a synthetic meeting to every RTMS client until stopped "
        "(see: fake-server --help)",
        add_help=False,
    )
    return parser


# --------------------------------------------------------------------------- entry point


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] == "fake-server":
        from rtms_conformance.cli import fake_server_main

        try:
            return fake_server_main(args_list[1:])
        except ImportError as exc:  # --tls without trustme: one line, not a traceback
            if exc.name != "trustme":
                raise
            _error(f"{PROG} fake-server", _DEMO_EXTRA)
            return EXIT_USAGE
    parser = build_parser()
    args = parser.parse_args(args_list)
    _setup_logging(args.verbose)
    func: Callable[[argparse.Namespace], int] = args.func
    prog = f"{PROG} {args.command}"
    try:
        if args.command == "demo":
            _need_demo_extra()
        return func(args)
    except UsageError as exc:
        _error(prog, str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        _error(prog, "interrupted")
        return 128 + signal.SIGINT


_DEMO_EXTRA = (
    "the fake server's TLS needs trustme, which the 'demo' extra installs:"
    " pip install 'rtms-proto[demo]'"
)


def _need_demo_extra() -> None:
    """Refuse before anything is written when trustme (the demo's throwaway CA) is missing."""
    try:
        import trustme  # noqa: F401
    except ImportError:
        raise UsageError(_DEMO_EXTRA) from None


OUR_LOGGERS = ("rtms_proto", "rtms_transports", "rtms_app", "rtms_conformance")
"""The loggers ``-vv`` turns to DEBUG (other libraries' debug lines stay hidden)."""


def _setup_logging(verbose: int) -> None:
    """No log by default; ``-v``: INFO and above; ``-vv``: also our own DEBUG lines."""
    root = logging.getLogger()
    if verbose <= 0:
        # A handler somewhere keeps logging's last-resort printer quiet.
        root.addHandler(logging.NullHandler())
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_PrintableFormatter("%(asctime)s %(levelname)s %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    if verbose > 1:
        for name in OUR_LOGGERS:
            logging.getLogger(name).setLevel(logging.DEBUG)


class _PrintableFormatter(logging.Formatter):
    """Log lines with control characters escaped (messages carry server text)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return printable(super().formatMessage(record), None)


def _error(prog: str, message: str) -> None:
    """One line on stderr; ``message`` may hold server text, so it is made printable."""
    sys.stderr.write(f"{prog}: error: {printable(message, 1000)}\n")
    sys.stderr.flush()


def _write_failure(exc: OSError) -> str:
    """``cannot write <file>: <cause>`` for a sink's error (which names its file)."""
    if exc.filename is not None:
        return f"cannot write {exc.filename}: {exc.strerror or exc}"
    return f"cannot write the recording: {exc.strerror or exc}"


def _cause(exc: BaseException) -> BaseException:
    """The write or session error inside exception groups (trio's nurseries wrap what
    they raise), else ``exc`` itself."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _cause(inner)
            if isinstance(found, OSError | RtmsError):
                return found
    return exc


# --------------------------------------------------------------------------- configuration


def _params(args: argparse.Namespace) -> MediaParams:
    codec = _CODECS[args.video_codec]
    video_fps = 25 if codec is Codec.H264 else 5
    share_fps = 5 if codec is Codec.H264 else 1
    multi = args.audio_streams == "per-speaker"
    return MediaParams(
        audio=AudioParams(
            sample_rate=_RATES[args.sample_rate],
            channel=AudioChannel(args.channels),
            data_opt=DataOption.AUDIO_MULTI_STREAMS if multi else DataOption.AUDIO_MIXED_STREAM,
        ),
        video=VideoParams(codec=codec, fps=video_fps),
        deskshare=DeskshareParams(codec=codec, fps=share_fps),
    )


def _allowed_hosts(args: argparse.Namespace) -> tuple[str, ...]:
    return tuple(dict.fromkeys([*DEFAULT_ALLOWED_HOSTS, *args.allow_host]))


def _credentials(args: argparse.Namespace) -> Credentials:
    client_id = args.client_id or os.environ.get(CLIENT_ENV)
    secret = args.client_secret or os.environ.get(SECRET_ENV)
    if not client_id:
        raise UsageError(f"no client id: pass --client-id or set {CLIENT_ENV}")
    if not secret:
        raise UsageError(f"no client secret: set {SECRET_ENV} or pass --client-secret")
    return Credentials(client_id=client_id, client_secret=secret)


def _transport_options(args: argparse.Namespace) -> TransportOptions:
    ca = args.ca_file or os.environ.get(CA_ENV) or None
    if ca is not None:
        source = "--ca-file" if args.ca_file else CA_ENV
        try:
            ssl.create_default_context(cafile=ca)
        except (OSError, ssl.SSLError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise UsageError(f"cannot load the CA file {ca!r} ({source}): {why}") from None
    proxy: str | bool | None = True  # from the environment
    if args.proxy is not None:
        proxy = None if args.proxy.strip().lower() == "direct" else args.proxy
    try:
        return TransportOptions(ca_file=ca, proxy=proxy)
    except InvalidConfig as exc:  # the message never holds the password
        raise UsageError(f"--proxy: {exc}") from None


def _check_flavour(flavour: str) -> None:
    if flavour == "trio":
        try:
            import trio  # noqa: F401
        except ImportError:
            raise UsageError(
                "--transport trio needs the trio package: pip install 'rtms-proto[trio]'"
            ) from None


def _config(
    source: bytes | Mapping[str, object] | RtmsStarted,
    args: argparse.Namespace,
    credentials: Credentials,
) -> SessionConfig:
    """A session configuration; raises :class:`UsageError` naming the problem."""
    try:
        return session_config(
            source,
            credentials=credentials,
            media=args.media,
            layout=Layout(args.layout),
            params=_params(args),
            buffer_data=args.buffer_data,
            allowed_hosts=_allowed_hosts(args),
        )
    except WebhookRejected as exc:
        if exc.kind is WebhookErrorKind.DISALLOWED_HOST:
            cause = exc.__cause__ or exc
            raise UsageError(
                f"refused host: {cause}; only Zoom's domains are allowed unless "
                "--allow-host names the host"
            ) from None
        raise UsageError(f"not an rtms_started webhook: {exc}") from None
    except WebhookError as exc:
        raise UsageError(f"not an rtms_started webhook: {exc}") from None
    except InvalidConfig as exc:
        raise UsageError(str(exc)) from None


PAYLOAD_LIMIT = 1 << 20
"""The most bytes of a webhook body ``--payload`` reads (Zoom's are under 2 kB)."""


def _read_document(stream: IO[bytes]) -> bytes:
    """The first JSON document on ``stream``, returned as soon as it is whole: the
    writer (``rtms-proto fake-server | rtms-proto record --payload -``) may keep its
    end of the pipe open.  Anything after the document is left unread."""
    data = b""
    decoder = json.JSONDecoder()
    while True:
        read1 = getattr(stream, "read1", None)
        chunk = read1(65536) if read1 is not None else stream.read(65536)
        data += chunk
        text = data.decode("utf-8", "replace").lstrip()
        if text:
            try:
                _, end = decoder.raw_decode(text)
            except (ValueError, RecursionError):
                pass
            else:
                return text[:end].encode()
        if not chunk:
            return data  # the end: not one whole document, reported by the caller
        if len(data) > PAYLOAD_LIMIT:
            raise UsageError(f"the payload is larger than {PAYLOAD_LIMIT} bytes")


def _read_payload(name: str) -> bytes | Mapping[str, object]:
    try:
        if name == "-":
            raw = _read_document(sys.stdin.buffer)
        else:
            with Path(name).open("rb") as f:
                raw = f.read(PAYLOAD_LIMIT + 1)
            if len(raw) > PAYLOAD_LIMIT:
                raise UsageError(f"the payload is larger than {PAYLOAD_LIMIT} bytes")
    except OSError as exc:
        raise UsageError(f"cannot read the payload {name!r}: {exc.strerror or exc}") from None
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError):
        raise UsageError("the payload is not valid JSON") from None
    if not isinstance(obj, dict):
        raise UsageError("the payload must be a JSON object: a webhook body or its payload")
    if "event" in obj and "payload" in obj:
        return raw  # the whole body, parsed from the bytes as received
    return obj


def _is_empty(folder: Path) -> bool:
    """True when ``folder`` does not exist or holds nothing (a file is not a folder:
    creating it fails later, with its own message)."""
    try:
        return not folder.is_dir() or next(folder.iterdir(), None) is None
    except OSError:
        return True  # unreadable: creating the files says why


def _check_empty(folder: Path, *, force: bool) -> None:
    """Refuse to write a recording over another one (two would be mixed silently)."""
    if not force and not _is_empty(folder):
        raise UsageError(
            f"{str(folder)!r} is not empty: choose another --out, or pass --force "
            "to write into it anyway"
        )


def _fresh_folder(folder: Path) -> Path:
    """``folder`` when empty, else the first empty ``folder-2``, ``folder-3`` ..."""
    if _is_empty(folder):
        return folder
    if not folder.name:  # ".": number the folder's own name
        folder = folder.resolve()
    if not folder.name:
        raise UsageError(f"{str(folder)!r} is not empty: choose another --out")
    n = 2
    chosen = folder
    while not _is_empty(chosen):
        chosen = folder.with_name(f"{folder.name}-{n}")
        n += 1
    return chosen


def _recorder(folder: Path, args: argparse.Namespace, media: MediaType) -> Recorder:
    try:
        return Recorder(folder, RecorderOptions(gap_fill=args.gap_fill, expect=media))
    except OSError as exc:
        raise UsageError(f"cannot write to {str(folder)!r}: {exc.strerror or exc}") from None


def _job(
    config: SessionConfig,
    recorder: Recorder,
    *,
    wire_path: Path | None,
    recorder_settings: Mapping[str, object],
    on_event: Callable[[Stats], object],
    deadline: float | None = None,
) -> StreamJob:
    """A :class:`StreamJob`; a wire log that cannot be created is a usage error."""
    try:
        return StreamJob(
            config,
            recorder,
            wire_path=wire_path,
            recorder_settings=recorder_settings,
            on_event=on_event,
            deadline=deadline,
        )
    except OSError as exc:
        recorder.close()
        raise UsageError(_write_failure(exc)) from None


def _wire_path(args: argparse.Namespace, folder: Path) -> Path | None:
    value = getattr(args, "save_wire", None)
    if value is None or value is False:
        return None
    if value is True or value == "":
        return folder / WIRE_NAME
    return Path(value)


def _recorder_settings(args: argparse.Namespace) -> dict[str, object]:
    """What the wire log keeps of the recorder's settings, for ``replay``."""
    return {"gap_fill": bool(args.gap_fill)}


def _kinds(media: MediaType) -> list[str]:
    return [name for name, flag in _MEDIA.items() if flag in media]


# --------------------------------------------------------------------------- outcome


def describe_end(ended: ev.SessionEnded) -> str:
    """One line saying why a session ended badly (status code, name and reason when any)."""
    error = ended.error
    if error is not None and error.status is not None:
        status = error.status
        name = status.name if isinstance(status, enum.Enum) else "unknown status"
        text = f"the RTMS server rejected the handshake: status {int(status)} {name}"
        if error.status_reason:
            text += f", reason: {error.status_reason}"
        return text
    if ended.why is ev.EndReason.RECONNECT_EXHAUSTED:
        return f"lost the stream: {ended.detail}"
    if error is not None:
        return f"the session failed: {error}"
    return f"the session ended: {ended.detail}"


def _exit_status(job: StreamJob, ended: ev.SessionEnded, prog: str) -> int:
    if job.failure is not None:
        _error(prog, f"cannot connect to the RTMS server: {job.failure}")
        return EXIT_FAILED
    if job.interrupt is not None:
        return 128 + job.interrupt.signal
    if ended.why in OK_ENDS:
        return EXIT_OK
    _error(prog, describe_end(ended))
    return EXIT_FAILED


def _recorded_seconds(job: StreamJob) -> float:
    """How long the recording is: its seconds of audio, else the session's duration."""
    audio = job.recorder.stats.audio_seconds
    if audio > 0:
        return audio
    return job.session.elapsed or 0.0


def _summary(files: list[WrittenFile], folder: Path, out: IO[str]) -> None:
    if not files:
        return
    base = folder.resolve()
    rows = []
    for f in files:
        try:
            name = str(f.path.resolve().relative_to(base))
        except ValueError:
            name = str(f.path)
        if f.path.is_dir():
            name += "/"
        rows.append((name, format_bytes(f.size), f.note))
    width = max(len(r[0]) for r in rows)
    for name, size, note in rows:
        out.write(f"  {name:<{width}}  {size:>9}  {note}\n")
    out.flush()


def _close(job: StreamJob) -> tuple[list[WrittenFile], OSError | None]:
    """Close the job's files; what was written, and the first write that failed.

    A job that never connected keeps nothing: its files (empty text files, the
    events of the failed attempt, which the error line sums up) and the folder
    it created are removed, so no half-made recording is left behind.
    """
    failure: OSError | None
    try:
        files = job.close()
    except OSError as exc:  # the wire log's last write
        files, failure = job.recorder.files(), job.recorder.failure or exc
    else:
        failure = job.recorder.failure
    if not job.connected:
        if job.wire is not None:
            with contextlib.suppress(OSError):
                job.wire.path.unlink(missing_ok=True)
        job.recorder.discard()
        return [], failure
    return files, failure


def _run(
    job: StreamJob,
    args: argparse.Namespace,
    options: TransportOptions,
    prog: str,
    progress: Progress,
) -> tuple[int, list[WrittenFile]]:
    """Run the job and close its files; the error line, if any, comes after the progress."""
    try:
        ended = run_job(job, args.transport, options)
    except Exception as exc:
        cause = _cause(exc)
        if not isinstance(cause, OSError | RtmsError):
            raise
        files, failure = _close(job)
        progress.finish(job.recorder.stats)
        if isinstance(cause, OSError):
            _error(prog, _write_failure(failure or cause))
        else:
            _error(prog, f"the session stopped on an error: {cause}")
        return EXIT_FAILED, files
    files, failure = _close(job)
    progress.finish(job.recorder.stats)
    if failure is not None:
        _error(prog, _write_failure(failure))
        return EXIT_FAILED, files
    return _exit_status(job, ended, prog), files


# --------------------------------------------------------------------------- record


def _cmd_record(args: argparse.Namespace) -> int:
    prog = f"{PROG} record"
    _check_flavour(args.transport)
    source = _read_payload(args.payload)
    config = _config(source, args, _credentials(args))
    options = _transport_options(args)
    folder: Path = args.out
    _check_empty(folder, force=args.force)
    recorder = _recorder(folder, args, config.media)
    progress = Progress(
        sys.stderr, title=f"recording {config.stream.rtms_stream_id}", kinds=_kinds(config.media)
    )
    if args.quiet:
        progress.enabled = False
    job = _job(
        config,
        recorder,
        wire_path=_wire_path(args, folder),
        recorder_settings=_recorder_settings(args),
        on_event=progress.update,
    )
    status, files = _run(job, args, options, prog, progress)
    if not args.quiet and job.connected:
        sid = printable(config.stream.rtms_stream_id)
        seconds = _recorded_seconds(job)
        sys.stdout.write(f"Recorded {seconds:.1f} s of stream {sid} into {folder}/:\n")
        _summary(files, folder, sys.stdout)
    return status


# --------------------------------------------------------------------------- demo


def _demo_meeting(duration: float) -> Any:
    from rtms_conformance.meeting import MeetingSpec

    return MeetingSpec(
        participants=3,
        turn=2.0,
        pause=0.4,
        chat_interval=3.0,
        share_at=min(4.0, duration / 3),
        share_duration=max(1.0, min(3.0, duration / 3)),
        duration=duration,
    )


def _cmd_demo(args: argparse.Namespace) -> int:
    from rtms_conformance.net import ServerThread
    from rtms_conformance.server import ServerConfig, StreamSpec
    from rtms_conformance.tls import make_test_ca

    prog = f"{PROG} demo"
    _check_flavour(args.transport)
    folder: Path = _fresh_folder(args.out)
    if folder != args.out:
        sys.stderr.write(f"{args.out}/ is not empty: recording into {folder}/\n")
    recorder = _recorder(folder, args, args.media)
    client_id = "demo-" + secrets.token_hex(4)
    client_secret = secrets.token_urlsafe(24)
    tls = make_test_ca(("127.0.0.1", "localhost"))
    server_config = ServerConfig(
        client_id=client_id,
        client_secret=client_secret,
        epoch_ms=round(time.time() * 1000 - time.monotonic() * 1000),
        video_pictures=True,
    )
    with tempfile.TemporaryDirectory(prefix="rtms-demo-") as tmp:
        ca_path = tls.write_ca(Path(tmp) / "ca.pem")
        with ServerThread(server_config, ssl_context=tls.server_context) as server:
            info = server.add_stream(
                StreamSpec(
                    meeting_uuid="demo-meeting-" + secrets.token_hex(4) + "==",
                    rtms_stream_id="demo-" + secrets.token_hex(8),
                    meeting=_demo_meeting(args.duration),
                )
            )
            body = server.rtms_started_body(info)
            if not args.quiet:
                sys.stderr.write(
                    f"Fake RTMS server on {server.base_url} (TLS, throwaway CA); "
                    f"recording a {args.duration:g} s synthetic meeting with "
                    f"--transport {args.transport}\n"
                )
            config = session_config(
                body,
                credentials=Credentials(client_id=client_id, client_secret=client_secret),
                media=args.media,
                layout=Layout(args.layout),
                params=_params(args),
                buffer_data=args.buffer_data,
                allowed_hosts=("127.0.0.1",),
            )
            progress = Progress(sys.stderr, title="rtms-proto demo", kinds=_kinds(args.media))
            if args.quiet:
                progress.enabled = False
            job = _job(
                config,
                recorder,
                wire_path=_wire_path(args, folder),
                recorder_settings=_recorder_settings(args),
                on_event=progress.update,
                deadline=time.monotonic() + args.duration + 30.0,
            )
            options = TransportOptions(ca_file=str(ca_path))
            status, files = _run(job, args, options, prog, progress)
    if not args.quiet and job.connected:
        seconds = _recorded_seconds(job)
        if job.interrupt is not None or seconds < args.duration - 0.5:
            what = f"the first {seconds:.1f} s of a {args.duration:g} s synthetic meeting"
        else:
            what = f"a {args.duration:g} s synthetic meeting"
        sys.stdout.write(f"Recorded {what} into {folder}/:\n")
        _summary(files, folder, sys.stdout)
        wav = folder / "audio.wav"
        if wav.exists():
            sys.stdout.write(
                f"Listen: play {wav} in any audio player; subtitles: {folder}/transcript.vtt\n"
            )
    return status


# --------------------------------------------------------------------------- replay


def _cmd_replay(args: argparse.Namespace) -> int:
    prog = f"{PROG} replay"
    path: Path = args.file
    folder: Path = args.out if args.out is not None else path.parent
    if args.out is not None:
        _check_empty(folder, force=args.force)
    try:
        header = read_wire_header(path)
    except OSError as exc:
        raise UsageError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    except WireFormatError as exc:
        raise UsageError(str(exc)) from None
    settings = header.get("recorder") or {}
    gap_fill = bool(settings.get("gap_fill", True)) if args.gap_fill is None else args.gap_fill
    try:
        recorder = Recorder(
            folder, RecorderOptions(gap_fill=gap_fill, expect=MediaType(int(header["media"])))
        )
    except OSError as exc:
        raise UsageError(f"cannot write to {str(folder)!r}: {exc.strerror or exc}") from None
    try:
        _, ended = replay(path, recorder.handle)
    except (RtmsError, ValueError, KeyError, OSError) as exc:
        recorder.close()
        if recorder.failure is not None:
            _error(prog, _write_failure(recorder.failure))
        elif isinstance(exc, OSError):
            _error(prog, f"cannot read {str(path)!r}: {exc.strerror or exc}")
        else:
            _error(prog, f"the recording cannot be replayed: {exc}")
        return EXIT_FAILED
    files = recorder.close()
    if recorder.failure is not None:
        _error(prog, _write_failure(recorder.failure))
        return EXIT_FAILED
    if not args.quiet:
        end = "the recording stops before the session ended" if ended is None else ended.why.value
        sys.stdout.write(f"Replayed {path} into {folder}/ ({end}):\n")
        _summary(files, folder, sys.stdout)
    return EXIT_OK


# --------------------------------------------------------------------------- listen


@dataclass(slots=True)
class _Live:
    job: StreamJob
    folder: Path
    running: bool = True


class _Streams:
    """The streams a ``listen`` receiver records, driven by its webhook actions."""

    def __init__(
        self,
        args: argparse.Namespace,
        credentials: Credentials,
        options: TransportOptions,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.args = args
        self.credentials = credentials
        self.options = options
        self.loop = loop
        self.live: dict[str, _Live] = {}
        self.tasks: set[asyncio.Future[Any]] = set()
        self.done = asyncio.Event()
        self.finished = 0
        self.failed = 0
        self.stopping = False
        self.observability = Observability()

    def say(self, text: str, *, always: bool = False) -> None:
        if always or not self.args.quiet:
            sys.stdout.write(printable(text, 1000) + "\n")
            sys.stdout.flush()

    def on_action(self, action: StreamAction) -> None:
        sid = action.rtms_stream_id
        live = self.live.get(sid)
        if action.disposition is Disposition.NEW_STREAM or (
            action.disposition is Disposition.FAILOVER and (live is None or not live.running)
        ):
            assert action.started is not None
            if self.stopping:
                _error(f"{PROG} listen", f"stream {sid}: not recorded: the receiver is stopping")
            else:
                self.start(action.started)
        elif action.disposition is Disposition.FAILOVER:
            assert action.started is not None and live is not None
            url = action.started.server_url.url
            self.say(f"stream {sid}: failover to {action.started.server_url.host}")
            with contextlib.suppress(LocalProtocolError, RuntimeError):  # ending anyway
                live.job.command(lambda s, now: s.failover(url, now=now))
        elif action.disposition in (Disposition.STOPPED, Disposition.UNKNOWN_STOP):
            assert action.stopped is not None
            reason = action.stopped.stop_reason
            if live is not None and live.running:
                with contextlib.suppress(LocalProtocolError, RuntimeError):
                    live.job.command(lambda s, now: s.notify_stopped(reason, now=now))
        else:
            self.say(f"stream {sid}: Zoom reports the stream interrupted; reconnecting")

    def _folder(self, sid: str) -> Path:
        root: Path = self.args.out
        base = safe_name(sid, 80)
        folder = root / base
        n = 2
        while folder.exists() and any(folder.iterdir()):
            folder = root / f"{base}-{n}"
            n += 1
        return folder

    def start(self, started: RtmsStarted) -> None:
        """Start recording; the webhook was answered 200 already, so a stream that
        cannot be recorded is always reported (one line naming the stream and why)."""
        sid = started.rtms_stream_id
        try:
            config = _config(started, self.args, self.credentials)
            folder = self._folder(sid)
            recorder = _recorder(folder, self.args, config.media)
        except UsageError as exc:
            _error(f"{PROG} listen", f"stream {sid}: not recorded: {exc}")
            return
        except Exception as exc:  # answered 200 already: whatever failed must be said
            _error(f"{PROG} listen", f"stream {sid}: not recorded: {type(exc).__name__}: {exc}")
            return
        job = StreamJob(
            config,
            recorder,
            wire_path=folder / WIRE_NAME if self.args.save_wire else None,
            recorder_settings=_recorder_settings(self.args),
        )
        live = self.live[sid] = _Live(job, folder)
        self.observability.add_stream(id(live), recorder.stats)
        self.say(f"stream {sid}: recording into {folder}/")
        if self.args.transport == "asyncio":
            task: asyncio.Future[Any] = self.loop.create_task(self._run_here(live))
        else:
            task = self.loop.run_in_executor(None, run_job, job, self.args.transport, self.options)
        self.tasks.add(task)
        task.add_done_callback(lambda t: self._ended(live, t))

    async def _run_here(self, live: _Live) -> ev.SessionEnded:
        from rtms_transports.asyncio import SessionRunner

        runner = SessionRunner(live.job.session, live.job.handle, options=self.options)
        live.job.bind(runner.command)
        try:
            return await runner.run()
        finally:
            live.job.bind(None)

    def _ended(self, live: _Live, task: asyncio.Future[Any]) -> None:
        self.tasks.discard(task)
        self.observability.remove_stream(id(live))
        live.running = False
        job = live.job
        sid = job.rtms_stream_id
        files, failure = _close(job)
        error = None if task.cancelled() else task.exception()
        if error is None and failure is not None:
            error = failure  # a file could not be written out at the end
        if error is not None:
            self.failed += 1
            cause = _cause(error)
            why = _write_failure(cause) if isinstance(cause, OSError) else cause
            _error(f"{PROG} listen", f"stream {sid}: stopped on an error: {why}")
        elif job.failure is not None:
            self.failed += 1
            _error(f"{PROG} listen", f"stream {sid}: cannot connect: {job.failure}")
        else:
            ended: ev.SessionEnded = task.result()
            if ended.why not in OK_ENDS and job.interrupt is None:
                self.failed += 1
                _error(f"{PROG} listen", f"stream {sid}: {describe_end(ended)}")
            self.say(
                f"stream {sid}: ended ({ended.why.value}), {len(files)} files in {live.folder}/"
            )
        self.finished += 1
        if self.args.once or (self.stopping and not self.tasks):
            self.done.set()

    def interrupt(self, signum: int) -> None:
        self.stopping = True
        self.observability.stopping = "stopping"
        for live in self.live.values():
            if live.running:
                live.job.request_interrupt(signum)
        if not self.tasks:
            self.done.set()


def _cmd_listen(args: argparse.Namespace) -> int:
    _check_flavour(args.transport)
    if args.engine is None:
        for flag, used in (
            ("--node", args.node is not None),
            ("--region", args.region is not None),
            ("--publish", args.publish),
        ):
            if used:
                raise UsageError(f"{flag} needs --engine")
    secret = args.webhook_secret or os.environ.get(WEBHOOK_SECRET_ENV)
    if not secret:
        raise UsageError(f"no webhook secret: set {WEBHOOK_SECRET_ENV} or pass --webhook-secret")
    credentials = _credentials(args)
    options = _transport_options(args)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {str(args.out)!r}: {exc.strerror or exc}") from None
    if args.engine is not None:
        return _cmd_fleet(args, secret, credentials, options)
    return asyncio.run(_listen(args, secret, credentials, options))


def _cmd_fleet(
    args: argparse.Namespace, secret: str, credentials: Credentials, options: TransportOptions
) -> int:
    """``listen --engine``: one node of a fleet (:mod:`.fleet_listen`)."""
    for flag, used in (
        ("--once", args.once),
        ("--save-wire", args.save_wire),
        (f"--transport {args.transport}", args.transport != "asyncio"),
    ):
        if used:
            raise UsageError(f"{flag} cannot be used with --engine")
    try:
        from .fleet_listen import FleetSettings, default_node_name, parse_servers, run_fleet
    except ImportError:
        raise UsageError(
            "--engine needs the fleet extra: pip install 'rtms-proto[fleet]'"
        ) from None
    try:
        servers = parse_servers(args.engine)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    settings = FleetSettings(
        servers=servers,
        node=default_node_name() if args.node is None else args.node,
        capacity=args.capacity,
        lease=args.lease,
        region=args.region,
        publish=args.publish,
        host=args.host,
        port=args.port,
        out=args.out,
        secret=secret,
        allowed_hosts=_allowed_hosts(args),
        gap_fill=args.gap_fill,
        quiet=args.quiet,
        options=options,
        session_config=lambda started: _config(started, args, credentials),
    )
    return asyncio.run(run_fleet(settings))


async def _listen(
    args: argparse.Namespace, secret: str, credentials: Credentials, options: TransportOptions
) -> int:
    loop = asyncio.get_running_loop()
    streams = _Streams(args, credentials, options, loop)
    receiver = WebhookReceiver(secret, allowed_hosts=_allowed_hosts(args))
    server = WebhookServer(
        receiver,
        streams.on_action,
        clock=time.time,
        on_get=streams.observability.on_get,
        on_status=streams.observability.webhook_status,
    )
    try:
        await server.start(args.host, args.port)
    except OSError as exc:
        raise UsageError(
            f"cannot listen on {args.host}:{args.port}: "
            f"{os.strerror(exc.errno) if exc.errno else exc}"
        ) from None
    interrupted: list[int] = []

    def on_signal(signum: int) -> None:
        if interrupted:
            for live in streams.live.values():
                if live.running:
                    live.job.request_interrupt(signum)
            return
        interrupted.append(signum)
        streams.interrupt(signum)

    signals = contextlib.ExitStack()
    signals.enter_context(on_signals(loop, on_signal))  # Windows: signal.signal
    host = f"[{args.host}]" if ":" in args.host else args.host
    streams.say(
        f"listening for Zoom webhooks on http://{host}:{server.port}/ (Ctrl-C to stop)",
        always=True,
    )
    try:
        await streams.done.wait()
        await server.close()
        if streams.tasks:
            await asyncio.wait(streams.tasks, timeout=options.close_timeout + 15)
    finally:
        signals.close()
    return EXIT_FAILED if streams.failed and args.once else EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
