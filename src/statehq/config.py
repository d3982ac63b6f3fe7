"""Settings, read from ``STATEHQ_*`` environment variables with documented defaults.

Every variable is listed in :data:`VARIABLES` (the README's configuration table is
generated from the same facts), parsed once, and refused with a :class:`ConfigError`
naming the variable when it is malformed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError

_SIZE = re.compile(r"^\s*(\d+)\s*(b|kb|mb|gb)?\s*$", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}


def _positive_float(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not value > 0:
        raise ConfigError(f"{name} must be greater than 0, got {raw!r}")
    return value


def _positive_int(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 1:
        raise ConfigError(f"{name} must be at least 1, got {raw!r}")
    return value


def _size(name: str, raw: str) -> str:
    match = _SIZE.match(raw)
    if not match:
        raise ConfigError(f"{name} must be a size like 256mb or 1gb, got {raw!r}")
    return raw.strip().lower()


def _appendfsync(name: str, raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("everysec", "always"):
        raise ConfigError(f"{name} must be 'everysec' or 'always', got {raw!r}")
    return value


def _flag(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _url(name: str, raw: str) -> str:
    value = raw.strip()
    if not value.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(
            f"{name} must start with redis://, rediss:// or unix://, got {value[:40]!r}"
        )
    return value


def _prefix(name: str, raw: str) -> str:
    value = raw.strip()
    if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,64}", value):
        raise ConfigError(f"{name} must be 1-64 letters, digits or _.:- characters, got {raw!r}")
    return value


def _http_url(name: str, raw: str) -> str:
    url = raw.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{name} must be an http:// or https:// URL, got {raw!r}")
    return url


def _grant(name: str, raw: str) -> str:
    parts = raw.split()
    if parts == ["0"]:
        return "0"
    if len(parts) != 2 or not re.fullmatch(r"\d+(\.\d{1,4})?", parts[0]) or not parts[1].isalpha():
        raise ConfigError(f"{name} must be an amount and a denomination like '100 USD', or 0")
    return f"{parts[0]} {parts[1].upper()}"


def _host(name: str, raw: str) -> str:
    value = raw.strip()
    if not re.fullmatch(r"[A-Za-z0-9_.:\-\[\]]{1,253}", value):
        raise ConfigError(f"{name} must be a host name or IP address, got {raw!r}")
    return value


def _port(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a port number, got {raw!r}") from None
    if not 0 <= value <= 65535:
        raise ConfigError(f"{name} must be between 0 and 65535, got {raw!r}")
    return value


def _text(_name: str, raw: str) -> str:
    return raw.strip()


def _phone_number_id(name: str, raw: str) -> str:
    value = raw.strip()
    if not value.isdigit():
        raise ConfigError(f"{name} must be the numeric id Meta shows for the number, got {raw!r}")
    return value


def size_in_bytes(size: str) -> int:
    """Convert a size such as ``256mb`` (as accepted by the settings) to bytes."""
    match = _SIZE.match(size)
    if not match:
        raise ConfigError(f"not a size: {size!r}")
    return int(match.group(1)) * _UNITS[(match.group(2) or "b").lower()]


@dataclass(frozen=True)
class Settings:
    """statehq's configuration. Build it with :meth:`from_env` or directly for tests."""

    redis_url: str | None = None
    data_dir: Path = Path(".statehq")
    appendfsync: str = "everysec"
    maxmemory: str = "256mb"
    keep_server: bool = False
    session_ttl: float = 300.0
    expired_memory: float = 86400.0
    history_length: int = 10
    dedup_ttl: float = 7 * 86400.0
    max_document_bytes: int = 512 * 1024
    key_prefix: str = "statehq"
    mutate_deadline: float = 2.0
    audit_retention: float = 30 * 86400.0
    audit_max_entries: int = 10_000
    audit_tail_length: int = 100_000
    jwt_refresh_margin: float = 60.0
    backend_url: str | None = None
    backend_api_key: str | None = field(default=None, repr=False)
    welcome_grant: str = "100 USD"
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 4
    lease_ttl: float = 30.0
    max_message_age: float = 86400.0
    admin_token: str | None = field(default=None, repr=False)
    mark_read: bool = False
    whatsapp_verify_token: str | None = field(default=None, repr=False)
    whatsapp_app_secret: str | None = field(default=None, repr=False)
    whatsapp_access_token: str | None = field(default=None, repr=False)
    whatsapp_phone_number_id: str | None = None
    whatsapp_graph_url: str = "https://graph.facebook.com/v23.0"

    def __post_init__(self) -> None:
        # Accept a str for convenience (StateStore.open(data_dir="/tmp/x")).
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        # Values given in code are checked by the same rules as the environment's, and
        # the error names the variable a user would set.
        for var in VARIABLES:
            value = getattr(self, var.attr)
            if value is not None and var.attr not in UNCHECKED:
                var.parse(var.name, str(value))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every ``STATEHQ_*`` variable (see :data:`VARIABLES`); ``overrides`` win."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for var in VARIABLES:
            raw = env.get(var.name)
            if raw is not None and (raw.strip() or var.attr in ("redis_url", "backend_url")):
                values[var.attr] = var.parse(var.name, raw) if raw.strip() else None
        return cls(**values).override(**overrides)

    def to_env(self) -> dict[str, str]:
        """The environment variables that reproduce these settings (in a child process).

        Secrets are included: pass the result only to processes of your own.
        """
        env: dict[str, str] = {}
        for var in VARIABLES:
            value = getattr(self, var.attr)
            if value is None:
                continue
            env[var.name] = (
                ("true" if value else "false") if isinstance(value, bool) else str(value)
            )
        return env

    def override(self, **changes: Any) -> Settings:
        """A copy with some settings replaced; unknown names are refused."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return replace(self, **changes)


UNCHECKED = ("data_dir", "keep_server", "mark_read", "port")
"""Settings whose values in code are not strings to parse (their types are checked)."""


@dataclass(frozen=True)
class Variable:
    """One environment variable: its name, the setting it fills, its parser and its doc."""

    name: str
    attr: str
    parse: Callable[[str, str], Any]
    default: str
    doc: str


VARIABLES: tuple[Variable, ...] = (
    Variable(
        "STATEHQ_REDIS_URL",
        "redis_url",
        _url,
        "(unset: embedded Valkey)",
        "Connect to this Redis/Valkey (redis://, rediss://, unix://) instead of the "
        "embedded server.",
    ),
    Variable(
        "STATEHQ_DATA_DIR",
        "data_dir",
        lambda _n, raw: Path(raw),
        "./.statehq",
        "Where the embedded server keeps its socket, AOF and logs.",
    ),
    Variable(
        "STATEHQ_APPENDFSYNC",
        "appendfsync",
        _appendfsync,
        "everysec",
        "Embedded AOF fsync policy: everysec (lose at most ~1 s on power loss) or always "
        "(zero loss, slower writes).",
    ),
    Variable(
        "STATEHQ_MAXMEMORY",
        "maxmemory",
        _size,
        "256mb",
        "Embedded server memory limit; policy noeviction (writes are refused when full, "
        "no session is evicted).",
    ),
    Variable(
        "STATEHQ_KEEP_SERVER",
        "keep_server",
        _flag,
        "false",
        "Keep the embedded server running after the last statehq process exits.",
    ),
    Variable(
        "STATEHQ_SESSION_TTL",
        "session_ttl",
        _positive_float,
        "300",
        "Seconds a session lives after its last write or touch (sliding).",
    ),
    Variable(
        "STATEHQ_EXPIRED_MEMORY",
        "expired_memory",
        _positive_float,
        "86400",
        "Seconds after expiry during which the store still knows a session expired.",
    ),
    Variable(
        "STATEHQ_HISTORY_LENGTH",
        "history_length",
        _positive_int,
        "10",
        "Versions kept per member for rollback and recovery.",
    ),
    Variable(
        "STATEHQ_DEDUP_TTL",
        "dedup_ttl",
        _positive_float,
        "604800",
        "Seconds an inbound message id is remembered as applied (7 days).",
    ),
    Variable(
        "STATEHQ_MAX_DOCUMENT_BYTES",
        "max_document_bytes",
        _positive_int,
        "524288",
        "Largest stored document; bigger writes are refused whole.",
    ),
    Variable(
        "STATEHQ_KEY_PREFIX",
        "key_prefix",
        _prefix,
        "statehq",
        "Prefix of every Redis key statehq writes.",
    ),
    Variable(
        "STATEHQ_MUTATE_DEADLINE",
        "mutate_deadline",
        _positive_float,
        "2",
        "Seconds mutate() and rollback() keep retrying a compare-and-set before giving up.",
    ),
    Variable(
        "STATEHQ_AUDIT_RETENTION",
        "audit_retention",
        _positive_float,
        "2592000",
        "Seconds audit entries are kept (30 days); older entries are trimmed on append.",
    ),
    Variable(
        "STATEHQ_AUDIT_MAX_ENTRIES",
        "audit_max_entries",
        _positive_int,
        "10000",
        "Most audit entries kept per session key; the oldest go first.",
    ),
    Variable(
        "STATEHQ_AUDIT_TAIL_LENGTH",
        "audit_tail_length",
        _positive_int,
        "100000",
        "Most entries kept in the operators' global audit tail.",
    ),
    Variable(
        "STATEHQ_JWT_REFRESH_MARGIN",
        "jwt_refresh_margin",
        _positive_float,
        "60",
        "A backend token this close to its exp claim (seconds) is refreshed before use.",
    ),
    Variable(
        "STATEHQ_BACKEND_URL",
        "backend_url",
        _http_url,
        "(unset: built-in ledger)",
        "Base URL of a credex-core compatible API for the credex bot, instead of the "
        "built-in SQLite ledger under the data dir.",
    ),
    Variable(
        "STATEHQ_BACKEND_API_KEY",
        "backend_api_key",
        lambda _n, raw: raw.strip(),
        "(unset)",
        "Sent as X-API-Key to the backend; `statehq ledger serve` requires it when set.",
    ),
    Variable(
        "STATEHQ_WELCOME_GRANT",
        "welcome_grant",
        _grant,
        "100 USD",
        "What the built-in ledger credits a newly registered member (demo money, so a "
        "newcomer can offer a credex at once); 0 for nothing.",
    ),
    Variable(
        "STATEHQ_HOST",
        "host",
        _host,
        "127.0.0.1",
        "Address `statehq serve` listens on (0.0.0.0 for every interface).",
    ),
    Variable(
        "STATEHQ_PORT",
        "port",
        _port,
        "8000",
        "Port `statehq serve` listens on.",
    ),
    Variable(
        "STATEHQ_WORKERS",
        "workers",
        _positive_int,
        "4",
        "Inbox worker processes `statehq serve` starts (each drains one member at a time; "
        "threads when the app is embedded with `create_app`).",
    ),
    Variable(
        "STATEHQ_LEASE_TTL",
        "lease_ttl",
        _positive_float,
        "30",
        "Seconds a worker's lease on a member lasts unless renewed; a dead worker's "
        "members are picked up after this.",
    ),
    Variable(
        "STATEHQ_MAX_MESSAGE_AGE",
        "max_message_age",
        _positive_float,
        "86400",
        "Messages older than this (seconds; e.g. a week of redeliveries) are recorded in "
        "the audit trail but not answered.",
    ),
    Variable(
        "STATEHQ_ADMIN_TOKEN",
        "admin_token",
        _text,
        "(unset: admin API off)",
        "Bearer token for the `/admin/` API; unset disables it.",
    ),
    Variable(
        "STATEHQ_MARK_READ",
        "mark_read",
        _flag,
        "false",
        "Mark each processed WhatsApp message as read (blue ticks) before answering it.",
    ),
    Variable(
        "WHATSAPP_VERIFY_TOKEN",
        "whatsapp_verify_token",
        _text,
        "(unset)",
        "The verify token you type into Meta's webhook settings; GET /webhooks/whatsapp "
        "answers the challenge only when it matches.",
    ),
    Variable(
        "WHATSAPP_APP_SECRET",
        "whatsapp_app_secret",
        _text,
        "(unset: webhook refuses POSTs)",
        "The Meta app's secret: every POST must carry X-Hub-Signature-256 made with it.",
    ),
    Variable(
        "WHATSAPP_ACCESS_TOKEN",
        "whatsapp_access_token",
        _text,
        "(unset)",
        "The Graph API token replies are sent with (a system user's permanent token).",
    ),
    Variable(
        "WHATSAPP_PHONE_NUMBER_ID",
        "whatsapp_phone_number_id",
        _phone_number_id,
        "(unset)",
        "The id of the business number: replies are sent from it, and webhook updates for "
        "any other number are acknowledged and ignored.",
    ),
    Variable(
        "WHATSAPP_GRAPH_URL",
        "whatsapp_graph_url",
        _http_url,
        "https://graph.facebook.com/v23.0",
        "The Graph API base URL (point it at a local or staging server to test).",
    ),
)
