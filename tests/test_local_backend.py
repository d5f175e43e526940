"""The local backend beyond the contract suite: several processes on one store, quotas under concurrent
writer processes, the bounded sweep, map growth up to STATE_LOCAL_MAX_BYTES, a writer killed with
SIGKILL, sealing by filesystem, zero-copy frames and their lifetime, fork safety, and gunicorn.

Other processes are started with ``subprocess`` running small scripts (:func:`run`), so each one is
a fresh interpreter that opens the store on its own, as a gunicorn or Celery worker would.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests

from dash_state.backends import Item, Pointer, create_backend
from dash_state.backends.local import LocalBackend
from dash_state.backends.local.paths import default_path, in_memory
from dash_state.config import build_config
from dash_state.errors import ConfigError, QuotaExceeded
from dash_state.core.keys import Keys
from dash_state.core.seal import Seal
from dash_state.core.values import freeze
from services import gunicorn

SECRET = b"local backend test secret"
TESTS = Path(__file__).parent
PRELUDE = f"""
import json, os, sys, time
import numpy as np, pandas as pd
from dash_state.backends import Item, Pointer
from dash_state.backends.local import LocalBackend
from dash_state.errors import QuotaExceeded
from dash_state.core.keys import Keys
from dash_state.core.seal import Seal
from dash_state.core.values import freeze
def backend(path, **options):
    return LocalBackend(Seal(Keys(({SECRET!r},))), path, **options)
