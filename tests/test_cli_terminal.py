"""The live progress block on a real pseudo-terminal of 60, 80 and 120 columns.

The command runs in a subprocess with its standard error on a pty of the given
size; what it writes there is replayed through a small terminal model (cursor
moves, line erases, automatic wrap at the last column), and the final screen
must hold exactly one progress block, no line of it wrapped.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from cli_harness import TIMEOUT, cli_env

_CSI = re.compile(r"\x1b\[(\d*)([A-Za-z])")


class Screen:
    """Just enough of a terminal: printing with wrap, CR, LF, CSI F, K and J."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.rows: list[list[str]] = [[]]
        self.row = 0
        self.col = 0
        self.wraps = 0

    def _down(self) -> None:
        self.row += 1
        while len(self.rows) <= self.row:
            self.rows.append([])

    def feed(self, text: str) -> None:
        i = 0
        while i < len(text):
            char = text[i]
            if char == "\x1b":
                m = _CSI.match(text, i)
                assert m is not None, repr(text[i : i + 10])
                n = int(m.group(1) or 0)
                cmd = m.group(2)
                if cmd == "F":  # cursor to the start of the line n rows up
                    self.row, self.col = max(0, self.row - max(n, 1)), 0
                elif cmd == "K" and n == 2:
                    self.rows[self.row] = []
                elif cmd == "J" and n == 0:
                    del self.rows[self.row][self.col :]
                    del self.rows[self.row + 1 :]
                else:
                    raise AssertionError(f"unexpected sequence {m.group()!r}")
                i = m.end()
                continue
            if char == "\r":
                self.col = 0
            elif char == "\n":
                self._down()
            else:
                if self.col >= self.width:
                    self.wraps += 1
                    self._down()
                    self.col = 0
                line = self.rows[self.row]
                line.extend(" " * (self.col + 1 - len(line)))
                line[self.col] = char
                self.col += 1
            i += 1

    def lines(self) -> list[str]:
        return ["".join(r).rstrip() for r in self.rows]


def run_on_pty(args: list[str], width: int, cwd: Path) -> tuple[int, str, str]:
    """Run the command with standard error on a ``width``-column pty: status, stdout, pty text."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, width, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "rtms_app", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=cli_env(),
        cwd=cwd,
    )
    os.close(slave)
    seen = bytearray()
    deadline = time.monotonic() + TIMEOUT
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every writer of the pty has closed it
                    break
                if not chunk:
                    break
                seen += chunk
            elif proc.poll() is not None:
                break
        out, _ = proc.communicate(timeout=TIMEOUT)
    finally:
        os.close(master)
        if proc.returncode is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, out.decode(), seen.decode("utf-8", "replace")


@pytest.mark.parametrize("width", [60, 80, 120])
def test_progress_fits_the_terminal(tmp_path: Path, width: int) -> None:
    code, out, text = run_on_pty(["demo", "--duration", "3"], width, tmp_path)
    assert code == 0, (out, text)
    assert "\x1b[" in text, "no live progress on a terminal"
    screen = Screen(width)
    # The opening line is printed once (never redrawn): it may wrap like any log line.
    intro, _, block = text.partition("\n")
    assert intro.startswith("Fake RTMS server on")
    screen.feed(block)
    lines = [line for line in screen.lines() if line]
    assert screen.wraps == 0, lines
    titles = [line for line in lines if line.startswith("rtms-proto demo")]
    assert len(titles) == 1, f"{len(titles) - 1} stale status lines:\n" + "\n".join(lines)
    assert sum("participants:" in line for line in lines) == 1
    assert all(len(line) < width for line in lines)
    audio = next(line for line in lines if line.lstrip().startswith("audio"))
    assert audio.endswith("s recorded")  # the seconds of audio, what a user looks for
    assert float(audio.split()[-3]) == pytest.approx(3.0, abs=0.05)
