"""Helpers for testing bots built on statehq, shipped in the package so benchmarks can use
them too: :class:`FakeGraph`, a stand-in for Meta's WhatsApp Cloud API servers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .fake_graph import FakeGraph as FakeGraph
    from .fake_graph import Received as Received

__all__ = ["FakeGraph", "Received"]


def __getattr__(name: str) -> Any:
    # Imported on first use, not here: ``python -m statehq.testing.fake_graph`` must find
    # the module not yet imported, or runpy warns that it will run a second copy.
    if name in __all__:
        from . import fake_graph

        return getattr(fake_graph, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
