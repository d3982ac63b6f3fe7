"""Fixtures of the service tests (defined in service_kit, which the tests also import)."""

from service_kit import delivery, engine, fresh_graph, graph, service

__all__ = ["delivery", "engine", "fresh_graph", "graph", "service"]
