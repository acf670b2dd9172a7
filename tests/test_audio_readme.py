"""The README's "Audio for speech-to-text" examples run, as written, against the fake server."""

from __future__ import annotations

import asyncio
import pathlib
import re
from pathlib import Path
from typing import Any

import pytest
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
SECTION = "Audio for speech-to-text"


def blocks(title: str, text: str) -> list[str]:
    """The python blocks under ``## title``; a failure when the heading or its blocks are
    missing, so that no test passes by running nothing."""
    heading = f"## {title}\n"
    if heading not in text:
        pytest.fail(f"README.md has no '## {title}' section")
    start = text.index(heading)
    end = text.find("\n## ", start + 1)
    found: list[str] = re.findall(
        r"```python\n(.*?)```", text[start : end if end != -1 else None], flags=re.S
    )
    if not found:
        pytest.fail(f"README.md's '## {title}' section has no python block")
    return found


def namespace(code: str) -> dict[str, Any]:
    """Run one block alone, as a reader pasting it would."""
    found: dict[str, Any] = {}
    exec(compile(code, "README.md", "exec"), found)
    return found


@pytest.fixture(autouse=True)
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CLIENT_ENV, CLIENT_ID)
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
    monkeypatch.setenv(CA_ENV, write_ca(tmp_path))


def test_the_section_has_both_examples_after_the_transports() -> None:
    text = README.read_text()
    assert len(blocks(SECTION, text)) == 2
    transports = text.index("## Run a stream with asyncio, trio or blocking sockets\n")
    assert transports < text.index(f"## {SECTION}\n")


def test_a_missing_or_empty_section_fails() -> None:
    with pytest.raises(pytest.fail.Exception, match="no '## Absent' section"):
        blocks("Absent", "# t\n")
    with pytest.raises(pytest.fail.Exception, match="section has no python block"):
        blocks("Empty", "# t\n\n## Empty\n\nprose\n\n## Next\n\n```python\nx = 1\n```\n")


def test_captions_reach_the_transcription_callback_per_speaker(
    capsys: pytest.CaptureFixture[str],
) -> None:
    captions = namespace(blocks(SECTION, README.read_text())[0])["captions"]
    with fake_server() as server:
        info = add_stream(server, "readme-captions", duration=4.5)
        asyncio.run(captions(server.rtms_started_body(info), allowed_hosts=ALLOWED))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "audio: L16 16000 Hz mono, per speaker"
    said = [re.fullmatch(r"(\d{13}) (\w+ Example): <(\d+\.\d) s of speech>", x) for x in lines[1:]]
    assert said and all(said), lines
    speakers = {m[2] for m in said if m}
    assert len(speakers) >= 2
    assert {m[3] for m in said if m} >= {"2.0"}  # whole 2 s chunks, then the rest


def test_loudness_reads_the_samples_through_numpy() -> None:
    loudness = namespace(blocks(SECTION, README.read_text())[1])["loudness"]
    with fake_server() as server:
        info = add_stream(server, "readme-loudness", duration=2.0)
        peaks = loudness(server.rtms_started_body(info), allowed_hosts=ALLOWED)
    assert len(peaks) >= 2 and all(0.0 <= peak <= 1.0 for peak in peaks)
    assert max(peaks) > 0.01  # the fake meeting's voices are tones, not silence
