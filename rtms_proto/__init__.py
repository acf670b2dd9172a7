"""rtms_proto: a Sans-I/O client for Zoom Realtime Media Streams."""
