"""The unit tests mirror the source tree, and the tree's text gives reasons, not issue numbers.

A newcomer looking for the tests of ``_ops/retention/plan.py`` finds them in
``tests/unit/plugins/module_utils/_ops/retention/test_plan.py``; a test file named
``test_<module>_<aspect>.py`` tests one aspect of ``<module>.py`` in the same room.
Files at this folder's top (this one, ``test_layers.py``) are about the whole tree or a whole
layer (say, "``_client`` names no module option"), so they name no module.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[4]
TESTS = ROOT / "tests" / "unit" / "plugins" / "module_utils"
SOURCE = ROOT / "plugins" / "module_utils"

# "issue 13", "issue #13", "issue-13", "Issue 13's": a reference to this project's tracker that
# stands where the reason should. Upstream trackers ("containers/skopeo #2227") are cited by
# repository and number, which this does not match.
ISSUE_NUMBER = re.compile(r"\bissues?[ _#-]*[0-9]+\b", re.IGNORECASE)


def _test_files() -> list[Path]:
    # Files at the top of TESTS are about the whole tree or a whole layer, not one module.
    return sorted(p for p in TESTS.rglob("test_*.py") if p.parent != TESTS)


def _source_for(test: Path) -> Path | None:
    """The source module ``test`` is named for, or None when no module in the mirrored room fits."""
    room = SOURCE / test.parent.relative_to(TESTS)
    if not room.is_dir():
        return None
    stem = test.stem[len("test_"):]
    for module in sorted(room.glob("*.py"), key=lambda p: -len(p.stem)):
        if module.stem != "__init__" and (stem == module.stem or stem.startswith(module.stem + "_")):
            return module
    return None


def test_the_tree_has_test_files() -> None:
    # Guards the rule below against passing on an empty or misplaced tree.
    assert len(_test_files()) > 40
    assert (TESTS / "_ops" / "retention" / "test_plan.py").is_file()


@pytest.mark.parametrize("test", _test_files(), ids=lambda p: str(p.relative_to(TESTS)))
def test_each_unit_test_file_names_a_source_module_in_the_same_room(test: Path) -> None:
    assert _source_for(test) is not None, (
        f"{test.relative_to(ROOT)} mirrors no source file: put the tests of "
        f"plugins/module_utils/<room>/<module>.py in tests/unit/plugins/module_utils/<room>/test_<module>.py "
        f"(or test_<module>_<aspect>.py); a test about a whole layer goes at the top of "
        f"tests/unit/plugins/module_utils/")


@pytest.mark.parametrize("test", _test_files(), ids=lambda p: str(p.relative_to(TESTS)))
def test_each_test_folder_is_a_package(test: Path) -> None:
    # Rooms repeat module names (four plan.py): without __init__.py two test_plan.py would clash.
    folder = test.parent
    while folder != TESTS.parent:
        assert (folder / "__init__.py").is_file(), f"{folder.relative_to(ROOT)} needs an __init__.py"
        folder = folder.parent


def test_a_misplaced_test_file_is_caught(tmp_path: Path) -> None:
    # The rule can fail: a flat name, a room that does not exist, and a module the room lacks.
    assert _source_for(TESTS / "_ops" / "test_retention_plan.py") is None
    assert _source_for(TESTS / "_ops" / "nowhere" / "test_plan.py") is None
    assert _source_for(TESTS / "_ops" / "sync" / "test_graph.py") is None
    assert _source_for(TESTS / "_ops" / "copying" / "test_graph_attached.py") == SOURCE / "_ops" / "copying" / "graph.py"


def _text_files() -> list[Path]:
    found = []
    for top in ("plugins", "tests", "docs", "roles", "bench", "scripts"):
        found += [p for p in (ROOT / top).rglob("*") if p.is_file() and p.suffix in {".py", ".md", ".yml", ".yaml", ".rst", ".sh"}]
    found += [ROOT / "README.md", ROOT / "CONTRIBUTING.md"]
    return sorted(found)


def test_no_comment_or_doc_cites_an_issue_number_instead_of_a_reason() -> None:
    hits = []
    for path in _text_files():
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if ISSUE_NUMBER.search(line) and path.resolve() != Path(__file__).resolve():
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}")
    assert not hits, "say the reason instead of the issue number:\n" + "\n".join(hits)


@pytest.mark.parametrize("text", ["issue 13", "Issue #7", "issue-13-defaults", "Issue 17's targets", "issues 18"])
def test_the_issue_pattern_matches_what_it_must(text: str) -> None:
    assert ISSUE_NUMBER.search(text)


@pytest.mark.parametrize("text", ["containers/skopeo #2227", "Issue Tracker <https://github.com/x/y/issues>",
                                  "issued_at", "tissue 3"])
def test_the_issue_pattern_leaves_upstream_citations_alone(text: str) -> None:
    assert not ISSUE_NUMBER.search(text)
