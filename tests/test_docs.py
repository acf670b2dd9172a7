"""The reference page is generated from the code and must be current."""

from __future__ import annotations

import pathlib
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
