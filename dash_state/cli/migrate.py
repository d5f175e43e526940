"""``dash-state migrate``: rewrite chosen ``dcc.Store(...)`` calls of a source file to ``ServerStore(...)``.

The file is edited with libcst: only the called name changes (``dcc.Store``, ``dash.dcc.Store``, a
``Store`` from ``from dash.dcc import Store``, ``d.Store`` after ``from dash import dcc as d``...); the
arguments, formatting and comments stay byte for byte, and ``from dash_state import ServerStore`` is
added once after the last top-level import (the last one above the first migrated store, so that a late
import cannot come after its use), unless the file already imports it: then its name is used.

A store is chosen by its ``id=`` keyword (or first positional argument) when it is a literal: a string,
or a dict of literal values for pattern matching, named on ``--stores`` as its JSON with sorted keys
(``{"index":1,"type":"row"}``, as Dash stringifies it). ``--all`` chooses every ``dcc.Store`` with a
literal id. The command refuses (exit 1, nothing written) when a ``dcc.Store`` whose id is computed at
run time (a name, a call, an f-string or a dict with computed values) might be one of the named ids, or
when a named id is in no file. PATH may be a directory: every ``.py`` file under it, except in hidden
directories, ``.venv``, ``venv`` and ``node_modules``; all files are checked before any is written.
"""
from __future__ import annotations

import ast
import difflib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from dash_state.cli.main import Failure, cli

SKIP_DIRS = {".venv", "venv", "node_modules", "__pycache__"}
EPILOG = """\b
Examples:
  dash-state migrate app.py --stores filters,results --dry-run
  dash-state migrate app.py --stores filters,results
  dash-state migrate src/ --all
  dash-state migrate app.py --stores '{"index":1,"type":"row"}'
"""


def dash_id(value: Any) -> str | None:
    """A literal id as Dash stringifies it (dict: sorted keys, no spaces), None if it is not an id."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and all(isinstance(k, str) for k in value) and all(
            isinstance(v, (str, int, float, bool)) for v in value.values()):
        return "{" + ",".join(f"{json.dumps(k)}:{json.dumps(value[k])}" for k in sorted(value)) + "}"
    return None


def named_id(text: str) -> str:
    """A --stores entry: a string id as is, a JSON dict in Dash's spelling."""
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict) or dash_id(parsed) is None:
            raise click.BadParameter(f"{text!r} is not a JSON dict of strings and numbers", param_hint="--stores")
        return dash_id(parsed)  # type: ignore[return-value]
    return text


def split_ids(text: str) -> list[str]:
    """--stores split on the commas outside dict ids (``a,{"index":1,"type":"row"}`` is two ids)."""
    parts, depth, quoted, current = [], 0, False, ""
    for i, char in enumerate(text):
        if char == '"' and depth and text[i - 1] != "\\":
            quoted = not quoted
        elif not quoted:
            depth += {"{": 1, "[": 1, "}": -1, "]": -1}.get(char, 0)
            if char == "," and depth <= 0:
                parts.append(current)
                current = ""
                continue
        current += char
    return [named_id(p.strip()) for p in [*parts, current] if p.strip()]


@dataclass
class StoreCall:
    call: Any  # the libcst Call node
    line: int
    server: bool  # already a ServerStore
    id: str | None = None  # a literal id, as Dash stringifies it
    expr: str | None = None  # the source of an id computed at run time
    could_be: Any = None  # (named id) -> bool, for a computed id


@dataclass
class Source:
    path: Path
    module: Any
    calls: list[StoreCall] = field(default_factory=list)
    server_name: str | None = None  # the name `from dash_state import ServerStore` bound, if any
    imports: list[tuple[int, int]] = field(default_factory=list)  # top-level imports: (index in body, line)


