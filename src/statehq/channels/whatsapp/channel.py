"""WhatsApp as a :class:`~statehq.channels.base.Channel`: Meta's webhook in, the Graph API out.

In: the verify handshake (``hub.verify_token``, constant-time compare), the signature
of every POST (``X-Hub-Signature-256``), its JSON, and every update parsed and validated
on its own (:func:`statehq.channels.whatsapp.parse_webhook`). Out: replies rendered as
Graph API bodies and posted by a :class:`~statehq.channels.whatsapp.graph.GraphSender`.
"""

from __future__ import annotations

import contextlib
import hmac
import json
from collections.abc import Iterator, Mapping

from ...config import WhatsAppSettings
from ...redact import get_logger
from ..base import Received, Refusal, Rejected
from ..http11 import HttpClient
from .delivery import WhatsAppDelivery, count_received
from .graph import GraphSender
from .graph_errors import THROTTLE
from .numbers import Lines
from .webhook import SIGNATURE_HEADER, Batch, SignatureError, parse_webhook, verify_signature

log = get_logger(__name__)


class WhatsAppChannel:
    """The WhatsApp Cloud API channel, configured by the ``WHATSAPP_*`` settings."""

    type = "whatsapp"

    def __init__(self, settings: WhatsAppSettings) -> None:
        self.settings = settings
        self.lines = Lines(settings)  # the numbers file is read (and checked) once, here

    def verify(self, params: Mapping[str, str]) -> tuple[int, str]:
        """Meta's subscription handshake: the challenge back when the verify token matches."""
        expected = self.settings.verify_token
        given = params.get("hub.verify_token", "")
        mode = params.get("hub.mode")
        if mode != "subscribe":
            shown = "missing" if mode is None else f"{mode[:40]!r}"
            return 400, f"verification failed: hub.mode must be 'subscribe', got {shown}"
        if not expected:
            return 403, "verification failed: WHATSAPP_VERIFY_TOKEN is not set"
        if hmac.compare_digest(given.encode(), expected.encode()):
            return 200, params.get("hub.challenge", "")
        return 403, "verification failed: hub.verify_token does not match"

    def receive(self, headers: Mapping[str, str], body: bytes) -> Received:
        """Every update of a signed POST; Refusal when it is not Meta's (or not JSON)."""
        secret = self.settings.app_secret
        if not any(line.app_secret for line in self.lines):
            raise Refusal(503, "WHATSAPP_APP_SECRET is not set, so no update can be verified")
        vias = None
        try:
            if self.lines.several:  # the signature says which numbers the body may speak for
                vias = self.lines.admitted(body, headers.get(SIGNATURE_HEADER.lower()))
            else:
                verify_signature(body, headers.get(SIGNATURE_HEADER.lower()), secret or "")
        except SignatureError as unsigned:
            raise Refusal(unsigned.status, str(unsigned)) from None
        try:
            batch = parse_webhook(json.loads(body), self.settings.phone_number_id, vias=vias)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise Refusal(400, f"the body is not valid JSON: {exc}") from None
        except (ValueError, RecursionError) as exc:
            # JSON, signed by Meta, that Python will not hold (nested thousands deep, an
            # integer of thousands of digits): nothing in it can be queued, and
            # redelivering it forever would help nobody. Recorded and acknowledged.
            unreadable = f"the body cannot be read: {type(exc).__name__}"
            batch = Batch(rejected=(Rejected("unreadable", unreadable),))
        for number in batch.foreign_numbers:
            self._warn_foreign(number)
        count_received(self.lines, batch.messages)
        return Received((*batch.messages, *batch.statuses), batch.rejected, batch.skipped)

    def _warn_foreign(self, number: str) -> None:
        """Updates for another number: usually a WHATSAPP_PHONE_NUMBER_ID copied wrong."""
        if self.lines.several and number in {repr(line.phone_number_id) for line in self.lines}:
            # Ours, but the signature is another Meta app's: its secret is the thing to fix.
            THROTTLE.warning(
                log,
                ("foreign number", number),
                "WhatsApp webhook: updates for phone number id %s were acknowledged and "
                "skipped: the number is configured, but the request was signed with the "
                "app secret of another Meta app than the one it belongs to. Fix: give the "
                "number the app_secret of its own app in STATEHQ_WHATSAPP_NUMBERS (or "
                "WHATSAPP_APP_SECRET for the default number)",
                number,
            )
            return
        if self.lines.several:
            THROTTLE.warning(
                log,
                ("foreign number", number),
                "WhatsApp webhook: updates for phone number id %s were acknowledged and "
                "skipped: it is neither WHATSAPP_PHONE_NUMBER_ID nor in STATEHQ_WHATSAPP_NUMBERS "
                "(%s), or the request was signed with another number's app secret. Fix: add the "
                "number to the numbers file, or give it its app_secret there",
                number,
                ", ".join(line.label for line in self.lines),
            )
            return
        THROTTLE.warning(
            log,
            ("foreign number", number),
            "WhatsApp webhook: updates for phone number id %s were acknowledged and ignored, "
            "as WHATSAPP_PHONE_NUMBER_ID is %r. Fix: if statehq should answer that number, "
            "set WHATSAPP_PHONE_NUMBER_ID to its id (WhatsApp > API Setup); if another "
            "service answers it, this is expected",
            number,
            self.settings.phone_number_id,
        )

    @contextlib.contextmanager
    def delivery(self) -> Iterator[WhatsAppDelivery]:
        """Replies through the Graph API from ``WHATSAPP_PHONE_NUMBER_ID``."""
        s = self.settings
        client = HttpClient()  # every number's sender shares it: one Graph API host
        number, token = s.phone_number_id or "", s.access_token or ""
        sender = GraphSender(s.graph_url, number, token, client=client)
        others = {
            via: GraphSender(s.graph_url, via, line.access_token, client=client)
            for via, line in self.lines.extra.items()
        }
        delivery = WhatsAppDelivery(sender, mark_read=s.mark_read, numbers=others, lines=self.lines)
        try:
            yield delivery
        finally:
            delivery.close()
            client.close()

    def problems(self) -> list[str]:
        """The settings whose absence stops the webhook or the replies."""
        s = self.settings
        missing = []
        if not any(line.app_secret for line in self.lines):
            missing.append("WHATSAPP_APP_SECRET is not set: the webhook answers 503 to every POST")
        if not s.verify_token:
            missing.append("WHATSAPP_VERIFY_TOKEN is not set: Meta's verify step will fail")
        # A numbers file may stand alone, without a default number (neither variable):
        # only half a default number is a mistake.
        no_default = self.lines.several and not (s.access_token or s.phone_number_id)
        if not (s.access_token and s.phone_number_id) and not no_default:
            missing.append(
                "WHATSAPP_ACCESS_TOKEN or WHATSAPP_PHONE_NUMBER_ID is not set: "
                "replies cannot be sent (their failures are audited)"
            )
        unsigned = [line.label for line in self.lines.extra.values() if not line.app_secret]
        if unsigned and any(line.app_secret for line in self.lines):
            missing.append(
                f"number(s) {', '.join(unsigned)} of STATEHQ_WHATSAPP_NUMBERS have no app_secret "
                f"and WHATSAPP_APP_SECRET is not set: their updates are all skipped"
            )
        return missing
