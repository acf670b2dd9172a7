"""Instructions executed by a Python run, counted by valgrind's callgrind.

The benchmarks' wall-clock figures drift with the shared machine's speed;
instruction counts do not, so each benchmark can also report them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys


def instructions(args: list[str], what: str) -> int:
    """Run ``python args...`` under callgrind; the instructions it executed.

    Exits with a message when valgrind is missing or the run fails (``what``
    names the run in that message).
    """
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        sys.exit("--instructions needs valgrind (Debian: apt install valgrind)")
    command = [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable]
    run = subprocess.run(command + args, capture_output=True, text=True, check=False)
    found = re.search(r"Collected : (\d+)", run.stderr)
    if run.returncode != 0 or found is None:
        sys.exit(f"{what} under valgrind failed:\n{run.stderr[-2000:]}")
    return int(found.group(1))