class Names:
    """Which names mean ``dash``, ``dash.dcc``, ``dcc.Store`` and ``ServerStore`` in a module (imports
    anywhere count; a ``from dash_state import ServerStore`` only at module level for ``top``), and
    every call of the module."""

    def __init__(self, module: Any) -> None:
        import libcst as cst
        from libcst.helpers import get_full_name_for_node as name_of

        self.dash, self.dcc, self.store, self.dash_state = set(), set(), set(), set()
        self.server: dict[str, bool] = {}  # bound name -> imported at module level
        self.calls: list[Any] = []
        stack: list[tuple[Any, int]] = [(module, 0)]
        while stack:
            node, depth = stack.pop()
            if isinstance(node, cst.Call):
                self.calls.append(node)
            elif isinstance(node, cst.Import):
                for alias in node.names:
                    full = name_of(alias.name) or ""
                    bound = alias.asname.name.value if alias.asname else full.split(".")[0]
                    if full == "dash_core_components" or (full == "dash.dcc" and alias.asname):
                        self.dcc.add(bound)
                    elif full == "dash" or (full.startswith("dash.") and not alias.asname):
                        self.dash.add(bound)
                    elif full == "dash_state":
                        self.dash_state.add(bound)
            elif isinstance(node, cst.ImportFrom) and not node.relative and node.module is not None \
                    and not isinstance(node.names, cst.ImportStar):
                source = name_of(node.module)
                for alias in node.names:
                    name = alias.name.value
                    bound = alias.asname.name.value if alias.asname else name
                    if source == "dash" and name == "dcc":
                        self.dcc.add(bound)
                    elif source in ("dash.dcc", "dash_core_components") and name == "Store":
                        self.store.add(bound)
                    elif source in ("dash_state", "dash_state.ServerStore") and name == "ServerStore":
                        self.server[bound] = self.server.get(bound, False) or depth == 0
            inner = depth + isinstance(node, (cst.FunctionDef, cst.ClassDef))
            stack.extend((child, inner) for child in reversed(node.children))

    def kind(self, call: Any) -> str | None:
        from libcst.helpers import get_full_name_for_node

        parts = (get_full_name_for_node(call.func) or "").split(".")
        if len(parts) == 1 and parts[0] in self.store or (
                len(parts) == 2 and parts[0] in self.dcc and parts[1] == "Store") or (
                len(parts) == 3 and parts[0] in self.dash and parts[1:] == ["dcc", "Store"]):
            return "dcc"
        if len(parts) == 1 and parts[0] in self.server or (
                len(parts) == 2 and parts[0] in self.dash_state and parts[1] == "ServerStore"):
            return "server"
        return None


def id_expression(call: Any) -> Any:
    """The node of the id (keyword, else the first positional argument), "**" if it may come from a
    ``**mapping``, None if there is no id."""
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == "id":
            return arg.value
    if call.args and call.args[0].keyword is None and not call.args[0].star:
        return call.args[0].value
    return "**" if any(arg.star for arg in call.args) else None


def guess(node: Any) -> Any:
    """For a computed id: a test telling whether it could be a given named id."""
    import libcst as cst

    if isinstance(node, cst.FormattedString):  # f"row-{i}": the literal parts must match
        pattern = "".join(re.escape(part.value.replace("{{", "{").replace("}}", "}"))
                          if isinstance(part, cst.FormattedStringText) else ".*" for part in node.parts)
        return lambda named: re.fullmatch(pattern, named, re.DOTALL) is not None
    if isinstance(node, cst.Dict) and all(isinstance(e, cst.DictElement) for e in node.elements):
        fixed, keys = {}, set()
        for element in node.elements:
            key = _literal(element.key)
            if not isinstance(key, str):
                return lambda named: True
            keys.add(key)
            value = _literal(element.value)
            if value is not _NOT:
                fixed[key] = value

        def could_be(named: str) -> bool:
            try:
                parsed = json.loads(named) if named.startswith("{") else None
            except ValueError:
                return False
            return isinstance(parsed, dict) and set(parsed) == keys and all(
                parsed[k] == v for k, v in fixed.items())
        return could_be
    return lambda named: True


_NOT = object()


def _literal(node: Any) -> Any:
    import libcst as cst

    try:
        return ast.literal_eval("(\n" + cst.Module([]).code_for_node(node) + "\n)")
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return _NOT


def scan(path: Path) -> Source:
    import libcst as cst
    from libcst.metadata import PositionProvider

    data = path.read_bytes()
    try:
        wrapper = cst.MetadataWrapper(cst.parse_module(data))
    except cst.ParserSyntaxError as exc:
        raise Failure(f"{path}:{exc.raw_line}: cannot parse this file: {exc.message}") from None
    source, names = Source(path, wrapper.module), Names(wrapper.module)
    positions = wrapper.resolve(PositionProvider)
    source.server_name = next((name for name, top in names.server.items() if top), None)
    for index, statement in enumerate(source.module.body):
        if isinstance(statement, cst.SimpleStatementLine) and any(
                isinstance(s, (cst.Import, cst.ImportFrom)) for s in statement.body):
            source.imports.append((index, positions[statement].start.line))
    for call in names.calls:
        kind, node = names.kind(call), id_expression(call)
        if kind is None or node is None:
            continue
        store = StoreCall(call, positions[call].start.line, kind == "server")
        value = _literal(node) if node != "**" else _NOT
        if value is not _NOT:
            store.id = dash_id(value)
            if store.id is None:
                continue  # a literal that is no id (Dash would refuse it): not ours to judge
        else:
            store.expr = "**kwargs" if node == "**" else source.module.code_for_node(node)
            store.could_be = (lambda named: True) if node == "**" else guess(node)
        source.calls.append(store)
    return source


