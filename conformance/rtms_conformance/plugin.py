"""pytest plugin: run the conformance catalogue against your transport.

``pytest --rtms-adapter mypackage.adapter:make_adapter`` adds one test per
scenario (``rtms-conformance::<adapter>::<scenario>``); ``-k`` selects among
them, ``--rtms-scenario NAME`` (repeatable) restricts the catalogue,
``--rtms-parallel N`` sets how many scenarios run at once (default 4).  The
option takes ``module:factory`` (called without arguments) or a registered
name: ``memory``, and those installed packages register
(:mod:`rtms_conformance.adapters`; ``rtms_transports`` registers ``asyncio``,
``trio`` and ``blocking``).

Tests can also ask for the ``rtms_conformance`` fixture and call
``rtms_conformance.run(adapter)`` themselves.

Loaded through the ``pytest11`` entry point in every pytest run, so importing
it is cheap (pytest and the standard library only) and it does nothing unless
the option is given or the fixture is used.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .harness import Harness
    from .runner import Report, Runner, ScenarioResult
    from .scenarios import Scenario

__all__ = ["ConformanceFixture", "ScenarioItem"]

_PREFIX = "rtms-conformance"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rtms-conformance", "RTMS transport conformance")
    group.addoption(
        "--rtms-adapter",
        action="append",
        default=[],
        metavar="NAME|MODULE:FACTORY",
        help="run the RTMS conformance scenarios against this adapter (repeatable):"
        " memory, a registered name (asyncio, trio, blocking with rtms_transports)"
        " or module:factory",
    )
    group.addoption(
        "--rtms-scenario",
        action="append",
        default=[],
        metavar="NAME",
        help="only these conformance scenarios (repeatable; default: all)",
    )
    group.addoption(
        "--rtms-parallel",
        type=int,
        default=4,
        metavar="N",
        help="conformance scenarios run at once (default 4)",
    )


class _Failure(Exception):
    """A scenario's trace differs; the message is the readable diff."""


class ScenarioItem(pytest.Item):
    """One scenario on one adapter.  The first item of an adapter runs all of that
    adapter's selected scenarios (several at once) and keeps the results."""

    def __init__(self, *, adapter: str, scenario: str, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.adapter = adapter
        self.scenario = scenario

    def runtest(self) -> None:
        result = _results(self)[self.scenario]
        if not result.ok:
            raise _Failure(result.diff())

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: object = None,
    ) -> str:
        if isinstance(excinfo.value, _Failure):
            return f"{self.adapter} / {self.scenario}: trace differs\n{excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[str, int | None, str]:
        return (_PREFIX, None, f"{self.adapter}::{self.scenario}")


_RESULTS = pytest.StashKey[dict[str, dict[str, "ScenarioResult"]]]()
_RUNNER = pytest.StashKey["Runner"]()


def _runner(config: pytest.Config) -> Runner:
    runner = config.stash.get(_RUNNER, None)
    if runner is None:
        from .runner import Runner

        runner = Runner(parallel=max(1, int(config.getoption("rtms_parallel"))))
        config.stash[_RUNNER] = runner
    return runner


def _results(item: ScenarioItem) -> dict[str, ScenarioResult]:
    config = item.config
    cache = config.stash.setdefault(_RESULTS, {})
    if item.adapter not in cache:
        from .adapters import load_adapter
        from .scenarios import by_name

        wanted = [
            other.scenario
            for other in item.session.items
            if isinstance(other, ScenarioItem) and other.adapter == item.adapter
        ]
        report = _runner(config).run(load_adapter(item.adapter), [by_name(n) for n in wanted])
        cache[item.adapter] = {r.scenario: r for r in report.results}
    return cache[item.adapter]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    adapters: list[str] = config.getoption("rtms_adapter")
    if not adapters:
        return
    from .scenarios import SCENARIOS, by_name

    names: list[str] = config.getoption("rtms_scenario")
    chosen = [by_name(n) for n in names] if names else list(SCENARIOS)
    for adapter in adapters:
        for scenario in chosen:
            items.append(
                ScenarioItem.from_parent(
                    session,
                    name=f"{_PREFIX}::{adapter}::{scenario.name}",
                    adapter=adapter,
                    scenario=scenario.name,
                )
            )


def pytest_unconfigure(config: pytest.Config) -> None:
    runner = config.stash.get(_RUNNER, None)
    if runner is not None:
        runner.close()


class ConformanceFixture:
    """What the ``rtms_conformance`` fixture gives a test."""

    def __init__(self, runner: Runner) -> None:
        self._runner = runner

    @property
    def scenarios(self) -> tuple[Scenario, ...]:
        from .scenarios import SCENARIOS

        return SCENARIOS

    def run(self, adapter: Harness | str, scenarios: Sequence[Scenario] | None = None) -> Report:
        """Run ``scenarios`` (default: all) against an adapter or an adapter spec."""
        if isinstance(adapter, str):
            from .adapters import load_adapter

            adapter = load_adapter(adapter)
        return self._runner.run(adapter, scenarios)


@pytest.fixture
def rtms_conformance(pytestconfig: pytest.Config) -> Iterator[ConformanceFixture]:
    """Run conformance scenarios from a test: ``report = rtms_conformance.run(adapter)``,
    then ``assert report.ok, report.summary()``."""
    yield ConformanceFixture(_runner(pytestconfig))
