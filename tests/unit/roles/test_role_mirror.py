"""roles/mirror's static shape: what ansible-core does with its files before any task runs."""
from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
ROLE = ROOT / "roles" / "mirror"


def strings(node):
    """Every string in a YAML document, keys and values."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def test_the_argument_spec_holds_no_template():
    """validate_argument_spec templates the whole spec, descriptions too: braces in one are evaluated at
    the role's first task (a description quoting ``{{ groups[...] }}`` failed every runner)."""
    spec = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text())
    found = [text for text in strings(spec) if "{{" in text or "{%" in text]
    assert found == []
