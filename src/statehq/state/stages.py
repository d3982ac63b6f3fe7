"""Declared stage transitions: where a conversation may go from where it is.

The default machine is the one the seed notes describe::

    INIT ──► AUTH ──► MENU ──► <flow> ──► MENU
                └──► <pre-auth flow> ──► MENU | AUTH

Staying in a stage is always allowed, and a reset (operator, recovery, expiry) starts
again at INIT without being a transition. Anything else must be declared; an
undeclared move is refused with :class:`~statehq.errors.TransitionRefused` and audited.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..errors import InvalidInput
from .model import STAGE_AUTH, STAGE_INIT, STAGE_MENU

EXTERNAL_STAGES: frozenset[str] = frozenset({"aiogram"})
"""Stages that frameworks running on statehq state keep their sessions in (``aiogram``:
the aiogram FSM storage, :mod:`statehq.integrations.aiogram`). Every stage machine
accepts a document in one of them as valid, so any process - the CLI with whatever
bot it loaded - can show, roll back and recover those sessions; moving into one is a
transition only the framework's own machine declares (with :meth:`Stages.add_flow`)."""

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")


class Stages:
    """A stage machine: the declared stages and the transitions between them."""

    def __init__(self) -> None:
        self._edges: dict[str, set[str]] = {
            STAGE_INIT: {STAGE_AUTH},
            STAGE_AUTH: {STAGE_MENU},
            STAGE_MENU: {STAGE_AUTH},
        }
        self.flows: set[str] = set()

    def add_flow(self, flow_id: str, *, before_auth: bool = False) -> None:
        """Declare a flow: started from MENU (or from AUTH when ``before_auth``), back to MENU."""
        if not isinstance(flow_id, str) or not _NAME.match(flow_id) or flow_id in self._edges:
            raise InvalidInput(
                f"flow id must be 1-64 letters, digits or _.- starting with a letter, and not "
                f"an existing stage; got {flow_id!r}"
            )
        self.flows.add(flow_id)
        self._edges[flow_id] = {STAGE_MENU}
        self._edges[STAGE_MENU].add(flow_id)
        if before_auth:
            self._edges[STAGE_AUTH].add(flow_id)
            self._edges[flow_id].add(STAGE_AUTH)

    def declare(self, source: str, targets: Iterable[str]) -> None:
        """Allow extra transitions from ``source`` (both ends must be declared stages)."""
        for name in (source, *targets):
            if name not in self._edges:
                raise InvalidInput(f"{name!r} is not a declared stage; declare its flow first")
        self._edges[source].update(targets)

    def __contains__(self, stage: object) -> bool:
        return stage in self._edges or stage in EXTERNAL_STAGES

    def allows(self, source: str, target: str) -> bool:
        """True when moving from ``source`` to ``target`` is declared (or a no-op)."""
        return source == target or target in self._edges.get(source, set())

    def targets(self, source: str) -> list[str]:
        """The stages declared reachable from ``source``, sorted."""
        return sorted(self._edges.get(source, set()))

    @property
    def names(self) -> list[str]:
        """Every declared stage, sorted."""
        return sorted(self._edges)
