"""The reference page is generated from the code and must be current; the
protocol notes must have every section the code cites."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import pathlib
import re
import subprocess
import sys
import types

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_reference_page_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_reference_page_lists_every_failure_reason_and_rule() -> None:
    from rtms_proto._phases import RULES
    from rtms_proto.enums import FailureReason

    page = (ROOT / "docs" / "reference.md").read_text()
    for reason in FailureReason:
        assert f"| `{reason.name}` | {'yes' if reason.retryable else 'no'} |" in page
    for happened, (when, what) in RULES.items():
        assert f"| `{happened.name}` | {when} | " in page
        assert f" | {what} |" in page


# --- docs/protocol.md: every cited section exists -------------------------------------------

CITING = ("rtms_proto", "transports", "conformance", "app", "README.md")
"""Where the code cites the protocol notes (tests cite them too, but are not the product)."""

_SECTION = r"§\d+(?:\.\d+)?"
_DASHES = "-\u2013"  # hyphen and en dash
_RUN = re.compile(rf"{_SECTION}(?:\s*(?:,|[{_DASHES}]|and)\s*{_SECTION})*")
"""A run of citations: ``§5``, ``§8.1-§8.3``, ``§2-§3, §6, §13`` (may span lines)."""
_OTHER_DOCUMENT = re.compile(r"(?:[\w-]+\.md|RFC\s*\d+|H\.264)\W*$")
"""A run right after another document's name cites that document, not protocol.md."""
_HEADING = re.compile(r"^#{2,4} (\d+(?:\.\d+)?)\.? ", re.MULTILINE)


def _expand(run: str) -> list[str]:
    """The section numbers a run names; a range covers the sections between its ends."""
    numbers: list[str] = []
    for part in re.split(r"\s*(?:,|and)\s*", run):
        ends = re.findall(r"§(\d+)(?:\.(\d+))?", part)
        if len(ends) == 2 and any(dash in part for dash in _DASHES):
            (a, a_sub), (b, b_sub) = ends
            if not a_sub and not b_sub:
                numbers += [str(n) for n in range(int(a), int(b) + 1)]
                continue
            if a == b and a_sub and b_sub:
                numbers += [f"{a}.{n}" for n in range(int(a_sub), int(b_sub) + 1)]
                continue
        numbers += [f"{major}.{sub}" if sub else major for major, sub in ends]
    return numbers


def _protocol_citations() -> dict[str, list[str]]:
    """Section number -> where it is cited (``path:line``), for protocol.md citations.

    A run counts when "protocol.md" precedes it, or when no other document's
    name does (the code also cites sections bare, e.g. "(§5.1)", meaning the
    protocol notes); runs after "design.md", "RFC 6455" or "H.264" are skipped.
    """
    files: list[pathlib.Path] = []
    for name in CITING:
        path = ROOT / name
        if path.is_file():
            files.append(path)
        else:
            files += sorted(path.rglob("*.py")) + sorted(path.rglob("*.md"))
    cited: dict[str, list[str]] = {}
    for path in files:
        text = path.read_text(encoding="utf-8")
        for match in _RUN.finditer(text):
            before = text[max(0, match.start() - 40) : match.start()]
            if not before.rstrip(" (\n").endswith("protocol.md") and _OTHER_DOCUMENT.search(before):
                continue
            line = text.count("\n", 0, match.start()) + 1
            for number in _expand(match.group()):
                cited.setdefault(number, []).append(f"{path.relative_to(ROOT)}:{line}")
    return cited


def test_citation_parser() -> None:
    assert _expand("§2-§3, §6, §13") == ["2", "3", "6", "13"]
    assert _expand("§8.1-§8.3") == ["8.1", "8.2", "8.3"]
    assert _expand("§3-§5") == ["3", "4", "5"]
    assert _expand("§7, §8.6") == ["7", "8.6"]
    assert _expand("§3.1-§3.4, §5") == ["3.1", "3.2", "3.3", "3.4", "5"]
    assert _OTHER_DOCUMENT.search("(design.md ")
    assert _OTHER_DOCUMENT.search("RFC 6455 ")
    assert not _OTHER_DOCUMENT.search("audio matrix, ")


def test_every_cited_protocol_section_exists() -> None:
    page = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    headings = set(_HEADING.findall(page))
    cited = _protocol_citations()
    # The code cites dozens of sections: an empty result means the scan is broken.
    assert len(cited) > 40, sorted(cited)
    missing = {n: where for n, where in sorted(cited.items()) if n not in headings}
    assert not missing, f"sections cited but not in docs/protocol.md: {missing}"