"""


def run(script: str, timeout: float = 120) -> object:
    """Run ``script`` in a fresh interpreter; it prints one JSON line as its answer."""
    done = subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(script)], capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def local(path, **options) -> LocalBackend:
    return LocalBackend(Seal(Keys((SECRET,))), str(path), **options)


@pytest.fixture
def shm():
    """A directory of its own under /dev/shm (tmpfs), removed afterwards."""
    path = Path(f"/dev/shm/dash-state-test-{uuid.uuid4().hex[:10]}")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def made():
    backends = []

    def factory(path, **options):
        backends.append(local(path, **options))
        return backends[-1]

    yield factory
    for backend in backends:
        backend.close()


def frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"n": np.arange(rows, dtype="int64"), "x": rng.random(rows),
                         "t": pd.date_range("2024-01-01", periods=rows, freq="s")})


def value_files(backend: LocalBackend) -> list[str]:
    return sorted(os.listdir(backend.values_dir))


# -- several processes, one store ---------------------------------------------------------------------
def test_processes_on_one_host_read_each_others_writes(made, tmp_path):
    path = tmp_path / "store"
    here = made(path)
    here.set_many("alice", [Item("parent" + "p" * 16, freeze(frame(50_000)), 60)],
                  [Pointer("latest.s", "parent" + "p" * 16, 60)])
    script = f"""
        b = backend({str(path)!r})
        got = b.get("alice", "parent" + "p" * 16).thaw()
        b.set_many("alice", [Item("child{{}}".format(os.getpid()).ljust(22, "c")[:22], freeze({{"pid": os.getpid()}}), 60)])
        print(json.dumps([int(got["n"].sum()), b.pointer("alice", "latest.s"), os.getpid()]))
    """
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda _: run(script), range(3)))
    for total, pointer, pid in answers:
        assert total == sum(range(50_000)) and pointer == "parent" + "p" * 16
        key = f"child{pid}".ljust(22, "c")[:22]
        assert here.get("alice", key).thaw() == {"pid": pid}
    assert len({pid for _, _, pid in answers}) == 3
    assert sorted(k for k, _, _ in here.usage("alice")) == sorted(
        ["parent" + "p" * 16] + [f"child{pid}".ljust(22, "c")[:22] for _, _, pid in answers])


def test_a_quota_holds_across_concurrent_writer_processes(made, tmp_path):
    """Four processes write for one user at once; the quota check is part of LMDB's host-wide write
    transaction, so together they store exactly what fits, never more."""
    path = tmp_path / "store"
    probe = made(path)
    size = len(probe.seal.dump("k" * 22, freeze("v" * 20_000)))
    quota = 13 * size + size // 2
    script = f"""
        b = backend({str(path)!r})
        stored = 0
        for i in range(10):
            try:
                b.set_many("bob", [Item("{{:06d}}{{:016d}}".format(os.getpid() % 10**6, i), freeze("v" * 20_000), 60)],
                           quota={quota})
                stored += 1
            except QuotaExceeded:
                pass
        print(json.dumps(stored))
    """
    with ThreadPoolExecutor(4) as pool:
        stored = list(pool.map(lambda _: run(script), range(4)))
    assert sum(stored) == 13
    usage = probe.usage("bob")
    assert len(usage) == 13 and sum(s for _, s, _ in usage) <= quota


# -- expiry --------------------------------------------------------------------------------------------
class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_ttl_touch_and_a_sweep_of_bounded_work_per_write(made, tmp_path):
    clock = Clock()
    backend = made(tmp_path / "store", clock=clock, file_threshold=1024, sweep_limit=100)
    big = freeze("b" * 5000)  # above the file threshold: each value has a file
    backend.set_many("u", [Item(f"{i:022d}", big, 10) for i in range(250)])
    backend.set_many("u", [Item("kept" + "k" * 18, big, 10)])
    assert len(value_files(backend)) == 251
    clock.now += 5
    assert backend.touch("u", "kept" + "k" * 18, 10) is True
    clock.now += 6  # the 250 expired, the touched one lives
    assert backend.get("u", f"{0:022d}") is None and not backend.alive("u", f"{1:022d}")
    assert backend.touch("u", f"{2:022d}", 60) is False  # an expired value stays expired
    assert backend.get("u", "kept" + "k" * 18).thaw() == "b" * 5000
    assert backend.stats()["entries"] == 251  # reads never sweep

    swept = []
    for _ in range(3):
        backend.set_many("w", [Item(f"w{len(swept)}".ljust(22, "w"), freeze("small"), 60)])
        swept.append(backend.stats()["swept"])
    assert swept == [100, 200, 250]  # at most sweep_limit per write
    assert len(value_files(backend)) == 1  # their files went with them
    assert backend.stats()["file_bytes"] == backend.usage("u")[0][1]
    assert [k for k, _, _ in backend.usage("u")] == ["kept" + "k" * 18]


# -- size limits ---------------------------------------------------------------------------------------
def test_the_map_grows_across_processes_then_refuses_with_413_naming_the_setting(made, tmp_path):
    path = tmp_path / "store"
    backend = made(path, max_bytes=4 << 20, initial_map=256 << 10)
    value = freeze("m" * 30_000)  # inline: below the file threshold
    written = 0
    with pytest.raises(QuotaExceeded, match="STATE_LOCAL_MAX_BYTES") as info:
        for i in range(1000):
            backend.set_many("u", [Item(f"{i:022d}", value, 60)])
            written += 1
    assert f"{4 << 20:,}" in str(info.value) and str(path) in str(info.value)
    stats = backend.stats()
    assert stats["map_growths"] >= 3 and 2 << 20 < stats["map_size"] <= 4 << 20 and 50 < written < 140
    assert all(backend.get("u", f"{i:022d}").thaw() == "m" * 30_000 for i in range(written))
    # another process opens the grown store with a smaller map and reads everything
    script = f"""
        b = backend({str(path)!r}, max_bytes={4 << 20}, initial_map={256 << 10})
        print(json.dumps(sum(b.get("u", "{{:022d}}".format(i)).thaw() == "m" * 30_000 for i in range({written}))))
    """
    assert run(script) == written
    assert backend.delete_user("u") == written  # a full store can always be emptied
    backend.set_many("u", [Item("again".ljust(22, "a"), value, 60)])
    assert backend.get("u", "again".ljust(22, "a")).thaw() == "m" * 30_000


def test_value_files_count_against_the_limit_too(made, shm):
    backend = made(shm, max_bytes=4 << 20, initial_map=256 << 10)
    big = freeze(np.zeros(100_000))  # 800 kB in a file
    with pytest.raises(QuotaExceeded, match="STATE_LOCAL_MAX_BYTES"):
        for i in range(10):
            backend.set_many("u", [Item(f"{i:022d}", big, 60)])
    assert i == 4  # 256 kB of map and four files fit in 4 MiB
    assert len(value_files(backend)) == 4 and backend.stats()["file_bytes"] < 4 << 20
    assert backend.usage("u")[0][1] > 800_000


def test_a_config_error_for_a_directory_of_another_kind(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="not a directory"):
        local(tmp_path / "file")
    with pytest.raises(ConfigError, match="persistent filesystem"):
        LocalBackend(None, str(tmp_path / "store"))
    with pytest.raises(ConfigError, match="set STATE_LOCAL_PATH"):  # no SECRET_KEY-derived default without keys
        create_backend("local", build_config(({"STATE_BACKEND": "local"}, "test")), None)
    with pytest.raises(ConfigError, match="STATE_LOCAL_MAX_BYTES"):
        build_config(({"STATE_BACKEND": "local", "STATE_LOCAL_MAX_BYTES": 100}, "test"))


# -- a writer killed mid-write -------------------------------------------------------------------------
def test_a_writer_killed_with_sigkill_mid_write_leaves_the_store_readable(tmp_path, shm):
    """A process writes large values in a loop and is killed with SIGKILL; another process then reads
    every value the first one reported committed, writes again, and finds no abandoned file left."""
    writer = subprocess.Popen([sys.executable, "-c", PRELUDE + textwrap.dedent(f"""
        b = backend({str(shm)!r}, values_per_store=100000)  # keep every value: all are checked
        for i in range(100000):
            b.set_many("u", [Item("{{:022d}}".format(i), freeze(np.full(400_000, i, dtype="int64")), 600),
                             Item("s{{:021d}}".format(i), freeze({{"i": i}}), 600)], [Pointer("latest.x", "{{:022d}}".format(i), 600)])
            print(i, flush=True)
    """)], stdout=subprocess.PIPE, text=True)
    committed = []
    try:
        while len(committed) < 12:
            line = writer.stdout.readline()
            assert line, "the writer stopped on its own"
            committed.append(int(line))
        time.sleep(0.05)  # most of a write is the 3.2 MB file: that is where the kill lands
        writer.send_signal(signal.SIGKILL)
        assert writer.wait(timeout=30) == -signal.SIGKILL
    finally:
        writer.kill()
        writer.stdout.close()
    answer = run(f"""
        b = backend({str(shm)!r}, values_per_store=100000)
        ok = [int(b.get("u", "{{:022d}}".format(i)).thaw()[-1]) == i and b.get("u", "s{{:021d}}".format(i)).thaw() == {{"i": i}}
              for i in {committed!r}]
        latest = b.pointer("u", "latest.x")
        b.set_many("u", [Item("after".ljust(22, "a"), freeze(np.arange(300_000)), 600)])
        after = int(b.get("u", "after".ljust(22, "a")).thaw().sum())
        files = os.listdir(b.values_dir)
        live = [k for k, _, _ in b.usage("u") if not k.startswith("s")]
        print(json.dumps([all(ok), latest, after, len(files), len(live), [f for f in files if f.endswith(".part")]]))
    """)
    all_ok, latest, after, files, live, parts = answer
    assert all_ok and after == sum(range(300_000))
    assert int(latest) >= committed[-1]  # the pointer names the last committed write (or one after it)
    assert parts == [] and files == live  # the killed write's file was reclaimed: no orphan


# -- sealing by filesystem ----------------------------------------------------------------------------
MARKER = "PLAINTEXT-MARKER-7f3a"


def _everything_stored(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.rglob("*") if p.is_file())


def test_values_are_sealed_on_a_disk_and_plain_on_tmpfs(made, tmp_path, shm):
    assert not in_memory(str(tmp_path)) and in_memory(str(shm.parent))
    for path in (tmp_path / "store", shm):
        backend = made(path)
        backend.set_many("u", [Item("small".ljust(22, "s"), freeze({"note": MARKER}), 60),
                               Item("large".ljust(22, "l"), freeze({"note": MARKER, "pad": "p" * 100_000}), 60)])
        assert backend.get("u", "large".ljust(22, "l")).thaw()["note"] == MARKER
        assert len(value_files(backend)) == 1
    stored_on_disk, stored_in_memory = _everything_stored(tmp_path / "store"), _everything_stored(shm)
    assert MARKER.encode() not in stored_on_disk
    assert stored_in_memory.count(MARKER.encode()) == 2
    assert made(tmp_path / "store").sealed and not made(shm).sealed


def test_the_default_path_is_per_app_private_and_in_shared_memory(tmp_path):
    seal_a, seal_b = Seal(Keys((b"app a",))), Seal(Keys((b"app b",)))
    first = default_path(seal_a, "dash-state:")
    assert first == default_path(Seal(Keys((b"app a",))), "dash-state:")  # every worker of one app
    assert first != default_path(seal_b, "dash-state:") and first != default_path(seal_a, "other:")
    assert first.startswith("/dev/shm/dash-state-")
    config = build_config(({"STATE_BACKEND": "local", "STATE_LOCAL_PATH": str(tmp_path / "cfg")}, "test"))
    backend = create_backend("local", config, seal_a)
    try:
        assert backend.path == str(tmp_path / "cfg") and backend.sealed
        assert os.stat(backend.path).st_mode & 0o777 == 0o700
        assert backend.stats()["max_bytes"] == 1 << 30
    finally:
        backend.close()


# -- zero-copy frames ---------------------------------------------------------------------------------
def _mapped_file(address: int) -> str | None:
    """The file mapped at ``address`` in this process, from /proc/self/maps."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if start <= address < end:
                return " ".join(fields[5:]) or None
    return None


