"""``statehq doctor`` checks every number of the numbers file, each with its own token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from statehq.testing.fake_graph import FakeGraph
from tests.cli.test_doctor import NUMBER, TOKEN, doctor, here, line_of, whatsapp

__all__ = ["here"]  # a fixture

SECOND, SECOND_TOKEN = "1122334455668", "EAAG-second-token-never-printed"
THIRD, THIRD_TOKEN = "1122334455669", "EAAG-third-token-never-printed"


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    """The Graph API knowing three numbers, each with its own token."""
    with FakeGraph(access_token=TOKEN, phone_number_ids={NUMBER}) as fake:
        fake.add_number(SECOND, SECOND_TOKEN)
        fake.add_number(THIRD, THIRD_TOKEN)
        yield fake


def test_every_number_is_looked_up_with_its_own_token_and_its_bot_made(
    here: Path, graph: FakeGraph
) -> None:
    numbers = here / "numbers.toml"
    numbers.write_text(
        f"""
[[number]]
phone_number_id = "{SECOND}"
access_token_env = "DOCTOR_SECOND_TOKEN"

[[number]]
phone_number_id = "{THIRD}"
access_token = "EAAG-wrong-third-token"
bot = "statehq_no_such_bot:make"
"""
    )
    env = {
        **whatsapp(graph),
        "STATEHQ_WHATSAPP_NUMBERS": str(numbers),
        "DOCTOR_SECOND_TOKEN": SECOND_TOKEN,
    }
    done = doctor(here, env)
    assert done.returncode == 1
    assert line_of(done.stdout, f"WhatsApp number {SECOND}").startswith(
        f"ok       WhatsApp number {SECOND}  is +1 555-010-0199 (statehq test number)"
    )
    third = line_of(done.stdout, f"WhatsApp number {THIRD}")
    assert "Graph API error 190 (HTTP 401)" in third
    assert "fix: the access token is invalid or expired: set the number's access_token" in third
    assert "in STATEHQ_WHATSAPP_NUMBERS" in third
    made = line_of(done.stdout, f"bot of {THIRD}")
    assert made.startswith(f"FAILED   bot of {THIRD}")
    assert "there is no module 'statehq_no_such_bot'" in made
    assert f"fix: correct number {THIRD}'s bot in STATEHQ_WHATSAPP_NUMBERS" in made
    assert "STATEHQ_BOT" not in made  # the default's variable is not this bot's
    for secret in (TOKEN, SECOND_TOKEN, THIRD_TOKEN, "EAAG-wrong-third-token"):
        assert secret not in done.stdout + done.stderr
    received = {(r.phone_number_id, r.authorization) for r in graph.received()}
    assert received == set()  # lookups are GETs: nothing was sent to anyone


def test_the_default_number_listed_in_the_file_fails_the_numbers_check(
    here: Path, graph: FakeGraph
) -> None:
    numbers = here / "numbers.toml"
    numbers.write_text(f'[[number]]\nphone_number_id = "{NUMBER}"\naccess_token = "x"\n')
    done = doctor(here, {**whatsapp(graph), "STATEHQ_WHATSAPP_NUMBERS": str(numbers)})
    assert done.returncode == 1
    checked = line_of(done.stdout, "WhatsApp numbers")
    assert f"phone_number_id {NUMBER} is WHATSAPP_PHONE_NUMBER_ID" in checked


def test_a_numbers_file_alone_needs_no_default_number(here: Path, graph: FakeGraph) -> None:
    # Every number in the file, each with its token and app secret: no WHATSAPP_* but
    # the verify token and the Graph URL. Nothing is missing; no default is a hint.
    numbers = here / "numbers.toml"
    numbers.write_text(
        f'[[number]]\nphone_number_id = "{SECOND}"\naccess_token = "{SECOND_TOKEN}"\n'
        f'app_secret = "second-secret"\n'
    )
    env = {
        "WHATSAPP_VERIFY_TOKEN": "doctor-verify",
        "WHATSAPP_GRAPH_URL": graph.url,
        "STATEHQ_WHATSAPP_NUMBERS": str(numbers),
    }
    done = doctor(here, env)
    variables = line_of(done.stdout, "WhatsApp variables")
    assert variables.startswith("ok       WhatsApp variables"), done.stdout
    assert "no default number" in variables
    assert "WHATSAPP_APP_SECRET" not in variables.splitlines()[0]
    graph_line = line_of(done.stdout, "WhatsApp Graph API")
    assert graph_line.startswith("skipped")
    assert "no default number" in graph_line
    assert line_of(done.stdout, f"WhatsApp number {SECOND}").startswith("ok")


def test_a_numbers_file_without_app_secrets_still_needs_the_default_secret(
    here: Path, graph: FakeGraph
) -> None:
    numbers = here / "numbers.toml"
    numbers.write_text(f'[[number]]\nphone_number_id = "{SECOND}"\naccess_token = "x"\n')
    env = {
        "WHATSAPP_VERIFY_TOKEN": "doctor-verify",
        "WHATSAPP_GRAPH_URL": graph.url,
        "STATEHQ_WHATSAPP_NUMBERS": str(numbers),
    }
    done = doctor(here, env)
    variables = line_of(done.stdout, "WhatsApp variables")
    assert variables.startswith("FAILED   WhatsApp variables")
    assert variables.split(None, 3)[3].startswith("WHATSAPP_APP_SECRET not set:")
    assert "WHATSAPP_ACCESS_TOKEN" not in variables.splitlines()[0]
