"""Where aiogram's FSM state and data live in a statehq session document.

An aiogram session is an ordinary statehq session at stage ``aiogram``, running the
flow ``aiogram``; the flow's data holds aiogram's two records under the names its own
storages give them::

    {"channel": {"type": "telegram", "identifier": "42"},
     "stage": "aiogram",
     "flow_data": {"id": "aiogram", "step": "fsm",
                   "data": {"state": "Form:name",            # absent: no state
                            "data": {"name": "Ann", ...}}}}  # aiogram's data

Why the state is not the flow's ``step``: a data merge is a server-side patch that
does not read the document first, so it restates every field the rules tie together
(stage, flow id, step) to stay valid whatever happened meanwhile - even a session that
expired a moment before. Restating the step would undo a concurrent ``set_state``; a
step that never changes can be restated safely.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from ...state import EXTERNAL_STAGES, ChannelId, Stages

FLOW = "aiogram"
STEP = "fsm"
assert FLOW in EXTERNAL_STAGES  # every process's validator accepts these sessions


def declare(stages: Stages) -> Stages:
    """Let ``stages`` enter the aiogram flow from INIT, AUTH and MENU (idempotent)."""
    if FLOW not in stages.flows:
        stages.add_flow(FLOW, before_auth=True)
        stages.declare("INIT", [FLOW])
    return stages


def skeleton(channel: ChannelId | None, records: Mapping[str, Any]) -> dict[str, Any]:
    """A merge patch that puts ``records`` (``state``/``data``) in a valid aiogram session.

    ``channel``: restated when the session is still the channel's own (not bound to a
    member, whose channel is the member's business).
    """
    patch: dict[str, Any] = {
        "stage": FLOW,
        "flow_data": {"id": FLOW, "step": STEP, "data": copy.deepcopy(dict(records))},
    }
    if channel is not None:
        patch["channel"] = channel.as_dict()
    return patch


def records(doc: Mapping[str, Any]) -> dict[str, Any]:
    """aiogram's records in ``doc`` (``{}`` when the session is not in the aiogram flow)."""
    flow = doc.get("flow_data")
    if doc.get("stage") != FLOW or not isinstance(flow, Mapping) or flow.get("id") != FLOW:
        return {}
    found = flow.get("data")
    return found if isinstance(found, dict) else {}


def state_of(doc: Mapping[str, Any]) -> str | None:
    """The FSM state stored in ``doc``."""
    state = records(doc).get("state")
    return state if isinstance(state, str) else None


def data_of(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A private copy of the FSM data stored in ``doc``."""
    data = records(doc).get("data")
    return copy.deepcopy(data) if isinstance(data, dict) else {}


def entered(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` in the aiogram flow (entering it if elsewhere); its records, to edit."""
    if not records(doc):
        doc["stage"] = FLOW
        doc["flow_data"] = {"id": FLOW, "step": STEP, "data": {}}
    found: dict[str, Any] = doc["flow_data"]["data"]
    return found