def test_a_frame_read_from_tmpfs_maps_the_stored_file_and_each_reader_keeps_its_own_changes(made, shm):
    backend = made(shm)
    stored = frame(1_000_000)
    backend.set_many("u", [Item("f" * 22, freeze(stored), 60)])
    name, = value_files(backend)
    on_disk = (shm / "values" / name).read_bytes()

    first = backend.get("u", "f" * 22).thaw()
    for column in ("n", "x", "t"):
        array = first[column].array._ndarray if column == "t" else first[column].to_numpy()
        assert _mapped_file(array.ctypes.data) == str(shm / "values" / name)  # in place, not copied
    first.loc[0, "n"] = -1
    first["x"] *= 2
    first.iloc[1, 2] = pd.Timestamp("1999-01-01")
    second = backend.get("u", "f" * 22).thaw()
    pd.testing.assert_frame_equal(second, stored)  # another reader never sees the first one's changes
    assert first.loc[0, "n"] == -1 and first.iloc[1, 2] == pd.Timestamp("1999-01-01")
    assert (shm / "values" / name).read_bytes() == on_disk  # nor does the stored value


def test_a_frame_sealed_on_disk_is_a_private_copy_that_may_be_modified(made, tmp_path):
    backend = made(tmp_path / "store")
    stored = frame(100_000)
    backend.set_many("u", [Item("f" * 22, freeze(stored), 60)])
    first = backend.get("u", "f" * 22).thaw()
    mapped = _mapped_file(first["n"].to_numpy().ctypes.data)  # decrypted into this process's memory
    assert mapped is None or "/values/" not in mapped
    first.loc[0, "n"] = -1
    pd.testing.assert_frame_equal(backend.get("u", "f" * 22).thaw(), stored)


