"""Settings, read from ``STATEHQ_*`` environment variables with documented defaults.

Every variable is listed in :data:`VARIABLES` (the README's configuration table is
generated from the same facts), parsed once, and refused with a :class:`ConfigError`
naming the variable when it is malformed.

:class:`Settings` holds them all; each layer is handed only its own part
(:class:`StoreSettings`, :class:`ServiceSettings`, :class:`WhatsAppSettings`,
:class:`BotSettings`), so the store never holds a WhatsApp secret and a bot never
holds the admin token.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar, Self

from . import config_checks as check
from .errors import ConfigError


@dataclass(frozen=True)
class Settings:
    """statehq's configuration. Build it with :meth:`from_env` or directly for tests."""

    redis_url: str | None = None
    redis_ca_file: str | None = None
    shards: int = 0
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
    bot: str = "statehq.credex.app:credex_bot"
    channels: str = ""
    backend_url: str | None = None
    backend_api_key: str | None = field(default=None, repr=False)
    welcome_grant: str = "100 USD"
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 4
    lease_ttl: float = 30.0
    max_message_age: float = 86400.0
    max_attempts: int = 5
    store_timeout: float = 1.5
    reconcile_interval: float = 10.0
    admin_token: str | None = field(default=None, repr=False)
    mark_read: bool = False
    whatsapp_verify_token: str | None = field(default=None, repr=False)
    whatsapp_app_secret: str | None = field(default=None, repr=False)
    whatsapp_access_token: str | None = field(default=None, repr=False)
    whatsapp_phone_number_id: str | None = None
    whatsapp_graph_url: str = "https://graph.facebook.com/v23.0"

    def __post_init__(self) -> None:
        _check(self, {f.name: f.name for f in fields(self)})

    @property
    def store(self) -> StoreSettings:
        """What the store and the state manager need: the server, lifetimes, limits."""
        return StoreSettings.of(self)

    @property
    def service(self) -> ServiceSettings:
        """What the HTTP service and its workers need: address, workers, admin token."""
        return ServiceSettings.of(self)

    @property
    def whatsapp(self) -> WhatsAppSettings:
        """What the WhatsApp channel needs: its secrets and the Graph API."""
        return WhatsAppSettings.of(self)

    @property
    def bot_settings(self) -> BotSettings:
        """What a bot's factory is given: its import path, its backend, its data."""
        return BotSettings.of(self)

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


def _check(settings: Any, attrs: Mapping[str, str]) -> None:
    """Check values given in code by the environment's rules (``attrs``: field -> setting).

    The error names the variable a user would set.
    """
    if "data_dir" in attrs:  # a str is accepted for convenience (data_dir="/tmp/x")
        object.__setattr__(settings, "data_dir", Path(settings.data_dir))
    by_attr = {var.attr: var for var in VARIABLES}
    for name, attr in attrs.items():
        value = getattr(settings, name)
        if value is not None and attr not in UNCHECKED:
            by_attr[attr].parse(by_attr[attr].name, str(value))


class _Layer:
    """One layer's share of :class:`Settings` (its fields named as there, or in RENAMED)."""

    RENAMED: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def _attrs(cls) -> dict[str, str]:
        names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
        return {name: cls.RENAMED.get(name, name) for name in names}

    @classmethod
    def of(cls, settings: Settings) -> Self:
        """This layer's part of ``settings``."""
        return cls(**{name: getattr(settings, attr) for name, attr in cls._attrs().items()})

    def __post_init__(self) -> None:
        _check(self, self._attrs())

    def override(self, **changes: Any) -> Self:
        """A copy with some settings replaced; names this layer does not have are refused."""
        unknown = set(changes) - set(self._attrs())
        if unknown:
            kind = type(self).__name__
            raise ConfigError(f"unknown setting(s) for {kind}: {', '.join(sorted(unknown))}")
        return replace(self, **changes)  # type: ignore[type-var]


@dataclass(frozen=True)
class StoreSettings(_Layer):
    """The store's and the state manager's settings (see :data:`VARIABLES`)."""

    redis_url: str | None = None
    redis_ca_file: str | None = None
    shards: int = 0
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
    store_timeout: float = 1.5


@dataclass(frozen=True)
class ServiceSettings(_Layer):
    """The HTTP service's and its workers' settings."""

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 4
    lease_ttl: float = 30.0
    max_message_age: float = 86400.0
    max_attempts: int = 5
    store_timeout: float = 1.5
    reconcile_interval: float = 10.0
    admin_token: str | None = field(default=None, repr=False)
    channels: str = ""


