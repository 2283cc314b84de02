"""Every module and the lookup are listed where a new user looks first: the README's table and docs/index.md."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("registry_*.py"))


def readme_table() -> str:
    """The README's first table (the one naming the collection's content)."""
    lines = (ROOT / "README.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| content"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return "\n".join(lines[start:end])


def test_there_are_modules_to_check() -> None:
    assert len(MODULES) >= 6 and "registry_unpack" in MODULES


@pytest.mark.parametrize("module", MODULES)
def test_module_is_in_the_readme_table(module: str) -> None:
    assert re.search(rf"^\| `ocireg\.registry\.{module}` \|", readme_table(), re.M), \
        f"README.md: add `ocireg.registry.{module}` to the table of the collection's content"


@pytest.mark.parametrize("module", MODULES)
def test_module_is_in_the_docs_index(module: str) -> None:
    index = (ROOT / "docs" / "index.md").read_text()
    assert f"[{module}]({module}.md)" in index, f"docs/index.md: add {module} to 'Modules, lookup and roles'"
    assert f"(reference/{module}_module.rst)" in index, f"docs/index.md: link {module}'s generated reference"
    assert (ROOT / "docs" / f"{module}.md").is_file()


def test_lookup_roles_and_filters_are_in_both() -> None:
    table, index = readme_table(), (ROOT / "docs" / "index.md").read_text()
    assert "| lookup `ocireg.registry.registry` |" in table
    assert "[lookup registry](lookup_registry.md)" in index
    for role in sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "tasks").is_dir()):
        assert f".{role}`" in table.split("| roles ", 1)[1].split("\n", 1)[0], f"README.md: add the role {role}"
        assert f"role {role}" in index, f"docs/index.md: add the role {role}"
    filters = sorted(p.stem for p in (ROOT / "plugins" / "filter").glob("*.yml"))
    for name in filters:
        assert f"{name}`" in table.split("| filters ", 1)[1].split("\n", 1)[0], f"README.md: add the filter {name}"
        assert f"(reference/{name}_filter.rst)" in index, f"docs/index.md: add the filter {name}"
