"""``dash-state stats / inspect / erase / export / import / copy / gc`` against real backends, through
click's runner (and once through the installed console script): what an operator sees and what
stays in the backends, including hostile backup files."""
from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pandas as pd
import pytest
from apps import new_app
from click.testing import CliRunner
from dash import html
from services import database_url, redis_url

import dash_state
from dash_state import ServerStore
from dash_state.cli import dsx
from dash_state.cli.main import load_commands

pytestmark = pytest.mark.service
SECRET = "cli-test-secret"


def backend_config(kind: str, tmp_path: Path) -> dict:
    run = uuid.uuid4().hex[:8]
    if kind == "redis":
        return {"STATE_BACKEND": "redis", "STATE_REDIS_URL": redis_url(), "STATE_KEY_PREFIX": f"cli-{run}:"}
    if kind == "postgres":
        return {"STATE_BACKEND": "database", "STATE_DATABASE_URL": database_url(), "STATE_DATABASE_TABLE": f"cli_{run}"}
    if kind == "sqlite":
        return {"STATE_BACKEND": "database", "STATE_DATABASE_URL": f"sqlite:///{tmp_path}/cli-{run}.db"}
    return {"STATE_BACKEND": "local", "STATE_LOCAL_PATH": str(tmp_path / f"local-{run}")}


def make_app(config: dict, secret: str = SECRET):
    app = new_app(SECRET_KEY=secret, **config)
    app.layout = html.Div([ServerStore(id="filters"), ServerStore(id="frame"), ServerStore(id="prefs", scope="user")])
    return app


def fill(app) -> dict:
    """Two users' values, a 100k-row frame included; returns what each user should read back."""
    frame = pd.DataFrame({"n": range(100_000), "x": [i * 0.5 for i in range(100_000)]})
    expected = {"alice": {"filters": {"region": "north"}, "frame": frame}, "bob": {"filters": {"region": "south"}}}
    with app.server.app_context():
        for user, stores in expected.items():
            with dash_state.user_context(user):
                for store_id, value in stores.items():
                    dash_state.set_store(store_id, value)
    return expected


def read_back(app, expected: dict) -> None:
    with app.server.app_context():
        for user, stores in expected.items():
            with dash_state.user_context(user):
                for store_id, value in stores.items():
                    got = dash_state.get_store(store_id)
                    if isinstance(value, pd.DataFrame):
                        pd.testing.assert_frame_equal(got, value)
                    else:
                        assert got == value, (user, store_id, got)


def run(app, *args: str, input: str | None = None):
    return CliRunner().invoke(load_commands(), list(args), obj={"app": app}, input=input, catch_exceptions=False)


def drop(config: dict) -> None:
    if "STATE_DATABASE_TABLE" in config:
        import sqlalchemy

        engine = sqlalchemy.create_engine(config["STATE_DATABASE_URL"])
        with engine.begin() as conn:
            for table in (config["STATE_DATABASE_TABLE"], config["STATE_DATABASE_TABLE"] + "_meta"):
                conn.execute(sqlalchemy.text(f'DROP TABLE IF EXISTS "{table}"'))
        engine.dispose()


@pytest.mark.parametrize("source, target", [("redis", "postgres"), ("postgres", "local"), ("local", "redis"),
                                            ("sqlite", "redis")])
def test_export_then_import_into_another_backend(source, target, tmp_path):
    source_config, target_config = backend_config(source, tmp_path), backend_config(target, tmp_path)
    try:
        old = make_app(source_config)
        expected = fill(old)
        backup = tmp_path / "backup.dsx"
        done = run(old, "export", "-o", str(backup))
        assert done.exit_code == 0, done.output
        assert "exported" in done.output and backup.exists()
        new = make_app(target_config)
        done = run(new, "import", str(backup))
        assert done.exit_code == 0, done.output
        read_back(new, expected)
    finally:
        drop(source_config)
        drop(target_config)


@pytest.fixture
def exported(tmp_path):
    config = backend_config("redis", tmp_path)
    app = make_app(config)
    expected = fill(app)
    backup = tmp_path / "backup.dsx"
    assert run(app, "export", "-o", str(backup)).exit_code == 0
    return app, expected, backup


