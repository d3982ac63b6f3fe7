"""``statehq doctor``'s checks of the numbers file (``STATEHQ_WHATSAPP_NUMBERS``).

Each number of the file gets the check the default number gets: ``GET
{WHATSAPP_GRAPH_URL}/{phone_number_id}`` with that number's own token (nothing is sent
to anyone), and, when it names a bot other than ``STATEHQ_BOT``, that bot imported and
made. A file that cannot be read is reported by the configuration check; one that
repeats the default number's id is reported here.
"""

from __future__ import annotations

from dataclasses import asdict, replace

from ..channels.whatsapp.numbers import Lines
from ..channels.whatsapp.phone_number import look_up_phone_number
from ..config import Settings
from ..config_numbers import VARIABLE, load_numbers
from ..errors import ConfigError
from ..service.bots import number_bots
from .doctor import Check, bot

TOKEN_FIX = "set the number's access_token (or the variable its access_token_env names)"
BOT_FIX = "module:factory; the current directory is importable"


def number_checks(settings: Settings) -> list[Check]:
    """One Graph API check per number of the file, and one per bot of its own."""
    if not settings.whatsapp_numbers:
        return []
    try:
        lines = Lines(settings.whatsapp)
        bots = number_bots(settings)
    except ConfigError as bad:
        fix = f"correct {VARIABLE} (the default number is configured by WHATSAPP_*)"
        return [Check("whatsapp_numbers", "WhatsApp numbers", "failed", str(bad), fix)]
    checks: list[Check] = []
    for number, line in lines.extra.items():
        checks.append(_graph(settings, number, line.access_token))
        if bots[number] != settings.bot:
            made = bot(settings.override(bot=bots[number]))
            # Said of this number's bot, not of STATEHQ_BOT (the default's variable).
            detail = made.detail.replace(f"STATEHQ_BOT={bots[number]!r}: ", "")
            own_fix = f"correct number {number}'s bot in {VARIABLE} ({BOT_FIX})"
            said = own_fix if made.fix else None
            title = f"bot of {number}"
            checks.append(replace(made, name=f"bot_{number}", title=title, detail=detail, fix=said))
    return checks


NO_DEFAULT = (
    "no default number (WHATSAPP_PHONE_NUMBER_ID and WHATSAPP_ACCESS_TOKEN unset): "
    "updates for numbers the file does not list are skipped"
)


def not_needed(settings: Settings) -> set[str]:
    """The default number's variables a numbers file makes unnecessary.

    With numbers of its own the file may stand alone: then there is no default number
    (its id and token both unset), and the app secret is needed only by a number of the
    file that gives none. A file that cannot be read needs everything (the numbers
    check says why).
    """
    if not settings.whatsapp_numbers:
        return set()
    try:
        numbers = load_numbers(settings.whatsapp_numbers).numbers
    except ConfigError:
        return set()
    if not numbers:
        return set()
    unneeded = set()
    if not settings.whatsapp_access_token and not settings.whatsapp_phone_number_id:
        unneeded |= {"WHATSAPP_ACCESS_TOKEN", "WHATSAPP_PHONE_NUMBER_ID"}
        if all(number.app_secret for number in numbers):
            unneeded.add("WHATSAPP_APP_SECRET")
    return unneeded


def _graph(settings: Settings, number: str, token: str) -> Check:
    name, title = f"whatsapp_number_{number}", f"WhatsApp number {number}"
    found = look_up_phone_number(settings.whatsapp_graph_url, number, token)
    if found.number is None:
        fix = found.fix or ""
        if "WHATSAPP_ACCESS_TOKEN" in fix:  # the default number's words: this one's token
            fix = f"{fix.split(':')[0]}: {TOKEN_FIX} in {VARIABLE}"
        elif "WHATSAPP_PHONE_NUMBER_ID" in fix:
            fix = f"{fix.replace('WHATSAPP_PHONE_NUMBER_ID', f'{number} (in {VARIABLE})')}"
        return Check(name, title, "failed", found.problem, fix or None)
    phone = found.number
    detail = (
        f"is {phone.display_phone_number} ({phone.verified_name or 'no verified name'}), "
        f"quality {phone.quality_rating or '?'}"
    )
    return Check(name, title, "ok", detail, None, {"phone_number": asdict(phone)})
