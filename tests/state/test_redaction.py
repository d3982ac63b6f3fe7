"""No byte of a backend token leaks into logs, audit, errors, metrics or CLI output."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import REGISTRY, generate_latest

from statehq import StateStore
from statehq.errors import InvalidInput, StateError
from statehq.redact import REDACTED, get_logger, redact_text, redact_value
from statehq.state import StateManager
from tests.state.stages import make_jwt, make_stages

PHONE = "whatsapp:263771234567"


def leaks(token: str, text: str) -> list[str]:
    """The parts of ``token`` (whole, payload, signature) found in ``text``."""
    _, payload, signature = token.split(".")
    return [part for part in (token, payload, signature) if part in text]


def test_redact_helpers() -> None:
    token = make_jwt(2_000_000_000)
    assert redact_text(f"sent {token} now") == f"sent {REDACTED} now"
    assert redact_text("Authorization: Bearer abc.def-ghi") == f"Authorization: Bearer {REDACTED}"
    assert redact_value({"jwt_token": "opaque", "a": [f"x {token}"]}) == {
        "jwt_token": REDACTED,
        "a": [f"x {REDACTED}"],
    }


def test_a_whole_session_never_leaks_the_token(
    manager: StateManager, caplog: pytest.LogCaptureFixture
) -> None:
    token = make_jwt(4_000_000_000, secret_tag="very-secret")
    caplog.set_level(logging.DEBUG)
    session = manager.open(PHONE)
    session.transition("AUTH")
    session.authenticate("m1", token, profile={"name": "Ann"})
    session.transition("MENU")
    session.start_flow("offer", "amount")
    errors: list[str] = []
    for attempt in (
        lambda: session.update_state({"flow_data": {"data": {"auth": token}}}),
        lambda: session.update_state({"jwt_token": 5}),
        lambda: session.update_state({"profile": {"token": f"Bearer {token}"}}, reason=token),
        lambda: session.set_jwt(token + "x.y"),
    ):
        with pytest.raises(StateError) as caught:
            attempt()
        errors.append(str(caught.value))
    session.set_jwt(token)
    session.record_validation(False, f"pasted {token}")
    session.end_flow(reason=f"done with {token}")
    get_logger("statehq.test").warning("backend answered with %s", token)

    audit = manager.audit.read("m1", limit=1000) + manager.audit.read(PHONE, limit=1000)
    audit_text = json.dumps([e.as_dict() for e in audit])
    assert any(e.event == "token.stored" for e in audit)
    assert "jwt_token" in audit_text  # the field is named as changed ...
    tail_text = repr(manager.audit.tail(limit=1000))
    metrics_text = generate_latest(REGISTRY).decode()
    log_text = "\n".join(r.getMessage() for r in caplog.records)
    assert "backend answered with [redacted]" in log_text
    for name, text in [
        ("audit", audit_text),
        ("tail", tail_text),
        ("errors", "\n".join(errors)),
        ("logs", log_text),
        ("metrics", metrics_text),
    ]:
        assert leaks(token, text) == [], name


def test_cli_output_never_shows_the_token(server_url: str, prefix: str, tmp_path: Path) -> None:
    token = make_jwt(4_000_000_000, secret_tag="cli-secret")
    with StateStore.open(url=server_url, key_prefix=prefix) as store:
        manager = StateManager(store, stages=make_stages())
        session = manager.open(PHONE)
        session.transition("AUTH")
        session.authenticate("m1", token)
        assert store.get("member:m1").doc["jwt_token"] == token  # type: ignore[union-attr]
    env = {**os.environ, "STATEHQ_KEY_PREFIX": prefix, "STATEHQ_REDIS_URL": server_url}
    outputs = []
    for args in (
        ["state", "show", PHONE],
        ["state", "show", "m1"],
        ["state", "history", "m1"],
        ["audit", "m1"],
        ["audit", "--tail"],
        ["state", "update", "m1", json.dumps({"profile": {"t": token}})],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "statehq.cli.main", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        outputs.append(done.stdout + done.stderr)
    assert '"jwt_token": "[redacted]"' in outputs[0]
    assert "holds a token" in outputs[-1]
    for text in outputs:
        assert leaks(token, text) == [], text


def test_invalid_input_messages_do_not_echo_secret_values(manager: StateManager) -> None:
    session = manager.open(PHONE)
    with pytest.raises(InvalidInput) as caught:
        session.set_jwt("opaque-secret-value")
    assert "opaque-secret-value" not in str(caught.value)