def test_a_frame_stays_valid_after_another_process_deletes_its_value(made, shm):
    backend = made(shm)
    backend.set_many("u", [Item("f" * 22, freeze(frame(500_000)), 60)])
    held = backend.get("u", "f" * 22).thaw()
    name, = value_files(backend)
    assert run(f"""
        b = backend({str(shm)!r})
        print(json.dumps(b.delete("u", "f" * 22)))
    """) is True
    assert value_files(backend) == [] and backend.get("u", "f" * 22) is None  # the file is gone
    assert _mapped_file(held["x"].to_numpy().ctypes.data) == str(shm / "values" / name) + " (deleted)"
    assert int(held["n"].sum()) == sum(range(500_000))  # the mapping outlives the file
    held.loc[5, "n"] = 0
    assert int(held["n"].sum()) == sum(range(500_000)) - 5


# -- fork ---------------------------------------------------------------------------------------------
def test_a_store_opened_before_fork_works_in_the_child_and_the_parent(made, shm):
    backend = made(shm)
    backend.set_many("u", [Item("parent".ljust(22, "p"), freeze(frame(100_000)), 60)])
    assert int(backend.get("u", "parent".ljust(22, "p")).thaw()["n"].sum()) == sum(range(100_000))
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the parent's LMDB handle must not be used here
        try:
            got = int(backend.get("u", "parent".ljust(22, "p")).thaw()["n"].sum())
            backend.set_many("u", [Item("child".ljust(22, "c"), freeze(frame(100_000, seed=1)), 60)])
            ok = got == sum(range(100_000)) and backend.get("u", "child".ljust(22, "c")) is not None
            os.write(write, b"ok" if ok else b"no")
        finally:
            os._exit(0)
    os.close(write)
    assert os.read(read, 2) == b"ok"
    os.close(read)
    os.waitpid(pid, 0)
    pd.testing.assert_frame_equal(backend.get("u", "child".ljust(22, "c")).thaw(), frame(100_000, seed=1))
    backend.set_many("u", [Item("later".ljust(22, "l"), freeze("still writable"), 60)])
    assert backend.get("u", "later".ljust(22, "l")).thaw() == "still writable"


