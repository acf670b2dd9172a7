"""The README's transport examples (one per driver) run against the fake server over TLS.

The examples are kept here, verbatim, and must appear verbatim in README.md
under the heading :data:`SECTION` (a missing section fails).
"""

from __future__ import annotations

import asyncio
import pathlib
import re
from pathlib import Path
from typing import Any

import pytest
import trio
from test_transport_helpers import (
    ALLOWED,
    CLIENT_ID,
    CLIENT_SECRET,
    add_stream,
    fake_server,
    write_ca,
)

from rtms_transports import CA_ENV, CLIENT_ENV, SECRET_ENV

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
SECTION = "Run a stream with asyncio, trio or blocking sockets"

ASYNCIO = """\
from rtms_proto import events
from rtms_transports.asyncio import connect

async def transcribe(webhook_body: bytes, allowed_hosts=("zoom.us",)) -> None:
    # Credentials from ZM_RTMS_CLIENT / ZM_RTMS_SECRET; ZM_RTMS_CA names a CA file if needed.
    async with connect(webhook_body, allowed_hosts=allowed_hosts) as stream:
        async for event in stream:
            match event:
                case events.TranscriptReceived(user_name=who, text=text):
                    print(f"{who}: {text}")
                case events.SessionEnded(why=why):
                    print("ended:", why.value)
"""

TRIO = """\
from rtms_proto import events
from rtms_transports.trio import connect

async def record(webhook_body: bytes, path: str, allowed_hosts=("zoom.us",)) -> None:
    async with connect(webhook_body, allowed_hosts=allowed_hosts) as stream:
        with open(path, "wb") as pcm:  # 16 kHz mono 16-bit PCM, the default
            async for event in stream:
                if isinstance(event, events.AudioReceived):
                    pcm.write(event.data)
"""

BLOCKING = """\
from rtms_proto import events
from rtms_transports import TransportOptions
from rtms_transports.blocking import connect

def speakers(webhook_body: bytes, proxy: str | bool = True, allowed_hosts=("zoom.us",)) -> set:
    names = set()
    # True: from https_proxy / no_proxy; or e.g. "socks5h://user:password@proxy:1080"
    options = TransportOptions(proxy=proxy)
    with connect(webhook_body, options=options, allowed_hosts=allowed_hosts) as stream:
        for event in stream:  # the shared I/O thread answers keep-alives meanwhile
            if isinstance(event, events.TranscriptReceived) and event.user_name:
                names.add(event.user_name)
    return names
"""


def namespace(code: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), found)
    return found


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CLIENT_ENV, CLIENT_ID)
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
    monkeypatch.setenv(CA_ENV, write_ca(tmp_path))


@pytest.mark.usefixtures("environment")
def test_asyncio_example(capsys: pytest.CaptureFixture[str]) -> None:
    with fake_server() as server:
        info = add_stream(server, "readme-asyncio", duration=1.0)
        transcribe = namespace(ASYNCIO)["transcribe"]
        asyncio.run(transcribe(server.rtms_started_body(info), allowed_hosts=ALLOWED))
    out = capsys.readouterr().out
    assert re.search(r"^\w+ Example: .+$", out, flags=re.M)
    assert out.endswith("ended: stream_terminated\n")


@pytest.mark.usefixtures("environment")
def test_trio_example(tmp_path: Path) -> None:
    path = tmp_path / "audio.pcm"
    with fake_server() as server:
        info = add_stream(server, "readme-trio", duration=1.0)
        record = namespace(TRIO)["record"]
        trio.run(record, server.rtms_started_body(info), str(path), ALLOWED)
        sent = server.status(info).sent[14]
    assert path.stat().st_size == sent * 640  # 20 ms of 16 kHz 16-bit mono each


@pytest.mark.usefixtures("environment")
def test_blocking_example() -> None:
    with fake_server() as server:
        info = add_stream(server, "readme-blocking", duration=1.2)
        speakers = namespace(BLOCKING)["speakers"]
        names = speakers(server.rtms_started_body(info), allowed_hosts=ALLOWED)
    assert names and all(name.endswith(" Example") for name in names)


def section(title: str, text: str) -> str:
    """The text under one ``## title`` heading (up to the next one); a failure when the
    heading is missing, so that the check below cannot pass by looking nowhere."""
    heading = f"## {title}\n"
    if heading not in text:
        pytest.fail(f"README.md has no '## {title}' section")
    start = text.index(heading)
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_the_readme_shows_these_examples() -> None:
    body = section(SECTION, README.read_text())
    for code in (ASYNCIO, TRIO, BLOCKING):
        assert f"```python\n{code}```" in body


def test_a_missing_section_fails() -> None:
    text = "# t\n\n## One\n\nfirst\n\n## Two\n\nsecond\n"
    assert section("One", text) == "## One\n\nfirst\n"
    assert section("Two", text) == "## Two\n\nsecond\n"
    with pytest.raises(pytest.fail.Exception, match="no '## Three' section"):
        section("Three", text)
