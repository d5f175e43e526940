"""MkDocs hooks of the dash-state docs (``hooks:`` in mkdocs.yml); no plugin beyond the ``docs`` extra.

1. The configuration reference is generated from ``dash_state/defaults.py``, the one place the
   defaults live: ``<!-- config-reference -->`` in a page is replaced by tables of every key of
   ``DEFAULTS`` and ``STORE_DEFAULTS``, each with its default and the comment above it in the source.
   The file is parsed (``ast`` plus its comments), never imported, so the docs build needs no app.
   A key without a comment is a build warning naming it (an error under ``mkdocs build --strict``).
2. ``<!-- include: ../SECURITY.md -->`` in a page is replaced by that repository file, its headings
   one level down, so SECURITY.md stays the single copy.
3. Pages link to repository files outside ``docs/`` the way GitHub resolves them (``../SECURITY.md``,
   ``../benchmarks/results/run.png``). Such files are added to the site under ``repo/`` (markdown as
   pages, anything else as is, and what their own relative links reach) and the links rewritten to
   them, so the same page works on GitHub and on the site, and ``--strict`` still checks every link.

``config_reference()`` and ``parse_settings()`` import nothing from MkDocs: tests/test_docs.py uses them.
"""
from __future__ import annotations

import ast
import io
import logging
import os
import posixpath
import re
import tokenize
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
DEFAULTS_FILE = ROOT / "dash_state" / "defaults.py"
CONFIG_MARKER = "<!-- config-reference -->"
REPO_PREFIX = "repo"

log = logging.getLogger("mkdocs.plugins.dash_state_docs")

# Per-store keys that are not in STORE_DEFAULTS: their defaults are global keys (Config.store in
# dash_state/config/model.py).
STORE_INHERITED = {
    "backend": ("STATE_BACKEND", "This store's backend, one of {backends}."),
    "ttl": ("STATE_TTL_DEFAULT", "Seconds this store's values live without being written or touched."),
}


class Setting(NamedTuple):
    key: str
    source: str  # the default as written in defaults.py
    value: object  # the default, evaluated (or None when it is not a plain constant expression)
    comment: str  # the comment above the key (or above its group), "" when there is none


class Settings:
    def __init__(self) -> None:
        self.tables: dict[str, list[Setting]] = {}  # DEFAULTS, STORE_DEFAULTS
        self.backends: tuple[str, ...] = ()
        self.problems: list[str] = []


def _comments(source: str) -> dict[int, str]:
    """Line number -> text of the comment that fills that line alone."""
    found = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT and not tok.line[:tok.start[1]].strip():
            found[tok.start[0]] = tok.string.lstrip("#").strip()
    return found


def _value(node: ast.AST) -> object:
    """A constant expression of defaults.py (``64 << 20``, ``31 * 86400``, ``{}``); else ValueError."""
    if isinstance(node, ast.BinOp):
        ops = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
               ast.LShift: lambda a, b: a << b, ast.Pow: lambda a, b: a ** b, ast.Div: lambda a, b: a / b}
        if type(node.op) in ops:
            return ops[type(node.op)](_value(node.left), _value(node.right))
        raise ValueError(ast.unparse(node))
    return ast.literal_eval(node)


def _same_group(previous: str, key: str) -> bool:
    """A key without a comment of its own shares the comment above the key before it when both names
    have more than ``STATE_`` in common (STATE_COOKIE_NAME, STATE_COOKIE_SECURE...)."""
    a, b = previous.split("_"), key.split("_")
    common = 0
    while common < min(len(a), len(b)) and a[common] == b[common]:
        common += 1
    return common >= 2


