"""The baseline of the service benchmark: an ASGI endpoint that reads the body, answers 200.

Served by uvicorn exactly like ``statehq serve`` (same server, same HTTP parser), so the
ratio between the two is what statehq's verification and queueing cost.
``python -m statehq.bench.bare --port N`` prints ``listening on ...`` once ready.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

import uvicorn

_OK = b'{"queued":1}'


async def bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Read the whole request body, answer 200 with a small JSON body."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(_OK))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": _OK})


def main(argv: Sequence[str] | None = None) -> None:
    """Serve :func:`bare_app` in the foreground."""
    parser = argparse.ArgumentParser(prog="python -m statehq.bench.bare")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    print(f"listening on http://{args.host}:{args.port}", flush=True)
    uvicorn.run(
        bare_app,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )


if __name__ == "__main__":
    main()
