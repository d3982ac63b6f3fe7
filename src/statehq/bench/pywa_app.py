"""The peer of the end-to-end benchmark: pywa's FastAPI webhook handler, under uvicorn.

pywa (``pywa_async``, the client meant for FastAPI) registers its own webhook route on a
FastAPI app: it checks ``X-Hub-Signature-256`` against the app secret, answers 200, and
parses the update and runs the matching handlers in a background task after the answer.
The handler here only counts the messages it was given, so the figures are pywa's own
cost of acknowledging and handling the same signed requests ``statehq serve`` gets; no
state is kept and no reply is sent. ``GET /_bench/handled`` says how many were handled.

Served by uvicorn like :mod:`statehq.bench.bare` and ``statehq serve`` (same server, same
HTTP parser). ``python -m statehq.bench.pywa_app --port N --app-secret S`` needs the
``bench`` extra (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import uvicorn

from ..testing import webhooks as wh

WEBHOOK_PATH = "/webhooks/whatsapp"


def create_app(app_secret: str, access_token: str) -> Any:
    """A FastAPI app with pywa's webhook routes and a counting message handler."""
    import fastapi
    from pywa_async.client import WhatsApp
    from pywa_async.types.message import Message

    app = fastapi.FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    handled = {"messages": 0}
    wa = WhatsApp(
        phone_id=wh.PHONE_NUMBER_ID,
        token=access_token,
        server=app,
        webhook_endpoint=WEBHOOK_PATH,
        verify_token="bench",
        app_secret=app_secret,
        validate_updates=True,
    )

    async def on_message(_client: WhatsApp, _message: Message) -> None:
        handled["messages"] += 1

    wa.add_handlers(_message_handler(on_message))

    async def count() -> dict[str, int]:
        return handled

    app.add_api_route("/_bench/handled", count, methods=["GET"])
    return app


def _message_handler(callback: Any) -> Any:
    from pywa_async import handlers

    return handlers.MessageHandler(callback)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve pywa's webhook in the foreground."""
    parser = argparse.ArgumentParser(prog="python -m statehq.bench.pywa_app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--app-secret", required=True)
    parser.add_argument("--access-token", default="bench-access-token")
    args = parser.parse_args(argv)
    app = create_app(args.app_secret, args.access_token)
    print(f"listening on http://{args.host}:{args.port}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
