"""Host-name lookups for the blocking driver, off its I/O threads.

``socket.getaddrinfo`` blocks for as long as the system's resolver takes:
seconds when a DNS server does not answer.  A :class:`~rtms_transports._reactor.Hub`
thread serves every socket of its sessions, so a lookup there would stall them
all (no reads, no keep-alive answers).  An IP literal is resolved in place
(:func:`numeric`: ``AI_NUMERICHOST`` never asks a DNS server); a name is looked
up by a :class:`Resolver`, one per hub, on at most :data:`MAX_THREADS` daemon
threads ("rtms-resolve") started when a lookup needs one and ending when none is
left to do, so that an idle process has none.  Daemon threads, not
``concurrent.futures``, whose threads are joined at exit: a stuck lookup must
not delay it.  The answer is handed back to the hub's thread
(:meth:`~rtms_transports._reactor.Hub.post`), which goes on opening the socket.
"""

from __future__ import annotations

import errno
import functools
import socket
import threading
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["MAX_THREADS", "MAX_WAITING", "Addresses", "Lookup", "Resolver", "numeric"]

MAX_THREADS = 4
"""Lookups run at once per hub: one stuck name leaves three threads for the others."""

MAX_WAITING = 256
"""Lookups of distinct names waiting for a thread, per hub; one more fails at once
(``ConnectError``) rather than queue without bound when the resolver is stuck.
Sockets asking for a name already being looked up share that lookup, so a burst
of streams on a few servers waits as a few lookups."""

Addresses = Sequence[tuple[Any, ...]]
"""What ``socket.getaddrinfo`` returns."""

Done = Callable[[Addresses | Exception], None]
"""Called on the hub's thread with the addresses, or what the lookup raised."""


def numeric(host: str, port: int) -> Addresses | None:
    """The addresses of an IP literal without a lookup (``AI_NUMERICHOST`` never blocks);
    ``None`` for a name."""
    try:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except socket.gaierror:
        return None


class _Job:
    """One lookup and the sockets waiting for it (on the hub's thread only)."""

    __slots__ = ("host", "port", "waiters")

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.waiters: dict[Lookup, None] = {}


class Lookup:
    """One socket's wait for a lookup: :meth:`cancel` it when the socket goes away."""

    __slots__ = ("_job", "_resolver", "done")

    def __init__(self, resolver: Resolver, job: _Job, done: Done) -> None:
        self._resolver = resolver
        self._job = job
        self.done: Done | None = done

    def cancel(self) -> None:
        """On the hub's thread: ``done`` will not be called; a lookup nobody waits for
        any more leaves the queue (one running finishes, unheard)."""
        if self.done is None:
            return
        self.done = None
        job = self._job
        job.waiters.pop(self, None)  # gone already if its answer is being handed out
        if not job.waiters:
            self._resolver._forget(job)


class Resolver:
    """The lookups of one hub: :meth:`lookup` and :meth:`close` on the hub's thread,
    ``post`` (the hub's) from the lookup threads."""

    def __init__(self, post: Callable[[Callable[[], None]], bool]) -> None:
        self._post = post
        self._lock = threading.Lock()
        self._jobs: dict[tuple[str, int], _Job] = {}  # waiting or running, under lock
        self._waiting: dict[_Job, None] = {}  # in order, under lock
        self._threads = 0  # under lock
        self._closed = False

    def lookup(self, host: str, port: int, done: Done) -> Lookup:
        """Look ``host`` up, or join the lookup of it under way; ``done`` is called on the
        hub's thread unless cancelled.  Raises ``OSError`` when :data:`MAX_WAITING`
        lookups already wait, or no thread can be started for the first one."""
        key = (host, port)
        start = False
        with self._lock:
            job = self._jobs.get(key)
            if job is None:
                if self._closed:
                    raise OSError("the I/O thread has stopped")  # not reached: no session left
                if len(self._waiting) >= MAX_WAITING:
                    raise OSError(
                        errno.EAGAIN,
                        f"{MAX_WAITING} host-name lookups already wait for a thread"
                        " (the system's resolver is slow)",
                    )
                job = self._jobs[key] = _Job(host, port)
                self._waiting[job] = None
                if self._threads < MAX_THREADS:
                    self._threads += 1
                    start = True
        waiter = Lookup(self, job, done)
        job.waiters[waiter] = None
        if start:
            try:
                threading.Thread(target=self._work, name="rtms-resolve", daemon=True).start()
            except RuntimeError as exc:  # no thread could be started
                with self._lock:
                    self._threads -= 1
                    stranded = self._threads == 0
                if stranded:  # no thread would ever take it
                    waiter.cancel()
                    raise OSError(errno.EAGAIN, f"no thread to look the name up: {exc}") from exc
        return waiter

    def close(self) -> None:
        """The hub has stopped: drop the waiting lookups; running ones end unheard."""
        with self._lock:
            self._closed = True
            self._jobs.clear()
            self._waiting.clear()

    def _forget(self, job: _Job) -> None:
        """Nobody waits for ``job`` any more: drop it unless a thread has it already
        (then later sockets asking for the name still join it)."""
        with self._lock:
            if job in self._waiting:
                del self._waiting[job]
                if self._jobs.get((job.host, job.port)) is job:
                    del self._jobs[job.host, job.port]

    def _work(self) -> None:
        """A lookup thread: take waiting lookups until none is left, then end."""
        while True:
            with self._lock:
                if self._closed or not self._waiting:
                    self._threads -= 1
                    return
                job = next(iter(self._waiting))
                del self._waiting[job]
            result: Addresses | Exception
            try:
                result = socket.getaddrinfo(job.host, job.port, type=socket.SOCK_STREAM)
            except Exception as exc:
                result = exc
            self._post(functools.partial(self._finish, job, result))

    def _finish(self, job: _Job, result: Addresses | Exception) -> None:
        """On the hub's thread: hand ``result`` to the sockets still waiting for it."""
        with self._lock:
            if self._jobs.get((job.host, job.port)) is job:
                del self._jobs[job.host, job.port]
        waiters, job.waiters = job.waiters, {}
        for waiter in waiters:
            done, waiter.done = waiter.done, None
            if done is not None:
                done(result)
