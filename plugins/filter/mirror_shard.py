# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters of roles/mirror: a host's share of a sync specification, the fleet's summary, and (deprecated,
removed in 2.0.0) an entry's tags regex."""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_selection import (
    SELECTOR_KEYS,
    parse_selection,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.sync.fleet import (
    Fleet,
    account,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.sync.spec import (
    shard,
)


def _host_list(value: Any, name: str, filter_name: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise AnsibleFilterError(f"{filter_name}: {name} must be a list of host names, got {value!r}")
    return [str(host) for host in value]


def mirror_shard(spec: Any, hosts: Any, me: str) -> list[dict[str, Any]]:
    """``me``'s share of ``spec`` among ``hosts``: one-source entries with the exact destination."""
    try:
        return shard(spec, _host_list(hosts, "hosts", "mirror_shard"), str(me))
    except InvalidInputError as exc:
        raise AnsibleFilterError(str(exc)) from None


def mirror_summary(spec: Any, runners: Any, reports: Any, live: Any, in_play: Any, running: Any,
                   reporter: str, check_mode: bool = False) -> dict[str, Any]:
    """The fleet's account of ``spec`` (see ``_ops/sync/fleet.py``): every repository, its runner, its outcome.

    ``runners`` are the hosts the spec was sharded over, ``reports`` each runner's ``registry_copy``
    result, ``live`` the hosts alive when the role started, ``in_play`` every host of the play,
    ``running`` the hosts still running, ``reporter`` the host writing the summary.
    """
    if not isinstance(reports, Mapping):
        raise AnsibleFilterError(f"mirror_summary: reports must map host names to results, got {reports!r}")
    fleet = Fleet(runners=_host_list(runners, "runners", "mirror_summary"),
                  live=set(_host_list(live, "live", "mirror_summary")),
                  in_play=set(_host_list(in_play, "in_play", "mirror_summary")),
                  running=set(_host_list(running, "running", "mirror_summary")), reporter=str(reporter))
    try:
        return account(spec, fleet, reports, bool(check_mode))
    except InvalidInputError as exc:
        raise AnsibleFilterError(str(exc)) from None


#: Selectors that a list of whole-tag regexes can express (what ``registry_copy``'s ``tags`` takes).
_REGEX_EXPRESSIBLE = ("include", "exclude", "names", "prerelease")


def _as_tag_patterns(block: Mapping[str, Any], where: str) -> list[str]:
    """The selector block as ONE whole-tag regex that ``fullmatch`` answers as ``select_tags`` does.

    ``include`` and ``names`` (escaped) become alternatives, ``exclude`` a negative lookahead
    anchored at the end (scheme tags aside, which the copy leaves out itself). Raises
    :class:`InvalidInputError` naming the selectors that need the tag listing.
    """
    selection = parse_selection(block, where)
    needs_listing = [key for key in SELECTOR_KEYS if key not in _REGEX_EXPRESSIBLE and block.get(key) is not None]
    if needs_listing:
        raise InvalidInputError(
            f"{where}: {', '.join(needs_listing)} cannot be written as a tags regex; these selectors need the "
            "many-repository mirror of registry_copy")
    wanted = [p.pattern for p in selection.patterns] + [re.escape(name) for name in selection.names]
    body = "|".join(f"(?:{p})" for p in wanted) if wanted else ".*"
    if selection.exclude_patterns:
        # The lookahead must test the whole tag too: each exclude alternative is anchored with \Z.
        body = ("(?!(?:" + "|".join(f"(?:{p.pattern})" for p in selection.exclude_patterns) + r")\Z)(?:"
                + body + ")")
    return [body]


def mirror_tag_patterns(entry: Any) -> list[str]:
    """The entry's selectors as ``registry_copy`` ``tags`` regexes (include / names / exclude only).

    Deprecated (``meta/runtime.yml`` warns on use; removed in 2.0.0): ``registry_copy``'s ``select``
    takes the selectors themselves, so there is nothing left to translate.
    """
    if not isinstance(entry, dict):
        raise AnsibleFilterError(f"mirror_tag_patterns: an entry must be a mapping, got {type(entry).__name__}")
    try:
        return _as_tag_patterns(entry, str(entry.get("src", "entry")))
    except InvalidInputError as exc:
        raise AnsibleFilterError(str(exc)) from None


class FilterModule:
    """The collection's mirror filters."""

    def filters(self) -> dict[str, Any]:
        """Filter name -> function."""
        return {"mirror_shard": mirror_shard, "mirror_summary": mirror_summary,
                "mirror_tag_patterns": mirror_tag_patterns}
