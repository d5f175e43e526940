"""gunicorn with 4 workers on a shared backend: every write is readable from every worker, users stay
separate. Real HTTP sessions, requests spread over the workers by the kernel."""
from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from services import database_url, gunicorn, redis_url

TESTS = Path(__file__).parent
EXPECTED_SUM = sum(range(1000))


@pytest.fixture(params=["local", "redis", "postgres"])
def served(request, tmp_path):
    """``local`` is the default with no setting at all (no SECRET_KEY either): the app's workers share
    the host's key; the shared backends get a SECRET_KEY, as they require."""
    if request.param == "local":
        env = {}
    elif request.param == "redis":
        env = {"STATE_BACKEND": "redis", "STATE_REDIS_URL": redis_url(),
               "STATE_KEY_PREFIX": f"dash-state-mw-{uuid.uuid4().hex[:8]}:", "MULTIWORKER_SECRET": "shared-secret"}
    else:
        env = {"STATE_BACKEND": "database", "STATE_DATABASE_URL": database_url(),
               "STATE_DATABASE_TABLE": f"dash_state_mw_{uuid.uuid4().hex[:8]}", "MULTIWORKER_SECRET": "shared-secret"}
    try:
        with gunicorn("multiworker_app:server", tmp_path, 4, env) as url:
            yield url
    finally:
        if request.param == "postgres":
            import sqlalchemy

            engine = sqlalchemy.create_engine(env["STATE_DATABASE_URL"])
            with engine.begin() as conn:
                for table in (env["STATE_DATABASE_TABLE"], env["STATE_DATABASE_TABLE"] + "_meta"):
                    conn.execute(sqlalchemy.text(f'DROP TABLE IF EXISTS "{table}"'))
            engine.dispose()


def callback(session: requests.Session, url: str, output: str, input_id: str, value) -> tuple[object, str]:
    body = {"output": f"{output}", "outputs": {"id": output.split(".")[0], "property": output.split(".")[1]},
            "inputs": [{"id": input_id, "property": input_id == "who" and "children" or "data", "value": value}],
            "state": [], "changedPropIds": [f"{input_id}.{'children' if input_id == 'who' else 'data'}"]}
    response = session.post(f"{url}/_dash-update-component", json=body, timeout=30)
    assert response.status_code == 200, response.text[:500]
    prop = output.split(".")[1]
    return response.json()["response"][output.split(".")[0]][prop], response.headers["X-Worker-Pid"]


def user_journey(url: str, name: str) -> tuple[str, list[str], set[str]]:
    session = requests.Session()
    session.headers["Connection"] = "close"  # a new connection each time: any worker may answer
    session.get(f"{url}/_dash-layout", timeout=30)
    token, pid = callback(session, url, "s.data", "who", name)
    pids = {pid}
    seen = []
    for _ in range(12):
        out, pid = callback(session, url, "out.children", "s", token)
        seen.append(out)
        pids.add(pid)
    return token, seen, pids


def test_every_worker_reads_every_write_and_users_stay_separate(served):
    names = [f"user{i}" for i in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda n: user_journey(served, n), names))
    all_pids = set()
    for name, (token, seen, pids) in zip(names, results):
        assert token.startswith("dsr2.") and len(token) < 256
        assert seen == [f"{name}:{EXPECTED_SUM}"] * 12  # the same data from whichever worker answered
        all_pids |= pids
    assert len(all_pids) >= 3, f"requests reached only workers {all_pids}"
    # another user's reference is worth nothing, on every worker
    intruder = requests.Session()
    intruder.get(f"{served}/_dash-layout", timeout=30)
    stolen = results[0][0]
    for _ in range(6):
        out, _ = callback(intruder, served, "out.children", "s", stolen)
        assert out is None
