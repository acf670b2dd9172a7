"""What the three drivers' ``Stream`` classes share: the session's commands and counters.

Commands go through the driver's loop (:meth:`DriverLoop.command`, or the
blocking driver's thread hand-off), so their actions are performed at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol, TypeVar

from rtms_proto import ConnectionClosed, Session, SessionConfig
from rtms_proto import events as ev
from rtms_proto.audio import AudioFormat, audio_format
from rtms_proto.enums import EventType, MediaType, StopReason

from ._loop import DriverLoop
from ._queue import EventBuffer

__all__ = ["AsyncStream", "StreamBase", "StreamCommands"]

T = TypeVar("T")


class StreamCommands:
    """The commands of a stream, forwarded to its session through the driver's loop.

    Each raises what the session raises (:class:`~rtms_proto.LocalProtocolError`,
    :class:`~rtms_proto.ConnectionClosed`) and then nothing has changed.
    """

    _config: SessionConfig

    def _command(self, fn: Callable[[Session, float], T]) -> T:  # pragma: no cover
        raise NotImplementedError

    @property
    def config(self) -> SessionConfig:
        """The session's configuration (stream identity, media, policies)."""
        return self._config

    @property
    def rtms_stream_id(self) -> str:
        """The stream's id, from the webhook."""
        return self._config.stream.rtms_stream_id

    @property
    def audio_format(self) -> AudioFormat | None:
        """The audio the session asks for (None without audio): what each
        ``AudioReceived.data`` holds.  The server confirms it in
        ``MediaConnected.params`` (:func:`rtms_proto.audio.audio_format` of them)."""
        if not self._config.media & MediaType.AUDIO:
            return None
        return audio_format(self._config)

    def subscribe_events(
        self, event_types: Iterable[EventType | int], subscribe: bool = True
    ) -> None:
        """(Un)subscribe in-meeting events (remembered across reconnects)."""
        types = list(event_types)
        self._command(lambda s, now: s.subscribe_events(types, subscribe=subscribe, now=now))

    def subscribe_video(self, user_id: int, subscribe: bool = True) -> None:
        """Ask for one participant's video (needs single-stream video)."""
        self._command(lambda s, now: s.subscribe_video(user_id, subscribe=subscribe, now=now))

    def request_stream_state(self) -> None:
        """Ask Zoom for the stream's state; the answer arrives as ``StreamStateReported``."""
        self._command(lambda s, now: s.request_stream_state(now=now))

    def request_session_state(self, rtms_session_id: str) -> None:
        """Ask Zoom for one session's state; the answer arrives as ``SessionStateReported``."""
        self._command(lambda s, now: s.request_session_state(rtms_session_id, now=now))

    def close_stream(self) -> None:
        """Ask Zoom to end the stream; the session ends when Zoom answers (or times out)."""
        self._command(lambda s, now: s.close_stream(now=now))

    def stop(self) -> None:
        """End locally: close the sockets in order; Zoom keeps the stream for a while."""
        self._command(lambda s, now: s.stop(now=now))

    def notify_stopped(self, stop_reason: StopReason | int | str | None = None) -> None:
        """The stream's ``rtms_stopped`` webhook arrived: end."""
        self._command(lambda s, now: s.notify_stopped(stop_reason=stop_reason, now=now))

    def failover(self, new_signaling_url: str) -> None:
        """A new ``rtms_started`` for this stream arrived: reconnect to its URL."""
        self._command(lambda s, now: s.failover(new_signaling_url, now=now))


class StreamDriver(Protocol):
    """What a stream needs of its driver (every driver has these)."""

    @property
    def loop(self) -> DriverLoop: ...

    @property
    def finished(self) -> bool: ...

    def command(self, fn: Callable[[Session, float], T]) -> T: ...


class StreamBase(StreamCommands):
    """What the three drivers' ``Stream`` classes share: commands and counters."""

    def __init__(self, driver: StreamDriver, buffer: EventBuffer) -> None:
        self._driver = driver
        self._buffer = buffer
        self._config = driver.loop.session.config
        self._over = False  # the application took the SessionEnded event

    def _command(self, fn: Callable[[Session, float], T]) -> T:
        return self._driver.command(fn)

    @property
    def ended(self) -> ev.SessionEnded | None:
        """The session's end, once it happened."""
        return self._driver.loop.end

    @property
    def dropped(self) -> int:
        """Media frames dropped under ``Backpressure.DROP_OLDEST_MEDIA``."""
        return self._buffer.dropped

    @property
    def queued(self) -> int:
        """Events waiting for the application (how far behind it is)."""
        return len(self._buffer)

    @property
    def queued_bytes(self) -> int:
        """What the waiting events count for against ``max_queue_bytes`` (media payloads,
        plus 512 bytes an event)."""
        return self._buffer.bytes


class AsyncStreamDriver(StreamDriver, Protocol):
    """An event-loop driver: it can be told to read again, and waited on."""

    def update_reading(self) -> None: ...

    def wait_change(self) -> Awaitable[None]: ...


class AsyncStream(StreamBase):
    """The asyncio and trio ``Stream``: ``async for event in stream``.

    Iteration ends after :class:`~rtms_proto.events.SessionEnded`.  Commands
    (:meth:`close_stream`, :meth:`subscribe_video`, ...) are plain methods:
    they take effect at once and raise what the session raises.
    """

    _driver: AsyncStreamDriver

    def __init__(self, driver: AsyncStreamDriver, buffer: EventBuffer) -> None:
        super().__init__(driver, buffer)

    def __aiter__(self) -> AsyncStream:
        return self

    async def __anext__(self) -> ev.Event:
        buffer = self._buffer
        driver = self._driver
        loop = driver.loop
        while True:
            event = buffer.pop()
            if event is not None:
                if buffer.unblocked:
                    buffer.unblocked = False
                    driver.update_reading()
                if type(event) is ev.SessionEnded:
                    self._over = True
                return event
            if loop.error is not None:
                raise loop.error
            if self._over or driver.finished:
                raise StopAsyncIteration
            await driver.wait_change()

    async def receive(self) -> ev.Event:
        """The next event; raises :class:`ConnectionClosed` after the session ended."""
        try:
            return await self.__anext__()
        except StopAsyncIteration:
            raise ConnectionClosed("the session has ended") from None
