"""Each layer is handed only its own settings: the store never holds a channel's secret."""

from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from statehq import (
    BotSettings,
    ConfigError,
    ServiceSettings,
    Settings,
    StateStore,
    StoreSettings,
    WhatsAppSettings,
)
from statehq.channels.registry import channels
from statehq.config import TelegramSettings
from statehq.flows import SimpleBot, open_bot

SECRETS = {
    "whatsapp_app_secret": "app-s3cret",
    "whatsapp_access_token": "access-s3cret",
    "whatsapp_verify_token": "verify-s3cret",
    "admin_token": "admin-s3cret",
    "backend_api_key": "backend-s3cret",
    "telegram_bot_token": "7000000001:AAH-bot-s3cret-000000000000000",
    "telegram_secret_token": "webhook-s3cret",
}
LAYERS = (StoreSettings, ServiceSettings, WhatsAppSettings, TelegramSettings, BotSettings)

GIVEN: list[Any] = []


def capturing_bot(settings: Any) -> SimpleBot:
    """A bot factory that remembers what it was given."""
    GIVEN.append(settings)
    return SimpleBot()


def _held(layer: object) -> set[str]:
    return {str(getattr(layer, f.name)) for f in fields(layer)}  # type: ignore[arg-type]


def test_every_setting_belongs_to_a_layer() -> None:
    everything = Settings(**SECRETS)  # type: ignore[arg-type]
    shared = {"data_dir", "store_timeout"}  # the store's and another layer's
    for f in fields(Settings):
        holders = [layer for layer in LAYERS if f.name in layer._attrs().values()]
        assert holders, f"{f.name} is in no layer"
        assert len(holders) == 1 or f.name in shared, f"{f.name} is in {holders}"
    assert everything.store == StoreSettings()


def test_the_store_never_receives_a_channel_or_service_secret(server_url: str) -> None:
    settings = Settings(**SECRETS)  # type: ignore[arg-type]
    with StateStore.open(server_url, settings=settings) as store:
        assert isinstance(store.settings, StoreSettings)
        held = _held(store.settings) | {repr(store.settings)}
    for name, secret in SECRETS.items():
        assert not any(secret in value for value in held), name
    assert not hasattr(store.settings, "whatsapp_app_secret")


def test_the_whatsapp_channel_gets_its_own_settings_only() -> None:
    settings = Settings(**SECRETS, whatsapp_phone_number_id="123")  # type: ignore[arg-type]
    (whatsapp,) = [c for c in channels(settings) if c.type == "whatsapp"]
    mine = whatsapp.settings  # type: ignore[attr-defined]
    assert isinstance(mine, WhatsAppSettings)
    assert (mine.app_secret, mine.phone_number_id) == ("app-s3cret", "123")
    assert {"admin-s3cret", "backend-s3cret"}.isdisjoint(_held(mine))
    assert "s3cret" not in repr(mine)  # secrets are left out of its repr
    assert whatsapp.problems() == []
    unset = {channel.type: channel.problems() for channel in channels(Settings())}
    assert len(unset["whatsapp"]) == 3
    assert unset["web"] == [
        "STATEHQ_ADMIN_TOKEN is not set: the web chat and the inspector are off"
    ]


def test_the_telegram_channel_gets_its_own_settings_only() -> None:
    (telegram,) = [c for c in channels(Settings(**SECRETS)) if c.type == "telegram"]  # type: ignore[arg-type]
    mine = telegram.settings  # type: ignore[attr-defined]
    assert isinstance(mine, TelegramSettings)
    assert mine.secret_token == "webhook-s3cret"
    assert {"admin-s3cret", "app-s3cret", "backend-s3cret"}.isdisjoint(_held(mine))
    assert "s3cret" not in repr(mine)
    assert telegram.problems() == []


def test_a_bot_factory_gets_the_bot_settings_only() -> None:
    settings = Settings(**SECRETS, bot=f"{__name__}:capturing_bot")  # type: ignore[arg-type]
    GIVEN.clear()
    with open_bot(settings) as bot:
        assert list(bot.flows) == []
    (given,) = GIVEN
    assert isinstance(given, BotSettings)
    assert given.backend_api_key == "backend-s3cret"
    assert {"admin-s3cret", "app-s3cret", "access-s3cret"}.isdisjoint(_held(given))


@pytest.mark.parametrize(
    ("layer", "changes", "variable"),
    [
        (StoreSettings, {"session_ttl": -1}, "STATEHQ_SESSION_TTL"),
        (StoreSettings, {"key_prefix": "a b"}, "STATEHQ_KEY_PREFIX"),
        (ServiceSettings, {"workers": 0}, "STATEHQ_WORKERS"),
        (WhatsAppSettings, {"graph_url": "ftp://x"}, "WHATSAPP_GRAPH_URL"),
        (TelegramSettings, {"bot_token": "no-colon"}, "TELEGRAM_BOT_TOKEN"),
        (TelegramSettings, {"api_url": "ftp://x"}, "TELEGRAM_API_URL"),
        (BotSettings, {"backend_url": "nope"}, "STATEHQ_BACKEND_URL"),
    ],
)
def test_a_layer_checks_values_given_in_code(
    layer: type, changes: dict[str, Any], variable: str
) -> None:
    with pytest.raises(ConfigError, match=variable):
        layer(**changes)


def test_a_layer_refuses_a_setting_it_does_not_have() -> None:
    with pytest.raises(ConfigError, match=r"unknown setting.*for StoreSettings: admin_token"):
        StoreSettings().override(admin_token="x")
    with pytest.raises(ConfigError, match="whatsapp_app_secret"):
        StateStore.open("redis://127.0.0.1:1", whatsapp_app_secret="x")
    assert StoreSettings(data_dir="/tmp/x").data_dir == Path("/tmp/x")  # type: ignore[arg-type]


@pytest.mark.parametrize("layer", LAYERS)
def test_a_layer_built_alone_has_the_same_defaults_as_its_share_of_settings(layer: type) -> None:
    # The layers repeat their fields' defaults; this keeps the two from drifting apart.
    assert layer() == layer.of(Settings())  # type: ignore[attr-defined]