def parse_settings(source: str, filename: str = "dash_state/defaults.py") -> Settings:
    """The settings of a defaults.py source: its DEFAULTS and STORE_DEFAULTS dicts and BACKEND_NAMES."""
    comments = _comments(source)
    lines = source.splitlines()
    settings = Settings()
    for statement in ast.parse(source).body:
        target = statement.target if isinstance(statement, ast.AnnAssign) else (
            statement.targets[0] if isinstance(statement, ast.Assign) and len(statement.targets) == 1 else None)
        if not isinstance(target, ast.Name):
            continue
        if target.id == "BACKEND_NAMES":
            settings.backends = tuple(ast.literal_eval(statement.value))
            continue
        if target.id not in ("DEFAULTS", "STORE_DEFAULTS", "STORE_CHOICES") or not isinstance(statement.value, ast.Dict):
            continue
        rows: list[Setting] = []
        for key_node, value_node in zip(statement.value.keys, statement.value.values):
            key = ast.literal_eval(key_node)
            block, line = [], key_node.lineno - 1
            while line >= 1 and line in comments:
                block.insert(0, comments[line])
                line -= 1
            comment = " ".join(block)
            # A key right below another one, without a comment of its own: part of the same group.
            previous_line = lines[key_node.lineno - 2].strip() if key_node.lineno >= 2 else ""
            if not comment and rows and previous_line.startswith(("'", '"')) and _same_group(rows[-1].key, key):
                comment = rows[-1].comment
            if not comment:
                settings.problems.append(f"{filename}:{key_node.lineno}: {target.id}[{key!r}] has no comment "
                                         "above it; the configuration reference is made from those comments")
            try:
                value = _value(value_node)
            except ValueError:
                value = None
            rows.append(Setting(key, ast.unparse(value_node), value, comment))
        settings.tables[target.id] = rows
    for name in ("DEFAULTS", "STORE_DEFAULTS"):
        if name not in settings.tables:
            settings.problems.append(f"{filename}: no {name} dict found")
    return settings


