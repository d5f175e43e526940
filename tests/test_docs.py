"""The docs: the configuration reference covers every setting of dash_state/defaults.py, a setting
without a comment is a build error naming it, and the README's relative links reach files that exist.
Fast and without mkdocs: docs/hooks.py's generator imports nothing from it."""
from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

from dash_state.defaults import BACKEND_NAMES, DEFAULTS, STORE_CHOICES, STORE_DEFAULTS

ROOT = Path(__file__).resolve().parent.parent


def _hooks():
    spec = importlib.util.spec_from_file_location("dash_state_docs_hooks", ROOT / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _rows(markdown: str) -> list[str]:
    return re.findall(r"^\| `([^`]+)` \|", markdown, re.MULTILINE)


def test_the_configuration_reference_covers_every_setting_with_its_comment():
    table, problems = _hooks().config_reference()
    assert problems == []
    rows = _rows(table)
    for key in [*DEFAULTS, *STORE_DEFAULTS, *STORE_CHOICES]:
        assert rows.count(key) == 1, f"{key} is not (once) in the configuration reference"
    assert set(rows) - set(DEFAULTS) - set(STORE_DEFAULTS) - set(STORE_CHOICES) == {"backend", "ttl"}
    for key, words in STORE_CHOICES.items():  # a word setting's row names its default (the first) and each word
        row = next(line for line in table.splitlines() if line.startswith(f"| `{key}` |"))
        assert row.split("|")[2].strip() == f'`"{words[0]}"`' and all(f'`"{w}"`' in row for w in words)
    for name in BACKEND_NAMES:
        assert f"`{name}`" in table
    settings = _hooks().parse_settings((ROOT / "dash_state" / "defaults.py").read_text(encoding="utf-8"))
    for table_name, defaults in (("DEFAULTS", DEFAULTS), ("STORE_DEFAULTS", STORE_DEFAULTS)):
        parsed = {s.key: s.value for s in settings.tables[table_name]}
        assert parsed == defaults  # the parser reads the same defaults the app imports


def test_each_row_carries_the_default_and_the_comment_of_its_key():
    hooks = _hooks()
    source = (
        'DEFAULTS: dict = {\n'
        '    # Seconds a value lives.\n'
        '    "STATE_TTL_DEFAULT": 60 * 60,\n'
        '    # The cookie: name and lifetime.\n'
        '    "STATE_COOKIE_NAME": "x|y",\n'
        '    "STATE_COOKIE_MAX_AGE": 2 * 86400,\n'
        '}\n'
        'STORE_DEFAULTS: dict = {\n'
        '    # Shown in the <browser> too.\n'
        '    "mirror": True,\n'
        '}\n'
        'BACKEND_NAMES = ("memory", "local")\n'
    )
    settings = hooks.parse_settings(source)
    assert settings.problems == []
    assert [s.key for s in settings.tables["DEFAULTS"]] == ["STATE_TTL_DEFAULT", "STATE_COOKIE_NAME",
                                                           "STATE_COOKIE_MAX_AGE"]
    ttl, name, age = settings.tables["DEFAULTS"]
    assert (ttl.value, ttl.comment) == (3600, "Seconds a value lives.")
    assert age.comment == name.comment == "The cookie: name and lifetime."  # a group shares its comment
    assert settings.backends == ("memory", "local")


def test_a_setting_without_a_comment_is_a_problem_naming_it(tmp_path):
    hooks = _hooks()
    source = (
        'DEFAULTS: dict = {\n'
        '    # Where data lives.\n'
        '    "STATE_BACKEND": "local",\n'
        '    "STATE_SCOPE": "user",\n'  # no comment, and not of STATE_BACKEND's group
        '}\n'
        'STORE_DEFAULTS: dict = {\n'
        '    "scope": "user",\n'
        '}\n'
    )
    path = tmp_path / "defaults.py"
    path.write_text(source)
    table, problems = hooks.config_reference(path)
    assert len(problems) == 2
    assert "STATE_SCOPE" in problems[0] and ":4:" in problems[0]
    assert "'scope'" in problems[1]
    assert _rows(table).count("STATE_SCOPE") == 1  # still listed, so the page shows what is missing


def test_the_readme_links_reach_files_that_exist():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)\s]+)\)", readme)
    local = [link.split("#")[0] for link in links if not re.match(r"[a-z]+:", link) and not link.startswith("#")]
    assert any(link.startswith("docs/") for link in local)
    missing = [link for link in local if link and not (ROOT / link).exists()]
    assert missing == []
