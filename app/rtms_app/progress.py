"""Live progress on a terminal: elapsed time, messages and bytes per media type,
participants, reconnects.

:func:`render` is pure (stats and elapsed seconds in, lines out); :class:`Progress`
redraws those lines in place on a terminal, at most every ``interval`` seconds,
and does nothing when the stream is not a terminal (pipes, files, CI logs).
Participant and speaker names and the title come from the network: they are
shown through :func:`~.terminal.printable` (control characters escaped, each
name at most 40 characters), so a name cannot move the cursor or break the block.
Every line is cut to the terminal's width (read again at each redraw, so a
resized window is followed): a line that wrapped would make the redraw, which
moves the cursor up one row per line, leave stale rows behind.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterable
from typing import TextIO

from .sinks.recorder import MEDIA_KINDS, Stats
from .terminal import fit, printable

__all__ = ["Progress", "format_bytes", "render"]

_NAME = 40


def format_bytes(n: int) -> str:
    """``532 B``, ``12.4 kB``, ``3.1 MB`` (powers of 1000, like file managers)."""
    if n < 1000:
        return f"{n} B"
    for unit in ("kB", "MB", "GB", "TB"):
        n_f = n / 1000
        if n_f < 1000 or unit == "TB":
            return f"{n_f:.1f} {unit}"
        n = int(n_f)
    raise AssertionError("unreachable")  # pragma: no cover


def _clock(seconds: float) -> str:
    minutes, secs = divmod(max(0.0, seconds), 60)
    hours, minutes = divmod(int(minutes), 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:04.1f}"
    return f"{minutes:02d}:{secs:04.1f}"


def render(
    stats: Stats,
    elapsed: float,
    *,
    title: str = "rtms-proto",
    kinds: Iterable[str] = (),
    width: int | None = None,
) -> list[str]:
    """The progress block for ``stats`` after ``elapsed`` seconds.

    Media types listed in ``kinds`` are shown even while nothing has arrived.
    With ``width``, every line takes at most that many terminal columns.
    """
    shown = set(kinds)
    lines = [
        f"{printable(title, 100)}  {stats.state:<12} {_clock(elapsed)}   "
        f"reconnects: {stats.reconnects}",
    ]
    for kind in MEDIA_KINDS:
        c = stats.counts[kind]
        if c.messages or kind in shown:
            line = f"  {kind:<11}{c.messages:>8} msgs {format_bytes(c.bytes):>10}"
            if kind == "audio" and stats.audio_seconds:
                line += f"  {stats.audio_seconds:7.1f} s recorded"
            lines.append(line)
    count = len(stats.participants)
    names = [
        printable(name or f"user {uid}", _NAME)
        for uid, name in itertools.islice(stats.participants.items(), 6)
    ]
    people = ", ".join(names) + (f" and {count - 6} more" if count > 6 else "")
    line = f"  participants: {count}" + (f" ({people})" if people else "")
    if stats.speaker:
        line += f"; speaking: {printable(stats.speaker, _NAME)}"
    lines.append(line)
    if width is not None:
        lines = [fit(line, width) for line in lines]
    return lines


class Progress:
    """Redraws :func:`render`'s block in place on ``stream`` when it is a terminal.

    ``enabled`` None means "when ``stream.isatty()``".  Call :meth:`update`
    as often as you like (it redraws at most every ``interval`` seconds) and
    :meth:`finish` at the end, which draws the last state and moves below it.
    ``columns`` gives the terminal's width (default: asked of ``stream``, 80
    when it cannot say); lines are kept one column narrower, so that none
    reaches the last column (where some terminals wrap at once).
    """

    def __init__(
        self,
        stream: TextIO,
        *,
        title: str = "rtms-proto",
        kinds: Iterable[str] = (),
        enabled: bool | None = None,
        interval: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
        columns: Callable[[], int] | None = None,
    ) -> None:
        self.stream = stream
        self._columns = columns if columns is not None else self._ask_columns
        self.title = title
        self.kinds = tuple(kinds)
        if enabled is None:
            isatty = getattr(stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled
        self.interval = interval
        self._clock = clock
        self._started = clock()
        self._last: float | None = None
        self._drawn = 0
        self.finished = False

    def update(self, stats: Stats, *, force: bool = False) -> None:
        if not self.enabled or self.finished:
            return
        now = self._clock()
        if not force and self._last is not None and now - self._last < self.interval:
            return
        self._last = now
        width = max(10, self._columns() - 1)
        lines = render(stats, now - self._started, title=self.title, kinds=self.kinds, width=width)
        out = []
        if self._drawn:
            out.append(f"\x1b[{self._drawn}F")  # back to the first line of the block
        out.extend(f"\x1b[2K{line}\n" for line in lines)
        if self._drawn > len(lines):
            out.extend("\x1b[2K\n" for _ in range(self._drawn - len(lines)))
        self.stream.write("".join(out))
        self.stream.flush()
        self._drawn = max(self._drawn, len(lines))

    def _ask_columns(self) -> int:
        try:
            return os.get_terminal_size(self.stream.fileno()).columns or 80
        except (AttributeError, OSError, ValueError):
            return 80

    def clear(self) -> None:
        """Erase the block (before printing an error line in its place)."""
        if self.enabled and self._drawn:
            self.stream.write(f"\x1b[{self._drawn}F\x1b[0J")
            self.stream.flush()
            self._drawn = 0

    def finish(self, stats: Stats) -> None:
        if self.enabled and not self.finished:
            self.update(stats, force=True)
        self.finished = True
