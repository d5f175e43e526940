"""Listing and cleaning what the redis backend holds (``dash-state stores``, ``gc``): SCAN, never KEYS.

The namespaces are found with ``SCAN`` (a cursor, ``MATCH <prefix>{*}:index TYPE zset``, a page of
keys per round trip; on a cluster, node by node), so only this app's prefix is ever looked at and
Redis is never blocked by one long command. Each page of namespaces is then read in one pipelined
round trip (``ZRANGEBYSCORE`` of the live part of each ``index`` with its scores, ``HGETALL`` of
``sizes``), and a second one ``GET``\\ s the pointers and histories (values are never transferred).

A gc runs :data:`.scripts.GC` once per namespace of a page, pipelined: each call is one atomic
script, like a write's, so the ``sizes`` books stay exact while the app keeps writing; a namespace
with more than ``batch`` expired members is called again until it has none left.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from redis.exceptions import NoScriptError

from dash_state.backends.base import Entry, is_key
from dash_state.backends.inventory import Tally, kind_of
from dash_state.backends.redis import scripts

if TYPE_CHECKING:
    from dash_state.backends.redis import RedisBackend

PAGE = 500  # SCAN COUNT, and namespaces per pipelined round trip
GC_SHA = hashlib.sha1(scripts.GC.encode()).hexdigest()
_GLOB = re.compile(r"([*?\[\]\\])")
_INDEX = "}:index"


def _pattern(prefix: str) -> str:
    return _GLOB.sub(r"\\\1", prefix) + "{*" + _INDEX


def _user(prefix: str, name: Any) -> str | None:
    """The namespace of an index key (``<prefix>{<user>}:index``), or None for anything else."""
    try:
        text = name.decode("utf-8") if isinstance(name, bytes) else str(name)
    except UnicodeDecodeError:
        return None
    start = prefix + "{"
    if not text.startswith(start) or not text.endswith(_INDEX) or len(text) < len(start) + len(_INDEX):
        return None
    return text[len(start):-len(_INDEX)]


def _pages(backend: "RedisBackend", count: int) -> Iterator[list[str]]:
    """This app's namespaces, a SCAN page at a time (some pages may be empty)."""
    client, pattern = backend._client, _pattern(backend.prefix)
    if backend.target.mode == "cluster":
        nodes = backend._run("list the cluster's nodes", client.get_primaries)
    else:
        nodes = [None]
    for node in nodes:
        cursor = 0
        while True:
            def scan(cursor: int = cursor, node: Any = node) -> tuple[int, list]:
                if node is None:
                    return client.scan(cursor, match=pattern, count=count, _type="zset")
                found, names = client.scan(cursor, match=pattern, count=count, _type="zset", target_nodes=node)
                return found[node.name], names

            cursor, names = backend._run("list namespaces (SCAN)", scan)
            yield sorted({u for u in (_user(backend.prefix, n) for n in names) if u is not None})
            if not cursor:
                break


def users(backend: "RedisBackend", now_ms: Callable[[], int]) -> Iterator[str]:
    for page in _pages(backend, PAGE):
        if not page:
            continue
        now = now_ms()

        def count(page: list[str] = page, now: int = now) -> list[int]:
            with backend._client.pipeline(transaction=False) as pipe:
                for user in page:
                    pipe.zcount(backend._books(user)[0], f"({now}", "+inf")
                return pipe.execute()

        yield from (user for user, live in zip(page, backend._run("count live entries", count)) if live)


def inventory(backend: "RedisBackend", user: str | None, now_ms: Callable[[], int]) -> Iterator[Entry]:
    pages = [[user]] if user is not None else _pages(backend, PAGE)
    for page in pages:
        if page:
            yield from _read_page(backend, page, now_ms())


def _read_page(backend: "RedisBackend", page: list[str], now: int) -> list[Entry]:
    def books() -> list:
        with backend._client.pipeline(transaction=False) as pipe:
            for user in page:
                index, sizes = backend._books(user)
                pipe.zrangebyscore(index, f"({now}", "+inf", withscores=True)
                pipe.hgetall(sizes)
            return pipe.execute()

    found = backend._run("list entries", books)
    listed = []  # (user, member, score, size)
    for i, user in enumerate(page):
        members, sizes = found[2 * i], found[2 * i + 1]
        for member, score in members:
            listed.append((user, member.decode("utf-8", "replace"), score, int(sizes.get(member, 0))))
    small = [(user, member) for user, member, _, _ in listed if kind_of(member) != "value"]

    def texts() -> list:
        with backend._client.pipeline(transaction=False) as pipe:
            for user, member in small:
                pipe.get(backend._key(user, member))
            return pipe.execute()

    stored = dict(zip(small, backend._run("read pointers", texts))) if small else {}
    entries = []
    for user, member, score, size in sorted(listed):
        kind = kind_of(member)
        if kind == "value":
            entries.append(Entry(user, member, kind, size, score / 1000, None))
            continue
        text = stored.get((user, member))
        if text is None:  # deleted (or expired) since the index was read
            continue
        target = text.decode("ascii", "replace") if kind == "pointer" else None
        if kind == "pointer" and not is_key(target):
            continue  # reads as no pointer at all
        entries.append(Entry(user, member, kind, 0, score / 1000, target))
    return entries


def gc(backend: "RedisBackend", dry_run: bool, batch: int, progress: Callable[[int], None] | None,
       now_ms: Callable[[], int]) -> dict:
    tally, batch = Tally(progress), max(int(batch), 1)
    for page in _pages(backend, batch):
        offsets = dict.fromkeys(page, 0)  # namespace -> expired members a dry run has counted already
        removed = 0
        while offsets:
            now, calls = now_ms(), list(offsets)
            args = [[now, backend.values_per_store, backend._key(user, ""), int(dry_run), batch, offsets[user]]
                    for user in calls]
            results = _evalsha(backend, [(backend._books(user), a) for user, a in zip(calls, args)])
            following = {}
            for user, (expired, evicted, freed, more) in zip(calls, results):
                tally.add(user, int(expired), int(evicted), int(freed))
                removed += int(expired) + int(evicted)
                if int(more):
                    following[user] = offsets[user] + int(expired) if dry_run else 0
            offsets = following
        tally.step(removed)
    return tally.result()


def _evalsha(backend: "RedisBackend", calls: list[tuple[list[str], list]]) -> list:
    """Run :data:`.scripts.GC` for each call in one pipelined round trip (loading it when the server
    does not have it: only the calls it refused are sent again)."""
    results: list = [None] * len(calls)
    todo = list(range(len(calls)))
    for attempt in range(2):
        def send(todo: list[int] = todo) -> list:
            with backend._client.pipeline(transaction=False) as pipe:
                for i in todo:
                    keys, args = calls[i]
                    pipe.execute_command("EVALSHA", GC_SHA, len(keys), *keys, *args)
                return pipe.execute(raise_on_error=False)

        answers = backend._run("clean up (gc)", send)
        missing = []
        for i, answer in zip(todo, answers):
            if isinstance(answer, NoScriptError) and attempt == 0:
                missing.append(i)
            elif isinstance(answer, Exception):
                raise backend._failure("clean up (gc)", answer)
            else:
                results[i] = answer
        if not missing:
            break
        backend._run("load the gc script", lambda: backend._client.script_load(scripts.GC))
        todo = missing
    return results
