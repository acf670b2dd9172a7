"""The RTMS handshake signature (docs/protocol.md §8.3).

Both handshakes (signaling msg 1 and every media msg 3) carry the same
``signature``: lowercase hex HMAC-SHA256 of ``client_id,instance_id,rtms_stream_id``
keyed with the app's Client Secret (for the Video SDK: SDK Key and SDK Secret).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from ._errors import InvalidConfig

__all__ = ["Credentials", "handshake_signature"]


def _require(name: str, value: str) -> None:
    # Name the field, never echo the value: it may be a secret.
    if not isinstance(value, str):
        raise InvalidConfig(f"{name} must be a str, not {type(value).__name__}")
    if not value:
        raise InvalidConfig(f"{name} must not be empty")


def handshake_signature(
    *, client_id: str, client_secret: str, instance_id: str, rtms_stream_id: str
) -> str:
    """Sign one stream's handshake.

    ``instance_id`` is the value of the product's id key (``meeting_uuid``,
    ``webinar_uuid``, ``session_id``, ``engagement_id`` or ``call_id``).
    Empty arguments are refused: an empty secret would make the signature
    forgeable by anyone, and an empty id can only be a bug upstream.
    """
    _require("client_id", client_id)
    _require("client_secret", client_secret)
    _require("instance_id", instance_id)
    _require("rtms_stream_id", rtms_stream_id)
    message = f"{client_id},{instance_id},{rtms_stream_id}".encode()
    return hmac.new(client_secret.encode(), message, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True)
class Credentials:
    """An app's Client ID and Client Secret; the secret never shows in a repr."""

    client_id: str
    client_secret: str = field(repr=False)

    def __post_init__(self) -> None:
        _require("client_id", self.client_id)
        _require("client_secret", self.client_secret)

    def sign(self, *, instance_id: str, rtms_stream_id: str) -> str:
        """The handshake signature of one stream, see :func:`handshake_signature`."""
        return handshake_signature(
            client_id=self.client_id,
            client_secret=self.client_secret,
            instance_id=instance_id,
            rtms_stream_id=rtms_stream_id,
        )
