"""Settings come from STATEHQ_* variables and bad values are named in the error."""

from pathlib import Path

import pytest

from statehq import ConfigError, Settings
from statehq.config import VARIABLES


def test_defaults() -> None:
    s = Settings.from_env({})
    assert (s.redis_url, s.data_dir, s.appendfsync) == (None, Path(".statehq"), "everysec")
    assert (s.session_ttl, s.history_length, s.dedup_ttl) == (300.0, 10, 604800.0)


def test_every_variable_is_read(tmp_path: Path) -> None:
    numbers = tmp_path / "numbers.toml"
    numbers.write_text("# no more numbers yet\n")
    env = {
        "STATEHQ_REDIS_URL": "redis://localhost:6379/0",
        "STATEHQ_REDIS_CA_FILE": __file__,
        "STATEHQ_SHARDS": "4",
        "STATEHQ_DATA_DIR": "/tmp/x",
        "STATEHQ_APPENDFSYNC": "always",
        "STATEHQ_MAXMEMORY": "1gb",
        "STATEHQ_KEEP_SERVER": "yes",
        "STATEHQ_SESSION_TTL": "60",
        "STATEHQ_EXPIRED_MEMORY": "3600",
        "STATEHQ_HISTORY_LENGTH": "5",
        "STATEHQ_DEDUP_TTL": "100",
        "STATEHQ_MAX_DOCUMENT_BYTES": "1000",
        "STATEHQ_KEY_PREFIX": "bot1",
        "STATEHQ_MUTATE_DEADLINE": "5",
        "STATEHQ_AUDIT_RETENTION": "86400",
        "STATEHQ_AUDIT_MAX_ENTRIES": "50",
        "STATEHQ_AUDIT_TAIL_LENGTH": "500",
        "STATEHQ_JWT_REFRESH_MARGIN": "30",
        "STATEHQ_BOT": " mybot.app:create_bot ",
        "STATEHQ_CHANNELS": "chat.web:WebChannel, tg:Telegram",
        "STATEHQ_BACKEND_URL": "https://ledger.example/api/",
        "STATEHQ_BACKEND_API_KEY": " k1 ",
        "STATEHQ_WELCOME_GRANT": "25.5 zwg",
        "STATEHQ_HOST": "0.0.0.0",
        "STATEHQ_PORT": "9000",
        "STATEHQ_WORKERS": "8",
        "STATEHQ_LEASE_TTL": "10",
        "STATEHQ_MAX_MESSAGE_AGE": "3600",
        "STATEHQ_MAX_ATTEMPTS": "3",
        "STATEHQ_STORE_TIMEOUT": "0.5",
        "STATEHQ_RECONCILE_INTERVAL": "2",
        "STATEHQ_ACCESS_LOG": "1",
        "STATEHQ_ADMIN_TOKEN": " admin-s3cret ",
        "STATEHQ_MARK_READ": "on",
        "WHATSAPP_VERIFY_TOKEN": "verify-me",
        "WHATSAPP_APP_SECRET": "app-s3cret",
        "WHATSAPP_ACCESS_TOKEN": "EAAG-s3cret",
        "WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
        "WHATSAPP_GRAPH_URL": "http://127.0.0.1:9999/v23.0/",
        "STATEHQ_WHATSAPP_NUMBERS": str(numbers),
        "TELEGRAM_BOT_TOKEN": " 7000000001:AAH-telegram-s3cret-token-0123 ",
        "TELEGRAM_SECRET_TOKEN": "tg-webhook_s3cret",
        "TELEGRAM_API_URL": "http://127.0.0.1:8081/",
    }
    assert set(env) == {v.name for v in VARIABLES}
    s = Settings.from_env(env)
    assert s.redis_url == "redis://localhost:6379/0"
    assert (s.redis_ca_file, s.shards) == (__file__, 4)
    assert (s.audit_retention, s.audit_max_entries, s.audit_tail_length) == (86400.0, 50, 500)
    assert s.jwt_refresh_margin == 30.0
    assert (s.backend_url, s.backend_api_key, s.welcome_grant) == (
        "https://ledger.example/api",
        "k1",
        "25.5 ZWG",
    )
    assert "k1" not in repr(s)  # the API key never reaches a log line through a repr
    assert (s.host, s.port, s.workers, s.lease_ttl, s.max_message_age) == (
        "0.0.0.0",
        9000,
        8,
        10.0,
        3600.0,
    )
    assert (s.max_attempts, s.store_timeout, s.reconcile_interval) == (3, 0.5, 2.0)
    assert s.bot == "mybot.app:create_bot"
    assert s.channels == "chat.web:WebChannel,tg:Telegram"
    assert (s.admin_token, s.mark_read) == ("admin-s3cret", True)
    assert s.access_log is True
    assert s.service.access_log is True
    assert (s.whatsapp_verify_token, s.whatsapp_app_secret, s.whatsapp_access_token) == (
        "verify-me",
        "app-s3cret",
        "EAAG-s3cret",
    )
    assert s.whatsapp_phone_number_id == "106540352242922"
    assert s.whatsapp_graph_url == "http://127.0.0.1:9999/v23.0"
    assert s.whatsapp.numbers == str(numbers.resolve())
    assert (s.telegram.bot_token, s.telegram.secret_token, s.telegram.api_url) == (
        "7000000001:AAH-telegram-s3cret-token-0123",
        "tg-webhook_s3cret",
        "http://127.0.0.1:8081",
    )
    for secret in ("admin-s3cret", "verify-me", "app-s3cret", "EAAG-s3cret", "s3cret-token"):
        assert secret not in repr(s)
    assert "tg-webhook_s3cret" not in repr(s) + repr(s.telegram)
    # What a worker process is started with reproduces every setting.
    assert Settings.from_env(s.to_env()) == s
    assert Settings.from_env(Settings().to_env()) == Settings()
    assert (s.data_dir, s.appendfsync, s.maxmemory, s.keep_server) == (
        Path("/tmp/x"),
        "always",
        "1gb",
        True,
    )
    assert (s.session_ttl, s.expired_memory, s.history_length) == (60.0, 3600.0, 5)
    assert (s.dedup_ttl, s.max_document_bytes, s.key_prefix, s.mutate_deadline) == (
        100.0,
        1000,
        "bot1",
        5.0,
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("STATEHQ_REDIS_URL", "http://x", "unknown scheme 'http'; use redis://"),
        ("STATEHQ_REDIS_URL", "localhost:6379", "must be a URL such as redis://host:6379"),
        ("STATEHQ_REDIS_URL", "redis+cluster://", "needs at least one host:port"),
        ("STATEHQ_REDIS_URL", "redis+cluster://h:1,h", "'h' is not host:port"),
        ("STATEHQ_REDIS_URL", "redis+cluster://h:1/0", "a Cluster has one database"),
        ("STATEHQ_REDIS_URL", "redis+sentinel://h:26379", "needs the master's service name"),
        ("STATEHQ_REDIS_URL", "redis+sentinel://h:26379/m/x", "database must be a number"),
        ("STATEHQ_REDIS_CA_FILE", "/no/such/ca.pem", "no file at '/no/such/ca.pem'"),
        ("STATEHQ_SHARDS", "-1", "from 0 \\(auto\\) to 1024"),
        ("STATEHQ_SHARDS", "5000", "from 0 \\(auto\\) to 1024"),
        ("STATEHQ_APPENDFSYNC", "sometimes", "'everysec' or 'always'"),
        ("STATEHQ_BACKEND_URL", "ledger.local", "http:// or https:// URL"),
        ("STATEHQ_BOT", "mybot.app", "import path like mybot.app:create_bot"),
        ("STATEHQ_BOT", "my-bot:create", "import path like mybot.app:create_bot"),
        ("STATEHQ_WELCOME_GRANT", "lots", "like '100 USD', or 0"),
        ("STATEHQ_WELCOME_GRANT", "100", "like '100 USD', or 0"),
        ("STATEHQ_SESSION_TTL", "five", "number of seconds"),
        ("STATEHQ_SESSION_TTL", "-1", "greater than 0"),
        ("STATEHQ_HISTORY_LENGTH", "0", "at least 1"),
        ("STATEHQ_MAXMEMORY", "lots", "size like 256mb"),
        ("STATEHQ_KEEP_SERVER", "maybe", "true or false"),
        ("STATEHQ_KEY_PREFIX", "has space", "letters, digits"),
        ("STATEHQ_PORT", "http", "port number"),
        ("STATEHQ_PORT", "70000", "between 0 and 65535"),
        ("STATEHQ_HOST", "a host", "host name or IP"),
        ("STATEHQ_WORKERS", "0", "at least 1"),
        ("STATEHQ_MARK_READ", "sometimes", "true or false"),
        ("WHATSAPP_PHONE_NUMBER_ID", "+1 555", "numeric id"),
        ("WHATSAPP_GRAPH_URL", "graph.facebook.com", "http:// or https:// URL"),
        ("TELEGRAM_BOT_TOKEN", "AAH-no-bot-id-0123456789012345", "the token @BotFather gave"),
        ("TELEGRAM_BOT_TOKEN", "123:abc/../../x0123456789012345", "the token @BotFather gave"),
        ("TELEGRAM_SECRET_TOKEN", "has space", "1-256 characters of A-Z"),
        ("TELEGRAM_SECRET_TOKEN", "x" * 257, "1-256 characters of A-Z"),
        ("TELEGRAM_API_URL", "api.telegram.org", "http:// or https:// URL"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        Settings.from_env({name: value})
    assert name in str(caught.value)


def test_unknown_override_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown setting"):
        Settings().override(sesion_ttl=5)
