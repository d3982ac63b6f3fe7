"""A tiny channel for the tests: all a channel is, in one module.

Its delivery records what it sends in :data:`SENT` (this process) and, when
``ECHO_OUTBOX`` names a file, as JSON lines there (worker processes of ``statehq serve``).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from statehq import Settings
from statehq.channels.base import Received, Refusal, reply_entries
from statehq.flows import Message
from statehq.store.inbox import Update

SENT: list[dict[str, Any]] = []
LOCK = threading.Lock()


@dataclass(frozen=True)
class Report:
    ok: bool = True
    failure_label: str = ""
    detail: str = ""
    attempts: int = 1


class EchoDelivery:
    def render(self, update: Update, replies: list[Message]) -> list[str]:
        bodies = [
            {"text": getattr(m, "body", ""), "options": [o.id for o in m.options]} for m in replies
        ]
        return reply_entries(update, bodies)

    def deliver(self, body: dict[str, Any]) -> Report:
        with LOCK:
            SENT.append(body)
            outbox = os.environ.get("ECHO_OUTBOX")
            if outbox:
                with open(outbox, "a", encoding="utf-8") as out:
                    out.write(json.dumps(body) + "\n")
        return Report()


class EchoChannel:
    type = "echo"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def verify(self, params: Mapping[str, str]) -> tuple[int, str]:
        return 200, "echo"

    def receive(self, headers: Mapping[str, str], body: bytes) -> Received:
        if headers.get("x-echo-key") != "k":
            raise Refusal(401, "missing x-echo-key")
        data = json.loads(body)
        update = Update(
            data["id"], f"echo:{data['from']}", "text", int(time.time()), data.get("text", "")
        )
        if data.get("choice"):
            update = Update(
                update.id, update.channel, "button", update.timestamp, "", data["choice"]
            )
        return Received((update,))

    @contextmanager
    def delivery(self) -> Iterator[EchoDelivery]:
        yield EchoDelivery()

    def problems(self) -> list[str]:
        return []
