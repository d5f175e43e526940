"""``dash-state audit``: every ``dcc.Store`` and ``ServerStore`` of an app, and which ``dcc.Store`` to move.

The app is imported (``module:app`` or a ``.py`` path, default the group's ``--app``) and its component
trees are walked: ``app.layout`` (a layout function is called in a test request context), each Dash page
of ``dash.page_registry`` (a page whose layout function fails is reported on stderr as "layout function
failed: ..." and the audit goes on), then the validation layout (only stores found nowhere else count
there). Dash's own ``_pages_store`` is left out. The callbacks come from ``app.callback_map`` and from
``dash.callback``'s global registry: an ``Output`` on a store is a writer, an ``Input``/``State`` a reader;
pattern-matching dependencies (``MATCH``/``ALL``/``ALLSMALLER``) count for every dict id they fit. A
``set_props`` write cannot be seen without running the app, nor can stores that callbacks create.

Recommendation for a ``dcc.Store``, the first rule that applies:

* keep: its ``data`` is read by a clientside callback (the value is needed in the browser anyway);
* keep: only clientside callbacks write it (the value is born in the browser);
* migrate: its initial data is not JSON (a DataFrame...), is larger than 10 KB, or server callbacks
  write it (ServerStore keeps the value off the wire);
* keep: small and never written by a server callback.

``--json`` prints a list with one object per store, these keys in this order:

``id`` (str, dict ids stringified as Dash does: sorted keys, no spaces), ``pattern`` (bool: a dict id),
``type`` (``"dcc.Store"`` or ``"ServerStore"``), ``storage_type`` (``memory``/``session``/``local``),
``found_in`` (list of ``"layout"``, ``"page <path>"``, ``"validation layout"``), ``initial_bytes`` (int:
size of the initial ``data`` as JSON, 0 when there is none; null when it is not JSON), ``initial_type``
(null, or the Python type of initial data that is not JSON), ``writers`` and ``readers`` (lists of
``{"callback": name, "clientside": bool, "props": [...]}``), ``recommendation`` (``"migrate"``, ``"keep"``
or ``"already"`` for a ServerStore) and ``reason`` (str).
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import click

from dash_state.cli import context
from dash_state.cli.main import cli, failures
from dash_state.core.ids import store_key
from dash_state.glue import layout

BIG = 10 * 1024  # initial data above this many bytes of JSON: worth keeping off the wire
INTERNAL_IDS = {"_pages_store"}  # Dash's own store of page_container
WILDCARDS = {"MATCH", "ALL", "ALLSMALLER"}
EPILOG = """\b
Examples:
  dash-state audit myapp:app
  dash-state audit app.py --json
  dash-state --app myapp:app audit
