"""The state document (README: The state model) as a typed model.

pydantic v2 in strict mode: no coercion (``"1"`` is not an int, ``1`` is not a bool),
unknown fields refused, and every problem in a document reported at once with its
location - which is what :class:`~statehq.state.validator.StateValidator` turns into
plain-language violations.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

NonEmpty = Annotated[str, StringConstraints(min_length=1, max_length=200)]

STAGE_INIT = "INIT"
STAGE_AUTH = "AUTH"
STAGE_MENU = "MENU"

TOP_LEVEL_FIELDS = (
    "member_id",
    "channel",
    "jwt_token",
    "authenticated",
    "profile",
    "current_account",
    "flow_data",
    "stage",
    "_version",
    "_last_updated",
)
"""Every field a state document may hold; anything else is refused."""


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class Channel(_Strict):
    """The channel a session is bound through: ``{"type": "whatsapp", "identifier": ...}``."""

    type: NonEmpty
    identifier: NonEmpty


class LastAttempt(_Strict):
    """The outcome of the latest input validation in the current step."""

    at: NonEmpty
    ok: bool
    error: str | None = None


class Validation(_Strict):
    """Input validation progress of the current step."""

    in_progress: bool = False
    attempts: Annotated[int, Field(ge=0)] = 0
    last_attempt: LastAttempt | None = None


class FlowData(_Strict):
    """The active flow: which one, which step, the data it collected, validation progress."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, populate_by_name=True)

    id: NonEmpty
    step: NonEmpty
    data: dict[str, Any] = Field(default_factory=dict)
    validation: Validation = Field(default_factory=Validation, alias="_validation")


class MemberState(_Strict):
    """One member session's document (store-owned ``_version``/``_last_updated`` included)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, populate_by_name=True)

    member_id: NonEmpty | None = None
    channel: Channel | None = None
    jwt_token: str | None = None
    authenticated: bool = False
    profile: dict[str, Any] | None = None
    current_account: dict[str, Any] | None = None
    flow_data: FlowData | None = None
    stage: NonEmpty = STAGE_INIT
    version: Annotated[int, Field(ge=0)] | None = Field(default=None, alias="_version")
    last_updated: str | None = Field(default=None, alias="_last_updated")


def fresh_validation() -> dict[str, Any]:
    """The ``_validation`` object of a step nobody has answered yet."""
    return {"in_progress": False, "attempts": 0, "last_attempt": None}
