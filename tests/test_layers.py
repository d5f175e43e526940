"""The folders are layers: core/ and backends/ never import the Dash glue (glue/) at run time."""
import ast
import pathlib

import dash_state

PACKAGE = pathlib.Path(dash_state.__file__).parent


def _runtime_imports(path: pathlib.Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    skip = set()
    for node in ast.walk(tree):  # imports under "if TYPE_CHECKING:" are for annotations only
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            skip |= {id(child) for child in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            found += [(node.lineno, node.module)] + [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return found


def test_core_and_backends_do_not_import_the_glue():
    offenders = [f"{path.relative_to(PACKAGE)}:{line} {name}"
                 for folder in ("core", "backends") for path in sorted((PACKAGE / folder).rglob("*.py"))
                 for line, name in _runtime_imports(path) if name.startswith("dash_state.glue")]
    assert offenders == []


def test_core_does_not_import_dash():
    offenders = [f"{path.relative_to(PACKAGE)}:{line} {name}" for path in sorted((PACKAGE / "core").rglob("*.py"))
                 for line, name in _runtime_imports(path) if name == "dash" or name.startswith("dash.")]
    assert offenders == []
