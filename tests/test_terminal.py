"""Text from the network on the terminal: the sanitising helper, the progress block and
the log lines of the ``rtms-proto`` command."""

from __future__ import annotations

import io
import logging
import re

import pytest

from rtms_app.cli import _setup_logging
from rtms_app.progress import Progress, render
from rtms_app.sinks import Stats
from rtms_app.terminal import printable

# What a terminal would act on: C0/C1 controls, DEL, line separators, bidi controls.
RAW_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")

HOSTILE = "\x1b]0;pwned\x07\x1b[2J\r\nrtms-proto record: error: forged\u202egnp.exe\x9b31m\ud800"


def test_printable_escapes_what_a_terminal_would_act_on() -> None:
    shown = printable(HOSTILE)
    assert not RAW_CONTROL.search(shown)
    assert shown == (
        "\\x1b]0;pwned\\x07\\x1b[2J\\x0d\\x0artms-proto record: error: forged"
        "\\u202egnp.exe\\x9b31m\\ud800"
    )
    shown.encode("utf-8")  # a lone surrogate would not even reach a UTF-8 terminal


def test_printable_keeps_ordinary_text_and_bounds_length() -> None:
    names = "Zoë Ångström, 山田太郎, Ana-María O'Neil, 👩\u200d💻 dev, tab-free"
    assert printable(names) == names
    assert printable(12345) == "12345"
    assert printable("x" * 500, 10) == "x" * 10 + "…"
    assert printable("\x1b" * 5, 2) == "\\x1b\\x1b…"  # the limit counts the original text
    assert printable("x" * 5000, None) == "x" * 5000


def test_progress_block_shows_hostile_names_inertly() -> None:
    stats = Stats()
    for uid in range(1, 9):
        stats.participants[uid] = f"name{uid}\x1b[1A\x1b[2K\r\n" + "w" * 100
    stats.speaker = HOSTILE
    lines = render(stats, 3.0, title="recording \x1b[31mstream\r")
    assert len(lines) == 2
    for line in lines:
        assert not RAW_CONTROL.search(line)
    assert lines[0].startswith("recording \\x1b[31mstream\\x0d ")
    people = lines[-1]
    assert people.startswith("  participants: 8 (name1\\x1b[1A")
    assert people.count("name") == 6 and " and 2 more" in people
    assert len(people) < 6 * 45 + 200  # each name at most 40 characters
    # the block drawn on a terminal: escapes of our own, none of the server's
    out = io.StringIO()
    progress = Progress(out, enabled=True, clock=lambda: 0.0)
    progress.update(stats)
    drawn = out.getvalue()
    assert drawn.count("\x1b") == 2  # "erase line" before each of the two lines
    assert drawn.count("\n") == 2


def test_log_lines_escape_server_text(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        _setup_logging(1)
        logging.getLogger("rtms_transports").warning("socket failed: rejected: %s", HOSTILE)
    finally:
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.endswith("\n")
    assert not RAW_CONTROL.search(err[:-1])
    assert "WARNING socket failed: rejected: \\x1b]0;pwned\\x07" in err


def test_fit_counts_terminal_columns() -> None:
    from rtms_app.terminal import columns, fit

    assert columns("山田太郎") == 8 and columns("e\u0301") == 1 and columns("👩\u200d💻") == 4
    assert fit("abcdef", 6) == "abcdef"
    assert fit("abcdefg", 6) == "abcde…"
    assert fit("山田太郎", 6) == "山田…"  # a wide character is never cut in half
    assert columns(fit("山田太郎", 6)) <= 6
    assert fit("abc", 0) == ""


def test_progress_lines_fit_a_narrow_terminal() -> None:
    stats = Stats()
    stats.participants = {i: f"Participant with a long name {i}" for i in range(9)}
    stats.speaker = "Participant with a long name 3"
    stats.count("audio", 640)
    stats.audio_seconds = 12.34
    out = io.StringIO()
    progress = Progress(out, enabled=True, clock=lambda: 0.0, columns=lambda: 40)
    progress.update(stats)
    lines = [re.sub(r"\x1b\[\d*[A-Za-z]", "", line) for line in out.getvalue().splitlines()]
    assert lines and all(len(line) <= 39 for line in lines), lines
    assert lines[-1].startswith("  participants: 9 (") and lines[-1].endswith("…")
    assert "12.3 s" in render(stats, 1.0)[1]


def test_vv_turns_on_debug_for_our_loggers_only(capsys: pytest.CaptureFixture[str]) -> None:
    from rtms_app.cli import OUR_LOGGERS

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in OUR_LOGGERS}
    try:
        _setup_logging(2)
        logging.getLogger("asyncio").debug("Using selector: EpollSelector")
        logging.getLogger("rtms_transports").debug("[s signaling#1] sent 120 bytes")
        logging.getLogger("rtms_app.webhook").info("webhook: answered")
    finally:
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)
        for name, old in levels.items():
            logging.getLogger(name).setLevel(old)
    err = capsys.readouterr().err
    assert "Using selector" not in err
    assert "DEBUG [s signaling#1] sent 120 bytes" in err
    assert "INFO webhook: answered" in err


def test_progress_width_has_a_floor() -> None:
    out = io.StringIO()
    progress = Progress(out, enabled=True, clock=lambda: 0.0, columns=lambda: 3)
    progress.update(Stats())
    lines = [re.sub(r"\x1b\[\d*[A-Za-z]", "", line) for line in out.getvalue().splitlines()]
    assert lines and all(len(line) <= 10 for line in lines)  # never below 10 columns
    assert any(len(line) == 10 for line in lines)
