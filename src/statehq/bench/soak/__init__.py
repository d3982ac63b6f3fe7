"""The soak benchmark: many members, bursts, redeliveries and statuses, and a failover.

``statehq bench --suite soak`` starts each topology from the Valkey binary on loopback
(:mod:`statehq.testing.topologies`), ``statehq serve`` against it (2 processes x 2
worker processes, as in the service benchmark) and the fake Graph API in this process,
then drives signed webhooks from an asyncio load generator:

* an open-loop schedule of events at a fixed rate for a fixed time; most events are
  one message from one member (every member writes once before any writes twice),
  some are a burst of 3-5 messages sent back to back by one member, some are a
  delivery status for a reply already sent; 5 % of messages are delivered twice (the
  same signed body again, 0-3 s later), as Meta does;
* every request not answered 200 is sent again until it is, as Meta does; a member's
  messages go one after another with timestamps that never decrease, so the order
  the member sent them in is the order statehq must answer them in.

Counted from what the fake Graph API received (each reply carries
``biz_opaque_callback_data`` = ``<message id>#<n>``): processed (messages answered),
lost (acknowledged 200, never answered), duplicated replies (one ``<id>#<n>`` twice),
order violations (a member's reply answering an earlier message after a later one's),
the latency from sending a message to its reply, the acknowledgement latency, and the
store's memory (``used_memory`` of every master, after less before) per live session.

The failover scenario runs the same load on a Cluster and on a Sentinel set, SIGKILLs a
master mid-load and keeps the load going through the failover; once with the servers'
defaults and once with ``min-replicas-to-write 1`` on the masters. statehq never calls
``WAIT``, so neither setting makes a write acknowledged by a master survive that
master's death: messages lost that way are reported, with why each was lost.
"""

from .driver import Sent, order_violations
from .plan import DEFAULTS, FailoverResult, SoakPlan, SoakResult, SoakResults, Tally
from .report import write_report
from .runs import failover, run_soak, soak
from .servers import key_kind

__all__ = [
    "DEFAULTS",
    "FailoverResult",
    "Sent",
    "SoakPlan",
    "SoakResult",
    "SoakResults",
    "Tally",
    "failover",
    "key_kind",
    "order_violations",
    "run_soak",
    "soak",
    "write_report",
]