@dataclass(frozen=True)
class WhatsAppSettings(_Layer):
    """The WhatsApp channel's settings (``STATEHQ_WHATSAPP_*`` and ``STATEHQ_MARK_READ``)."""

    RENAMED: ClassVar[Mapping[str, str]] = {
        "verify_token": "whatsapp_verify_token",
        "app_secret": "whatsapp_app_secret",
        "access_token": "whatsapp_access_token",
        "phone_number_id": "whatsapp_phone_number_id",
        "graph_url": "whatsapp_graph_url",
    }

    verify_token: str | None = field(default=None, repr=False)
    app_secret: str | None = field(default=None, repr=False)
    access_token: str | None = field(default=None, repr=False)
    phone_number_id: str | None = None
    graph_url: str = "https://graph.facebook.com/v23.0"
    mark_read: bool = False


@dataclass(frozen=True)
class BotSettings(_Layer):
    """What a bot's factory is given: which bot, its backend, where it may keep data."""

    bot: str = "statehq.credex.app:credex_bot"
    backend_url: str | None = None
    backend_api_key: str | None = field(default=None, repr=False)
    welcome_grant: str = "100 USD"
    data_dir: Path = Path(".statehq")


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
        check.url,
        "(unset: embedded Valkey)",
        "Connect to this Redis/Valkey instead of the embedded server: redis://, rediss://, "
        "unix://, redis+cluster://h:p,h:p, redis+sentinel://h:p,h:p/service (valkey "
        "for redis in each).",
    ),
    Variable(
        "STATEHQ_REDIS_CA_FILE",
        "redis_ca_file",
        check.existing_file,
        "(unset: the system's CAs)",
        "The CA certificate (PEM) that signed the servers' certificates, for rediss:// "
        "and the other TLS schemes.",
    ),
    Variable(
        "STATEHQ_SHARDS",
        "shards",
        check.shards,
        "0",
        "How many pieces the two shared keys (the ready set, the audit tail) are split "
        "into; 0 chooses: 1 on one server, 16 on a Cluster (spread over its slots).",
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
        check.appendfsync,
        "everysec",
        "Embedded AOF fsync policy: everysec (lose at most ~1 s on power loss) or always "
        "(zero loss, slower writes).",
    ),
    Variable(
        "STATEHQ_MAXMEMORY",
        "maxmemory",
        check.size,
        "256mb",
        "Embedded server memory limit; policy noeviction (writes are refused when full, "
        "no session is evicted).",
    ),
    Variable(
        "STATEHQ_KEEP_SERVER",
        "keep_server",
        check.flag,
        "false",
        "Keep the embedded server running after the last statehq process exits.",
    ),
    Variable(
        "STATEHQ_SESSION_TTL",
        "session_ttl",
        check.positive_float,
        "300",
        "Seconds a session lives after its last write or touch (sliding).",
    ),
    Variable(
        "STATEHQ_EXPIRED_MEMORY",
        "expired_memory",
        check.positive_float,
        "86400",
        "Seconds after expiry during which the store still knows a session expired.",
    ),
    Variable(
        "STATEHQ_HISTORY_LENGTH",
        "history_length",
        check.positive_int,
        "10",
        "Versions kept per member for rollback and recovery.",
    ),
    Variable(
        "STATEHQ_DEDUP_TTL",
        "dedup_ttl",
        check.positive_float,
        "604800",
        "Seconds an inbound message id is remembered as applied (7 days).",
    ),
    Variable(
        "STATEHQ_MAX_DOCUMENT_BYTES",
        "max_document_bytes",
        check.positive_int,
        "524288",
        "Largest stored document; bigger writes are refused whole.",
    ),
    Variable(
        "STATEHQ_KEY_PREFIX",
        "key_prefix",
        check.prefix,
        "statehq",
        "Prefix of every Redis key statehq writes.",
    ),
    Variable(
        "STATEHQ_MUTATE_DEADLINE",
        "mutate_deadline",
        check.positive_float,
        "2",
        "Seconds mutate() and rollback() keep retrying a compare-and-set before giving up.",
    ),
    Variable(
        "STATEHQ_AUDIT_RETENTION",
        "audit_retention",
        check.positive_float,
        "2592000",
        "Seconds audit entries are kept (30 days); older entries are trimmed on append.",
    ),
    Variable(
        "STATEHQ_AUDIT_MAX_ENTRIES",
        "audit_max_entries",
        check.positive_int,
        "10000",
        "Most audit entries kept per session key; the oldest go first.",
    ),
    Variable(
        "STATEHQ_AUDIT_TAIL_LENGTH",
        "audit_tail_length",
        check.positive_int,
        "100000",
        "Most entries kept in the operators' global audit tail.",
    ),
    Variable(
        "STATEHQ_JWT_REFRESH_MARGIN",
        "jwt_refresh_margin",
        check.positive_float,
        "60",
        "A backend token this close to its exp claim (seconds) is refreshed before use.",
    ),
    Variable(
        "STATEHQ_BOT",
        "bot",
        check.import_path,
        "statehq.credex.app:credex_bot",
        "The bot to run, as `module:factory`; the factory takes the BotSettings and returns a "
        "bot (or a context manager yielding one). The current directory is importable.",
    ),
    Variable(
        "STATEHQ_CHANNELS",
        "channels",
        check.import_paths,
        "(unset: WhatsApp only)",
        "More channels, as comma-separated `module:factory` paths; each factory takes the "
        "Settings and returns a channel (statehq.channels.base.Channel).",
    ),
    Variable(
        "STATEHQ_BACKEND_URL",
        "backend_url",
        check.http_url,
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
        check.grant,
        "100 USD",
        "What the built-in ledger credits a newly registered member (demo money, so a "
        "newcomer can offer a credex at once); 0 for nothing.",
    ),
    Variable(
        "STATEHQ_HOST",
        "host",
        check.host,
        "127.0.0.1",
        "Address `statehq serve` listens on (0.0.0.0 for every interface).",
    ),
    Variable(
        "STATEHQ_PORT",
        "port",
        check.port,
        "8000",
        "Port `statehq serve` listens on.",
    ),
    Variable(
        "STATEHQ_WORKERS",
        "workers",
        check.positive_int,
        "4",
        "Inbox worker processes `statehq serve` starts (each drains one member at a time; "
        "threads when the app is embedded with `create_app`).",
    ),
    Variable(
        "STATEHQ_LEASE_TTL",
        "lease_ttl",
        check.positive_float,
        "30",
        "Seconds a worker's lease on a member lasts unless renewed; a dead worker's "
        "members are picked up after this.",
    ),
    Variable(
        "STATEHQ_MAX_MESSAGE_AGE",
        "max_message_age",
        check.positive_float,
        "86400",
        "Messages older than this (seconds; e.g. a week of redeliveries) are recorded in "
        "the audit trail but not answered.",
    ),
    Variable(
        "STATEHQ_MAX_ATTEMPTS",
        "max_attempts",
        check.positive_int,
        "5",
        "Times a worker tries an update whose handling raises (with growing pauses) before "
        "setting it aside as a dead letter (`statehq dead list`).",
    ),
    Variable(
        "STATEHQ_STORE_TIMEOUT",
        "store_timeout",
        check.positive_float,
        "1.5",
        "Seconds the webhook, health checks and metrics wait on the store before giving up "
        "(a hung store gives a 503 this fast, never a hung request).",
    ),
    Variable(
        "STATEHQ_RECONCILE_INTERVAL",
        "reconcile_interval",
        check.positive_float,
        "10",
        "Seconds between sweeps that find inboxes holding work nobody is marked to do "
        "(the safety net under partial store failures).",
    ),
    Variable(
        "STATEHQ_ADMIN_TOKEN",
        "admin_token",
        check.text,
        "(unset: admin API off)",
        "Bearer token for the `/admin/` API; unset disables it.",
    ),
    Variable(
        "STATEHQ_MARK_READ",
        "mark_read",
        check.flag,
        "false",
        "Mark each processed WhatsApp message as read (blue ticks) before answering it.",
    ),
    Variable(
        "WHATSAPP_VERIFY_TOKEN",
        "whatsapp_verify_token",
        check.text,
        "(unset)",
        "The verify token you type into Meta's webhook settings; GET /webhooks/whatsapp "
        "answers the challenge only when it matches.",
    ),
    Variable(
        "WHATSAPP_APP_SECRET",
        "whatsapp_app_secret",
        check.text,
        "(unset: webhook refuses POSTs)",
        "The Meta app's secret: every POST must carry X-Hub-Signature-256 made with it.",
    ),
    Variable(
        "WHATSAPP_ACCESS_TOKEN",
        "whatsapp_access_token",
        check.text,
        "(unset)",
        "The Graph API token replies are sent with (a system user's permanent token).",
    ),
    Variable(
        "WHATSAPP_PHONE_NUMBER_ID",
        "whatsapp_phone_number_id",
        check.phone_number_id,
        "(unset)",
        "The id of the business number: replies are sent from it, and webhook updates for "
        "any other number are acknowledged and ignored.",
    ),
    Variable(
        "WHATSAPP_GRAPH_URL",
        "whatsapp_graph_url",
        check.http_url,
        "https://graph.facebook.com/v23.0",
        "The Graph API base URL (point it at a local or staging server to test).",
    ),
)


def store_settings_of(settings: Settings | StoreSettings | None) -> StoreSettings:
    """The store's settings, from a layer's own or from everything (``None``: the environment)."""
    if settings is None:
        return Settings.from_env().store
    return settings.store if isinstance(settings, Settings) else settings
