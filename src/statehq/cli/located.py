"""Running a command on one member named by any ID form: the errors every such command shares.

``state ...`` and ``audit`` take the same IDs (:func:`statehq.state.lookup.locate`) and turn
the same failures into the same exit statuses and messages.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from ..errors import CorruptState, InvalidInput, NoLiveSession, VersionNotFound
from ..redact import redact_text
from ..state import StateManager
from ..state.lookup import AmbiguousMember, HandleResolver, Located, locate
from .common import MISSING, USAGE, fail, print_json

MemberAction = Callable[[StateManager, Located, argparse.Namespace], int]

ID_FORMS = """ID is any of:
  whatsapp:263771234567   a channel identity (channel type, colon, identifier)
  member:m-7 or m-7       a member id
  263771234567            a bare phone number, tried on every channel (also +263 77 ...)
  @tendai_moyo            a handle, where the bot can resolve it (member_for_handle)
A channel bound to a member is followed to the member's session."""


def run_on_member(
    manager: StateManager,
    args: argparse.Namespace,
    action: MemberAction,
    *,
    handles: HandleResolver | None = None,
) -> int:
    """Find ``args.id`` and run ``action`` on it; failures become exit statuses."""
    try:
        located = locate(manager, args.id, handles=handles, starting=args.action == "update")
        return action(manager, located, args)
    except AmbiguousMember as ambiguous:
        return failed(args, str(ambiguous), USAGE)
    except (NoLiveSession, VersionNotFound) as missing:
        return failed(args, str(missing), MISSING)
    except CorruptState as corrupt:
        hint = f"; `statehq state recover {args.id}` repairs it from history"
        return failed(args, f"{corrupt}{hint}", MISSING)
    except InvalidInput as bad:
        return failed(args, str(bad), USAGE if args.action != "update" else MISSING)


def failed(args: argparse.Namespace, message: str, status: int) -> int:
    """Say why on stderr; under ``--json`` also as ``{"error": ...}`` on stdout, so a
    script always reads one JSON value."""
    message = redact_text(message)
    if args.json:
        print_json({"error": message, "status": status})
    return fail(message, status)
