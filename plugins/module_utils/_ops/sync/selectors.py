# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which source tags a mirror copies: combinable tag selectors, decided without I/O.

A selection runs in three stages, and every tag of the source gets one decision saying which
selector decided it and why (``Selection.decisions``):

1. **Match** (a union): a tag is a candidate when it matches an ``include`` regex (whole tag),
   lies in the ``semver`` range, or is listed in ``names``. With none of the three, every tag
   is a candidate.
2. **Filter** (each one can only remove): ``exclude`` regexes (whole tag), then ``min_age``
   (tags younger than the duration, or of unknown age, are skipped).
3. **Reduce** (each one can only remove; literal ``names`` are exempt, they were asked for by
   name): ``newest_patch_per`` (``minor`` / ``major``: the highest version of each group),
   then ``newest`` N ranked by ``newest_by`` (``semver`` or ``age``).

Tags of the referrers and cosign schemes (``sha256-<hex>[.sig|.att|.sbom]``) are never
selected: they belong to another manifest and travel with it (``referrers``).

Semver ranges (npm/Cargo style, a ``v`` prefix allowed anywhere): comparators ``>=1.20``,
``>1.2.3``, ``<2``, ``<=2.1``, ``=1.2.3``; ``^1.2`` (same major; ``^0.2`` same minor), ``~1.2``
(same minor; ``~1`` same major); a partial version ``1.2`` or ``1.2.x`` (``>=1.2.0 <1.3.0``);
``*`` (any version). A space means AND, ``||`` means OR. Pre-releases (``1.2.0-rc.1``, and also
suffixed tags such as ``1.25-alpine``, which semver reads as pre-releases) are left out unless
``prerelease`` is true.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_order import (
    compile_full_match,
    semver_key,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_schemes import (
    is_attached_tag,
    is_lease_tag,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.timestamps import (
    format_duration,
    parse_duration,
)

#: The option names a selector block may hold (a spec entry or a module's mirror options).
SELECTOR_KEYS = ("include", "exclude", "names", "semver", "prerelease", "newest", "newest_by",
                 "newest_patch_per", "min_age")
NEWEST_BY = ("semver", "age")
PATCH_GROUPS = ("minor", "major")

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
    return key[3] == 0


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


@dataclass(frozen=True)
class TagSelectors:
    """A validated selector block; build it with :func:`parse_selectors`."""

    include: tuple[re.Pattern[str], ...] = ()
    exclude: tuple[re.Pattern[str], ...] = ()
    names: tuple[str, ...] = ()
    semver: SemverRange | None = None
    prerelease: bool = False
    newest: int | None = None
    newest_by: str = "semver"
    newest_patch_per: str | None = None
    min_age: timedelta | None = None

    @property
    def needs_ages(self) -> bool:
        """True when deciding needs image creation times (the I/O side reads configs only then)."""
        return self.min_age is not None or (self.newest is not None and self.newest_by == "age")

    def describe(self) -> dict[str, Any]:
        """The block as plain data (for results)."""
        described: dict[str, Any] = {}
        if self.include:
            described["include"] = [p.pattern for p in self.include]
        if self.exclude:
            described["exclude"] = [p.pattern for p in self.exclude]
        if self.names:
            described["names"] = list(self.names)
        if self.semver is not None:
            described["semver"] = self.semver.text
            described["prerelease"] = self.prerelease
        if self.newest is not None:
            described["newest"] = self.newest
            described["newest_by"] = self.newest_by
        if self.newest_patch_per:
            described["newest_patch_per"] = self.newest_patch_per
        if self.min_age is not None:
            described["min_age"] = format_duration(self.min_age)
        return described


def _string_list(value: Any, option: str, problems: list[str]) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
        problems.append(f"{option} must be a list of non-empty strings, got {value!r}")
        return []
    return list(value)


def _patterns(values: list[str], option: str, problems: list[str]) -> tuple[re.Pattern[str], ...]:
    compiled = []
    for value in values:
        try:
            pattern = compile_full_match(value, option)
        except InvalidInputError as exc:
            problems.append(str(exc))
            continue
        if pattern is not None:
            compiled.append(pattern)
    return tuple(compiled)


def parse_selectors(block: Mapping[str, Any], where: str = "") -> TagSelectors:
    """Validate a selector block (keys :data:`SELECTOR_KEYS`; others are the caller's business).

    Every mistake gets its own line in the one :class:`InvalidInputError` raised, prefixed with
    ``where`` (``mirror_spec[2]: ``) so a user fixes them all in one go.
    """
    prefix = f"{where}: " if where else ""
    problems: list[str] = []
    include = _patterns(_string_list(block.get("include"), "include", problems), "include", problems)
    exclude = _patterns(_string_list(block.get("exclude"), "exclude", problems), "exclude", problems)
    names = _string_list(block.get("names"), "names", problems)
    semver = None
    if block.get("semver") is not None:
        try:
            semver = parse_semver_range(block["semver"])
        except InvalidInputError as exc:
            problems.append(str(exc))
    prerelease = block.get("prerelease", False)
    if not isinstance(prerelease, bool):
        problems.append(f"prerelease must be true or false, got {prerelease!r}")
        prerelease = False
    newest = block.get("newest")
    if newest is not None and (isinstance(newest, bool) or not isinstance(newest, int) or newest < 1):
        problems.append(f"newest must be a whole number of 1 or more, got {newest!r}")
        newest = None
    newest_by = block.get("newest_by") or "semver"
    if newest_by not in NEWEST_BY:
        problems.append(f"newest_by must be one of {', '.join(NEWEST_BY)}, got {newest_by!r}")
        newest_by = "semver"
    elif block.get("newest_by") is not None and newest is None:
        problems.append("newest_by needs newest (how many tags to keep), e.g. newest: 3")
    patch_per = block.get("newest_patch_per")
    if patch_per is not None and patch_per not in PATCH_GROUPS:
        problems.append(f"newest_patch_per must be one of {', '.join(PATCH_GROUPS)}, got {patch_per!r}")
        patch_per = None
    min_age = None
    if block.get("min_age") is not None:
        try:
            min_age = parse_duration(block["min_age"])
        except ValueError as exc:
            problems.append(f"min_age: {exc}")
    if block.get("prerelease") and semver is None and not problems:
        problems.append("prerelease only applies to a semver range: add semver (e.g. semver: '>=1.0')")
    if problems:
        raise InvalidInputError("\n".join(prefix + line for line in problems))
    return TagSelectors(include, exclude, tuple(dict.fromkeys(names)), semver, prerelease, newest, newest_by,
                        patch_per, min_age)


@dataclass(frozen=True)
class TagDecision:
    """One tag's fate: selected or not, the selector that decided, and why (one phrase)."""

    tag: str
    selected: bool
    selector: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """Plain data for results."""
        return {"tag": self.tag, "selected": self.selected, "selector": self.selector, "reason": self.reason}


@dataclass(frozen=True)
class Selection:
    """What a selector block chose from one repository's tags."""

    decisions: tuple[TagDecision, ...]
    #: Literal ``names`` the source does not have (reported: a mirror never drops them silently).
    missing: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def selected(self) -> list[str]:
        """The selected tags, in the order of the source listing."""
        return [d.tag for d in self.decisions if d.selected]

    def by_selector(self) -> dict[str, list[str]]:
        """Selector name -> the tags it decided (selected or not), for a "what chose what" summary."""
        grouped: dict[str, list[str]] = {}
        for decision in self.decisions:
            grouped.setdefault(decision.selector, []).append(decision.tag)
        return grouped

    def to_dict(self) -> dict[str, Any]:
        """Plain data for results."""
        return {
            "selected": self.selected,
            "decisions": [d.to_dict() for d in self.decisions],
            "missing": list(self.missing),
            "notes": list(self.notes),
        }


def _age_phrase(age: timedelta) -> str:
    return format_duration(timedelta(seconds=max(0, int(age.total_seconds()))))


def select_tags(tags: Iterable[str], selectors: TagSelectors, *,
                created: Mapping[str, datetime | None] | None = None, now: datetime | None = None) -> Selection:
    """Decide every tag of ``tags`` (a repository listing) under ``selectors``.

    ``created`` maps tag -> image creation time (None when unknown); it is needed only when
    :attr:`TagSelectors.needs_ages`, with ``now`` (aware datetimes). Pure: the I/O side reads
    the times. Duplicate tags in ``tags`` are decided once.
    """
    tags = list(dict.fromkeys(tags))
    if selectors.needs_ages and (created is None or now is None):
        raise ValueError("these selectors need image ages: pass created= and now=")
    created = created or {}
    decided: dict[str, TagDecision] = {}
    candidates: dict[str, str] = {}  # tag -> the match stage's reason

    def drop(tag: str, selector: str, reason: str) -> None:
        decided[tag] = TagDecision(tag, False, selector, reason)
        candidates.pop(tag, None)

    listed = set(selectors.names)
    matchers = bool(selectors.include or selectors.names or selectors.semver)
    for tag in tags:
        if is_attached_tag(tag):
            decided[tag] = TagDecision(tag, False, "scheme", "a referrers/cosign scheme tag travels with its subject")
            continue
        if is_lease_tag(tag):
            decided[tag] = TagDecision(tag, False, "scheme", "a prune lease is coordination, not an image")
            continue
        reason = _match_reason(tag, selectors, listed) if matchers else ("all", "no include selector: every tag")
        if reason is None:
            decided[tag] = TagDecision(tag, False, "match", _no_match_reason(selectors))
        else:
            candidates[tag] = f"{reason[0]}: {reason[1]}"

    for tag in list(candidates):
        hit = next((p for p in selectors.exclude if p.fullmatch(tag)), None)
        if hit is not None:
            drop(tag, "exclude", f"matches exclude {hit.pattern!r}")
    if selectors.min_age is not None:
        if now is None:
            raise ValueError("select_tags: min_age needs now")  # a caller's bug, not user input
        for tag in list(candidates):
            when = created.get(tag)
            if when is None:
                drop(tag, "min_age", "age unknown (no creation time in the image config)")
            elif now - when < selectors.min_age:
                drop(tag, "min_age", f"{_age_phrase(now - when)} old, younger than min_age "
                                     f"{format_duration(selectors.min_age)}")

    reducible = [t for t in candidates if t not in listed]
    if selectors.newest_patch_per is not None:
        groups: dict[tuple[int, ...], list[tuple[VersionKey, str]]] = {}
        for tag in reducible:
            full = semver_key(tag)
            if full is None:
                drop(tag, "newest_patch_per", "not a version, so it has no patch level")
                continue
            group = full[:1] if selectors.newest_patch_per == "major" else full[:2]
            groups.setdefault(group, []).append((full, tag))
        for group, members in groups.items():
            members.sort()
            label = ".".join(str(n) for n in group)
            for _key, tag in members[:-1]:
                drop(tag, "newest_patch_per", f"{members[-1][1]} is newer in {label}")
        reducible = [t for t in reducible if t in candidates]
    if selectors.newest is not None:
        ranked = _rank(reducible, selectors.newest_by, created, drop)
        for position, tag in enumerate(ranked):
            if position >= selectors.newest:
                drop(tag, "newest", f"{selectors.newest} newer tags by {selectors.newest_by} are selected")
            else:
                candidates[tag] += f"; newest by {selectors.newest_by} (#{position + 1} of {selectors.newest})"

    for tag, matched in candidates.items():
        selector, _sep, why = matched.partition(": ")
        decided[tag] = TagDecision(tag, True, selector, why)
    missing = tuple(name for name in selectors.names if name not in decided)
    notes = []
    if not any(d.selected for d in decided.values()):
        notes.append("no tag selected")
    return Selection(tuple(decided[t] for t in tags), missing, tuple(notes))


def _match_reason(tag: str, selectors: TagSelectors, listed: set[str]) -> tuple[str, str] | None:
    if tag in listed:
        return "names", "listed by name"
    hit = next((p for p in selectors.include if p.fullmatch(tag)), None)
    if hit is not None:
        return "include", f"matches {hit.pattern!r}"
    if selectors.semver is not None:
        key = version_key(tag)
        if key is not None and selectors.semver.admits(key) and (selectors.prerelease or not is_prerelease(key)):
            return "semver", f"in range {selectors.semver.text!r}"
    return None


def _no_match_reason(selectors: TagSelectors) -> str:
    wanted = []
    if selectors.names:
        wanted.append("not listed in names")
    if selectors.include:
        wanted.append("matches no include pattern")
    if selectors.semver is not None:
        wanted.append(f"not a {'' if selectors.prerelease else 'release '}version in {selectors.semver.text!r}")
    return ", ".join(wanted)


def _rank(tags: Sequence[str], by: str, created: Mapping[str, datetime | None], drop: Any) -> list[str]:
    """``tags`` newest first by ``by``; tags that cannot be ranked are dropped with a reason."""
    if by == "semver":
        versions: list[tuple[VersionKey, str]] = []
        for tag in tags:
            key = semver_key(tag)
            if key is None:
                drop(tag, "newest", "not a version, so it cannot be ranked by semver")
            else:
                versions.append((key, tag))
        return [tag for _key, tag in sorted(versions, key=lambda pair: pair[0], reverse=True)]
    dated = []
    for tag in tags:
        when = created.get(tag)
        if when is None:
            drop(tag, "newest", "age unknown, so it cannot be ranked by age")
        else:
            dated.append((when, tag))
    # Newest first; equal times fall back to the tag text so the order is stable.
    return [tag for _when, tag in sorted(dated, key=lambda pair: (pair[0], pair[1]), reverse=True)]


#: Selectors that a list of whole-tag regexes can express (what ``registry_copy``'s ``tags`` takes).
REGEX_EXPRESSIBLE = ("include", "exclude", "names", "prerelease")


def as_tag_patterns(block: Mapping[str, Any], where: str = "") -> list[str]:
    """The selector block as ONE whole-tag regex, for a copy step that only takes ``tags`` regexes.

    ``include`` and ``names`` (escaped) become alternatives, ``exclude`` a negative lookahead
    anchored at the end, so ``fullmatch`` gives the same answer as :func:`select_tags` (scheme
    tags aside, which the copy leaves out itself). Raises :class:`InvalidInputError` naming the
    selectors that need the tag listing (semver, newest, newest_patch_per, min_age).
    """
    selectors = parse_selectors(block, where)
    needs_listing = [key for key in SELECTOR_KEYS if key not in REGEX_EXPRESSIBLE and block.get(key) is not None]
    if needs_listing:
        prefix = f"{where}: " if where else ""
        raise InvalidInputError(
            f"{prefix}{', '.join(needs_listing)} cannot be written as a tags regex; these selectors need the "
            "many-repository mirror of registry_copy")
    wanted = [p.pattern for p in selectors.include] + [re.escape(name) for name in selectors.names]
    body = "|".join(f"(?:{p})" for p in wanted) if wanted else ".*"
    if selectors.exclude:
        # The lookahead must test the whole tag too: each exclude alternative is anchored with \Z.
        body = "(?!(?:" + "|".join(f"(?:{p.pattern})" for p in selectors.exclude) + r")\Z)(?:" + body + ")"
    return [body]
