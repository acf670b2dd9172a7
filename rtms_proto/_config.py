"""Frozen configuration values, validated when built.

Secrets live only in :class:`rtms_proto._auth.Credentials` (``repr=False``);
nothing here holds one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ._errors import InvalidConfig
from ._status import StatusTable
from ._urls import DEFAULT_ALLOWED_HOSTS
from .enums import Product

__all__ = ["ConnectionOptions", "StreamIdentity"]


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamIdentity:
    """Which stream to join: the ids of the ``*.rtms_started`` webhook."""

    instance_id: str
    rtms_stream_id: str
    product: Product = Product.MEETING

    def __post_init__(self) -> None:
        if not self.instance_id:
            raise InvalidConfig("instance_id must not be empty")
        if not self.rtms_stream_id:
            raise InvalidConfig("rtms_stream_id must not be empty")

    @property
    def id_keys(self) -> tuple[str, ...]:
        """Handshake keys that carry the instance id.

        ``meeting_uuid`` always (the only key Zoom's own client sends), plus
        the product's own key where it differs, as Zoom's Video SDK sample
        does; servers ignore keys they do not use.
        """
        if self.product.id_key == "meeting_uuid":
            return ("meeting_uuid",)
        return ("meeting_uuid", self.product.id_key)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionOptions:
    """Limits and timeouts of one socket (seconds, monotonic).

    ``keepalive_timeout`` is the liveness window: any inbound message resets
    it.  Zoom sends a keep-alive every 10 s while no data flows and drops a
    client after three unanswered ones, so 35 s notices a dead socket while
    most of Zoom's 60 s (signaling) or 65 s (media) reconnection window is left.

    ``max_message_size`` caps one WebSocket message in bytes on the wire (UTF-8
    bytes for text), all fragments together; it is checked from each frame's
    header, before the payload is buffered.
    """

    handshake_timeout: float = 10.0
    keepalive_timeout: float = 35.0
    close_timeout: float = 5.0
    max_message_size: int = 16 * 1024 * 1024
    status_table: StatusTable = StatusTable.CURRENT
    allowed_hosts: tuple[str, ...] = DEFAULT_ALLOWED_HOSTS
    client_agent: str | None = field(default="rtms-proto")

    def __post_init__(self) -> None:
        for name in ("handshake_timeout", "keepalive_timeout", "close_timeout"):
            value = getattr(self, name)
            if not value > 0:
                raise InvalidConfig(f"{name} must be a positive number of seconds, not {value!r}")
        if self.max_message_size < 1024:
            raise InvalidConfig(
                f"max_message_size must be at least 1024 bytes, not {self.max_message_size!r}"
            )
