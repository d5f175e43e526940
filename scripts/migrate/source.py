"""The source: two copies of the checkout (``before``, ``after``), the app's offline preparation applied
to both, and ``after`` migrated mechanically as the README's "Migration guide" says."""
from __future__ import annotations

import ast
import difflib
import os
import re
import shutil
from pathlib import Path

SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache", ".pytest_cache"}


def copy_checkout(src: Path, dst: Path) -> None:
    """The checkout without VCS data, environments and caches."""
    shutil.copytree(src, dst, ignore=lambda d, names: [n for n in names if n in SKIP_DIRS])


def prepare(root: Path, cfg: dict) -> list[str]:
    """The app's offline preparation, applied identically to both copies: remove files (globs)."""
    removed = []
    for pattern in cfg.get("remove", []):
        for path in sorted(root.glob(pattern)):
            if path.is_file():
                path.unlink()
                removed.append(str(path.relative_to(root)))
    return removed


def python_files(root: Path):
    """Every .py file under ``root``, in a stable order (the diff's)."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            if name.endswith(".py"):
                yield Path(dirpath) / name


STORE_CALL = re.compile(r"(?<![\w.])(?:dash\.)?dcc\.Store\(")
IMPORT_LINE = "from dash_state import ServerStore\n"


def _import_position(lines: list[str], source: str) -> int:
    """Index of the line before which the import goes: the first top-level import that is not
    ``from __future__``, else after the docstring."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return 0
    after_future = 0
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            after_future = node.end_lineno
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            return node.lineno - 1
    if tree.body and isinstance(tree.body[0], ast.Expr) and isinstance(getattr(tree.body[0], "value", None), ast.Constant):
        return max(after_future, tree.body[0].end_lineno)
    return after_future


def _dash_app_assignment(source: str):
    """(target name, end line, indent) of the first ``X = Dash(...)`` / ``X = dash.Dash(...)``."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and len(node.targets) == 1:
            func = node.value.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            target = node.targets[0]
            if name == "Dash" and isinstance(target, ast.Name):
                return target.id, node.end_lineno, " " * node.col_offset
    return None


def migrate(root: Path, entry: str, secret: str) -> tuple[str, dict]:
    """The README's migration, mechanically. Returns (unified diff, summary)."""
    summary = {"files": {}, "secret_key_line": None, "not_migrated": []}
    diffs = []
    entry_path = (root / entry).resolve()
    for path in python_files(root):
        original = path.read_text(encoding="utf-8", errors="surrogateescape")
        text, count = STORE_CALL.subn("ServerStore(", original)
        lines = text.splitlines(keepends=True)
        changes = []
        if count:
            changes.append(f"{count}x dcc.Store( -> ServerStore(")
            if not re.search(r"^from dash_state import .*\bServerStore\b", text, re.MULTILINE):
                at = _import_position(lines, text)
                lines.insert(at, IMPORT_LINE)
                changes.append("import added")
        if path.resolve() == entry_path:
            found = _dash_app_assignment("".join(lines))
            if found is None:
                raise SystemExit(f"no `X = Dash(...)` statement found in the entry file {entry}")
            name, end, indent = found
            line = f'{indent}{name}.server.config["SECRET_KEY"] = "{secret}"\n'
            lines.insert(end, line)
            summary["secret_key_line"] = f"{entry}:{end + 1}: {line.strip()}"
            changes.append("SECRET_KEY set")
        for other in ("from dash.dcc import Store", "dcc.Store as", "Store = dcc.Store"):
            if other in original:
                summary["not_migrated"].append(f"{path.relative_to(root)}: uses `{other}` (not a `dcc.Store(` call)")
        new = "".join(lines)
        if new != original:
            path.write_text(new, encoding="utf-8", errors="surrogateescape")
            rel = str(path.relative_to(root))
            summary["files"][rel] = changes
            diffs.append("".join(difflib.unified_diff(
                original.splitlines(keepends=True), new.splitlines(keepends=True), f"a/{rel}", f"b/{rel}")))
    return "".join(diffs), summary
