"""``python -m rtms_conformance --adapter NAME|module:factory``: run the conformance catalogue.

Exit status 0 when every trace matches, 1 when some differ (a diff is
printed for each), 2 for a usage error.  ``--list`` prints the catalogue;
``-v`` shows the transport's log (quiet by default: scenarios make sockets
fail on purpose).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .adapters import adapter_names, load_adapter
from .runner import Runner
from .scenarios import SCENARIOS, Scenario, by_name

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rtms_conformance",
        description="Run the RTMS conformance scenarios against a transport adapter.",
    )
    parser.add_argument(
        "--adapter",
        action="append",
        default=[],
        metavar="NAME|MODULE:FACTORY",
        help="the adapter to test (repeatable): a registered name"
        f" ({', '.join(adapter_names())}) or module:factory",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this scenario (repeatable; default: all)",
    )
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument(
        "--parallel", type=int, default=4, metavar="N", help="scenarios run at once (default 4)"
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show the transport's log (the scenarios make sockets fail on purpose)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.list:
        width = max(len(s.name) for s in SCENARIOS)
        for scenario in SCENARIOS:
            print(f"{scenario.name:<{width}}  {scenario.description}")
        return 0
    if not args.adapter:
        parser.print_usage(sys.stderr)
        print("error: give --adapter NAME or MODULE:FACTORY (or --list)", file=sys.stderr)
        return 2
    if args.parallel < 1:
        print("error: --parallel must be at least 1", file=sys.stderr)
        return 2
    try:
        chosen: list[Scenario] = [by_name(n) for n in args.scenario] or list(SCENARIOS)
        adapters = [load_adapter(spec) for spec in args.adapter]
    except (KeyError, ValueError, TypeError, ImportError, AttributeError) as exc:
        text = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"error: {text}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.ERROR,
        format="%(levelname)s %(name)s: %(message)s",
    )
    ok = True
    with Runner(parallel=args.parallel) as runner:
        for adapter in adapters:
            report = runner.run(adapter, chosen)
            print(report.summary())
            ok = ok and report.ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
