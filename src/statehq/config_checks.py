"""How each configuration variable's raw text is checked and converted.

Each checker takes the variable's name (for the error message) and its raw value, and
returns the converted value or raises a :class:`ConfigError` naming the variable.
:mod:`statehq.config` lists which variable uses which.
"""

from __future__ import annotations

import re
from pathlib import Path

from .digits import is_digits
from .errors import ConfigError

_SIZE = re.compile(r"^\s*(\d+)\s*(b|kb|mb|gb)?\s*$", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}


def positive_float(name: str, raw: str) -> float:
    """A number of seconds greater than 0."""
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not value > 0:
        raise ConfigError(f"{name} must be greater than 0, got {raw!r}")
    return value


def positive_int(name: str, raw: str) -> int:
    """A whole number of at least 1."""
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 1:
        raise ConfigError(f"{name} must be at least 1, got {raw!r}")
    return value


def size(name: str, raw: str) -> str:
    """A memory size such as ``256mb`` or ``1gb`` (kept as text, lower-cased)."""
    match = _SIZE.match(raw)
    if not match:
        raise ConfigError(f"{name} must be a size like 256mb or 1gb, got {raw!r}")
    return raw.strip().lower()


def appendfsync(name: str, raw: str) -> str:
    """The embedded AOF fsync policy: ``everysec`` or ``always``."""
    value = raw.strip().lower()
    if value not in ("everysec", "always"):
        raise ConfigError(f"{name} must be 'everysec' or 'always', got {raw!r}")
    return value


def flag(name: str, raw: str) -> bool:
    """On or off: 1/true/yes/on or 0/false/no/off."""
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def url(name: str, raw: str) -> str:
    """A Redis URL of any topology (see :mod:`statehq.store.clients`)."""
    from .store.clients import parse  # the store's own reading of it, not a second one

    value = raw.strip()
    try:
        parse(value)
    except ConfigError as bad:
        raise ConfigError(str(bad).replace("STATEHQ_REDIS_URL", name, 1)) from None
    return value


def existing_file(name: str, raw: str) -> str:
    """The path of a file that exists."""
    value = raw.strip()
    if not Path(value).expanduser().is_file():
        raise ConfigError(f"{name}: no file at {value!r}")
    return str(Path(value).expanduser())


def shards(name: str, raw: str) -> int:
    """0 (chosen by topology) or a number of shards from 1 to 1024."""
    if not raw.strip().isdigit() or int(raw) > 1024:
        raise ConfigError(f"{name} must be a whole number from 0 (auto) to 1024, got {raw!r}")
    return int(raw)


def prefix(name: str, raw: str) -> str:
    """A key prefix: letters, digits and a few separators, no hash-slot braces."""
    value = raw.strip()
    if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", value):
        raise ConfigError(f"{name} must be 1-64 letters, digits or _.:- characters, got {raw!r}")
    return value


def http_url(name: str, raw: str) -> str:
    """An http(s) base URL, without its trailing slash."""
    value = raw.strip().rstrip("/")
    if not value.startswith(("http://", "https://")):
        raise ConfigError(f"{name} must be an http:// or https:// URL, got {raw!r}")
    return value


def grant(name: str, raw: str) -> str:
    """An amount and a currency, such as ``100 USD``, or 0 for none."""
    parts = raw.split()
    if parts == ["0"]:
        return "0"
    if len(parts) != 2 or not re.fullmatch(r"\d+(\.\d{1,4})?", parts[0]) or not parts[1].isalpha():
        raise ConfigError(f"{name} must be an amount and a denomination like '100 USD', or 0")
    return f"{parts[0]} {parts[1].upper()}"


def host(name: str, raw: str) -> str:
    """An address to listen on."""
    value = raw.strip()
    if not re.fullmatch(r"[A-Za-z0-9_.:\-\[\]]{1,253}", value):
        raise ConfigError(f"{name} must be a host name or IP address, got {raw!r}")
    return value


def port(name: str, raw: str) -> int:
    """A TCP port, 0 to 65535 (0: any free port)."""
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a port number, got {raw!r}") from None
    if not 0 <= value <= 65535:
        raise ConfigError(f"{name} must be between 0 and 65535, got {raw!r}")
    return value


def import_path(name: str, raw: str) -> str:
    """``package.module:attribute``: where a bot's factory is found."""
    value = raw.strip()
    dotted = r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*"
    if not re.fullmatch(f"{dotted}:{dotted}", value):
        raise ConfigError(
            f"{name} must be an import path like mybot.app:create_bot "
            f"(module, a colon, then the factory's name), got {raw!r}"
        )
    return value


def import_paths(name: str, raw: str) -> str:
    """Comma-separated import paths (``a.b:make, c:Other``); empty for none."""
    paths = [part.strip() for part in raw.split(",") if part.strip()]
    for path in paths:
        import_path(name, path)
    return ",".join(paths)


def text(_name: str, raw: str) -> str:
    """Any text, trimmed (secrets and tokens)."""
    return raw.strip()


def phone_number_id(name: str, raw: str) -> str:
    """The numeric id Meta shows for a WhatsApp business number."""
    value = raw.strip()
    if not is_digits(value):
        raise ConfigError(f"{name} must be the numeric id Meta shows for the number, got {raw!r}")
    return value


_TELEGRAM_BOT_TOKEN = re.compile(r"[0-9]{1,20}:[A-Za-z0-9_-]{20,100}")
_TELEGRAM_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")


def telegram_bot_token(name: str, raw: str) -> str:
    """A Telegram bot token as @BotFather gives it: the bot's id, a colon, the secret.

    It travels in the Bot API's URL path, so nothing else (a slash, a space) may be in it.
    """
    value = raw.strip()
    if not _TELEGRAM_BOT_TOKEN.fullmatch(value):
        # The value is a secret: the message shows its shape, never the value.
        raise ConfigError(
            f"{name} must be the token @BotFather gave (digits, a colon, then 20-100 letters, "
            f"digits, _ or -); the value given ({len(value)} characters) is not one"
        )
    return value


def telegram_secret_token(name: str, raw: str) -> str:
    """A webhook ``secret_token`` as Telegram accepts it: 1-256 of A-Z, a-z, 0-9, _ and -."""
    value = raw.strip()
    if not _TELEGRAM_SECRET_TOKEN.fullmatch(value):
        raise ConfigError(
            f"{name} must be 1-256 characters of A-Z, a-z, 0-9, _ and - (what setWebhook "
            f"accepts as secret_token); the value given ({len(value)} characters) is not one"
        )
    return value


def numbers_file(name: str, raw: str) -> str:
    """The path of a WhatsApp numbers file whose contents pass every check
    (:func:`statehq.config_numbers.load_numbers`)."""
    from .config_numbers import load_numbers  # it reads bots' import paths by this module

    value = str(Path(raw.strip()).expanduser().resolve())
    load_numbers(value, variable=name)
    return value


def size_in_bytes(size: str) -> int:
    """Convert a size such as ``256mb`` (as accepted by the settings) to bytes."""
    match = _SIZE.match(size)
    if not match:
        raise ConfigError(f"not a size: {size!r}")
    return int(match.group(1)) * _UNITS[(match.group(2) or "b").lower()]
