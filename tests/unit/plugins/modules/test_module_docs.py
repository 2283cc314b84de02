"""Facts the module docs share have one home each: a doc fragment, or one YAML anchor.

ansible-test's validate-modules checks each module's docs against its argument spec;
these tests keep the shared parts from being pasted back into a module.
"""
from __future__ import annotations

import importlib
from pathlib import Path

import yaml
from ansible_collections.ocireg.registry.plugins.modules import registry_copy

ROOT = Path(__file__).resolve().parents[4]
ACTION_GROUP_FRAGMENT = "ocireg.registry.registry.action_group"


def _action_group_modules() -> list[str]:
    runtime = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())
    return runtime["action_groups"]["registry"]


def test_every_module_of_the_action_group_takes_its_membership_from_the_fragment() -> None:
    modules = _action_group_modules()
    assert sorted(modules) == sorted(path.stem for path in (ROOT / "plugins" / "modules").glob("registry_*.py"))
    for name in modules:
        module = importlib.import_module(f"ansible_collections.ocireg.registry.plugins.modules.{name}")
        doc = yaml.safe_load(module.DOCUMENTATION)
        assert ACTION_GROUP_FRAGMENT in doc["extends_documentation_fragment"], name
        # Written inline it would win over the fragment and drift from it.
        assert "action_group" not in doc.get("attributes", {}), name


def test_select_and_mirror_spec_document_the_same_selectors() -> None:
    options = yaml.safe_load(registry_copy.DOCUMENTATION)["options"]
    select = options["select"]["suboptions"]
    entry = options["mirror_spec"]["suboptions"]
    assert sorted(select) == sorted(registry_copy.SELECTOR_SPEC)
    assert {name: entry[name] for name in select} == select
    assert sorted(set(entry) - set(select)) == ["dest", "naming", "rewrite", "src"]
