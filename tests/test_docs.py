"""The reference page is generated from the code and must be current; the
protocol notes must have every section the code cites."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

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
