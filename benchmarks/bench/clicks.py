"""Clicks: the bytes a server keeps after one user writes one store many times in one tab (the tab
releasing each replaced reference), against one value's bytes, per backend, counted two ways."""
from __future__ import annotations

import time

from .apps import close_app, server_store_app, state_settings
from .budget import Clock
from .env import Env
from .messages import say, short_error
from .scenarios import DashScenario
from .sizes import Size
from .targets import CLICKS_BYTES_FACTOR


def storage_bytes(kind: str, app, env: Env, settings: dict, namespace: str) -> dict:
    """What the storage itself holds for this app, counted outside dash-state."""
    if kind == "memory":
        from dash_state import get_state_manager

        return {"memory backend bytes (all users)": get_state_manager(app).backend("memory").stats()["bytes"]}
    if kind == "redis":
        r = env.redis()
        keys = env.redis_keys(settings["STATE_KEY_PREFIX"])
        strings = sum(r.strlen(k) for k in keys if r.type(k) == b"string")
        memory = sum(int(r.memory_usage(k) or 0) for k in keys)
        return {"redis keys": len(keys), "redis STRLEN of string keys": strings,
                "redis MEMORY USAGE of the keys": memory}
    import sqlalchemy as sa

    engine = sa.create_engine(settings["STATE_DATABASE_URL"])
    table = settings.get("STATE_DATABASE_TABLE", "dash_state_values")
    try:
        with engine.connect() as conn:
            rows, total = conn.execute(sa.text(f'SELECT COUNT(*), COALESCE(SUM(LENGTH(value)), 0) FROM "{table}" '
                                               f'WHERE user_id = :u'), {"u": namespace}).one()
    finally:
        engine.dispose()
    return {"rows of the user": int(rows), "SUM(LENGTH(value)) of the user": int(total)}


def measure_clicks(size: Size, clicks: int, env: Env, clock: Clock) -> list[dict]:
    """``clicks`` round trips of one tab on each backend; dash-state's own count (``usage``) is checked
    against the storage's (``storage_bytes``)."""
    from dash_state import get_state_manager

    rows = []
    for kind in ("memory", "redis", "sqlite", "postgres"):
        reason = {"redis": env.redis_error, "postgres": env.postgres_error}.get(kind)
        if reason:
            rows.append({"backend": kind, "status": f"unavailable: {reason}"})
            continue
        if clock.over():
            rows.append({"backend": kind, "status": "not run: time budget"})
            continue
        app = None
        try:
            settings = state_settings(kind, env)
            app = server_store_app(size.value, settings)
            scenario = DashScenario(f"clicks_{kind}", kind, size.expected, app, server_store=True)
            manager = get_state_manager(app)
            backend_name = settings["STATE_BACKEND"]
            namespace = scenario.w.namespace()
            one = None
            started = time.perf_counter()
            for i in range(clicks):
                scenario.round_trip()
                scenario.after()
                if i == 0:
                    one = sum(b for _, b, _ in manager.backend(backend_name).usage(namespace))
            usage = manager.backend(backend_name).usage(namespace)
            total = sum(b for _, b, _ in usage)
            stats = manager.stats()
            cache = stats.get("read_cache") or {}
            rows.append({
                "backend": kind, "status": "ok", "clicks": clicks, "seconds": time.perf_counter() - started,
                "one_value_bytes": one, "values_kept": len(usage), "bytes_kept": total,
                "ratio": total / one if one else None, "limit": CLICKS_BYTES_FACTOR,
                "met": None if not one else total <= CLICKS_BYTES_FACTOR * one,
                "released": stats.get("released"), "read_cache_bytes": cache.get("bytes"),
                "storage": storage_bytes(kind, app, env, settings, namespace),
            })
            say(f"  clicks {kind}: {len(usage)} value(s), {total:,} bytes kept, one value {one:,} bytes")
        except Exception as exc:
            rows.append({"backend": kind, "status": f"failed: {short_error(exc)}"})
            say(f"  clicks {kind}: failed: {short_error(exc)}")
        finally:
            if app is not None:
                close_app(app)
    return rows
