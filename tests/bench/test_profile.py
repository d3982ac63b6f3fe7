"""The py-spy summary: samples land under their process, part and phase."""

from __future__ import annotations

from pathlib import Path

from statehq.bench import profile

WORKER = 'process 10:"statehq serve";process 11:"python -m statehq.service.processes"'
WEBHOOK = 'process 10:"python -m statehq.cli.main serve --port 1"'
TURN = "Worker._turn (statehq/service/worker.py:300)"
RECORDING = [
    f"{WORKER};{TURN};StateStore.commit (statehq/store/sync.py:90);"
    "_HiredisParser.read_from_socket (redis/_parsers/hiredis.py:192) 6\n",
    f"{WORKER};{TURN};Headquarters.process (statehq/flows/engine.py:120);"
    "dumps (json/__init__.py:231) 3\n",
    f"{WORKER};{TURN};Worker._deliver_all (statehq/service/worker.py:400);"
    "_Connection.write (statehq/channels/http11.py:378) 1\n",
    f"{WEBHOOK};run (asyncio/runners.py:118) 5\n",
    "not a recording line\n",
]


def test_samples_are_counted_by_process_part_and_phase() -> None:
    profiles = profile.summarise(RECORDING)
    worker = profiles["worker"]
    assert worker.samples == 10
    assert worker.parts[profile.SOCKET_PART] == 7
    assert worker.parts["JSON"] == 3
    assert worker.phases["commit state + replies (one script)"] == 6
    assert worker.phases["flow engine turn"] == 3
    assert worker.phases["send replies to the Graph API"] == 1
    assert profiles["webhook (statehq serve)"].parts["asyncio, uvicorn, starlette"] == 5


def test_render_gives_shares_of_each_process() -> None:
    text = profile.render(profile.summarise(RECORDING))
    assert "| worker | 10 | 67% |" in text
    assert f"| {profile.SOCKET_PART} | 70.0% |" in text
    assert "| commit state + replies (one script) | 60.0% |" in text


def test_the_command_line_reports_a_missing_or_empty_recording(tmp_path: Path) -> None:
    assert profile.main([str(tmp_path / "absent.txt")]) == 1
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert profile.main([str(empty)]) == 1
    assert profile.main([]) == 2
    recording = tmp_path / "rec.txt"
    recording.write_text("".join(RECORDING))
    assert profile.main([str(recording)]) == 0
