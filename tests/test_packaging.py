"""Packaging as a new user meets it: one version, optional extras that say when they
are missing, orjson as an optional fast path, and the metadata files."""

from __future__ import annotations

import importlib.metadata
import json
import pathlib
import re
import shutil
import subprocess
import sys
import tomllib

import pytest

import rtms_proto
from rtms_proto import _json

ROOT = pathlib.Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def run_blocked(blocked: str, code: str, cwd: pathlib.Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter where importing ``blocked`` fails, as it
    does when the package is not installed."""
    shim = f"import sys\nsys.modules[{blocked!r}] = None\n"
    return subprocess.run(
        [sys.executable, "-c", shim + code],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )


# --- one version ---------------------------------------------------------------------------


def test_the_version_is_written_once_and_printed_by_the_command() -> None:
    assert "version" not in PYPROJECT["project"]
    assert "version" in PYPROJECT["project"]["dynamic"]
    assert importlib.metadata.version("rtms-proto") == rtms_proto.__version__
    result = subprocess.run(
        [sys.executable, "-m", "rtms_app", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"rtms-proto {rtms_proto.__version__}\n"


# --- the demo extra -----------------------------------------------------------------------


def test_demo_without_trustme_says_which_extra_in_one_line(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "demo-out"
    code = f"from rtms_app.cli import main\nsys.exit(main(['demo', '--out', {str(out)!r}]))\n"
    result = run_blocked("trustme", code, tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("rtms-proto demo: error: ")
    assert "pip install 'rtms-proto[demo]'" in result.stderr
    assert not out.exists()  # refused before anything was written


def test_fake_server_tls_without_trustme_says_which_extra_in_one_line(
    tmp_path: pathlib.Path,
) -> None:
    code = (
        "from rtms_app.cli import main\n"
        "sys.exit(main(['fake-server', '--tls', '--port', '0', '--client-id', 'c',"
        " '--client-secret', 's']))\n"
    )
    result = run_blocked("trustme", code, tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("rtms-proto fake-server: error: ")
    assert "pip install 'rtms-proto[demo]'" in result.stderr


def _names(deps: list[str]) -> set[str]:
    return {re.split(r"[<>=!~;\[ ]", dep, maxsplit=1)[0] for dep in deps}


def test_the_extras_are_split_by_purpose() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    names = {extra: _names(deps) for extra, deps in extras.items()}
    assert "trustme" in names["demo"]
    assert {"mypy", "ruff"} <= names["dev"]
    assert not {"mypy", "ruff"} & names["test"]
    assert {"trustme", "trio", "pytest"} <= names["test"]
    runtime = _names(PYPROJECT["project"]["dependencies"])
    assert not {"trustme", "cryptography"} & runtime
    for deps in [PYPROJECT["project"]["dependencies"], *extras.values()]:
        for dep in deps:
            assert ">=" in dep, f"{dep} has no lower bound"


def test_ci_installs_every_extra_it_runs_and_the_readme_names_the_demo_extra() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert '-e ".[test,dev]"' in ci
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = readme[readme.index("## Quick start\n") :]
    commands = re.search(r"```sh\n(.*?)```", quick, flags=re.S)
    assert commands is not None
    install_demo, run_tests = commands.group(1).splitlines()
    assert "'.[demo]'" in install_demo and install_demo.endswith("rtms-proto demo")
    assert "'.[test]'" in run_tests and run_tests.endswith("python -m pytest")
    assert "\npython -m pytest\n" in ci  # the README's test command, as it is


# --- orjson, optional ------------------------------------------------------------------------


def test_the_fast_parser_is_orjson_when_installed_and_the_stdlib_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("orjson", reason="the fast path needs orjson (CPython)")
    loads, error, is_orjson = _json.fast_parser()
    assert is_orjson and _json.FAST_PARSER and loads is _json.orjson_loads
    assert issubclass(error, ValueError)
    monkeypatch.setitem(sys.modules, "orjson", None)
    loads, error, is_orjson = _json.fast_parser()
    assert not is_orjson and loads is _json.stdlib_loads
    assert loads('{"a": [1, 2.5, "\\ud800"]}') == {"a": [1, 2.5, "\ud800"]}
    with pytest.raises(ValueError, match="Expecting"):
        loads("{")
    assert not issubclass(ValueError, error)  # a parse error is not mistaken for it


def test_without_orjson_the_core_decodes_as_with_it(tmp_path: pathlib.Path) -> None:
    samples = [
        '{"msg_type": 14, "content": {"user_id": 7, "data": "AAAA", "timestamp": 1}}',
        '{"msg_type": 12, "timestamp": 18446744073709551615, "sequence": 1}',
        '{"msg_type": 12, "timestamp": 1e400}',
        '{"msg_type": 2, "status_code": 0, "x": "\\ud800"}',
        "[1, 2",
        "not json",
    ]
    code = (
        "import json\n"
        "from rtms_proto import _json\n"
        "from rtms_proto.messages import decode_message\n"
        "assert not _json.FAST_PARSER\n"
        f"print(json.dumps([repr(decode_message(s)) for s in {samples!r}]))\n"
    )
    result = run_blocked("orjson", code, tmp_path)
    assert result.returncode == 0, result.stderr
    from rtms_proto.messages import decode_message

    assert json.loads(result.stdout) == [repr(decode_message(s)) for s in samples]


def test_the_demo_records_without_orjson(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "demo-out"
    code = (
        "from rtms_app.cli import main\n"
        f"sys.exit(main(['demo', '--duration', '1', '-q', '--out', {str(out)!r}]))\n"
    )
    result = run_blocked("orjson", code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert (out / "audio.wav").stat().st_size > 16_000  # more than 0.5 s of 16 kHz audio
    last = (out / "events.jsonl").read_text(encoding="utf-8").splitlines()[-1]
    assert json.loads(last)["why"] == "STREAM_TERMINATED"  # the meeting's normal end


# --- metadata files -----------------------------------------------------------------------------


def test_license_changelog_and_urls() -> None:
    assert PYPROJECT["project"]["license"] == "MIT"
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License\n")
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## {rtms_proto.__version__}" in changelog
    assert PYPROJECT["project"]["urls"]
    classifiers = PYPROJECT["project"]["classifiers"]
    assert "Programming Language :: Python :: Implementation :: PyPy" in classifiers
    assert "Typing :: Typed" in classifiers


def test_what_the_command_writes_in_a_checkout_is_ignored() -> None:
    git = shutil.which("git")
    assert git is not None and (ROOT / ".git").exists(), "the tests run in a git checkout"
    for path in ("rtms-demo/audio.wav", "rtms-demo-2/events.jsonl", "recordings/a/audio.wav"):
        result = subprocess.run(
            [git, "check-ignore", "-q", path], cwd=ROOT, timeout=30, check=False
        )
        assert result.returncode == 0, f"{path} is not ignored"