def imported_into_fresh(tmp_path, backup, *args, secret=SECRET):
    app = make_app(backend_config("local", tmp_path), secret=secret)
    return app, run(app, "import", str(backup), *args)


def count(app) -> int:
    manager = dash_state.get_state_manager(app)
    return sum(1 for e in manager.backend(manager.config["STATE_BACKEND"]).inventory() if e.kind != "history")


def test_hostile_files_are_refused_with_their_position_and_nothing_is_imported(exported, tmp_path):
    _, _, backup = exported
    data = backup.read_bytes()
    at = data.rindex(b'"sha256":"') + len(b'"sha256":"')  # the first digit of the file's checksum
    cases = {
        "truncated": (data[: len(data) // 2], "truncated"),
        "not json": (data.replace(b'{"type":"value"', b'{"type":value"', 1), "not a JSON line"),
        "wrong type": (re.sub(rb'"bytes":(\d+)', rb'"bytes":"\1"', data, count=1), "'bytes' must be a whole number"),
        "unknown entry": (data.replace(b'{"type":"pointer"', b'{"type":"script"', 1), "unknown entry type 'script'"),
        "version": (data.replace(b'"version":1', b'"version":9', 1), "version 9"),
        "checksum": (data[:at] + (b"0" if data[at:at + 1] != b"0" else b"1") + data[at + 1:], "checksum"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / f"{name.replace(' ', '-')}.dsx"
        path.write_bytes(content)
        app, done = imported_into_fresh(tmp_path / name.replace(" ", "-"), path)
        assert done.exit_code == 1, (name, done.output)
        assert message in done.output and "nothing was imported" in done.output, (name, done.output)
        assert count(app) == 0, name


def test_a_huge_entry_is_refused_before_it_is_read(tmp_path):
    app = make_app(backend_config("local", tmp_path))
    buffer = io.BytesIO()
    dsx.Writer(buffer, dash_state.get_state_manager(app).keys)  # a valid header for this app
    line = json.dumps({"type": "value", "user": "u.x", "key": "A" * 22, "bytes": 1 << 30, "expires_at": 2e9})
    path = tmp_path / "huge.dsx"
    path.write_bytes(buffer.getvalue() + line.encode() + b"\n" + b"x" * 1000)  # 1 GiB announced, 1 KB present
    done = run(app, "import", str(path))
    assert done.exit_code == 1 and "1,073,741,824 bytes" in done.output and "without reading it" in done.output
    assert count(app) == 0


def test_another_secret_key_is_refused_unless_the_old_one_is_given(exported, tmp_path, monkeypatch):
    _, expected, backup = exported
    app, done = imported_into_fresh(tmp_path / "a", backup, secret="another-secret")
    assert done.exit_code == 1 and "another SECRET_KEY" in done.output and count(app) == 0
    monkeypatch.setenv("OLD_DASH_SECRET", SECRET)
    app, done = imported_into_fresh(tmp_path / "b", backup, "--old-secret-env", "OLD_DASH_SECRET", secret="another-secret")
    assert done.exit_code == 0, done.output
    read_back(app, expected)  # re-sealed with the new key: readable by the app that has only that key


def test_a_damaged_value_imports_nothing_or_the_rest_with_partial(exported, tmp_path):
    _, expected, backup = exported
    entries = list(dsx.read(open(backup, "rb"), None, 1 << 30))
    damaged = tmp_path / "damaged.dsx"
    manager = dash_state.get_state_manager(make_app(backend_config("local", tmp_path / "k")))
    with open(damaged, "wb") as out:
        writer = dsx.Writer(out, manager.keys)
        damaged_one = False
        for entry in entries:
            if isinstance(entry, dsx.Value):
                data = bytearray(entry.data)
                if not damaged_one:
                    data[-1] ^= 1  # one flipped bit in the first value: its seal no longer verifies
                    damaged_one = True
                writer.value(entry.user, entry.key, bytes(data), entry.expires_at)
            else:
                writer.pointer(entry.user, entry.name, entry.target, entry.expires_at)
        writer.close()
    app, done = imported_into_fresh(tmp_path / "c", damaged)
    first = next(i for i, e in enumerate(entries, 1) if isinstance(e, dsx.Value))
    assert done.exit_code == 1 and f"entry {first} " in done.output and count(app) == 0, done.output
    app, done = imported_into_fresh(tmp_path / "d", damaged, "--partial")
    assert done.exit_code == 0 and f"skipped entry {first} " in done.output, done.output
    assert count(app) == len(entries) - 1


@pytest.mark.parametrize("kind", ["redis", "postgres", "sqlite", "local"])
def test_stats_inspect_and_erase(kind, tmp_path):
    config = backend_config(kind, tmp_path)
    name = config["STATE_BACKEND"]
    try:
        check_stats_inspect_and_erase(make_app(config), name)
    finally:
        drop(config)


def check_stats_inspect_and_erase(app, name):
    fill(app)
    done = run(app, "stats", "--json")
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)[name]
    assert report["users"] == 2 and report["entries"] == 3 and report["bytes"] > 1_000_000  # the frame
    assert report["stores"]["filters"]["users"] == 2 and report["stores"]["frame"]["users"] == 1
    done = run(app, "inspect", "--user", "alice", "--json")
    rows = {row["store"]: row for row in json.loads(done.output)}
    assert rows["frame"]["type"] == "DataFrame" and rows["filters"]["type"] == "json"
    assert "value" not in rows["frame"]
    shown = run(app, "inspect", "--user", "alice", "--store", "frame", "--show")
    assert "DataFrame 100,000 x 2" in shown.output
    manager = dash_state.get_state_manager(app)
    held = list(manager.backend(name).inventory(dash_state.identity.user_namespace("alice")))
    assert sorted(e.kind for e in held if e.kind != "history") == ["pointer", "pointer", "value", "value"]
    done = run(app, "erase", "--user", "alice", "--yes")
    assert done.exit_code == 0 and "erased" in done.output, done.output
    assert list(manager.backend(name).inventory(dash_state.identity.user_namespace("alice"))) == []
    with app.server.app_context(), dash_state.user_context("alice"):
        assert dash_state.get_store("filters") is None
    with app.server.app_context(), dash_state.user_context("bob"):
        assert dash_state.get_store("filters") == {"region": "south"}


def test_copy_from_redis_to_postgres_resumes_and_verifies(tmp_path):
    source, target = backend_config("redis", tmp_path), backend_config("postgres", tmp_path)
    try:
        app = make_app(source)
        expected = fill(app)
        done = run(app, "copy", "--from", source["STATE_REDIS_URL"], "--to", target["STATE_DATABASE_URL"],
                   "--to-table", target["STATE_DATABASE_TABLE"], "--state", str(tmp_path / "copy.json"))
        assert done.exit_code == 0, done.output
        assert "verified" in done.output and "of 2 users" in done.output
        moved = make_app(target)
        read_back(moved, expected)
    finally:
        drop(target)


def test_the_console_script_exit_codes(tmp_path):
    script = Path(sys.executable).with_name("dash-state")
    assert subprocess.run([script, "--help"], capture_output=True).returncode == 0
    assert subprocess.run([script, "no-such-command"], capture_output=True).returncode == 2
    failed = subprocess.run([script, "--app", str(tmp_path / "missing.py"), "stats"], capture_output=True, text=True)
    assert failed.returncode == 1 and "no such file" in failed.stderr


def test_an_unreachable_backend_fails_with_its_url_masked(tmp_path):
    app = make_app({"STATE_BACKEND": "redis", "STATE_REDIS_URL": "redis://:hunter2@127.0.0.1:1/0", "STATE_RETRIES": 0})
    done = CliRunner().invoke(load_commands(), ["stats"], obj={"app": app})
    assert done.exit_code == 1
    assert "redis://:***@127.0.0.1:1/0" in done.output and "hunter2" not in done.output


def test_gc_through_the_command_line(tmp_path):
    import time

    config = backend_config("redis", tmp_path)
    app = make_app(config)
    with app.server.app_context(), dash_state.user_context("carol"):
        dash_state.set_store("filters", {"kept": True})  # the default TTL: stays
        dash_state.set_store("frame", [1, 2, 3], ttl=1)  # gone in a second
    time.sleep(1.5)
    dry = run(app, "gc", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    counted = json.loads(dry.output)["redis"]
    assert counted["expired"] >= 1 and counted["dry_run"] is True
    done = run(app, "gc", "--json")
    removed = json.loads(done.output)["redis"]
    assert removed["expired"] == counted["expired"] and removed["users"] == 1
    assert json.loads(run(app, "gc", "--dry-run", "--json").output)["redis"]["expired"] == 0  # nothing left to do
    with app.server.app_context(), dash_state.user_context("carol"):
        assert dash_state.get_store("filters") == {"kept": True}
    assert "removed" in run(app, "gc").output


def test_copy_while_the_app_keeps_writing_then_again_brings_the_rest(tmp_path):
    import threading

    source, target = backend_config("redis", tmp_path), backend_config("postgres", tmp_path)
    try:
        app = make_app(source)
        fill(app)
        stop, written = threading.Event(), []

        def keep_writing():
            with app.server.app_context():
                n = 0
                while not stop.is_set() and n < 400:
                    with dash_state.user_context(f"writer{n % 20}"):
                        dash_state.set_store("filters", {"n": n})
                    written.append(n)
                    n += 1

        writer = threading.Thread(target=keep_writing)
        writer.start()
        state = str(tmp_path / "copy.json")
        to = ["--from", source["STATE_REDIS_URL"], "--to", target["STATE_DATABASE_URL"], "--to-table",
              target["STATE_DATABASE_TABLE"], "--state", state]
        first = run(app, "copy", *to)
        stop.set()
        writer.join(timeout=60)
        assert first.exit_code == 0, first.output
        again = run(app, "copy", *to, "--again")
        assert again.exit_code == 0 and "verified" in again.output, again.output
        moved = make_app(target)
        with app.server.app_context():
            latest = {}
            for n in written:
                latest[f"writer{n % 20}"] = n
        with moved.server.app_context():
            for user, n in latest.items():
                with dash_state.user_context(user):
                    assert dash_state.get_store("filters") == {"n": n}, user
    finally:
        drop(target)


def test_an_interrupted_copy_resumes_after_the_users_it_finished(tmp_path):
    source, target = backend_config("redis", tmp_path), backend_config("sqlite", tmp_path)
    app = make_app(source)
    fill(app)
    state = tmp_path / "copy.json"
    job = f"{source['STATE_REDIS_URL']} -> {target['STATE_DATABASE_URL']}"
    alice = dash_state.identity.user_namespace("alice")
    state.write_text(json.dumps({"job": job, "done": [alice]}))  # as if it stopped after alice
    done = run(app, "copy", "--from", source["STATE_REDIS_URL"], "--to", target["STATE_DATABASE_URL"],
               "--state", str(state))
    assert done.exit_code == 0 and "of 1 users" in done.output, done.output  # only bob was left
    moved = make_app(target)
    with moved.server.app_context():
        with dash_state.user_context("bob"):
            assert dash_state.get_store("filters") == {"region": "south"}
        with dash_state.user_context("alice"):
            assert dash_state.get_store("filters") is None  # done before the interruption: not copied again


def test_inspect_show_is_recorded_in_the_audit_log(tmp_path):
    audit = tmp_path / "audit.log"
    app = make_app({**backend_config("sqlite", tmp_path), "STATE_AUDIT_LOG": str(audit)})
    fill(app)
    done = run(app, "inspect", "--user", "bob", "--show")
    assert done.exit_code == 0 and "south" in done.output
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    read = [line for line in lines if line["event"] == "cli_inspect"]
    assert read and read[-1]["show"] is True and read[-1]["user"] == dash_state.identity.user_namespace("bob")


def test_the_command_line_leaves_logging_as_it_found_it(tmp_path):
    """Run in-process (as these tests do), a command must not leave dash_state's loggers quiet: the tests
    after it read dash-state's log lines."""
    import logging

    before = logging.getLogger("dash_state").level, logging.getLogger("dash_state.audit").level
    app = make_app(backend_config("sqlite", tmp_path))
    fill(app)
    assert run(app, "stats").exit_code == 0
    assert (logging.getLogger("dash_state").level, logging.getLogger("dash_state.audit").level) == before
