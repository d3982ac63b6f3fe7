"""Settings, read from ``STATEHQ_*`` environment variables with documented defaults.

Every variable is listed in :data:`VARIABLES` (the README's configuration table is
generated from the same facts), parsed once, and refused with a :class:`ConfigError`
naming the variable when it is malformed.

:class:`Settings` holds them all; each layer is handed only its own part
(:class:`StoreSettings`, :class:`ServiceSettings`, :class:`WhatsAppSettings`,
:class:`TelegramSettings`, :class:`BotSettings`), so the store never holds a WhatsApp
secret and a bot never holds the admin token.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar, Self

from .config_variables import UNCHECKED, VARIABLES, Variable, check_values
from .errors import ConfigError

__all__ = [
    "UNCHECKED",
    "VARIABLES",
    "BotSettings",
    "ServiceSettings",
    "Settings",
    "StoreSettings",
    "TelegramSettings",
    "Variable",
    "WhatsAppSettings",
    "store_settings_of",
]


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
    access_log: bool = False
    admin_token: str | None = field(default=None, repr=False)
    mark_read: bool = False
    whatsapp_verify_token: str | None = field(default=None, repr=False)
    whatsapp_app_secret: str | None = field(default=None, repr=False)
    whatsapp_access_token: str | None = field(default=None, repr=False)
    whatsapp_phone_number_id: str | None = None
    whatsapp_graph_url: str = "https://graph.facebook.com/v23.0"
    whatsapp_numbers: str | None = None
    telegram_bot_token: str | None = field(default=None, repr=False)
    telegram_secret_token: str | None = field(default=None, repr=False)
    telegram_api_url: str = "https://api.telegram.org"

    def __post_init__(self) -> None:
        check_values(self, {f.name: f.name for f in fields(self)})

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
    def telegram(self) -> TelegramSettings:
        """What the Telegram channel needs: its bot token, webhook secret and Bot API."""
        return TelegramSettings.of(self)

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
        check_values(self, self._attrs())

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
    access_log: bool = False
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
        "numbers": "whatsapp_numbers",
    }

    verify_token: str | None = field(default=None, repr=False)
    app_secret: str | None = field(default=None, repr=False)
    access_token: str | None = field(default=None, repr=False)
    phone_number_id: str | None = None
    graph_url: str = "https://graph.facebook.com/v23.0"
    mark_read: bool = False
    numbers: str | None = None


@dataclass(frozen=True)
class TelegramSettings(_Layer):
    """The Telegram channel's settings (``TELEGRAM_*``, named as Telegram's docs name them)."""

    RENAMED: ClassVar[Mapping[str, str]] = {
        "bot_token": "telegram_bot_token",
        "secret_token": "telegram_secret_token",
        "api_url": "telegram_api_url",
    }

    bot_token: str | None = field(default=None, repr=False)
    secret_token: str | None = field(default=None, repr=False)
    api_url: str = "https://api.telegram.org"


@dataclass(frozen=True)
class BotSettings(_Layer):
    """What a bot's factory is given: which bot, its backend, where it may keep data."""

    bot: str = "statehq.credex.app:credex_bot"
    backend_url: str | None = None
    backend_api_key: str | None = field(default=None, repr=False)
    welcome_grant: str = "100 USD"
    data_dir: Path = Path(".statehq")


def store_settings_of(settings: Settings | StoreSettings | None) -> StoreSettings:
    """The store's settings, from a layer's own or from everything (``None``: the environment)."""
    if settings is None:
        return Settings.from_env().store
    return settings.store if isinstance(settings, Settings) else settings
