"""Every ``STATEHQ_*`` variable: its name, the setting it fills, its parser, its default
and its doc (the README's configuration table is generated from the same facts), and
the check that values given in code pass the same rules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import config_checks as check

UNCHECKED = ("data_dir", "keep_server", "mark_read", "port", "access_log")
"""Settings whose values in code are not strings to parse (their types are checked)."""


def check_values(settings: Any, attrs: Mapping[str, str]) -> None:
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
        "STATEHQ_ACCESS_LOG",
        "access_log",
        check.flag,
        "false",
        "Log one line per HTTP request `statehq serve` answers: method, path (member "
        "numbers masked, never the query string), status and milliseconds.",
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
    Variable(
        "STATEHQ_WHATSAPP_NUMBERS",
        "whatsapp_numbers",
        check.numbers_file,
        "(unset: one number)",
        "A TOML file listing more WhatsApp numbers, each with its phone_number_id, access "
        "token, bot and optional app secret (see the README's WhatsApp section); the "
        "WHATSAPP_PHONE_NUMBER_ID number stays the default.",
    ),
    Variable(
        "TELEGRAM_BOT_TOKEN",
        "telegram_bot_token",
        check.telegram_bot_token,
        "(unset: Telegram off)",
        "The bot's token from @BotFather (`123456:ABC-...`); set, the Telegram channel is on "
        "at /webhooks/telegram and replies go through the Bot API with it.",
    ),
    Variable(
        "TELEGRAM_SECRET_TOKEN",
        "telegram_secret_token",
        check.telegram_secret_token,
        "(unset: webhook refuses POSTs)",
        "The secret_token given to setWebhook: every POST must carry it in "
        "X-Telegram-Bot-Api-Secret-Token (1-256 of A-Z, a-z, 0-9, _ and -).",
    ),
    Variable(
        "TELEGRAM_API_URL",
        "telegram_api_url",
        check.http_url,
        "https://api.telegram.org",
        "The Bot API base URL (point it at a local Bot API server, or a fake one to test).",
    ),
)
