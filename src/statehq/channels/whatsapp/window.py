"""The 24-hour customer-service window: when a template goes instead, and after 131047.

WhatsApp delivers a free-form message only within 24 hours of the member's last message
to that number; after it, only a registered template. Two moments decide:

- **Rendering a reply.** The reply answers an inbound message, the member's latest to
  that number (a sender's updates are processed in timestamp order), so the window is
  known from that message's own timestamp, with no read: closed when it is 24 hours
  old (an update answered after an outage, with ``STATEHQ_MAX_MESSAGE_AGE`` above a
  day). A reply that carries a template (``Text(..., template=Template(...))``) is sent
  as that template then; one without is sent as it is, and Meta refuses it.
- **A send refused with 131047.** Meta's clock may disagree with the message's
  timestamp (a reply just past the edge): the send is refused at once. A reply that
  carries a template travels with it (:data:`FALLBACK`), so it is sent again as its
  template, under the same reply id, and audited as ``message.templated``.
- **A 131047 status.** Meta may refuse later, in a ``statuses[].errors`` update (its
  clock, a reply sent just past the edge). The service then sends the number's
  re-engagement template, if the numbers file gives one, at most once per member and
  window (a template is paid for, and a template's own failure must not loop), and
  audits either way: ``message.reengaged`` or ``message.not_reengaged``.
"""

from __future__ import annotations

import time
from typing import Any

from ...flows import Message
from ...flows.templates import Template
from ...state import ChannelId
from ...store.inbox import Update
from ..base import FollowUp, reply_entries
from .numbers import Line

WINDOW = 24 * 3600.0
"""Seconds after a member's last message in which a business may write freely."""
REENGAGEMENT = 131047
"""Graph error: more than 24 hours since the member last wrote (a template is needed)."""
FROM_NUMBER = "_from_number"
"""The key of a rendered body that names the number to send it from (taken off before
the Graph API sees it); absent, the default number's."""
FALLBACK = "_template"
"""The key of a rendered body that holds its reply's template body, sent instead when
the Graph API refuses the reply with 131047 (taken off before the Graph API sees it)."""


def window_closed(update: Update, now: float | None = None) -> bool:
    """Whether the window the member's message ``update`` opened has closed by ``now``."""
    return (time.time() if now is None else now) - update.timestamp >= WINDOW


def template_body(template: Template, to: str) -> dict[str, Any]:
    """The Graph API ``/messages`` body that sends ``template`` to WhatsApp user ``to``."""
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "template": template.graph(),
    }


def template_of(message: Message) -> Template | None:
    """The template a reply carries for a closed window, if any."""
    found = getattr(message, "template", None)
    return found if isinstance(found, Template) else None


def follow_up(update: Update, line: Line) -> FollowUp | None:
    """What to do about a delivery status: a re-engagement template after a 131047.

    None for any other status. The template goes from the number the failed reply went
    from (``line``) to the member's address.
    """
    if update.status != "failed" or update.error_code != REENGAGEMENT:
        return None
    channel = ChannelId.parse(update.channel)
    detail: dict[str, Any] = {"message_id": update.about or update.id, "number": line.label}
    none = "no re-engagement template is configured for this number: nothing was sent"
    if line.reengage is None:
        return FollowUp("message.not_reengaged", none, detail)
    body = template_body(line.reengage, channel.address)
    if line.via is not None:
        body[FROM_NUMBER] = line.via
    return FollowUp(
        "message.reengaged",
        f"the 24-hour window had closed (131047): sent template {line.reengage.name}",
        {**detail, "template": line.reengage.name},
        tuple(reply_entries(update, [body])),
        once_per=WINDOW,
        instead="message.not_reengaged",
        instead_reason="a re-engagement template already went to this member in the last "
        "24 hours: nothing was sent",
    )
