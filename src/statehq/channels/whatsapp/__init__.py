"""WhatsApp Cloud API, as one self-contained channel adapter.

- :mod:`.webhook`: the signature check, every update of a request parsed and validated
  on its own, and replies rendered as Graph API bodies;
- :mod:`.graph`: the Graph API sender (retries only what provably never reached Meta);
- :mod:`.delivery`: a worker's way out (read receipts, reply ids);
- :mod:`.channel`: :class:`WhatsAppChannel`, what the registry knows it by.
"""

from .channel import WhatsAppChannel
from .delivery import WhatsAppDelivery
from .graph import DEFAULT_GRAPH_URL, GraphSender, SendResult
from .webhook import (
    NEWS,
    SIGNATURE_HEADER,
    Batch,
    SignatureError,
    parse_webhook,
    render,
    status_id,
    verify_signature,
)

__all__ = [
    "DEFAULT_GRAPH_URL",
    "NEWS",
    "SIGNATURE_HEADER",
    "Batch",
    "GraphSender",
    "SendResult",
    "SignatureError",
    "WhatsAppChannel",
    "WhatsAppDelivery",
    "parse_webhook",
    "render",
    "status_id",
    "verify_signature",
]
