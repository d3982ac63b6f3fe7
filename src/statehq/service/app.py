"""``statehq serve``: the ASGI app and the inbox workers behind it.

The app's process runs the webhook (which only queues), health, metrics and admin.
``STATEHQ_WORKERS`` workers process the inbox: child processes under ``statehq serve``
(:mod:`.processes`), threads when the app is embedded (``create_app(settings)``, as the
tests do). Each worker has its own store connection, bot, flow engine and Graph API
client, so workers never wait on each other's I/O. The bot is whatever ``STATEHQ_BOT``
names (:func:`statehq.flows.open_bot`): the service knows no bot. Any number of
``statehq serve`` processes may share one Redis: the inbox, the leases and the dedup
marks live there.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .. import metrics
from ..channels.registry import channels
from ..config import Settings
from ..errors import StateError
from ..flows import open_bot
from ..redact import get_logger
from ..state import StateManager
from ..store import AsyncStateStore, StateStore
from ..store.connection import redact_url
from ..store.embedded import EmbeddedValkey
from ..store.inbox import Inbox
from .admin import admin_routes
from .bots import all_stages, check_bots, open_bots
from .health import health_routes
from .logs import AccessLog, configure_logging
from .processes import WorkerProcesses, open_worker
from .web import page, page_routes
from .webhook import path_of, webhook_routes

log = get_logger(__name__)

SUPERVISE_EVERY = 0.5  # seconds between checks that the embedded server still answers


@dataclass
class Service:
    """What a running app holds: the async store for requests, and its workers."""

    settings: Settings
    url: str
    astore: AsyncStateStore
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    processes: WorkerProcesses | None = None


def create_app(settings: Settings | None = None, *, worker_processes: bool = False) -> Starlette:
    """The service as an ASGI app; its lifespan starts the store and the workers.

    Workers are threads of this process unless ``worker_processes`` (``statehq serve``).
    """
    config = settings or Settings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        with contextlib.ExitStack() as stack:
            server = None if config.redis_url else _embedded(stack, config)
            url = server.url if server is not None else str(config.redis_url)
            timeout = config.store_timeout
            astore = await AsyncStateStore.open(url=url, settings=config, timeout=timeout)
            try:
                service = Service(config, url, astore)
                admin_store = stack.enter_context(
                    StateStore.open(url=url, settings=config, timeout=timeout)
                )
                bot = stack.enter_context(open_bot(config))
                # Every number's bot's flows, so any session reads valid to the operators.
                stages = all_stages(open_bots(stack, config, bot).values())
                manager = StateManager(admin_store, stages=stages)
                if worker_processes:
                    service.processes = WorkerProcesses(config, url)
                metrics_dir = service.processes.metrics_dir if service.processes else None
                for route in [
                    *webhook_routes(astore, config, channels(config)),
                    *health_routes(astore, metrics_dir=metrics_dir, timeout=timeout),
                    *admin_routes(manager, config.admin_token),
                    *page_routes(astore, config.admin_token),
                ]:
                    app.router.routes.append(route)
                async with _workers(service, stack), _keepers(astore, config, server):
                    app.state.service = service
                    log.info("statehq serving; store at %s", redact_url(url))
                    yield
            finally:
                await astore.close()

    # Off, the access log costs nothing: the middleware is not there at all.
    middleware = [Middleware(AccessLog)] if config.access_log else []
    return Starlette(routes=[_root_route(config)], lifespan=lifespan, middleware=middleware)


def _root_route(settings: Settings) -> Route:
    webhooks = {channel.type: path_of(channel) for channel in channels(settings)}

    async def root(request: Request) -> Response:
        if "text/html" in request.headers.get("accept", ""):
            return page()  # a browser: the chat and the inspector
        return JSONResponse(
            {
                "service": "statehq",
                "webhook": webhooks.get("whatsapp"),
                "webhooks": webhooks,
                "health": "/healthz",
                "liveness": "/livez",
                "readiness": "/readyz",
                "metrics": "/metrics",
                "admin": "/admin/",
                "page": "/ (in a browser)",
            }
        )

    return Route("/", root)


def _embedded(stack: contextlib.ExitStack, settings: Settings) -> EmbeddedValkey:
    server = EmbeddedValkey(settings)
    server.acquire()
    stack.callback(server.release)
    return server


@contextlib.asynccontextmanager
async def _keepers(
    astore: AsyncStateStore, settings: Settings, server: EmbeddedValkey | None
) -> AsyncIterator[None]:
    """The background tasks that keep the service whole while the block runs."""
    tasks = [asyncio.create_task(_reconcile(astore, settings.reconcile_interval))]
    if server is not None:
        tasks.append(asyncio.create_task(_supervise(server)))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _reconcile(astore: AsyncStateStore, interval: float) -> None:
    """Every ``interval`` s, mark ready any inbox holding work nobody is marked to do."""
    inbox = Inbox(astore.settings)
    while True:
        try:
            marked = await astore.execute(inbox.reconcile())
        except StateError as error:
            log.debug("reconciler: %s", error)
        except Exception:
            log.exception("reconciler failed; trying again in %g s", interval)
        else:
            if marked:
                metrics.INBOX_REMARKED.inc(len(marked))
                log.warning("reconciler: %d sender(s) had queued work unmarked", len(marked))
        await asyncio.sleep(interval)


async def _supervise(server: EmbeddedValkey) -> None:
    """Restart the embedded Valkey from its AOF whenever it dies; workers reconnect."""
    while True:
        await asyncio.sleep(SUPERVISE_EVERY)
        try:
            restarted = await asyncio.to_thread(server.ensure_running)
        except StateError as error:
            log.error("embedded Valkey is down and could not be restarted: %s", error)
            continue
        except Exception:
            log.exception("embedded Valkey supervision failed")
            continue
        if restarted:
            metrics.STORE_RESTARTS.inc()
            log.warning("embedded Valkey had died; restarted it from its AOF")


@contextlib.asynccontextmanager
async def _workers(service: Service, stack: contextlib.ExitStack) -> AsyncIterator[None]:
    """The workers run while the block does: processes (watched) or threads."""
    if service.processes is not None:
        processes = service.processes
        processes.start()
        watcher = asyncio.create_task(_watch(processes))
        try:
            yield
        finally:
            watcher.cancel()
            await asyncio.to_thread(processes.stop)
        return
    for n in range(service.settings.workers):
        worker = open_worker(stack, service.settings, service.url, service.stop, f"w{n}")
        thread = threading.Thread(target=worker.run, name=f"statehq-worker-{n}", daemon=True)
        thread.start()
        service.threads.append(thread)
    try:
        yield
    finally:
        service.stop.set()
        for thread in service.threads:
            thread.join(timeout=10)


async def _watch(processes: WorkerProcesses) -> None:
    while True:
        await asyncio.sleep(1.0)
        processes.check()


def serve(settings: Settings) -> None:
    """Run the service in the foreground until interrupted.

    A bot that cannot be loaded (``STATEHQ_BOT``, or a WhatsApp number's) raises
    ConfigError before anything starts.
    """
    configure_logging()
    with open_bot(settings):
        pass
    check_bots(settings)  # each WhatsApp number's bot, so a bad one stops serve here
    for channel in channels(settings):
        for problem in channel.problems():
            log.warning("%s channel: %s", channel.type, problem)
    uvicorn.run(
        create_app(settings, worker_processes=True),
        host=settings.host,
        port=settings.port,
        log_level="info",
        access_log=False,  # statehq's own when STATEHQ_ACCESS_LOG is on (see .logs)
        lifespan="on",
    )