def _size(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return ""


def _toml(setting: Setting) -> str:
    """The default as it is written in config.toml, plus the source expression when it says more."""
    value = setting.value
    if isinstance(value, bool):
        shown = "true" if value else "false"
    elif isinstance(value, str):
        shown = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    elif isinstance(value, (int, float)):
        shown = repr(value)
    elif isinstance(value, dict) and not value:
        shown = "{}"
    else:
        shown = setting.source
    text = f"`{shown}`"
    extra = []
    if isinstance(value, int) and not isinstance(value, bool) and setting.source != repr(value):
        extra.append(f"`{setting.source}`")
        if _size(value) and "BYTES" in setting.key:
            extra.append(_size(value))
        elif setting.source.endswith("* 86400"):
            extra.append(f"{value // 86400} days")
    return text + (f" ({', '.join(extra)})" if extra else "")


_NAME = re.compile(r"\bSTATE_[A-Z0-9_]+\b")


def _cell(text: str) -> str:
    """A comment as a table cell: HTML-escaped (``<prefix>`` is text), setting names as code."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("*", "\\*")
    return _NAME.sub(lambda m: f"`{m.group(0)}`", text).replace("|", "\\|")


def _default(setting: Setting) -> str:
    return _toml(setting).replace("|", "\\|")


def config_reference(path: Path | str = DEFAULTS_FILE) -> tuple[str, list[str]]:
    """The configuration reference (markdown) made from defaults.py, and its problems (keys without a
    comment); the build logs each problem as a warning."""
    path = Path(path)
    settings = parse_settings(path.read_text(encoding="utf-8"), os.path.relpath(path, ROOT))
    backends = ", ".join(f"`{b}`" for b in settings.backends)
    out = ["| key | default | description |", "|---|---|---|"]
    for s in settings.tables.get("DEFAULTS", []):
        out.append(f"| `{s.key}` | {_default(s)} | {_cell(s.comment)} |")
    out += ["", "Per store, in `[STATE_STORES.<store-id>]`:", "",
            "| key | default | description |", "|---|---|---|"]
    for key, (inherits, text) in STORE_INHERITED.items():
        out.append(f"| `{key}` | `{inherits}` | {_cell(text.format(backends=backends))} |")
    for s in settings.tables.get("STORE_CHOICES", []):  # the first word is the default
        words = ", ".join(f'`"{w}"`' for w in s.value or ())
        first = f'`"{s.value[0]}"`' if s.value else "?"
        out.append(f"| `{s.key}` | {first} | {_cell(s.comment)} One of {words}. |")
    for s in settings.tables.get("STORE_DEFAULTS", []):
        out.append(f"| `{s.key}` | {_default(s)} | {_cell(s.comment)} |")
    out += ["", f"Backends: {backends}.", ""]
    return "\n".join(out), settings.problems


# -- MkDocs events ------------------------------------------------------------------------------------
_LINK = re.compile(r"(!?\[[^\]]*\]\()([^)\s]+)(\))")
_INCLUDE = re.compile(r"^<!-- include: (\S+) -->$", re.MULTILINE)
_SKIP = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|#|/)", re.IGNORECASE)  # URLs, anchors, absolute paths
_FENCE = re.compile(r"^(```|~~~)")


def _outside_docs(page_dir: str, target: str, docs_dir: Path) -> str | None:
    """The repository path a page's relative link names, if it leaves docs/ and the file exists."""
    path, _, _ = target.partition("#")
    if not path or _SKIP.match(path):
        return None
    docs_rel = os.path.relpath(docs_dir, ROOT).replace(os.sep, "/")
    repo_path = posixpath.normpath(posixpath.join(docs_rel, page_dir, path))
    if repo_path == docs_rel or repo_path.startswith(("../", docs_rel + "/")):
        return None
    return repo_path if (ROOT / repo_path).is_file() else None


def _mirrored(page_dir: str, target: str) -> str | None:
    """The repository path a link names from a page that is itself a mirrored repository file."""
    path, _, _ = target.partition("#")
    if not path or _SKIP.match(path) or not page_dir.startswith(REPO_PREFIX):
        return None
    repo_path = posixpath.normpath(posixpath.join(page_dir[len(REPO_PREFIX) + 1:], path))
    return repo_path if not repo_path.startswith("../") and (ROOT / repo_path).is_file() else None


def _links(markdown: str):
    fenced = False
    for line in markdown.splitlines():
        if _FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            for match in _LINK.finditer(line):
                yield match.group(2)


def _include(markdown: str, page_dir: str) -> str:
    def replace(match: re.Match) -> str:
        target = (ROOT / "docs" / page_dir / match.group(1)).resolve()
        text, fenced, out = target.read_text(encoding="utf-8"), False, []
        for line in text.splitlines():
            if _FENCE.match(line.strip()):
                fenced = not fenced
            out.append("#" + line if not fenced and line.startswith("#") else line)
        return "\n".join(out)
    return _INCLUDE.sub(replace, markdown)


def on_files(files, config):
    """Add the repository files the pages link to (and what those files link to) under repo/."""
    from mkdocs.structure.files import File, InclusionLevel

    docs_dir = Path(config["docs_dir"])
    wanted: list[str] = []
    for f in files.documentation_pages():
        page_dir = posixpath.dirname(f.src_uri)
        text = _include(Path(f.abs_src_path).read_text(encoding="utf-8"), page_dir)
        wanted += [p for p in (_outside_docs(page_dir, t, docs_dir) for t in _links(text)) if p]
    seen: set[str] = set()
    while wanted:
        repo_path = wanted.pop()
        if repo_path in seen:
            continue
        seen.add(repo_path)
        src_uri = f"{REPO_PREFIX}/{repo_path}"
        file = File.generated(config, src_uri, abs_src_path=str(ROOT / repo_path),
                              inclusion=InclusionLevel.NOT_IN_NAV)  # reached by links, not in the nav
        files.append(file)
        if repo_path.endswith(".md"):
            page_dir = posixpath.dirname(src_uri)
            text = (ROOT / repo_path).read_text(encoding="utf-8")
            wanted += [p for p in (_mirrored(page_dir, t) for t in _links(text)) if p]
    return files


def on_page_markdown(markdown, page, config, files):
    page_dir = posixpath.dirname(page.file.src_uri)
    markdown = _include(markdown, page_dir)
    if CONFIG_MARKER in markdown:
        table, problems = config_reference()
        for problem in problems:
            log.warning(problem)
        markdown = markdown.replace(CONFIG_MARKER, table)
    docs_dir = Path(config["docs_dir"])

    def rewrite(match: re.Match) -> str:
        target = match.group(2)
        repo_path = _outside_docs(page_dir, target, docs_dir)
        if repo_path is None:
            return match.group(0)
        fragment = target[len(target.partition("#")[0]):]
        new = posixpath.relpath(f"{REPO_PREFIX}/{repo_path}", page_dir or ".")
        return f"{match.group(1)}{new}{fragment}{match.group(3)}"

    out, fenced = [], False
    for line in markdown.splitlines():
        if _FENCE.match(line.strip()):
            fenced = not fenced
        out.append(line if fenced else _LINK.sub(rewrite, line))
    return "\n".join(out)


_ROLE = re.compile(r":(?:meth|func|class|mod|attr|obj|data|exc):<code>(~?)([^<]+)</code>")


def on_page_content(html, page, config, files):
    """Docstrings use Sphinx roles (``:meth:`~a.b.c```); mkdocstrings leaves them as text: show the name."""
    def name(match: re.Match) -> str:
        target = match.group(2)
        shown = target.rsplit(".", 1)[-1] if match.group(1) else target
        return f"<code>{shown}{'()' if match.group(0).startswith((':meth:', ':func:')) else ''}</code>"
    return _ROLE.sub(name, html)
