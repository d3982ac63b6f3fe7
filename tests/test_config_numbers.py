"""The WhatsApp numbers file: what it accepts, and the precise error for what it does not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from statehq import Settings
from statehq.channels.registry import channels
from statehq.config_numbers import load_numbers
from statehq.errors import ConfigError
from statehq.flows import Template
from statehq.service.bots import check_bots

GOOD = """
[reengage]
name = "hello_again"
language = "en_US"

[[number]]
phone_number_id = "106540352242923"
access_token_env = "STATEHQ_TEST_NUMBER_TOKEN"
bot = "statehq.credex.app:credex_bot"

[[number]]
phone_number_id = 106540352242924
access_token = "inline-token"
app_secret = "its-own-secret"

[number.reengage]
name = "hola_de_nuevo"
language = "es"
parameters = ["statehq"]
"""


def _file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "numbers.toml"
    path.write_text(text)
    return str(path)


def test_a_good_file_is_read_with_secrets_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STATEHQ_TEST_NUMBER_TOKEN", "token-from-env")
    path = _file(tmp_path, GOOD)
    settings = Settings.from_env({"STATEHQ_WHATSAPP_NUMBERS": path})
    assert settings.whatsapp_numbers == str(Path(path).resolve())
    first, second = load_numbers(path).numbers
    assert (first.phone_number_id, first.access_token, first.bot) == (
        "106540352242923",
        "token-from-env",
        "statehq.credex.app:credex_bot",
    )
    assert (second.phone_number_id, second.bot, second.app_secret) == (
        "106540352242924",
        None,
        "its-own-secret",
    )
    assert second.reengage == Template("hola_de_nuevo", "es", ("statehq",))
    assert load_numbers(path).reengage == Template("hello_again", "en_US")
    assert "token-from-env" not in repr(load_numbers(path))  # secrets never in a repr


NUMBER = '[[number]]\nphone_number_id = "106540352242923"\n'


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (NUMBER + 'acess_token = "x"\n', "number 1 (106540352242923): unknown key 'acess_token'"),
        (NUMBER, "number 1 (106540352242923) has no access token"),
        (
            NUMBER + 'access_token = "x"\nbot = "not a path"\n',
            "bot must be an import path like mybot.app:create_bot",
        ),
        (
            NUMBER + 'access_token = "x"\n' + NUMBER + 'access_token = "y"\n',
            "phone_number_id 106540352242923 is listed twice",
        ),
        (
            NUMBER + 'access_token_env = "STATEHQ_TEST_NOT_SET"\n',
            "access_token_env names STATEHQ_TEST_NOT_SET, which is not set",
        ),
        (
            NUMBER + 'access_token = "x"\naccess_token_env = "X"\n',
            "give access_token or access_token_env, not both",
        ),
        ('[[number]]\nphone_number_id = "+1 555"\n', "number 1 needs phone_number_id"),
        ("[[number]\n", "not valid TOML"),
        ("numbers = []\n", "the file: unknown key 'numbers'"),
        ('[reengage]\nname = "Hello Again"\n', "[reengage]: a template name is"),
        # A string is not a list of values: "statehq" is not ("s", "t", "a", ...).
        ('[reengage]\nname = "hi"\nparameters = "statehq"\n', "parameters are a sequence"),
        ('[reengage]\nname = "hi"\nparameters = 7\n', "parameters are a sequence"),
        ("[reengage]\nlanguage = 'en'\n", "[reengage]: a template name is"),
        # A token with a line break could never be sent (every worker would fail at start).
        (NUMBER + 'access_token = "EAAG\\nxyz"\n', "access_token must be one word"),
        (NUMBER + 'access_token = "EAAG xyz"\n', "access_token must be one word"),
        (NUMBER + 'access_token = "x"\napp_secret = "ab\\tcd"\n', "app_secret must be one word"),
        # Longer than any id Meta gives: its members' identities could not be stored.
        ('[[number]]\nphone_number_id = "' + "9" * 40 + '"\n', "number 1 needs phone_number_id"),
        ("[[number]]\nphone_number_id = true\n", "number 1 needs phone_number_id"),
    ],
)
def test_a_bad_file_is_refused_with_what_to_fix(tmp_path: Path, text: str, said: str) -> None:
    path = _file(tmp_path, text)
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"STATEHQ_WHATSAPP_NUMBERS": path})
    assert said in str(refused.value)
    assert str(refused.value).startswith(f"STATEHQ_WHATSAPP_NUMBERS={path!r}")


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the file"):
        Settings.from_env({"STATEHQ_WHATSAPP_NUMBERS": str(tmp_path / "nowhere.toml")})


def test_the_default_number_listed_again_is_refused(tmp_path: Path) -> None:
    path = _file(tmp_path, NUMBER + 'access_token = "x"\n')
    settings = Settings(whatsapp_phone_number_id="106540352242923", whatsapp_numbers=path)
    with pytest.raises(ConfigError, match="is WHATSAPP_PHONE_NUMBER_ID, the default number"):
        channels(settings)


def test_a_bot_that_cannot_be_loaded_is_refused_naming_its_number(tmp_path: Path) -> None:
    path = _file(tmp_path, NUMBER + 'access_token = "x"\nbot = "statehq_no_such:bot"\n')
    with pytest.raises(ConfigError) as refused:
        check_bots(Settings(whatsapp_numbers=path))
    assert str(refused.value).startswith(
        "STATEHQ_WHATSAPP_NUMBERS: number 106540352242923: bot 'statehq_no_such:bot': "
        "there is no module 'statehq_no_such'"
    )


def test_serve_refuses_a_bad_file_before_it_starts(tmp_path: Path) -> None:
    path = _file(tmp_path, NUMBER + 'acess_token = "x"\n')
    done = subprocess.run(
        [sys.executable, "-m", "statehq.cli.main", "serve"],
        env={"STATEHQ_WHATSAPP_NUMBERS": path, "STATEHQ_DATA_DIR": str(tmp_path / "data")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "unknown key 'acess_token'" in done.stderr
    assert "serving" not in done.stdout


def test_an_empty_file_or_one_with_only_reengage_is_fine(tmp_path: Path) -> None:
    assert load_numbers(_file(tmp_path, "")).numbers == ()
    only = load_numbers(_file(tmp_path, '[reengage]\nname = "hello_again"\n'))
    assert (only.numbers, only.reengage) == ((), Template("hello_again"))


def test_a_secret_variable_that_holds_a_line_break_is_refused(tmp_path: Path) -> None:
    path = _file(tmp_path, NUMBER + 'access_token_env = "TOKEN"\n')
    with pytest.raises(ConfigError, match="access_token must be one word"):
        load_numbers(path, {"TOKEN": "EAAG\nxyz"})
    assert load_numbers(path, {"TOKEN": " EAAGxyz\n"}).numbers[0].access_token == "EAAGxyz"
