"""The service's operational log: where its lines go, and the optional access log.

``statehq serve`` and its worker processes log ``statehq.*`` at info to stderr in one
format (:func:`configure_logging`); an app embedded with ``create_app`` leaves logging to
its host. What the lines say, and how members are masked in them, is in the README's
"Privacy" paragraph.

The access log (``STATEHQ_ACCESS_LOG``) is statehq's own rather than uvicorn's: uvicorn's
prints the query string, and Meta's verify step carries ``hub.verify_token`` there.
"""

from __future__ import annotations

import logging
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..redact import get_logger, mask_identity

FORMAT = "%(levelprefix)s %(name)s %(message)s"
"""uvicorn's layout (``INFO:     ``, ``WARNING:  ``), then the logger's name, so a line
lines up with uvicorn's and says who wrote it."""

access_log = get_logger("statehq.service.access")

# A run of 7 or more digits in a path is a phone number (a member's identity in the admin
# API's /admin/members/whatsapp:263771234567): masked like every other member in a log.
_NUMBER = re.compile(r"\d{7,}")


class _LevelPrefixFormatter(logging.Formatter):
    """Fills ``%(levelprefix)s``: the level and a colon, padded to 9 characters as uvicorn's."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        record.levelprefix = f"{record.levelname}:".ljust(9)
        return super().formatMessage(record)


def configure_logging(level: int = logging.INFO) -> None:
    """Send log lines at ``level`` and above to stderr in :data:`FORMAT` (once per process)."""
    handler = logging.StreamHandler()
    handler.setFormatter(_LevelPrefixFormatter(FORMAT))
    logging.basicConfig(level=level, handlers=[handler])


def masked_path(path: str) -> str:
    """A request path for the log: phone numbers in it masked (see :func:`mask_identity`)."""
    return _NUMBER.sub(lambda number: mask_identity(number.group()), path)


class AccessLog:
    """ASGI middleware logging one line per HTTP request: method, path, status, ms.

    The path is the one ASGI gives, without the query string (it may carry tokens), and
    with phone numbers masked. A request whose handler raised before answering is logged
    with status 500, as Starlette answers it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            self._log(scope, status, (time.perf_counter() - started) * 1000)

    @staticmethod
    def _log(scope: Scope, status: int, ms: float) -> None:
        access_log.info("%s %s %d %.1f ms", scope["method"], masked_path(scope["path"]), status, ms)
