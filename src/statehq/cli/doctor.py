"""``statehq doctor``: check the WhatsApp setup, the store and the bot, and say what to fix.

Each check ends ``ok``, ``FAILED`` (with what to fix) or ``skipped`` (with why):

- WhatsApp variables: the five ``WHATSAPP_*`` variables. None set at all is a
  deployment without WhatsApp (web chat only): skipped. Some set and others not fails,
  naming the missing ones and where Meta shows each. A numbers file may stand without
  a default number: then its id and token (and the app secret, when every number of
  the file has its own) are not missing.
- WhatsApp Graph API: ``GET {WHATSAPP_GRAPH_URL}/{WHATSAPP_PHONE_NUMBER_ID}`` with the
  access token, as Meta answers it: the number's display phone and verified name when
  both are right; the error and its fix otherwise (190: the token; 100/33: the id), or
  why the URL did not answer. Nothing is sent to anyone.
- Telegram variables and Telegram Bot API, only when a ``TELEGRAM_*`` variable is set:
  the bot token and the webhook secret both set, then ``getMe`` with the token (the
  bot's name; else the error and its fix) and ``getWebhookInfo`` (a hint when no webhook
  or another URL is set, or Telegram's last post of an update failed).
- store: connection, scripts, a lease and a state round trip, as ``statehq health`` and
  ``/healthz`` check it. With no store here yet (the embedded one is made by the first
  ``statehq serve``) it is the running service's, if one runs; else skipped: doctor
  never makes an empty store.
- bot: ``STATEHQ_BOT`` imported and its factory run (closed again at once).
- each number of ``STATEHQ_WHATSAPP_NUMBERS``: the Graph API lookup with its own token,
  and its own bot, if it names one (:mod:`.doctor_numbers`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ..channels.telegram import DEFAULT_API_URL
from ..channels.telegram.lookup import look_up_bot, webhook_hint
from ..channels.whatsapp.graph import DEFAULT_GRAPH_URL
from ..channels.whatsapp.phone_number import look_up_phone_number
from ..config import VARIABLES, Settings, WhatsAppSettings
from ..errors import ConfigError, StateError
from ..flows import open_bot
from ..redact import redact_text
from ..store import AsyncStateStore, StateStore
from ..store.health import check_health
from .common import MISSING, OK, Context, SubParsers, fail, print_json
from .where import running_services, store_in_use

NAMES = frozenset({"doctor"})

DESCRIPTION = """\
Check what a deployment needs and say what to fix: the WhatsApp variables, that the
Graph API accepts the phone number id and the access token (a GET on
WHATSAPP_GRAPH_URL; nothing is sent), the store (connection, scripts, lease, a state
round trip) and the bot (STATEHQ_BOT imported and made). Each check prints ok, FAILED
with the fix, or skipped with why. WhatsApp is skipped when no WHATSAPP_* variable is
set (a web-chat-only deployment). With a TELEGRAM_* variable set, the Telegram
variables and the bot token (getMe, getWebhookInfo) are checked too. Secrets are never
printed."""

EPILOG = """\
examples:
  statehq doctor
  statehq doctor --json | jq '.checks[] | select(.status == "failed")'
  WHATSAPP_GRAPH_URL=http://127.0.0.1:8999 statehq doctor   against a local fake Graph API

exit status: 0 when no check failed (skipped ones included); 1 when one failed."""

WHERE_META_SHOWS = {
    "WHATSAPP_VERIFY_TOKEN": "the verify token you chose in WhatsApp > Configuration",
    "WHATSAPP_APP_SECRET": "App settings > Basic > App secret",
    "WHATSAPP_ACCESS_TOKEN": "a system user's permanent token",
    "WHATSAPP_PHONE_NUMBER_ID": "WhatsApp > API Setup > Phone number ID",
}
"""Where each required WhatsApp variable's value is found (WHATSAPP_GRAPH_URL has a default)."""
WHATSAPP_VARIABLES = tuple(
    var for var in VARIABLES if var.attr in WhatsAppSettings.RENAMED.values()
)


@dataclass(frozen=True)
class Check:
    """One check's outcome: ``status`` is ``ok``, ``failed`` or ``skipped``."""

    name: str
    title: str
    status: str
    detail: str
    fix: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)


