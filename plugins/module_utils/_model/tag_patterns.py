# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Warnings for tag patterns that select nothing (nothing silent: a job nobody watches must say when it selects nothing).

Every tag pattern of the collection (``registry_prune`` rules and shorthands,
``registry_copy``'s ``tags``) is a *full match*: ``^build-`` or ``build-``
never matches ``build-42``. When a pattern selects no tag of a repository that
has tags, the user gets a warning naming the pattern, and a hint when it looks
like a search regex written for ``grep``.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_selection import (
    TagSelection,
    unmatched_candidates,
)


def search_regex_hint(pattern: str) -> str:
    """A hint when ``pattern`` reads like a search (``^``/``$`` anchors, or no ``.*``); else ``""``."""
    if pattern.startswith("^") or pattern.endswith("$"):
        core = pattern.lstrip("^").rstrip("$")
        return (f"; patterns match the whole tag, so ^ and $ are not needed: write '{core}' for exactly that "
                f"tag or '{core}.*' for tags starting with it")
    if ".*" not in pattern:
        return f"; patterns match the whole tag: for tags starting with it write '{pattern}.*'"
    return ""


def unmatched_pattern_warning(label: str, pattern: str, tag_count: int, where: str, regex: bool = True) -> str:
    """The warning for a pattern that selected none of ``tag_count`` tags in ``where``."""
    hint = search_regex_hint(pattern) if regex else ""
    return f"{label} {pattern!r} selects none of the {tag_count} tag(s) in {where}{hint}"


def unmatched_regexes(tags: Sequence[str], patterns: Sequence[str], where: str,
                      label: str = "tags pattern") -> list[str]:
    """Warnings for the full-match regexes of ``patterns`` that select none of ``tags`` (none when no tags)."""
    valid = []
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error:
            continue  # the caller reports invalid patterns as errors
        valid.append(pattern)
    unmatched = unmatched_candidates(tags, TagSelection.from_patterns(valid))
    return [unmatched_pattern_warning(label, text, len(tags), where) for _kind, text in unmatched]
