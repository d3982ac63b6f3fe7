"""An aiogram bot's users, operated with the ordinary ``statehq`` command.

The CLI loads whatever bot ``STATEHQ_BOT`` names (here the default credex bot), which
knows nothing of aiogram: its sessions must still show, list their history and roll
back, never be taken for damaged state and "recovered".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from aiogram.fsm.storage.base import StorageKey

from statehq.integrations.aiogram import StatehqStorage
from statehq.store.embedded import EmbeddedValkey


def statehq(url: str, prefix: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STATEHQ_")}
    env |= {"STATEHQ_KEY_PREFIX": prefix, "STATEHQ_DATA_DIR": str(tmp), "STATEHQ_OPERATOR": "t"}
    return subprocess.run(
        [sys.executable, "-m", "statehq.cli.main", "--url", url, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_history_and_rollback_work_from_the_command_line(
    embedded_server: EmbeddedValkey, tmp_path: Path
) -> None:
    prefix = f"t{uuid.uuid4().hex[:12]}"
    storage = StatehqStorage.from_url(embedded_server.url, key_prefix=prefix)
    key = StorageKey(bot_id=1, chat_id=77, user_id=77)
    try:
        await storage.set_state(key, "Form:name")  # v2 (v1: the session's start)
        await storage.update_data(key, {"name": "Ann"})  # v3
        await storage.set_state(key, "Form:age")  # v4
    finally:
        await storage.close()

    history = statehq(embedded_server.url, prefix, tmp_path, "state", "history", "telegram:77")
    assert history.returncode == 0, history.stderr
    lines = history.stdout.splitlines()
    assert [line.split()[0] for line in lines[1:]] == ["v4", "v3", "v2", "v1"]
    assert "aiogram/fsm" in lines[1]  # stage, flow/step: every aiogram version alike
    assert lines[1].endswith("changed: flow_data.data")
    rolled = statehq(
        embedded_server.url, prefix, tmp_path, "state", "rollback", "telegram:77", "3",
        "--reason", "back to the age question", "--yes",
    )  # fmt: skip
    assert rolled.returncode == 0, rolled.stderr
    assert "restored version 3" in rolled.stdout
    shown = statehq(embedded_server.url, prefix, tmp_path, "--json", "state", "show", "telegram:77")
    assert shown.returncode == 0, shown.stderr
    assert (
        "state.recovered"
        not in statehq(embedded_server.url, prefix, tmp_path, "audit", "telegram:77").stdout
    )

    storage = StatehqStorage.from_url(embedded_server.url, key_prefix=prefix)
    try:
        assert await storage.get_state(key) == "Form:name"
        assert await storage.get_data(key) == {"name": "Ann"}
    finally:
        await storage.close()
    assert json.loads(shown.stdout)  # the --json form parses
