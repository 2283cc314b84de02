# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters of roles/mirror: a host's share of a sync specification, and an entry's tags regex."""
from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.sync.selectors import (
    as_tag_patterns,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.sync.spec import (
    shard,
)


def mirror_shard(spec: Any, hosts: Any, me: str) -> list[dict[str, Any]]:
    """``me``'s share of ``spec`` among ``hosts``: one-source entries with the exact destination."""
    if isinstance(hosts, str) or not isinstance(hosts, (list, tuple)):
        raise AnsibleFilterError(f"mirror_shard: hosts must be a list of host names, got {hosts!r}")
    try:
        return shard(spec, [str(host) for host in hosts], str(me))
    except InvalidInputError as exc:
        raise AnsibleFilterError(str(exc)) from None


def mirror_tag_patterns(entry: Any) -> list[str]:
    """The entry's selectors as ``registry_copy`` ``tags`` regexes (include / names / exclude only)."""
    if not isinstance(entry, dict):
        raise AnsibleFilterError(f"mirror_tag_patterns: an entry must be a mapping, got {type(entry).__name__}")
    try:
        return as_tag_patterns(entry, str(entry.get("src", "entry")))
    except InvalidInputError as exc:
        raise AnsibleFilterError(str(exc)) from None


class FilterModule:
    """The collection's mirror filters."""

    def filters(self) -> dict[str, Any]:
        """Filter name -> function."""
        return {"mirror_shard": mirror_shard, "mirror_tag_patterns": mirror_tag_patterns}
