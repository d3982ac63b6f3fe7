"""Fixtures of the service tests (defined in service_kit, which the tests also import)."""

from service_kit import fresh_graph, graph, service

__all__ = ["fresh_graph", "graph", "service"]
