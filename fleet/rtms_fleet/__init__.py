"""Many meetings across machines: a fleet of nodes on NATS JetStream.

Every node receives webhooks and stores them in the engine once (however many
nodes receive one); the node holding a stream's lease records it and renews
the lease; when it dies another node takes the stream over from the stored
``rtms_started``; draining hands the streams over.  The decisions are a pure
policy (:mod:`rtms_fleet.policy`), the engine adapter is thin
(:mod:`rtms_fleet.engine`), and :class:`Node` is the library entry point.
"""

from .engine import EngineUnavailable
from .node import Node, NodeConfig, NodeStats, OwnedStream
from .policy import DEFAULT_LEASE, StopWhy
from .publish import decode_frame, encode_event

__all__ = [
    "DEFAULT_LEASE",
    "EngineUnavailable",
    "Node",
    "NodeConfig",
    "NodeStats",
    "OwnedStream",
    "StopWhy",
    "decode_frame",
    "encode_event",
]