"""


class _Wild:  # a wildcard of a pattern-matching dependency
    def __repr__(self) -> str:
        return "<wildcard>"


WILD = _Wild()


def store_kind(node: Any) -> str | None:
    from dash.development.base_component import Component

    from dash_state.glue.layout import is_server_store

    if not isinstance(node, Component):
        return None
    if is_server_store(node):
        return "ServerStore"
    if node._namespace == "dash_core_components" and node._type == "Store":
        return "dcc.Store"
    return None


def walk(tree: Any) -> Iterator[Any]:
    """Every dcc.Store and ServerStore of a component tree, in document order."""
    from dash.development.base_component import Component

    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, Component):
            if store_kind(node):
                yield node
            stack.extend(reversed([getattr(node, name, None) for name in node._prop_names]))
        elif isinstance(node, (list, tuple)):
            stack.extend(reversed(node))
        elif isinstance(node, dict):
            stack.extend(reversed(list(node.values())))


def trees(app: Any, errors: list[str]) -> Iterator[tuple[str, Any]]:
    """(location, tree) for the layout, each page and the validation layout."""
    import dash

    def value(where: str, layout: Any) -> Any:
        if not callable(layout):
            return layout
        try:
            with app.server.test_request_context("/"):
                return layout()
        except Exception as exc:  # noqa: BLE001 (the app's own code: report it and go on)
            errors.append(f"{where}: layout function failed: {type(exc).__name__}: {exc}")
            return None

    yield "layout", value("layout", app.layout)
    for page in dash.page_registry.values():
        where = f"page {page.get('path') or page.get('path_template') or page.get('module')}"
        yield where, value(where, page.get("layout"))
    if app.validation_layout is not None:
        yield "validation layout", value("validation layout", app.validation_layout)


def initial_size(data: Any) -> tuple[int | None, str | None]:
    import orjson

    if data is None:
        return 0, None
    try:
        return len(orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY)), None
    except TypeError:
        return None, type(data).__name__


def stores(app: Any, errors: list[str]) -> list[dict[str, Any]]:

    found: dict[tuple[str, str], dict[str, Any]] = {}
    for where, tree in trees(app, errors):
        for node in walk(tree):
            kind, raw = store_kind(node), getattr(node, "id", None)
            sid = store_key(raw)
            if sid in INTERNAL_IDS:
                continue
            entry = found.get((kind, sid))
            if entry is None:
                size, not_json = initial_size(getattr(node, "data", None))
                found[(kind, sid)] = {
                    "id": sid, "pattern": isinstance(raw, dict), "type": kind,
                    "storage_type": getattr(node, "storage_type", None) or "memory", "found_in": [where],
                    "initial_bytes": size, "initial_type": not_json, "raw_id": raw}
            elif where != "validation layout" and where not in entry["found_in"]:
                entry["found_in"].append(where)
    return list(found.values())


def _dep_id(value: Any) -> Any:
    """A dependency's id, its wildcards as WILD (Output objects hold _Wildcard, the dict form JSON)."""

    if isinstance(value, str) and value.startswith("{"):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    if isinstance(value, dict):
        return {k: WILD if layout.is_wildcard(v) or (isinstance(v, list) and len(v) == 1
                                                        and v[0] in WILDCARDS) else v
                for k, v in value.items()}
    return value


def _flat(value: Any) -> Iterator[Any]:
    if isinstance(value, (list, tuple)):
        for item in value:
            yield from _flat(item)
    elif isinstance(value, dict) and "id" not in value:
        for item in value.values():
            yield from _flat(item)
    elif value is not None:
        yield value


def callbacks(app: Any) -> list[dict[str, Any]]:
    """Each callback: name, clientside, outputs and inputs (Input and State) as (id, prop)."""
    from dash_state.glue import compat

    specs = {spec.get("output"): spec for spec in [*app._callback_list, *compat.get("dash._callback:GLOBAL_CALLBACK_LIST")]}
    found = []
    for cb_id, entry in {**compat.get("dash._callback:GLOBAL_CALLBACK_MAP"), **app.callback_map}.items():
        function = entry.get("callback")
        clientside = (specs.get(cb_id) or {}).get("clientside_function")
        if function is not None and not clientside:
            function = getattr(function, "__wrapped__", function)
            name = getattr(function, "__name__", None) or cb_id
        elif clientside and clientside.get("namespace") != "_dashprivate_clientside_funcs":
            name = f"clientside {clientside['namespace']}.{clientside['function_name']}"
        else:
            name = f"clientside ({cb_id})"
        outputs = [(_dep_id(o.component_id), o.component_property) for o in _flat(entry.get("output"))]
        inputs = [(_dep_id(d["id"]), d["property"])
                  for d in _flat([entry.get("inputs") or [], entry.get("state") or []])]
        found.append({"name": name, "clientside": function is None or bool(clientside),
                      "outputs": outputs, "inputs": inputs})
    return found


def matches(dep: Any, store_id: Any) -> bool:
    if isinstance(dep, dict) and isinstance(store_id, dict):
        return set(dep) == set(store_id) and all(v is WILD or v == store_id[k] for k, v in dep.items())
    return isinstance(dep, str) and dep == store_id


def uses(store_id: Any, deps_of: str, known: list[dict[str, Any]]) -> list[dict[str, Any]]:
    used = []
    for cb in known:
        props = sorted({prop for dep, prop in cb[deps_of] if matches(dep, store_id)})
        if props:
            used.append({"callback": cb["name"], "clientside": cb["clientside"], "props": props})
    return used


