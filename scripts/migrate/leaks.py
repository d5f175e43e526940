"""The leak check: with ServerStore no store data reaches the browser. Every store value the server
sent and every store the renderer or web storage holds must be a reference (or empty), and the app's
marker strings must appear in none of them."""
from __future__ import annotations

import json
import re

REFERENCE = re.compile(r"^dsr\d+\.")
STORE_TYPES = ("Store", "ServerStore")


def is_reference(value) -> bool:
    """A ServerStore reference (``dsr<version>.…``) or None."""
    return value is None or (isinstance(value, str) and bool(REFERENCE.match(value)))


DASH_INTERNAL_STORES = {"_pages_store"}  # dcc.Stores that Dash itself puts in the page (not the app's code)


def _id_key(cid) -> str:
    """A component id as the keys of a callback response spell it."""
    return json.dumps(cid, sort_keys=True, separators=(",", ":")) if isinstance(cid, dict) else str(cid)


def _walk_trees(obj, found: list, store_types: dict):
    """Collect (type, id, data) of every store component in a JSON tree, and learn each store's type."""
    if isinstance(obj, dict):
        if obj.get("type") in STORE_TYPES and isinstance(obj.get("props"), dict):
            props = obj["props"]
            store_types[_id_key(props.get("id"))] = obj["type"]
            if "data" in props:
                found.append((obj["type"], _id_key(props.get("id")), props["data"]))
        for v in obj.values():
            _walk_trees(v, found, store_types)
    elif isinstance(obj, list):
        for v in obj:
            _walk_trees(v, found, store_types)


def store_values_in_bodies(bodies: list, store_types: dict) -> list:
    """Every value a store component got from the server: initial ``data`` in component trees (layout,
    page layouts, trees returned by callbacks) and ``data`` outputs/side updates of callbacks, as
    (store type, id, value)."""
    found = []
    for endpoint, body in bodies:
        try:
            doc = json.loads(body)
        except ValueError:
            continue
        _walk_trees(doc, found, store_types)
        if endpoint == "/_dash-update-component" and isinstance(doc, dict):
            for part in (doc.get("response") or {}, doc.get("sideUpdate") or {}):
                for cid, props in part.items():
                    if isinstance(props, dict) and "data" in props and cid in store_types:
                        found.append((store_types[cid], cid, props["data"]))
    return found


def _held(snapshots: dict) -> set[str]:
    """Ids of ServerStores that dash-state keeps in the browser on purpose: mirrored because clientside
    callbacks use them (or rolled back to the client backend), as the index page's Dash config lists
    them. Pattern-matching wildcards are matched against the ids seen."""
    ids, patterns = set(), []
    for snap in snapshots.values():
        held = snap["audit"].get("held") or {}
        ids.update(held.get("ids") or [])
        patterns.extend(held.get("patterns") or [])
        if held.get("all"):
            ids.update(_id_key(json.loads(s["id"])) for s in snap["audit"]["stores"])
    for snap in snapshots.values():
        for s in snap["audit"]["stores"]:
            cid = json.loads(s["id"])
            if isinstance(cid, dict) and any(set(p) == set(cid) and all(isinstance(v, list) or cid.get(k) == v
                                                                         for k, v in p.items()) for p in patterns):
                ids.add(_id_key(cid))
    return ids


def leak_check(snapshots: dict, markers: list[str], migrated: bool) -> dict:
    """Problems (``migrated``: a ServerStore holding raw data, a dcc.Store left), notes and marker counts.
    A ServerStore the server keeps in the browser on purpose (mirrored) is a note, not a leak."""
    store_types: dict = {}
    for snap in snapshots.values():
        for s in snap["audit"]["stores"]:
            store_types[_id_key(json.loads(s["id"]))] = s["type"]
    held = _held(snapshots) if migrated else set()
    if held:
        notes_held = [f"ServerStore {cid!r} is held in the browser on purpose (mirrored for clientside callbacks, "
                      "or the client backend): its data there is no leak" for cid in sorted(held)]
    else:
        notes_held = []
    for snap in snapshots.values():  # first pass: learn the ids from every tree the server sent
        store_values_in_bodies(snap["stats"]["bodies"], store_types)
    problems, notes = [], list(notes_held)
    marker_hits = {m: {"store_values": 0, "raw_bodies": 0, "browser_storage": 0} for m in markers}
    server_values = 0
    for name, snap in snapshots.items():
        values = store_values_in_bodies(snap["stats"]["bodies"], store_types)
        server_values += len(values)
        for kind, cid, value in values:
            text = json.dumps(value, default=str)
            if cid not in DASH_INTERNAL_STORES and cid not in held:
                for m in markers:
                    marker_hits[m]["store_values"] += text.count(m)
            if migrated and kind == "ServerStore" and not is_reference(value) and cid not in held:
                problems.append(f"{name}: the server sent raw data to ServerStore {cid!r}: {text[:160]}")
        for s in snap["audit"]["stores"]:
            cid = _id_key(json.loads(s["id"]))
            if cid not in DASH_INTERNAL_STORES and cid not in held:
                for m in markers:
                    marker_hits[m]["store_values"] += s["json"].count(m)
            value = None if s["json"] in ("undefined", "null") else json.loads(s["json"])
            if migrated and s["type"] == "ServerStore" and not is_reference(value) and cid not in held:
                problems.append(f"{name}: ServerStore {cid!r} holds raw data in the browser: {s['json'][:160]}")
            if migrated and s["type"] == "Store":
                if cid in DASH_INTERNAL_STORES:
                    notes.append(f"dcc.Store {cid!r} is Dash's own (not in the app's code)")
                else:
                    problems.append(f"{name}: dcc.Store {cid!r} was not migrated (not written as `dcc.Store(`)")
        for item in snap["audit"]["storage"]:
            if item["key"] in held or item["key"].removesuffix("-timestamp") in held:
                continue
            for m in markers:
                marker_hits[m]["browser_storage"] += (item["value"] or "").count(m)
            if migrated and store_types.get(item["key"]) == "ServerStore":
                try:
                    value = json.loads(item["value"])
                except (TypeError, ValueError):
                    value = item["value"]
                if not is_reference(value):
                    problems.append(f"{name}: {item['area']}Storage[{item['key']!r}] holds raw data")
        for m in markers:
            marker_hits[m]["raw_bodies"] += sum(body.count(m) for _, body in snap["stats"]["bodies"])
    return {"problems": sorted(set(problems)), "notes": sorted(set(notes)), "markers": marker_hits,
            "store_ids": sorted(f"{k} ({v})" for k, v in store_types.items()), "store_values_seen": server_values}


def check_markers(leaks: dict, markers: list[str], partial: bool) -> None:
    """A marker must have been in a store value before migration (else the check proves nothing) and
    in none after it. With a subset of the steps (``partial``) the marker's page may not have run: a note."""
    for m in markers:
        if leaks["before"]["markers"][m]["store_values"] == 0:
            (leaks["after"]["notes"] if partial else leaks["after"]["problems"]).append(
                f"marker {m!r} never appeared in a store value before migration: the spot check proves nothing")
        if leaks["after"]["markers"][m]["store_values"] or leaks["after"]["markers"][m]["browser_storage"]:
            leaks["after"]["problems"].append(f"marker {m!r} reached the browser in a store value after migration")
