"""``statehq serve``: the service in the foreground, until Ctrl-C."""

from __future__ import annotations

import argparse
import errno
import socket
import sys

from .. import __version__
from ..config import Settings
from .common import whole_number
from .where import noted_while_running


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``serve`` to the grammar."""
    serve = commands.add_parser(
        "serve",
        help="run the service: webhook, workers, page, health, admin",
        description="Run the service in the foreground until Ctrl-C: the channels' "
        "webhooks, the inbox workers, the page, /healthz, /metrics and the admin API.",
        epilog="example:\n  STATEHQ_ADMIN_TOKEN=secret statehq serve --port 8000",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--host", default=None, help="listen address (default STATEHQ_HOST)")
    serve.add_argument(
        "--port", type=whole_number(0, 65535), default=None, help="port (default STATEHQ_PORT)"
    )
    serve.add_argument(
        "--workers", type=whole_number(1, 64), default=None, help="worker processes (1-64)"
    )


def port_taken(host: str, port: int) -> bool:
    """True when something already listens on ``host:port`` (checked before saying
    "serving on"; other bind errors are left for the server to report)."""
    if port == 0:
        return False
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            return error.errno == errno.EADDRINUSE
    return False


def _unresolvable(host: str) -> str | None:
    """Why ``host`` is not an address this machine can listen on, if it is not."""
    try:
        socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        return str(error)
    return None


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C; 1 when the port is taken."""
    from ..service.app import serve

    changes = {
        name: value
        for name, value in (("host", args.host), ("port", args.port), ("workers", args.workers))
        if value is not None
    }
    if args.url:
        changes["redis_url"] = args.url
    settings = Settings.from_env().override(**changes)
    shown = f"[{settings.host}]" if ":" in settings.host else settings.host
    base = f"http://{shown}:{settings.port}"
    unresolved = _unresolvable(settings.host)
    if unresolved:
        print(f"statehq: cannot listen on {settings.host!r}: {unresolved}", file=sys.stderr)
        return 1
    if port_taken(settings.host, settings.port):
        print(
            f"statehq: {settings.host}:{settings.port} is already in use (another statehq "
            f"serve?); stop it, or choose another port with --port or STATEHQ_PORT",
            file=sys.stderr,
        )
        return 1
    print(f"statehq {__version__} serving on {base}", flush=True)
    print(f"  the page          {base}/  (web chat and live state inspector)", flush=True)
    print(f"  WhatsApp webhook  {base}/webhooks/whatsapp", flush=True)
    print(f"  health, metrics   {base}/healthz  {base}/metrics", flush=True)
    print(f"  probes            {base}/livez  {base}/readyz", flush=True)
    admin = "on" if settings.admin_token else "off (set STATEHQ_ADMIN_TOKEN)"
    print(f"  admin API         {base}/admin/  {admin}", flush=True)
    print("  chat from a terminal:  statehq chat --as 263771111111   (Ctrl-C stops)", flush=True)
    try:
        with noted_while_running(settings, base):
            serve(settings)
    except SystemExit as stopped:  # uvicorn exits 3 when it cannot start; SIGTERM is 143
        return 0 if stopped.code in (None, 0, 143) else 1
    return 0
