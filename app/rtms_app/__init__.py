"""The ``rtms-proto`` command: record, listen, replay, demo and fake-server.

An application built on the drivers of :mod:`rtms_transports`: it turns a
stream's events into files (:mod:`rtms_app.sinks`), receives Zoom's webhooks
(:mod:`rtms_app.webhook_server`), shows live progress
(:mod:`rtms_app.progress`) and runs one recording per stream
(:mod:`rtms_app.recording`).  Nothing in the protocol core or the drivers
depends on it.
"""