def add_commands(commands: SubParsers, common: argparse.ArgumentParser) -> None:
    """Add ``doctor`` to the grammar."""
    commands.add_parser(
        "doctor",
        parents=[common],
        help="check the WhatsApp setup, the store and the bot; say what to fix",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def lenient_settings(environ: Mapping[str, str] | None = None) -> tuple[Settings, list[str]]:
    """The settings with every variable that cannot be read left at its default, and what
    was wrong with each: doctor reports them all and still checks the rest."""
    env = dict(os.environ if environ is None else environ)
    problems: list[str] = []
    for _ in range(len(VARIABLES) + 1):
        try:
            return Settings.from_env(env), problems
        except ConfigError as bad:
            problems.append(str(bad))
            named = [var.name for var in VARIABLES if str(bad).startswith(var.name)]
            if not named or named[0] not in env:
                break
            del env[named[0]]
    return Settings(), problems


def configuration(problems: list[str]) -> Check:
    """The variables that could not be read (each left at its default for the other checks)."""
    if not problems:
        return Check("configuration", "configuration", "ok", "every variable reads")
    return Check(
        "configuration",
        "configuration",
        "failed",
        "; ".join(problems),
        fix="correct the variables named (the other checks ran with their defaults)",
    )


def run(context: Context, args: argparse.Namespace) -> int:
    """Run every check, print them, and exit 1 if one failed."""
    settings = context.settings
    problems: list[str] = getattr(args, "config_problems", [])
    checks = [configuration(problems)] if problems else []
    checks += [whatsapp_variables(settings), whatsapp_graph(settings)]
    from .doctor_numbers import number_checks  # it builds on this module's checks

    checks += number_checks(settings)
    if _telegram_given(settings):
        checks += [telegram_variables(settings), telegram_bot_api(settings)]
    settings, where = _store_settings(settings, args.url)
    checks += [store(settings, args.url, where), bot(settings)]
    failed = [check for check in checks if check.status == "failed"]
    if args.json:
        print_json({"ok": not failed, "checks": [asdict(check) for check in checks]})
    else:
        _print(checks)
    if failed:
        names = ", ".join(check.title for check in failed)
        return fail(f"{len(failed)} of {len(checks)} checks failed: {names}", MISSING)
    return OK


def _print(checks: list[Check]) -> None:
    width = max(len(check.title) for check in checks)
    for check in checks:
        said = "FAILED" if check.status == "failed" else check.status
        print(redact_text(f"{said:<8} {check.title:<{width}}  {check.detail}"))
        if check.fix:
            label = "fix" if check.status == "failed" else "hint"
            print(redact_text(f"{'':<8} {'':<{width}}  {label}: {check.fix}"))


# -- WhatsApp -------------------------------------------------------------------------


def _whatsapp_given(settings: Settings) -> dict[str, bool]:
    """Which WhatsApp variables are set (the Graph URL counts when it is not the default)."""
    return {
        var.name: getattr(settings, var.attr) not in (None, "", DEFAULT_GRAPH_URL)
        for var in WHATSAPP_VARIABLES
    }


def whatsapp_variables(settings: Settings) -> Check:
    """The five WHATSAPP_* variables: all set, none set (skipped), or which are missing."""
    from .doctor_numbers import NO_DEFAULT, not_needed  # it builds on this module

    title = "WhatsApp variables"
    given = _whatsapp_given(settings)
    unneeded = not_needed(settings)  # a numbers file may stand without a default number
    if not any(given.values()) and not unneeded:
        return Check(
            "whatsapp_variables",
            title,
            "skipped",
            "no WHATSAPP_* variable is set: WhatsApp is off (web chat and other channels only)",
        )
    missing = [name for name in WHERE_META_SHOWS if not given[name] and name not in unneeded]
    graph = settings.whatsapp_graph_url
    facts = {"missing": missing, "graph_url": graph}
    if missing:
        hints = "; ".join(f"{name} ({WHERE_META_SHOWS[name]})" for name in missing)
        fix = f"set {hints}; or unset every WHATSAPP_* variable to run without WhatsApp"
        detail = f"{', '.join(missing)} not set: " + _missing_means(missing)
        return Check("whatsapp_variables", title, "failed", detail, fix, facts)
    shown = graph + (" (the default)" if graph == DEFAULT_GRAPH_URL else "")
    if "WHATSAPP_PHONE_NUMBER_ID" in unneeded:
        detail = f"all set for the numbers file's numbers; {NO_DEFAULT}; Graph API {shown}"
        hint = "set the WHATSAPP_* variables of a default number, if one should answer"
        return Check("whatsapp_variables", title, "ok", detail, hint, facts)
    detail = f"all set; phone number id {settings.whatsapp_phone_number_id}, Graph API {shown}"
    return Check("whatsapp_variables", title, "ok", detail, None, facts)


def _missing_means(missing: list[str]) -> str:
    effects = []
    if "WHATSAPP_APP_SECRET" in missing:
        effects.append("every webhook POST is refused")
    if "WHATSAPP_VERIFY_TOKEN" in missing:
        effects.append("Meta's verify step fails")
    if {"WHATSAPP_ACCESS_TOKEN", "WHATSAPP_PHONE_NUMBER_ID"} & set(missing):
        effects.append("no reply can be sent")
    return ", ".join(effects)


def whatsapp_graph(settings: Settings) -> Check:
    """Does the Graph API accept the phone number id and the access token?"""
    from .doctor_numbers import not_needed  # it builds on this module

    title = "WhatsApp Graph API"
    if "WHATSAPP_PHONE_NUMBER_ID" in not_needed(settings):
        why = "no default number: the numbers file's are checked one by one"
        return Check("whatsapp_graph", title, "skipped", why)
    if not any(_whatsapp_given(settings).values()):
        return Check("whatsapp_graph", title, "skipped", "WhatsApp is off")
    token, number = settings.whatsapp_access_token, settings.whatsapp_phone_number_id
    if not token or not number:
        why = "needs WHATSAPP_ACCESS_TOKEN and WHATSAPP_PHONE_NUMBER_ID"
        return Check("whatsapp_graph", title, "skipped", why)
    found = look_up_phone_number(settings.whatsapp_graph_url, number, token)
    if found.number is None:
        return Check("whatsapp_graph", title, "failed", found.problem, found.fix)
    phone = found.number
    detail = (
        f"phone number id {number} is {phone.display_phone_number} "
        f"({phone.verified_name or 'no verified name'}), quality {phone.quality_rating or '?'}"
    )
    return Check("whatsapp_graph", title, "ok", detail, None, {"phone_number": asdict(phone)})


# -- Telegram -------------------------------------------------------------------------

WHERE_TELEGRAM_SHOWS = {
    "TELEGRAM_BOT_TOKEN": "@BotFather: /newbot, or /mybots > your bot > API Token",
    "TELEGRAM_SECRET_TOKEN": (
        "a secret you choose (1-256 of A-Z, a-z, 0-9, _ and -), given to setWebhook as secret_token"
    ),
}


def _telegram_given(settings: Settings) -> bool:
    """Whether any TELEGRAM_* variable is set (the API URL when it is not the default)."""
    s = settings.telegram
    return bool(s.bot_token or s.secret_token or s.api_url != DEFAULT_API_URL)


def telegram_variables(settings: Settings) -> Check:
    """TELEGRAM_BOT_TOKEN and TELEGRAM_SECRET_TOKEN: both set, or which are missing."""
    s, title = settings.telegram, "Telegram variables"
    given = {"TELEGRAM_BOT_TOKEN": s.bot_token, "TELEGRAM_SECRET_TOKEN": s.secret_token}
    missing = [name for name, value in given.items() if not value]
    facts = {"missing": missing, "api_url": s.api_url}
    if missing:
        effects = {
            "TELEGRAM_BOT_TOKEN": "Telegram is off (no webhook, no replies)",
            "TELEGRAM_SECRET_TOKEN": "every webhook POST is refused",
        }
        detail = f"{', '.join(missing)} not set: " + ", ".join(effects[n] for n in missing)
        hints = "; ".join(f"{name} ({WHERE_TELEGRAM_SHOWS[name]})" for name in missing)
        return Check("telegram_variables", title, "failed", detail, f"set {hints}", facts)
    shown = s.api_url + (" (the default)" if s.api_url == DEFAULT_API_URL else "")
    detail = f"bot token and webhook secret set; Bot API {shown}"
    return Check("telegram_variables", title, "ok", detail, None, facts)


def telegram_bot_api(settings: Settings) -> Check:
    """Does the Bot API accept the token, and is the webhook statehq's?"""
    s, title = settings.telegram, "Telegram Bot API"
    if not s.bot_token:
        return Check("telegram_bot_api", title, "skipped", "needs TELEGRAM_BOT_TOKEN")
    found = look_up_bot(s.api_url, s.bot_token)
    if found.bot is None:
        return Check("telegram_bot_api", title, "failed", found.problem, found.fix)
    bot = found.bot
    if bot.webhook_problem:  # nothing was read: an empty URL would say "none is set"
        webhook = "unknown (it could not be read)"
    else:
        webhook = bot.webhook_url or "no webhook set"
    detail = f"bot @{bot.username} (id {bot.id}); webhook: {webhook}"
    if bot.pending_updates:
        detail += f", {bot.pending_updates} updates waiting"
    facts = {"bot": asdict(bot)}
    return Check("telegram_bot_api", title, "ok", detail, webhook_hint(bot), facts)


# -- the store and the bot ----------------------------------------------------------------


def _store_settings(settings: Settings, url: str | None) -> tuple[Settings, str | None]:
    """The settings naming the store to check, and the running service's address when its
    store is checked because there is none here; (settings, None) otherwise."""
    if url or settings.redis_url or settings.data_dir.expanduser().exists():
        return settings, None
    services = [s for s in running_services() if s.data_dir.exists()]
    if len(services) != 1:
        return settings, None
    return settings.override(data_dir=services[0].data_dir), services[0].address


def store(settings: Settings, url: str | None, service: str | None) -> Check:
    """The store end to end (connection, scripts, lease, state round trip), never made here."""
    title = "store"
    where = store_in_use(settings, url)
    if service is not None:
        where += f" (the service running on {service})"
    if not (url or settings.redis_url or settings.data_dir.expanduser().exists()):
        detail = f"no {where} yet: the first `statehq serve` here makes it"
        fix = "run doctor where the service runs, or set STATEHQ_DATA_DIR or STATEHQ_REDIS_URL"
        return Check("store", title, "skipped", detail, fix)
    try:
        ok, results = _health(settings, url)
    except Exception as error:  # whatever opening the store raised is the finding
        # statehq's own errors name the store already; anything else gets its place said.
        said = str(error) if isinstance(error, StateError) else f"{where}: {error!r}"
        unreachable = "start the server, or point STATEHQ_REDIS_URL (or --url) at one that answers"
        return Check("store", title, "failed", redact_text(said), unreachable)
    said = ", ".join(
        f"{name} ok" if result["ok"] else f"{name} FAILED ({result.get('error', '')})"
        for name, result in results.items()
    )
    if ok:
        return Check("store", title, "ok", f"{where}: {said}", None, results)
    broken = "see `statehq health`; the store server's own log says more"
    return Check("store", title, "failed", f"{where}: {said}", broken, results)


def _health(settings: Settings, url: str | None) -> tuple[bool, dict[str, Any]]:
    """Open the store (starting the embedded server if needed) and check it as /healthz."""
    with StateStore.open(url=url, settings=settings) as opened:

        async def check() -> tuple[bool, dict[str, Any]]:
            async with await AsyncStateStore.open(
                url=opened.url, settings=opened.settings
            ) as astore:
                return await check_health(astore, timeout=max(settings.store_timeout, 5.0))

        return asyncio.run(check())


def bot(settings: Settings) -> Check:
    """``STATEHQ_BOT`` imported and made, then closed.

    With no data dir here yet the bot gets a scratch one, so doctor leaves nothing behind
    (a data dir here would later pass for a store).
    """
    title = "bot"
    try:
        with _data_dir_for_bot(settings) as bot_settings, open_bot(bot_settings) as made:
            flows = [flow.id for flow in made.flows]
    except StateError as error:
        fix = (
            "set STATEHQ_BOT to module:factory of your bot (the current directory is "
            "importable), or unset it for the credex reference bot"
        )
        return Check("bot", title, "failed", redact_text(str(error)), fix)
    except Exception as error:  # a bot's own failure, whatever it is, is the finding
        problem = redact_text(f"{type(error).__name__}: {error}")
        return Check("bot", title, "failed", f"STATEHQ_BOT={settings.bot!r}: {problem}")
    detail = f"{settings.bot}: {len(flows)} flows ({', '.join(flows) or 'none'})"
    return Check("bot", title, "ok", detail, None, {"bot": settings.bot, "flows": flows})


@contextlib.contextmanager
def _data_dir_for_bot(settings: Settings) -> Iterator[Settings]:
    if settings.data_dir.expanduser().exists():
        yield settings
        return
    with tempfile.TemporaryDirectory(prefix="statehq-doctor-") as scratch:
        yield settings.override(data_dir=scratch)
