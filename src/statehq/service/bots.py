"""One bot per WhatsApp number: each number's messages go to the flow engine of its bot.

``STATEHQ_BOT`` runs the default number and every other channel. The numbers file
(``STATEHQ_WHATSAPP_NUMBERS``) may give each of its numbers another bot; a number
without one runs ``STATEHQ_BOT`` too. A worker opens each distinct bot once and builds
one engine per bot, and :class:`NumberEngines` hands every message to the engine of the
number it was written to (the ``@<phone number id>`` of its identity, see
:mod:`statehq.channels.whatsapp.numbers`). The engines share the worker's store; a
conversation's session is its identity's, so two numbers are two conversations until a
bot binds both identities to one member.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from ..config import Settings
from ..config_numbers import VARIABLE, load_numbers
from ..errors import ConfigError
from ..flows import Bot, Headquarters, Inbound, Message, build_engine, open_bot
from ..flows.components import declare_flows
from ..flows.engine import Processed
from ..state import Stages, StateManager
from ..state.manager import Prefetched
from ..store import Lease, StateStore
from ..store.operations import Outbox


class Engine(Protocol):
    """What a worker asks of the flow engine: one message processed as one commit."""

    def process(
        self,
        inbound: Inbound,
        *,
        lease: Lease | None = None,
        outbox: Callable[[list[Message]], Outbox | None] | None = None,
        prefetched: Mapping[str, Prefetched] | None = None,
    ) -> Processed:
        """See :meth:`statehq.flows.Headquarters.process`."""
        ...


class NumberEngines:
    """The default engine, and one for each number whose messages another bot handles."""

    def __init__(self, default: Headquarters, by_number: Mapping[str, Headquarters]) -> None:
        self.default = default
        self.by_number = dict(by_number)

    def engine_for(self, inbound: Inbound) -> Headquarters:
        """The engine of the number ``inbound`` was written to (the default otherwise)."""
        via = inbound.channel.via if inbound.channel.type == "whatsapp" else None
        return self.by_number.get(via, self.default) if via is not None else self.default

    def process(
        self,
        inbound: Inbound,
        *,
        lease: Lease | None = None,
        outbox: Callable[[list[Message]], Outbox | None] | None = None,
        prefetched: Mapping[str, Prefetched] | None = None,
    ) -> Processed:
        """Process ``inbound`` with its number's engine."""
        engine = self.engine_for(inbound)
        return engine.process(inbound, lease=lease, outbox=outbox, prefetched=prefetched)


def number_bots(settings: Settings) -> dict[str, str]:
    """Each numbers-file number's bot import path (``STATEHQ_BOT`` where it names none)."""
    if not settings.whatsapp_numbers:
        return {}
    numbers = load_numbers(settings.whatsapp_numbers)
    return {n.phone_number_id: n.bot or settings.bot for n in numbers.numbers}


def open_bots(stack: contextlib.ExitStack, settings: Settings, default: Bot) -> dict[str, Bot]:
    """Every bot the deployment runs, by import path: ``default`` (``STATEHQ_BOT``, already
    open) and each number's, each opened once and closed with ``stack``."""
    bots: dict[str, Bot] = {settings.bot: default}
    for number, path in number_bots(settings).items():
        if path not in bots:
            bots[path] = _opened(stack, settings, number, path)
    return bots


def all_stages(bots: Iterable[Bot]) -> Stages:
    """One stage machine declaring the flows of every bot.

    Every engine (and the operators' state manager) validates with it: a member bound
    across two numbers shares one session, which may stand in a flow of either bot, and
    a stage one engine does not know must not read as a corrupt document.
    """
    stages = Stages()
    for bot in bots:
        declare_flows(stages, bot.flows)
    return stages


def open_engines(
    stack: contextlib.ExitStack, settings: Settings, store: StateStore, default: Bot
) -> Headquarters | NumberEngines:
    """The engines a worker runs: the default bot's alone, or one per number's bot.

    A bot that cannot be loaded is a :class:`ConfigError` naming its number.
    """
    bots = open_bots(stack, settings, default)
    if len(bots) == 1 and not number_bots(settings):
        return build_engine(store, default)
    stages = all_stages(bots.values())
    engines = {
        path: Headquarters(StateManager(store, stages=stages), bot) for path, bot in bots.items()
    }
    by_number = {number: engines[path] for number, path in number_bots(settings).items()}
    return NumberEngines(engines[settings.bot], by_number)


def check_bots(settings: Settings) -> None:
    """Load (and close) every number's bot: a :class:`ConfigError` at start-up, not later."""
    with contextlib.ExitStack() as stack:
        for number, path in number_bots(settings).items():
            if path != settings.bot:
                _opened(stack, settings, number, path)


def _opened(stack: contextlib.ExitStack, settings: Settings, number: str, path: str) -> Bot:
    """Number ``number``'s bot, open until ``stack`` closes; errors name the number."""
    try:
        return stack.enter_context(open_bot(settings.bot_settings.override(bot=path)))
    except ConfigError as bad:
        said = str(bad).replace(f"STATEHQ_BOT={path!r}: ", "")
        raise ConfigError(f"{VARIABLE}: number {number}: bot {path!r}: {said}") from None
