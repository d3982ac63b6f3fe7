"""``statehq serve``: the ASGI app and the inbox workers behind it.

One process runs the webhook (which only queues) and ``STATEHQ_WORKERS`` worker threads
(which process). Each worker has its own store connection, backend handle, flow engine
and Graph API client, so workers never wait on each other's I/O. Any number of
processes may share one Redis: the inbox, the leases and the dedup marks live there.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..channels.graph import GraphSender
from ..config import Settings
from ..credex.app import build_engine, credex_stages, open_backend
from ..redact import get_logger
from ..state import StateManager
from ..store import AsyncStateStore, StateStore
from ..store.connection import redact_url
from ..store.embedded import EmbeddedValkey
from .admin import admin_routes
from .delivery import WhatsAppDelivery
from .health import health_routes
from .webhook import PATH, webhook_routes
from .worker import Worker, WorkerSettings

log = get_logger(__name__)


@dataclass
class Service:
    """What a running app holds: the async store for requests and the worker threads."""

    settings: Settings
    url: str
    astore: AsyncStateStore
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)


def create_app(settings: Settings | None = None) -> Starlette:
    """The service as an ASGI app; its lifespan starts the store and the workers."""
    config = settings or Settings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        with contextlib.ExitStack() as stack:
            url = config.redis_url or _embedded(stack, config)
            astore = await AsyncStateStore.open(url=url, settings=config)
            try:
                service = Service(config, url, astore)
                admin_store = stack.enter_context(StateStore.open(url=url, settings=config))
                manager = StateManager(admin_store, stages=credex_stages())
                for route in [
                    *webhook_routes(astore, config),
                    *health_routes(astore),
                    *admin_routes(manager, config.admin_token),
                ]:
                    app.router.routes.append(route)
                _start_workers(service, stack)
                app.state.service = service
                log.info("statehq serving; store at %s", redact_url(url))
                yield
            finally:
                service.stop.set()
                for thread in service.threads:
                    thread.join(timeout=10)
                await astore.close()

    return Starlette(routes=[_root_route()], lifespan=lifespan)


def _root_route() -> Route:
    async def root(_request: Request) -> Response:
        return JSONResponse(
            {
                "service": "statehq",
                "webhook": PATH,
                "health": "/healthz",
                "metrics": "/metrics",
                "admin": "/admin/",
            }
        )

    return Route("/", root)


def _embedded(stack: contextlib.ExitStack, settings: Settings) -> str:
    server = EmbeddedValkey(settings)
    server.acquire()
    stack.callback(server.release)
    return server.url


def _start_workers(service: Service, stack: contextlib.ExitStack) -> None:
    config = service.settings
    pacing = WorkerSettings(lease_ttl=config.lease_ttl, max_message_age=config.max_message_age)
    for n in range(config.workers):
        store = stack.enter_context(StateStore.open(url=service.url, settings=config))
        backend = stack.enter_context(open_backend(config))
        sender = GraphSender(
            config.whatsapp_graph_url,
            config.whatsapp_phone_number_id or "",
            config.whatsapp_access_token or "",
        )
        delivery = WhatsAppDelivery(sender, mark_read=config.mark_read)
        stack.callback(delivery.close)
        worker = Worker(
            store, build_engine(store, backend), delivery, pacing, service.stop, name=f"w{n}"
        )
        thread = threading.Thread(target=worker.run, name=f"statehq-worker-{n}", daemon=True)
        thread.start()
        service.threads.append(thread)


def serve(settings: Settings) -> None:
    """Run the service in the foreground until interrupted."""
    for warning in _missing(settings):
        log.warning(warning)
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="info",
        access_log=False,
        lifespan="on",
    )


def _missing(settings: Settings) -> Iterator[str]:
    if not settings.whatsapp_app_secret:
        yield "WHATSAPP_APP_SECRET is not set: the webhook answers 503 to every POST"
    if not settings.whatsapp_verify_token:
        yield "WHATSAPP_VERIFY_TOKEN is not set: Meta's verify step will fail"
    if not (settings.whatsapp_access_token and settings.whatsapp_phone_number_id):
        yield (
            "WHATSAPP_ACCESS_TOKEN or WHATSAPP_PHONE_NUMBER_ID is not set: "
            "replies cannot be sent (their failures are audited)"
        )
