"""The RTMS wire messages, one module per part of the protocol.

Each message class owns its wire form (``_from_wire`` and ``_to_wire``);
:mod:`rtms_proto._wire.codec` dispatches on ``msg_type`` and is the only place
that lists them. :mod:`rtms_proto.messages` is the public face of all this.
"""
