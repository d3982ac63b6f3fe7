"""What the built-in ledger accepts as a phone number, a name and an account handle.

Each check returns the cleaned value or raises :class:`~statehq.credex.backend.Refused`
with the rule's code, so the bot can tell the member exactly what to fix.
"""

from __future__ import annotations

import re
import unicodedata

from .backend import Refused

PHONE_DIGITS = (8, 15)
"""A phone number is 8 to 15 digits, country code first, no '+' (E.164 without it)."""

NAME_LENGTH = (3, 50)
HANDLE_LENGTH = (3, 30)
NAME_PUNCTUATION = frozenset(" -'.")

_HANDLE = re.compile(r"[a-z0-9_]+")
_NOT_HANDLE = re.compile(r"[^a-z0-9]+")
_FALLBACK_HANDLE = "member"


def check_phone(phone: object) -> str:
    """The phone number if it is 8 to 15 digits, else ``Refused(invalid_phone)``."""
    low, high = PHONE_DIGITS
    if not isinstance(phone, str) or not (phone.isascii() and phone.isdigit()):
        raise Refused(
            f"phone number {phone!r:.30} must be digits only, country code first",
            code="invalid_phone",
        )
    if not low <= len(phone) <= high:
        raise Refused(
            f"phone number must have {low} to {high} digits, not {len(phone)}",
            code="invalid_phone",
        )
    return phone


def check_name(name: object, what: str = "name") -> str:
    """A person's name: 3-50 letters (any script) plus space, hyphen, apostrophe, dot."""
    low, high = NAME_LENGTH
    cleaned = name.strip() if isinstance(name, str) else ""
    if not low <= len(cleaned) <= high:
        raise Refused(f"{what} must be {low} to {high} characters long", code="invalid_name")
    allowed = all(char.isalpha() or char in NAME_PUNCTUATION for char in cleaned)
    if not allowed or not any(char.isalpha() for char in cleaned):
        raise Refused(
            f"{what} may contain only letters, spaces, hyphens, apostrophes and dots",
            code="invalid_name",
        )
    return cleaned


def check_account_name(name: object) -> str:
    """An account's display name: 3-50 printable characters (a shop may use digits or &)."""
    low, high = NAME_LENGTH
    cleaned = name.strip() if isinstance(name, str) else ""
    if not low <= len(cleaned) <= high or not cleaned.isprintable():
        raise Refused(
            f"account name must be {low} to {high} printable characters", code="invalid_name"
        )
    return cleaned


def normalize_handle(handle: str) -> str:
    """How handles are compared: lowercase, without a leading '@' or surrounding space."""
    return handle.strip().removeprefix("@").lower()


def check_handle(handle: object) -> str:
    """A handle as stored: 3-30 lowercase ASCII letters, digits or underscores."""
    low, high = HANDLE_LENGTH
    cleaned = normalize_handle(handle) if isinstance(handle, str) else ""
    if not low <= len(cleaned) <= high or not _HANDLE.fullmatch(cleaned):
        raise Refused(
            f"handle {handle!r:.40} must be {low} to {high} letters, digits or underscores",
            code="invalid_handle",
        )
    return cleaned


def handle_base(first_name: str, last_name: str) -> str:
    """The handle a member's names suggest: ``Ann Moyo`` -> ``ann_moyo``.

    Accents are dropped (``Zoë`` -> ``zoe``); names with no Latin letters at all fall
    back to ``member``. The result leaves room for a numeric suffix within 30 characters.
    """
    parts = [_ascii_slug(first_name), _ascii_slug(last_name)]
    base = "_".join(part for part in parts if part)[: HANDLE_LENGTH[1] - 4].strip("_")
    return base if len(base) >= HANDLE_LENGTH[0] else _FALLBACK_HANDLE


def first_free_handle(base: str, taken: set[str]) -> str:
    """``base`` if free, else ``base2``, ``base3``... the first one not in ``taken``."""
    if base not in taken:
        return base
    suffix = 2
    while f"{base}{suffix}" in taken:
        suffix += 1
    return f"{base}{suffix}"


def _ascii_slug(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name)
    ascii_only = decomposed.encode("ascii", "ignore").decode().lower()
    return _NOT_HANDLE.sub("_", ascii_only).strip("_")
