# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Semver ranges over tags (npm/Cargo style): parsing a range and testing a version against it.

Comparators ``>=1.20``, ``>1.2.3``, ``<2``, ``<=2.1``, ``=1.2.3``; ``^1.2`` (same major; ``^0.2``
same minor), ``~1.2`` (same minor; ``~1`` same major); a partial version ``1.2`` or ``1.2.x``
(``>=1.2.0 <1.3.0``); ``*`` (any version). A ``v`` prefix is allowed anywhere. A space means AND,
``||`` means OR. Whether pre-releases may match is the caller's choice (:func:`is_prerelease`):
the range only compares precedence, as npm's ``includePrerelease`` does.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_order import (
    semver_key,
)

# A version as written in a range: optional v, 1-3 numbers or x/X/* wildcards, optional pre-release.
_RANGE_VERSION = re.compile(
    r"[vV]?(?P<major>\d+|[xX*])(?:\.(?P<minor>\d+|[xX*])(?:\.(?P<patch>\d+|[xX*]))?)?"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
)
_COMPARATOR = re.compile(r"(?P<op>>=|<=|>|<|=|\^|~)?\s*(?P<version>\S+)")
_WILDCARDS = ("x", "X", "*")

#: A version key: (major, minor, patch, release flag, pre-release identifiers); see semver_key.
VersionKey = tuple[Any, ...]


def version_key(tag: str) -> VersionKey | None:
    """The precedence key of a version tag without the tie-breaking text; None for other tags."""
    key = semver_key(tag)
    return None if key is None else key[:5]


def is_prerelease(key: VersionKey) -> bool:
    """True when a :func:`version_key` belongs to a pre-release."""
    return bool(key[3] == 0)


def _lowest(major: int, minor: int = 0, patch: int = 0) -> VersionKey:
    """The lowest key of ``major.minor.patch``: below its first pre-release (npm's ``-0``)."""
    return (major, minor, patch, 0, ())


@dataclass(frozen=True)
class _Bound:
    op: str  # ">=", ">", "<", "<=", "="
    key: VersionKey

    def admits(self, key: VersionKey) -> bool:
        if self.op == ">=":
            return key >= self.key
        if self.op == ">":
            return key > self.key
        if self.op == "<":
            return key < self.key
        if self.op == "<=":
            return key <= self.key
        return key == self.key


@dataclass(frozen=True)
class SemverRange:
    """A parsed range: OR of alternatives, each an AND of bounds (an empty AND admits every version)."""

    text: str
    alternatives: tuple[tuple[_Bound, ...], ...]

    def admits(self, key: VersionKey) -> bool:
        """True when the version key lies in the range (pre-release handling is the caller's)."""
        return any(all(bound.admits(key) for bound in bounds) for bounds in self.alternatives)


def _range_error(text: str, reason: str) -> InvalidInputError:
    return InvalidInputError(
        f"semver: {text!r} is not a version range ({reason}); write comparators such as '>=1.20 <2', "
        "'^1.2', '~1.2', '1.2.x' or '*', joined by spaces (and) or '||' (or)")


def _comparator_bounds(op: str, version: str, text: str) -> list[_Bound]:
    match = _RANGE_VERSION.fullmatch(version)
    if match is None:
        raise _range_error(text, f"{version!r} is not a version")
    parts = [match["major"], match["minor"], match["patch"]]
    given = []
    for part in parts:
        if part is None or part in _WILDCARDS:
            break
        given.append(int(part))
    pre = match["pre"]
    if pre is not None and len(given) < 3:
        raise _range_error(text, f"{version!r} has a pre-release but not all three numbers")
    if not given:
        if op in ("", "=", ">=", "<=", "^", "~"):
            return []  # '*' / 'x' / '>=*': any version
        raise _range_error(text, f"{op}{version} admits no version")
    exact = semver_key(version if version[:1] not in "vV" else version[1:])
    if len(given) == 3:
        full: VersionKey = exact[:5] if exact is not None else _lowest(*given)
        major, minor, patch = given
        if op in ("", "="):
            return [_Bound("=", full)]
        if op in (">=", ">", "<", "<="):
            return [_Bound(op, full)]
        if op == "~":
            return [_Bound(">=", full), _Bound("<", _lowest(major, minor + 1))]
        # ^: the leftmost non-zero number must stay the same.
        upper = _lowest(major + 1) if major else _lowest(0, minor + 1) if minor else _lowest(0, 0, patch + 1)
        return [_Bound(">=", full), _Bound("<", upper)]
    # A partial version stands for every version it names: 1.2 = [1.2.0, 1.3.0).
    low = _lowest(*given)
    high = _lowest(given[0] + 1) if len(given) == 1 else _lowest(given[0], given[1] + 1)
    if op in ("", "=", "~"):
        return [_Bound(">=", low), _Bound("<", high)]
    if op == "^":
        major = given[0]
        upper = _lowest(major + 1) if major or len(given) == 1 else _lowest(0, given[1] + 1)
        return [_Bound(">=", low), _Bound("<", upper)]
    if op == ">=":
        return [_Bound(">=", low)]
    if op == ">":
        return [_Bound(">=", high)]
    if op == "<":
        return [_Bound("<", low)]
    return [_Bound("<", high)]  # <=1.2 admits every 1.2.x


def parse_semver_range(text: str) -> SemverRange:
    """Parse a range such as ``>=1.20 <2 || ^3.1``; raise :class:`InvalidInputError` saying what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise _range_error(str(text), "it is empty")
    alternatives = []
    for alternative in text.split("||"):
        if not alternative.strip():
            raise _range_error(text, "an alternative around '||' is empty")
        # Join an operator separated from its version by spaces ('>= 1.2') before splitting on spaces.
        cleaned = re.sub(r"(>=|<=|>|<|=|\^|~)\s+", r"\1", alternative.strip())
        bounds: list[_Bound] = []
        for word in cleaned.split():
            match = _COMPARATOR.fullmatch(word)
            if match is None:
                raise _range_error(text, f"{word!r} is not a comparator")
            bounds.extend(_comparator_bounds(match["op"] or "", match["version"], text))
        alternatives.append(tuple(bounds))
    return SemverRange(text, tuple(alternatives))