# --- docs/api.md: the Python API, generated -------------------------------------------------


def _generator() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_stale_page_is_reported_and_regenerated(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    generate = _generator()
    page = tmp_path / "api.md"
    page.write_text("# an old page\n", encoding="utf-8")
    monkeypatch.setattr(generate, "PAGES", {page: generate.render_api})
    assert generate.main(["--check"]) == 1
    assert "docs/api.md stale" in capsys.readouterr().err
    assert generate.main([]) == 0
    assert generate.main(["--check"]) == 0
    assert page.read_text(encoding="utf-8") == (ROOT / "docs" / "api.md").read_text(
        encoding="utf-8"
    )


def test_the_api_page_covers_connect_stream_options_sinks_and_leaving() -> None:
    import rtms_transports
    from rtms_app import sinks
    from rtms_transports import blocking
    from rtms_transports._stream import AsyncStream

    page = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    for driver in ("asyncio", "trio", "blocking"):
        assert f"### `rtms_transports.{driver}.connect`" in page
        assert f"### `rtms_transports.{driver}.SessionRunner`" in page
    leaving = page[page.index("## Leaving connect()") : page.index("## Stream")]
    assert "closes every socket at once" in leaving
    assert "Zoom is not asked to end the stream" in leaving
    assert "close_stream()" in leaving
    for cls in (AsyncStream, blocking.Stream):
        for name in dir(cls):
            if not name.startswith("_"):
                assert f"- `{name}" in page or f"- `await {name}" in page, name
    proxies = page[page.index("## Proxies") : page.index("## Lower level")]
    for name in ("socks5h://", "no_proxy", "wss_proxy", "https_proxy", "all_proxy"):
        assert name in proxies, name
    for field in dataclasses.fields(rtms_transports.TransportOptions):
        assert f"| `{field.name}` |" in page
    for name in sinks.__all__:
        if not name.isupper():  # constants are not documented one by one
            assert f"### `{name}" in page, name
    assert "0x" not in page  # no object addresses: the page is the same on every run


# --- the product points only inside the repository ----------------------------------------

_MD_NAME = re.compile(r"(?<![\w/.-])((?:\.\./|[\w-]+/)*[\w-]+\.md)\b")


def _help_text() -> str:
    """Every help screen of the command, as a user reads them."""
    from rtms_app.cli import build_parser

    parser = build_parser()
    texts = [parser.format_help()]
    for action in parser._actions:  # the subcommands' parsers
        if isinstance(action, argparse._SubParsersAction):
            texts += [sub.format_help() for sub in action.choices.values()]
    from rtms_conformance.cli import build_parser as fake_server_parser

    texts.append(fake_server_parser().format_help())
    return "\n".join(texts)


def _dangling(text: str, base: pathlib.Path) -> list[str]:
    """The ``*.md`` names in ``text`` that are not files of the repository (resolved
    from the repository root, or from ``base`` for a Markdown page's own links)."""
    missing = []
    for name in _MD_NAME.findall(text):
        found = [(where / name).resolve() for where in (ROOT, base)]
        if not any(path.is_file() and ROOT in path.parents for path in found):
            missing.append(name)
    return missing


def test_readme_docs_docstrings_and_help_name_only_files_in_the_repository() -> None:
    sources = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
    for package in ("rtms_proto", "transports", "conformance", "app"):
        sources += sorted((ROOT / package).rglob("*.py"))
    dangling = {}
    for path in sources:
        missing = _dangling(path.read_text(encoding="utf-8"), path.parent)
        if missing:
            dangling[str(path.relative_to(ROOT))] = missing
    help_missing = _dangling(_help_text(), ROOT)
    if help_missing:
        dangling["rtms-proto --help"] = help_missing
    assert not dangling, dangling
    # The check finds what it looks for: these are what the README links to.
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert {"docs/protocol.md", "docs/architecture.md", "docs/api.md"} <= set(
        _MD_NAME.findall(readme)
    )


def test_the_dangling_check_catches_names_outside_the_repository() -> None:
    text = "see protocol.md §5, design.md, ../shared/protocol.md and docs/protocol.md"
    assert _dangling(text, ROOT) == ["protocol.md", "design.md", "../shared/protocol.md"]
    assert _dangling("[notes](protocol.md)", ROOT / "docs") == []