# -- an app under gunicorn ----------------------------------------------------------------------------
EXPECTED_SUM = sum(range(1000))


@pytest.fixture
def served(tmp_path, shm):
    env = {"STATE_BACKEND": "local", "STATE_LOCAL_PATH": str(shm), "MULTIWORKER_SECRET": "shared-secret-for-the-local-test",
           "STATE_VALUES_PER_STORE": "20"}  # the test reads all 20 values of one store again
    with gunicorn("multiworker_app:server", tmp_path, 2, env) as url:
        yield url


def _callback(session, url, output, input_id, value):
    prop = "children" if input_id == "who" else "data"
    body = {"output": output, "outputs": {"id": output.split(".")[0], "property": output.split(".")[1]},
            "inputs": [{"id": input_id, "property": prop, "value": value}], "state": [],
            "changedPropIds": [f"{input_id}.{prop}"]}
    response = session.post(f"{url}/_dash-update-component", json=body, timeout=30)
    assert response.status_code == 200, response.text[:500]
    return response.json()["response"][output.split(".")[0]][output.split(".")[1]], response.headers["X-Worker-Pid"]


def test_two_gunicorn_workers_read_every_write(served):
    """20 write-then-read round trips with one cookie jar, each request on a new connection: whichever
    worker answers, the value is there (the memory backend answers None about half the time)."""
    session = requests.Session()
    session.headers["Connection"] = "close"
    session.get(f"{served}/_dash-layout", timeout=30)
    pids, seen, tokens = set(), [], []
    for i in range(20):
        token, pid = _callback(session, served, "s.data", "who", f"user{i}")
        out, other = _callback(session, served, "out.children", "s", token)
        tokens.append(token)
        seen.append(out)
        pids |= {pid, other}

    def read_again(token):  # concurrent requests, so both workers surely answer some
        mine = requests.Session()
        mine.headers["Connection"] = "close"
        mine.cookies.update(session.cookies)
        return _callback(mine, served, "out.children", "s", token)

    with ThreadPoolExecutor(8) as pool:
        again = list(pool.map(read_again, tokens * 3))
    assert seen == [f"user{i}:{EXPECTED_SUM}" for i in range(20)]
    assert [out for out, _ in again] == [f"user{i}:{EXPECTED_SUM}" for i in range(20)] * 3
    assert len(pids | {pid for _, pid in again}) == 2, "requests reached only one worker"
