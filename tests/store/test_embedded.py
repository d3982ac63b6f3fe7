"""The embedded Valkey: sharing, stale cleanup, shutdown, persistence, kill -9, memory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from statehq import Settings, StateStore, StoreFull, StoreUnavailable
from statehq.store.embedded import EmbeddedValkey, _process_alive


def server_of(data_dir: Path) -> EmbeddedValkey:
    return EmbeddedValkey(Settings(data_dir=data_dir))


def run_child(code: str, data_dir: Path, *extra: str) -> subprocess.Popen[str]:
    """A separate Python process using statehq on ``data_dir``."""
    script = textwrap.dedent(code)
    env = {**os.environ, "STATEHQ_DATA_DIR": str(data_dir)}
    env.pop("STATEHQ_REDIS_URL", None)
    return subprocess.Popen(
        [sys.executable, "-c", script, *extra],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_gone(pid: int, timeout: float = 10) -> bool:
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        if not _process_alive(pid):
            return True
        time.sleep(0.02)
    return False


def test_start_writes_the_documented_config(data_dir: Path) -> None:
    with StateStore.open(data_dir=data_dir, appendfsync="always", maxmemory="64mb") as store:
        info = store._client.config_get("*")
        assert info["appendonly"] == "yes"
        assert info["appendfsync"] == "always"
        assert info["maxmemory-policy"] == "noeviction"
        assert int(info["maxmemory"]) == 64 * 1024**2
        assert info["port"] == "0"  # no TCP listener: only our unix socket
    assert (data_dir / "appendonlydir").is_dir()


def test_stops_when_the_last_owner_closes(data_dir: Path) -> None:
    first = StateStore.open(data_dir=data_dir)
    second = StateStore.open(data_dir=data_dir)
    pid = server_of(data_dir).pid()
    assert pid is not None
    first.close()
    assert second.update("m", {"still": "up"}).version == 1
    second.close()
    assert wait_gone(pid)
    assert not (data_dir / "valkey.sock").exists()


def test_second_process_reuses_the_running_server(data_dir: Path) -> None:
    with StateStore.open(data_dir=data_dir) as store:
        pid = server_of(data_dir).pid()
        child = run_child(
            """
            from statehq import StateStore
            from statehq.store.embedded import EmbeddedValkey, _process_alive
            with StateStore.open() as store:
                store.update("shared", {"from": "child"})
                print(EmbeddedValkey(store.settings).pid())
            """,
            data_dir,
        )
        with child:
            out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
        assert int(out) == pid  # the child attached; it did not start a second server
        snap = store.get("shared")
        assert snap is not None
        assert snap.doc["from"] == "child"
        assert server_of(data_dir).is_running()  # the child's exit did not stop it


def test_crashed_owner_does_not_keep_the_server_forever(data_dir: Path) -> None:
    child = run_child(
        """
        import sys
        from statehq import StateStore
        store = StateStore.open()
        store.update("m", {"a": 1})
        print("ready", flush=True)
        sys.stdin.read()
        """,
        data_dir,
    )
    with child:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        child.send_signal(signal.SIGKILL)  # dies without closing: its owner file stays behind
        child.wait()
    pid = server_of(data_dir).pid()
    assert pid is not None
    with StateStore.open(data_dir=data_dir) as store:
        assert server_of(data_dir).pid() == pid  # the orphaned server is reused
        assert store.get("m") is not None
    assert wait_gone(pid)  # we were the last live owner: the crashed one no longer counts


def test_keep_server_leaves_it_running(data_dir: Path) -> None:
    with StateStore.open(data_dir=data_dir, keep_server=True) as store:
        store.update("m", {"a": 1})
    server = server_of(data_dir)
    assert server.is_running()
    server.stop()
    assert not server.is_running()


def test_data_survives_a_clean_restart(data_dir: Path) -> None:
    with StateStore.open(data_dir=data_dir) as store:
        store.update("m", {"list": [], "big": 2**64 + 1})
        first_pid = server_of(data_dir).pid()
    with StateStore.open(data_dir=data_dir) as store:
        assert server_of(data_dir).pid() != first_pid
        snap = store.get("m")
        assert snap is not None
        assert snap.doc["list"] == []
        assert snap.doc["big"] == 2**64 + 1


def test_kill_9_with_appendfsync_always_loses_nothing_acknowledged(data_dir: Path) -> None:
    with StateStore.open(data_dir=data_dir, appendfsync="always") as store:
        for i in range(200):
            store.update("m", {"n": i, "log": {str(i): i}})
        pid = server_of(data_dir).pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        assert wait_gone(pid)
        assert (data_dir / "valkey.pid").exists()  # stale files left by the crash
        with pytest.raises(StoreUnavailable, match="cannot reach"):
            store.get("m")
    with StateStore.open(data_dir=data_dir, appendfsync="always") as store:
        assert server_of(data_dir).pid() != pid
        snap = store.get("m")
        assert snap is not None
        assert snap.version == 200
        assert snap.doc["n"] == 199
        assert len(snap.doc["log"]) == 200


def test_stale_pid_and_socket_are_cleaned_up(data_dir: Path) -> None:
    data_dir.mkdir(parents=True)
    (data_dir / "valkey.pid").write_text("999999\n")  # no such process
    (data_dir / "valkey.sock").write_text("")  # a dead socket file
    with StateStore.open(data_dir=data_dir) as store:
        assert store.update("m", {"a": 1}).version == 1
        assert server_of(data_dir).pid() != 999999


def test_scripts_are_reloaded_after_a_server_restart(data_dir: Path) -> None:
    with StateStore.open(data_dir=data_dir) as store:
        store.update("m", {"a": 1})
        server_of(data_dir).stop()  # the script cache goes with the process
        restarted = server_of(data_dir)
        restarted.acquire()
        try:
            assert store.update("m", {"a": 2}).version == 2  # NOSCRIPT -> reload -> retry
        finally:
            restarted.release()


def test_long_data_dir_gets_a_short_socket_path(tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*(["a-rather-long-directory-name"] * 5))
    server = server_of(deep)
    assert len(str(server.socket_path)) <= 100
    assert server_of(deep).socket_path == server.socket_path  # every process agrees
    with StateStore.open(data_dir=deep) as store:
        assert store.update("m", {"a": 1}).version == 1


def test_full_memory_refuses_writes_whole_and_keeps_reads(data_dir: Path) -> None:
    with StateStore.open(data_dir=data_dir) as store:
        store.update("kept", {"profile": {"name": "Ann"}})
        used = int(store._client.info("memory")["used_memory"])
        store._client.config_set("maxmemory", used + 256 * 1024)
        filler = "x" * 50_000
        refused = None
        for i in range(100):
            try:
                store.update(f"filler-{i}", {"blob": filler})
            except StoreFull as full:
                refused = (i, str(full))
                break
        assert refused is not None, "the memory limit was never reached"
        assert "memory limit" in refused[1]
        assert store.get(f"filler-{refused[0]}") is None  # the refused write left nothing
        with pytest.raises(StoreFull):
            store.update("kept", {"profile": {"name": "Bob"}})
        snap = store.get("kept")
        assert snap is not None
        assert (snap.version, snap.doc["profile"]["name"]) == (1, "Ann")
        assert store._client.info("stats")["evicted_keys"] == 0


def test_unreachable_url_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match="cannot reach"):
        StateStore.open(url=f"unix://{tmp_path}/nothing.sock")
