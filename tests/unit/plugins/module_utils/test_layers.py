"""The layers of module_utils, read from the imports: nothing points up.

``_model`` (pure) <- ``_client`` (HTTP, the spec) <- ``_ops`` (operations) <- ``_glue`` (Ansible)
<- modules and the lookup. Planners inside ``_ops`` (``plan.py``, ``policy.py``, ``graph.py``,
``spec.py``) are pure: they import ``_model`` and other planners only. Only ``_glue`` and the
plugins may import ``ansible``. The rule is checked on the source text, so it holds for imports
under ``TYPE_CHECKING`` and inside functions too.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[4]
PLUGINS = ROOT / "plugins"
PREFIX = "ansible_collections.ocireg.registry.plugins.module_utils."

#: Rank of each room; an import may only go to a rank below or equal to the importer's.
RANKS = {"_model": 0, "_client": 1, "_ops": 2, "_glue": 3}
PLUGIN_RANK = 4
#: Files whose names mark a pure planner inside _ops.
PLANNER_NAMES = frozenset({"plan.py", "policy.py", "graph.py", "spec.py"})


def room_of(relative: str) -> str | None:
    """``_ops/retention/plan.py`` -> ``_ops``; the plugin files have no room."""
    first = relative.split("/", 1)[0]
    return first if first in RANKS else None


def imported_modules(source: str) -> list[tuple[int, str]]:
    """``(line, dotted name)`` of every import in ``source`` (``from X import y`` gives ``X.y`` too)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.lineno, node.module))
            found.extend((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)
    return found


def violations(relative: str, source: str) -> list[str]:
    """What is wrong with the imports of the file at ``relative`` (to ``plugins/module_utils`` or ``plugins``)."""
    problems = []
    room = room_of(relative)
    rank = RANKS[room] if room else PLUGIN_RANK
    planner = room == "_ops" and relative.rsplit("/", 1)[-1] in PLANNER_NAMES
    for line, name in imported_modules(source):
        where = f"{relative}:{line}"
        if (name == "ansible" or name.startswith("ansible.")) and rank < RANKS["_glue"]:
            problems.append(f"{where} imports {name}: only _glue and the plugins may know Ansible")
        if not name.startswith(PREFIX):
            continue
        target = name[len(PREFIX):]
        target_room = target.split(".", 1)[0]
        if target_room not in RANKS:
            problems.append(f"{where} imports {name}: outside the layered rooms")
            continue
        if RANKS[target_room] > rank:
            problems.append(f"{where} imports {target}: {target_room} is above {room or 'the plugins'}")
        if planner and target_room != "_model":
            leaf = target.split(".")[-2:] if target.count(".") >= 2 else [target]
            if not any(part + ".py" in PLANNER_NAMES for part in leaf):
                problems.append(f"{where} imports {target}: a planner imports only _model and other planners")
    return problems


def plugin_files() -> list[tuple[str, Path]]:
    files = [(p.relative_to(PLUGINS / "module_utils").as_posix(), p) for p in (PLUGINS / "module_utils").rglob("*.py")]
    for kind in ("modules", "lookup", "doc_fragments"):
        files += [(f"../{kind}/{p.name}", p) for p in (PLUGINS / kind).glob("*.py")]
    return sorted(files)


@pytest.mark.parametrize("relative,path", plugin_files(), ids=[r for r, _p in plugin_files()])
def test_no_import_points_up_a_layer(relative: str, path: Path) -> None:
    assert violations(relative, path.read_text(encoding="utf-8")) == []


def test_every_python_file_lives_in_a_room() -> None:
    loose = [r for r, _p in plugin_files() if not r.startswith("../") and room_of(r) is None and r != "__init__.py"]
    assert loose == [], "module_utils files belong in _model, _client, _ops or _glue"


@pytest.mark.parametrize("relative,source,expected", [
    ("_model/digest.py", f"from {PREFIX}_client.registry import Registry\n", "_client is above _model"),
    ("_client/registry.py", f"if TYPE_CHECKING:\n    from {PREFIX}_ops.reads import fetch_config\n",
     "_ops is above _client"),
    ("_ops/copying/image.py", f"def f():\n    from {PREFIX}_glue.module import scrub\n", "_glue is above _ops"),
    ("_client/transport/core.py", "from ansible.module_utils.basic import AnsibleModule\n",
     "only _glue and the plugins may know Ansible"),
    ("_ops/retention/plan.py", f"from {PREFIX}_ops.pool import map_bounded\n",
     "a planner imports only _model and other planners"),
    ("_ops/retention/plan.py", f"from {PREFIX}_client import registry\n", "a planner imports only"),
])
def test_an_upward_import_is_caught(relative: str, source: str, expected: str) -> None:
    found = violations(relative, source)
    assert found and expected in found[0]


@pytest.mark.parametrize("relative,source", [
    ("_ops/retention/plan.py", f"from {PREFIX}_ops.retention.policy import build_policy\n"),
    ("_ops/retention/apply.py", f"from {PREFIX}_client.registry import Repository\n"),
    ("../modules/registry_tag.py", f"from {PREFIX}_glue.module import scrub\nfrom ansible.module_utils.basic import X\n"),
])
def test_downward_imports_pass(relative: str, source: str) -> None:
    assert violations(relative, source) == []