def recommend(store: dict[str, Any]) -> tuple[str, str]:
    if store["type"] == "ServerStore":
        return "already", "already a ServerStore"
    if any(r["clientside"] and "data" in r["props"] for r in store["readers"]):
        return "keep", "read by a clientside callback (stays in the browser; ServerStore would mirror it)"
    writers = store["writers"]
    if writers and all(w["clientside"] for w in writers):
        return "keep", "written only by clientside callbacks (the value is made in the browser)"
    size, why = store["initial_bytes"], []
    if size is None:
        why.append(f"initial data is not JSON ({store['initial_type']})")
    elif size > BIG:
        why.append(f"initial data of {human(size)}")
    if any(not w["clientside"] for w in writers):
        why.append("written by server callbacks")
    if why:
        return "migrate", " / ".join(why) + ": ServerStore keeps it off the wire"
    return "keep", f"small ({human(size)}) and never written by a server callback"


def human(size: int | None) -> str:
    if size is None:
        return "not JSON"
    return f"{size} bytes" if size < 1024 else f"{size / 1024:.1f} KB"


def audit_app(app: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """The stores of ``app`` with writers, readers and a recommendation; and the layout errors."""
    errors: list[str] = []
    found, known = stores(app, errors), callbacks(app)
    for store in found:
        raw = store.pop("raw_id")
        store["writers"], store["readers"] = uses(raw, "outputs", known), uses(raw, "inputs", known)
        store["recommendation"], store["reason"] = recommend(store)
    return found, errors


def _names(used: list[dict[str, Any]]) -> str:
    return ", ".join(u["callback"] for u in used) or "-"


def summary(found: list[dict[str, Any]], errors: list[str]) -> str:
    dcc = [s for s in found if s["type"] == "dcc.Store"]
    migrate = sum(s["recommendation"] == "migrate" for s in dcc)
    line = (f"{len(found)} store(s): {len(dcc)} dcc.Store ({migrate} to migrate, {len(dcc) - migrate} to keep), "
            f"{len(found) - len(dcc)} ServerStore")
    return line + (f"; {len(errors)} layout(s) could not be read" if errors else "")


@cli.command(epilog=EPILOG)
@click.argument("target", required=False, metavar="[MODULE:APP | PATH.py]")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list (keys: see the module docs) instead of a table.")
@click.pass_context
@failures
def audit(ctx: click.Context, target: str | None, as_json: bool) -> None:
    """List every dcc.Store and ServerStore of an app, who writes and reads it, and which to migrate.

    TARGET is module:app or a .py path (default: the group's --app). The app is imported and its
    layout, pages and validation layout are walked; callbacks come from its callback map."""
    obj = ctx.obj if isinstance(ctx.obj, dict) else {}
    if target:
        app = context.load_app(target)
    elif obj.get("app_path"):
        app = context.app_for(obj)
    else:
        raise click.UsageError("name the app: dash-state audit MODULE:APP (or PATH.py), or dash-state --app ... audit")
    found, errors = audit_app(app)
    if as_json:
        for error in errors:
            click.echo(error, err=True)
        click.echo(json.dumps(found, indent=2))
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    table = Table("id", "type", "found in", "initial size", "writers", "readers", "recommendation")
    for s in found:
        size = human(s["initial_bytes"]) if s["initial_bytes"] else "-"
        if s["initial_bytes"] is None:
            size = f"not JSON ({s['initial_type']})"
        advice = {"migrate": "[bold yellow]migrate[/]: ", "keep": "[green]keep[/]: "}.get(s["recommendation"], "")
        table.add_row(escape(s["id"]), s["type"], escape(", ".join(s["found_in"])), size,
                      escape(_names(s["writers"])), escape(_names(s["readers"])), advice + escape(s["reason"]))
    console.print(table)
    for error in errors:
        console.print(f"[red]{escape(error)}[/]", highlight=False)
    console.print(summary(found, errors), highlight=False)
