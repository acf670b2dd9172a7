"""Finding a transport's adapter by name: the registry the runner, plugin and command use.

An adapter is named in one of three ways (see :func:`load_adapter`):

* ``memory``: the in-memory reference (:class:`~rtms_conformance.harness.MemoryAdapter`),
  the only adapter this package ships;
* a name registered under the :data:`ENTRY_POINT_GROUP` entry-point group by an
  installed package: ``rtms_transports`` registers ``asyncio``, ``trio`` and
  ``blocking`` there, and a third-party transport registers its own the same way;
* ``module:factory``, an attribute path called without arguments.

Nothing here imports a transport until its adapter is asked for, so this
package depends on no transport.
"""

from __future__ import annotations

import importlib
import importlib.metadata

from .harness import Harness, MemoryAdapter

__all__ = ["ENTRY_POINT_GROUP", "MEMORY", "adapter_names", "load_adapter"]

ENTRY_POINT_GROUP = "rtms_conformance.adapters"
"""The entry-point group in which installed packages register their adapters by name."""

MEMORY = "memory"
"""The name of the built-in in-memory reference adapter."""


def _registered() -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def adapter_names() -> tuple[str, ...]:
    """Every name :func:`load_adapter` accepts: ``memory``, then the registered names."""
    return (MEMORY, *sorted(set(_registered()) - {MEMORY}))


def load_adapter(spec: str) -> Harness:
    """An adapter from a registered name, ``memory`` or ``module:factory``.

    The factory (a registered entry point's object, or the attribute named by
    ``module:factory``) is called without arguments and must return a
    :class:`~rtms_conformance.harness.Harness`.  An unknown name raises
    ``ValueError``; a registered name whose package cannot be imported raises
    that ``ImportError`` (a missing driver is an error, never a skipped run).
    """
    factory: object
    if spec == MEMORY:
        factory = MemoryAdapter
    elif (registered := _registered().get(spec)) is not None:
        factory = registered.load()
    else:
        module_name, sep, attr = spec.partition(":")
        if not sep or not module_name or not attr:
            raise ValueError(
                f"adapter {spec!r} is not 'module:factory' nor one of {', '.join(adapter_names())}"
            )
        factory = importlib.import_module(module_name)
        for part in attr.split("."):
            factory = getattr(factory, part)
    if not callable(factory):
        raise TypeError(f"adapter {spec!r} is not callable")
    adapter = factory()
    if not isinstance(adapter, Harness):
        raise TypeError(f"{spec}() returned {adapter!r}, which has no name and run(env)")
    return adapter