def rewrite(source: Source, chosen: list[StoreCall]) -> bytes:
    import libcst as cst

    name = source.server_name or "ServerStore"
    targets = {id(store.call) for store in chosen}

    class Rewrite(cst.CSTTransformer):
        def leave_Call(self, original: Any, updated: Any) -> Any:
            return updated.with_changes(func=cst.Name(name)) if id(original) in targets else updated

    module = source.module.visit(Rewrite())
    if source.server_name is None:
        body = list(module.body)
        first = min(store.line for store in chosen)  # not after a late import: ServerStore is used above it
        where = max((index + 1 for index, line in source.imports if line < first), default=0)
        if where == 0 and body and isinstance(body[0], cst.SimpleStatementLine) and \
                isinstance(body[0].body[0], cst.Expr) and isinstance(body[0].body[0].value, cst.BaseString):
            where = 1  # after the module's docstring
        body.insert(where, cst.parse_statement("from dash_state import ServerStore\n"))
        module = module.with_changes(body=body)
    return module.bytes


def python_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise click.BadParameter(f"{str(path)!r} is neither a file nor a directory", param_hint="PATH")
    found = []
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        found.extend(Path(root, f) for f in sorted(files) if f.endswith(".py"))
    return found


@cli.command(epilog=EPILOG)
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--stores", "names", metavar="ID,ID", help="The ids of the dcc.Stores to migrate, comma separated.")
@click.option("--all", "every", is_flag=True, help="Migrate every dcc.Store whose id is a literal.")
@click.option("--dry-run", is_flag=True, help="Print a unified diff and write nothing.")
def migrate(path: Path, names: str | None, every: bool, dry_run: bool) -> None:
    """Rewrite dcc.Store(...) calls of PATH (a .py file, or every .py file under a directory) to
    ServerStore(...), keeping every argument, the formatting and the comments as they are, and add
    `from dash_state import ServerStore` where needed."""
    if bool(names) == every:
        raise click.UsageError("choose the stores: --stores ID,ID or --all (not both)")
    wanted = split_ids(names or "")
    if names is not None and not wanted:
        raise click.UsageError("--stores names no id")
    files = python_files(path)
    sources = [scan(f) for f in files if "Store" in f.read_text(encoding="utf-8", errors="replace")]
    plan: list[tuple[Source, list[StoreCall]]] = []
    seen, already, skipped, refused = set(), set(), [], []
    for source in sources:
        chosen = []
        for store in source.calls:
            if store.id is not None:
                if store.server:
                    already.add(store.id)
                elif every or store.id in wanted:
                    chosen.append(store)
                    seen.add(store.id)
            elif not store.server:
                maybe = [n for n in wanted if store.could_be(n)]
                if maybe:
                    refused.append(f"{source.path}:{store.line}: ({store.expr}) may be {', '.join(map(repr, maybe))}")
                skipped.append(f"{source.path}:{store.line}: {store.expr}")
        if chosen:
            plan.append((source, chosen))
    if refused:
        raise Failure("refusing to guess (nothing was written): the id of these dcc.Stores is computed at run "
                      "time; give them literal ids or change them by hand\n  " + "\n  ".join(refused))
    missing = [n for n in wanted if n not in seen and n not in already]
    if missing:
        raise Failure(f"no dcc.Store with id {', '.join(map(repr, missing))} in {path} (nothing was written)")
    for name in wanted:
        if name in already and name not in seen:
            click.echo(f"{name}: already a ServerStore")
    if every and skipped:
        click.echo(f"left as they are, ids computed at run time: {'; '.join(skipped)}", err=True)
    if not plan:
        click.echo(f"nothing to migrate in {path}")
        return
    for source, chosen in plan:
        before, after = source.module.bytes, rewrite(source, chosen)
        ids = ", ".join(dict.fromkeys(store.id for store in chosen))  # type: ignore[misc]
        if dry_run:
            encoding = source.module.encoding
            click.echo("".join(difflib.unified_diff(
                before.decode(encoding).splitlines(keepends=True), after.decode(encoding).splitlines(keepends=True),
                fromfile=f"a/{source.path}", tofile=f"b/{source.path}")), nl=False)
        else:
            source.path.write_bytes(after)
            click.echo(f"migrated {len(chosen)} store(s) in {source.path}: {ids}")
