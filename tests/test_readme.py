"""The README's code blocks run, as written, against the fake server on loopback."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest

from rtms_conformance.meeting import MeetingSpec
from rtms_conformance.net import ServerThread
from rtms_conformance.server import ServerConfig, StreamSpec
from rtms_conformance.tls import make_test_ca
from rtms_proto import Credentials
from rtms_proto import events as ev

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def section(title: str, text: str | None = None) -> list[str]:
    """The python blocks under one ``## title`` heading; a failure when the heading is
    missing or has none, so that no test below passes by running nothing."""
    text = README.read_text() if text is None else text
    heading = f"## {title}\n"
    if heading not in text:
        pytest.fail(f"README.md has no '## {title}' section")
    start = text.index(heading)
    end = text.find("\n## ", start + 1)
    body = text[start : end if end != -1 else len(text)]
    blocks: list[str] = re.findall(r"```python\n(.*?)```", body, flags=re.S)
    if not blocks:
        pytest.fail(f"README.md's '## {title}' section has no python block")
    return blocks


def test_readme_has_the_documented_examples() -> None:
    assert len(python_blocks()) >= 3
    assert len(section("Drive a connection yourself")) >= 1
    assert len(section("Embed the Session in your own event loop")) == 2


def test_a_missing_or_empty_section_fails() -> None:
    text = "# t\n\n## Present\n\n```python\nx = 1\n```\n\n## Empty\n\nprose\n"
    assert section("Present", text) == ["x = 1\n"]
    with pytest.raises(pytest.fail.Exception, match="no '## Absent' section"):
        section("Absent", text)
    with pytest.raises(pytest.fail.Exception, match="'## Empty' section has no python block"):
        section("Empty", text)


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_every_python_block_runs_when_copied_alone(index: int, tmp_path: pathlib.Path) -> None:
    """Each block in a fresh interpreter, with nothing from the blocks before it."""
    block = python_blocks()[index]
    result = subprocess.run(
        [sys.executable, "-"],
        input=block,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"README block {index + 1}:\n{block}\n{result.stderr}"


def test_a_block_that_needs_an_earlier_one_fails_alone(tmp_path: pathlib.Path) -> None:
    result = subprocess.run(
        [sys.executable, "-"],
        input="def f() -> Session: ...\n",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1 and "NameError" in result.stderr


def test_drive_a_connection_yourself_runs() -> None:
    for block in section("Drive a connection yourself"):
        exec(compile(block, str(README), "exec"), {})


def test_embed_the_session_runs_against_the_fake_server_over_tls() -> None:
    namespace: dict[str, object] = {}
    for block in section("Embed the Session in your own event loop"):
        exec(compile(block, str(README), "exec"), namespace)
    tls = make_test_ca()
    config = ServerConfig(client_id="readme-client", client_secret="readme-secret")
    spec = StreamSpec(
        meeting_uuid="readme==",
        rtms_stream_id="readme-stream",
        meeting=MeetingSpec(duration=1.0, share_at=None, chat_interval=None),
    )
    with ServerThread(config, ssl_context=tls.server_context, url_host="localhost") as server:
        info = server.add_stream(spec)
        body = server.rtms_started_body(info)
        credentials = Credentials(client_id="readme-client", client_secret="readme-secret")
        session = namespace["session_from_webhook"](  # type: ignore[operator]
            body, credentials, allowed_hosts=("localhost",)
        )
        got: list[object] = []
        namespace["run"](session, tls.client_context(), got.append)  # type: ignore[operator]
    assert isinstance(got[-1], ev.SessionEnded)
    assert got[-1].why is ev.EndReason.STREAM_TERMINATED
    audio = [e for e in got if isinstance(e, ev.AudioReceived)]
    assert len(audio) >= 40  # 1 s of 20 ms packets, plus what was buffered before connecting
    assert any(isinstance(e, ev.ParticipantsJoined) for e in got)
