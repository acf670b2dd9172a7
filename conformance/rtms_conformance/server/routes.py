"""The fake server's URLs: what it hands out and which stream and socket a request names.

Pure string work with no server state, so URL rules live (and are read) in
one place: ``/signaling/<id>``, ``/media/<id>/<kind>``, and after each
failover ``/signaling2``, ``/media2`` and so on.
"""

from __future__ import annotations

import re
import urllib.parse

from rtms_proto.actions import SocketRole
from rtms_proto.enums import MediaType

from .state import Stream

__all__ = ["KINDS", "KIND_OF", "media_urls", "parse_target", "signaling_url"]

KINDS: dict[str, tuple[MediaType, SocketRole]] = {
    "audio": (MediaType.AUDIO, SocketRole.AUDIO),
    "video": (MediaType.VIDEO, SocketRole.VIDEO),
    "deskshare": (MediaType.DESKSHARE, SocketRole.DESKSHARE),
    "transcript": (MediaType.TRANSCRIPT, SocketRole.TRANSCRIPT),
    "chat": (MediaType.CHAT, SocketRole.CHAT),
    "all": (MediaType.ALL, SocketRole.ALL),
}
KIND_OF = {flag: kind for kind, (flag, _) in KINDS.items()}
_PATH = re.compile(r"/(signaling|media)([2-9]|[1-9][0-9]+)?/([^/]+)(?:/([a-z]+))?/?")


def _prefix(name: str, generation: int) -> str:
    return f"{name}{generation + 1}" if generation else name


def signaling_url(base_url: str, stream_id: str, generation: int) -> str:
    """The signaling URL of a stream's ``generation`` (0 until the first failover)."""
    sid = urllib.parse.quote(stream_id, safe="")
    return f"{base_url}/{_prefix('signaling', generation)}/{sid}"


def media_urls(base_url: str, s: Stream) -> dict[str, str]:
    """The media URLs a signaling handshake response offers, by kind."""
    sid = urllib.parse.quote(s.info.rtms_stream_id, safe="")
    base = f"{base_url}/{_prefix('media', s.generation)}/{sid}"
    urls = {
        kind: f"{base}/{kind}"
        for kind, (flag, _) in KINDS.items()
        if flag != MediaType.ALL and flag & s.spec.scopes
    }
    if s.spec.offer_all:
        urls["all"] = f"{base}/all"
    return urls


def parse_target(target: str) -> tuple[str, int, SocketRole, MediaType] | None:
    """The stream id, generation, role and URL media type a request target names, or None."""
    path = target.split("?", 1)[0]
    match = _PATH.fullmatch(path)
    if match is None:
        return None
    name, number, sid, kind = match.groups()
    stream_id = urllib.parse.unquote(sid)
    generation = int(number) - 1 if number else 0
    if name == "signaling":
        if kind is None:
            return stream_id, generation, SocketRole.SIGNALING, MediaType.UNDEFINED
        return None
    if kind not in KINDS:
        return None
    flag, role = KINDS[kind]
    return stream_id, generation, role, flag
