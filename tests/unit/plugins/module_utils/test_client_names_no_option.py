# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``_client`` knows nothing of Ansible: no text it can show names a module option.

Advice that names an option ("set ca_path", "give registry_auth") is added by ``_glue`` from an
error's fields (:mod:`.._glue.advice`). This test reads every string the client's code holds
(docstrings and comments aside: they may say which user-facing option feeds a field) and fails on
a module option name. The names come from the option table and the modules' argument specs, so a
new option is covered the day it is added.

Plain words that are also options (``username``, ``password``, ``timeout``, ``retries``) are the
client's own field names and ordinary English; only names a user could know from the module
documentation alone are looked for: those with an underscore.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._glue import options

ROOT = Path(__file__).resolve().parents[4]
CLIENT = ROOT / "plugins" / "module_utils" / "_client"
MODULES = ROOT / "plugins" / "modules"

#: A data label, not advice: ``Credentials.source`` says an auth file was the source (``auth_file:<path>``).
#: A name followed by ``=`` is a field of the client's own (``Credentials(registry_token=...)`` in a repr).
ALLOWED = ("auth_file:",)


def _module_option_names() -> set[str]:
    """Top-level and sub-option names of every module's argument spec (read from the source, no import)."""
    names: set[str] = set()
    for path in MODULES.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values):
                    if isinstance(key, ast.Constant) and isinstance(key.value, str) and isinstance(value, ast.Dict) \
                            and any(isinstance(k, ast.Constant) and k.value == "type" for k in value.keys):
                        names.add(key.value)
    return names


def option_names() -> set[str]:
    """Every module option name with an underscore (see the module docstring)."""
    names = set(options.CONNECTION_OPTIONS) | {options.REGISTRY_AUTH, "src_auth", "dest_auth"}
    names |= _module_option_names()
    return {name for name in names if "_" in name}


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def client_strings(path: Path) -> list[tuple[int, str]]:
    """``(line, text)`` of every string literal in ``path`` but its docstrings."""
    tree = ast.parse(path.read_text())
    skip = _docstrings(tree)
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip]


def offending(text: str, names: set[str]) -> list[str]:
    """The option names ``text`` mentions as whole words (the allowed labels removed first)."""
    for label in ALLOWED:
        text = text.replace(label, "")
    return sorted(name for name in names if re.search(rf"(?<![\w.]){re.escape(name)}(?![\w=])", text))


def test_the_option_table_is_read() -> None:
    names = option_names()
    assert {"validate_certs", "ca_path", "plain_http", "registry_auth", "src_auth", "auth_file"} <= names
    assert "missing_repository" in names  # a module-only option, found in registry_prune's spec


def test_the_check_finds_an_option_in_advice() -> None:
    names = option_names()
    assert offending("set ca_path to your CA bundle or validate_certs: false", names) == ["ca_path", "validate_certs"]
    assert offending("source: auth_file:/tmp/config.json", names) == []
    assert offending("TransportOptions.ca_path", names) == []


@pytest.mark.parametrize("path", sorted(CLIENT.rglob("*.py")), ids=lambda p: str(p.relative_to(CLIENT)))
def test_client_text_names_no_module_option(path: Path) -> None:
    names = option_names()
    found = [(line, text, offending(text, names)) for line, text in client_strings(path)]
    found = [item for item in found if item[2]]
    assert not found, f"{path.relative_to(ROOT)} names module options (advice belongs to _glue): {found}"
