# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Tag ordering and whole-name matching: semver keys, sorts, full-match regexes, prefixes.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)

if TYPE_CHECKING:  # only for annotations: registry.py needs requests at import time
    pass


#: Orders :func:`sort_tags` knows.
TAG_SORTS = ("lexical", "semver", "none")


def compile_full_match(pattern: str | None, option: str = "pattern") -> re.Pattern[str] | None:
    """Compile a user regex that must match a whole name; None when no pattern was given."""
    if pattern is None or pattern == "":
        return None
    try:
        return re.compile(pattern)
    except re.error as err:
        raise InvalidInputError(
            f"{option}: {pattern!r} is not a valid Python regular expression ({err}); "
            "it must match whole names, e.g. 'v1\\..*' or 'release-[0-9]+'"
        ) from None


def keep_matching(names: Iterable[str], regex: re.Pattern[str] | None) -> list[str]:
    """The names ``regex`` (from :func:`compile_full_match`) matches in full; all of them for None."""
    return [name for name in names if regex is None or regex.fullmatch(name)]


def under_prefix(name: str, prefix: str) -> bool:
    """True if repository ``name`` is ``prefix`` or below it, at a path boundary.

    ``team`` covers ``team`` and ``team/app`` but not ``teams/app``, as a
    directory would; an empty prefix covers everything.
    """
    prefix = prefix.strip("/")
    return not prefix or name == prefix or name.startswith(prefix + "/")


# -- pure: tag order ---------------------------------------------------------------------
# Semantic-version-looking tags: optional "v", one to three numbers, optional
# "-prerelease". Build metadata ("+...") cannot occur: "+" is not a tag character.
_SEMVER = re.compile(
    r"[vV]?(?P<major>\d+)(?:\.(?P<minor>\d+)(?:\.(?P<patch>\d+))?)?"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
)


def semver_key(tag: str) -> tuple[Any, ...] | None:
    """A sort key giving semantic-version precedence, or None if ``tag`` is not a version.

    ``1.2`` means ``1.2.0``; a pre-release (``1.2.0-rc.1``) sorts before its
    release; pre-release identifiers compare numerically when numeric and
    before alphanumeric ones (semver.org, item 11). Equal precedence falls
    back to the tag text so the order is total and stable.
    """
    match = _SEMVER.fullmatch(tag)
    if match is None:
        return None
    numbers = tuple(int(match[part] or 0) for part in ("major", "minor", "patch"))
    pre = match["pre"]
    if pre is None:
        pre_key: tuple[Any, ...] = (1, ())
    else:
        pre_key = (0, tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split(".")))
    return (*numbers, *pre_key, tag)


def sort_tags(tags: Iterable[str], order: str = "lexical") -> list[str]:
    """Tags in ``order``: ``lexical`` (code point order), ``semver`` or ``none`` (as the registry sent them).

    With ``semver``, tags that are not versions (``latest``, ``main``) come
    first in lexical order and versions follow from lowest to highest, so the
    last element is the newest version.
    """
    tags = list(tags)
    if order == "none":
        return tags
    if order == "lexical":
        return sorted(tags)
    if order == "semver":
        plain = sorted(t for t in tags if semver_key(t) is None)
        versions = sorted((t for t in tags if semver_key(t) is not None), key=lambda t: semver_key(t) or ())
        return plain + versions
    raise InvalidInputError(f"sort: unknown order {order!r}: use one of {', '.join(TAG_SORTS)}")
