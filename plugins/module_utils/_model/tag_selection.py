# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which tags: one selector value (:class:`TagSelection`) and one function that applies it (:func:`select_tags`).

Every way a user chooses tags compiles into a :class:`TagSelection`: ``registry_copy``'s ``tags``
regexes (:meth:`TagSelection.from_patterns`), its ``select`` / ``mirror_spec`` selector blocks
(:func:`parse_selection`), and ``registry_prune``'s rules and shorthands (``_ops/retention/policy.py``).
A selection runs in three stages, and every tag gets one decision saying which selector decided it
and why (:attr:`Selection.decisions`):

1. **Candidates, a union** (as skopeo sync's ``images``, ``images-by-tag-regex`` and
   ``images-by-semver`` add up): a tag is a candidate when it is one of the ``names``, starts with
   one of the ``prefixes``, matches one of the ``globs`` or ``patterns`` (whole tag), or lies in the
   ``semver`` range. With no candidate selector at all, every tag is a candidate.
2. **Exclusions** (each one can only remove): a tag matching any ``exclude_*`` entry is dropped,
   then ``min_age`` drops tags younger than the duration or of unknown age.
3. **Reductions** (each one can only remove; literal ``names`` are exempt, they were asked for by
   name): ``newest_patch_per`` (``minor`` / ``major``: the highest version of each group), then
   ``newest`` N ranked by ``newest_by`` (``semver`` or ``age``).

Tags of the referrers and cosign schemes (``sha256-<hex>[.sig|.att|.sbom]``) are skipped: they
belong to another manifest and travel with it (a caller that copies them as plain tags says
``skip_referrer_tags=False``). A prune lease tag is never selected: it is coordination, not an image.

Regexes are full matches (``v1`` selects ``v1``, not ``v10``); globs are :mod:`fnmatch` patterns,
case-sensitive. Pre-releases (``1.2.0-rc.1``, and suffixed tags such as ``1.25-alpine``, which semver
reads as pre-releases) are left out of a ``semver`` range unless ``prerelease`` is true.
"""
from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.semver_range import (
    SemverRange,
    VersionKey,
    is_prerelease,
    parse_semver_range,
    version_key,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_order import (
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

#: The keys of a selector block (``registry_copy``'s ``select`` and each ``mirror_spec`` entry).
SELECTOR_KEYS = ("include", "exclude", "names", "semver", "prerelease", "newest", "newest_by",
                 "newest_patch_per", "min_age")
NEWEST_BY = ("semver", "age")
PATCH_GROUPS = ("minor", "major")
#: Candidate kinds, in the order :func:`unmatched_candidates` reports them.
CANDIDATE_KINDS = ("names", "prefix", "glob", "regex", "semver")


def compile_tag_pattern(pattern: str, label: str) -> re.Pattern[str]:
    """Compile a whole-tag regex; a bad one raises :class:`InvalidInputError` in one line starting with ``label``."""
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise InvalidInputError(
            f"{label} {pattern!r} does not compile ({exc}), so it is not a valid regular expression; write a "
            "Python regular expression that matches the whole tag (no ^ or $ needed), e.g. "
            "'v[0-9]+\\.[0-9]+' or 'pr-.*'"
        ) from None


@dataclass(frozen=True)
class TagSelection:
    """A validated tag selector: candidates, exclusions and reductions (see the module docstring).

    Build it with :func:`parse_selection` (a selector block), :meth:`from_patterns` (a list of
    whole-tag regexes) or directly; apply it with :func:`select_tags`.
    """

    names: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()
    globs: tuple[str, ...] = ()
    patterns: tuple[re.Pattern[str], ...] = ()
    semver: SemverRange | None = None
    prerelease: bool = False
    exclude_names: tuple[str, ...] = ()
    exclude_prefixes: tuple[str, ...] = ()
    exclude_globs: tuple[str, ...] = ()
    exclude_patterns: tuple[re.Pattern[str], ...] = ()
    min_age: timedelta | None = None
    newest: int | None = None
    newest_by: str = "semver"
    newest_patch_per: str | None = None

    @classmethod
    def from_patterns(cls, patterns: Iterable[str], label: str = "tags pattern") -> TagSelection:
        """Candidates from whole-tag regexes (copy's ``tags``, prune's ``match`` / ``protect``).

        A tag is selected when one of ``patterns`` matches all of it, as ``re.fullmatch`` says;
        an empty list has no candidate selector, so it selects every tag. Every bad pattern gets
        its own line (starting with ``label``) in the one :class:`InvalidInputError` raised.
        """
        compiled, problems = [], []
        for pattern in patterns:
            try:
                compiled.append(compile_tag_pattern(pattern, label))
            except InvalidInputError as exc:
                problems.append(str(exc))
        if problems:
            raise InvalidInputError("\n".join(problems))
        return cls(patterns=tuple(compiled))

    @property
    def has_candidates(self) -> bool:
        """True when some candidate selector is given (else every tag is a candidate)."""
        return bool(self.names or self.prefixes or self.globs or self.patterns or self.semver is not None)

    @property
    def has_exclusions(self) -> bool:
        """True when some ``exclude_*`` entry is given."""
        return bool(self.exclude_names or self.exclude_prefixes or self.exclude_globs or self.exclude_patterns)

    @property
    def is_empty(self) -> bool:
        """True when the selection says nothing, so it selects every ordinary tag."""
        return not (self.has_candidates or self.has_exclusions or self.min_age is not None
                    or self.newest is not None or self.newest_patch_per is not None)

    @property
    def needs_ages(self) -> bool:
        """True when deciding needs image creation times (the I/O side reads configs only then)."""
        return self.min_age is not None or (self.newest is not None and self.newest_by == "age")

    def without_reductions(self) -> TagSelection:
        """The candidates and pattern exclusions alone: the tags whose age a full selection may need."""
        return replace(self, min_age=None, newest=None, newest_patch_per=None)

    def candidate_entries(self) -> list[tuple[str, str]]:
        """Each candidate entry as ``(kind, text)``, kinds from :data:`CANDIDATE_KINDS`, regexes as written."""
        entries = [("names", name) for name in self.names]
        entries += [("prefix", prefix) for prefix in self.prefixes]
        entries += [("glob", glob) for glob in self.globs]
        entries += [("regex", pattern.pattern) for pattern in self.patterns]
        if self.semver is not None:
            entries.append(("semver", self.semver.text))
        return entries

    def describe(self) -> dict[str, Any]:
        """The selection as plain data, in selector-block keys (for results)."""
        described: dict[str, Any] = {}
        if self.patterns:
            described["include"] = [p.pattern for p in self.patterns]
        if self.exclude_patterns:
            described["exclude"] = [p.pattern for p in self.exclude_patterns]
        if self.names:
            described["names"] = list(self.names)
        for key, values in (("prefix", self.prefixes), ("glob", self.globs), ("exclude_names", self.exclude_names),
                            ("exclude_prefix", self.exclude_prefixes), ("exclude_glob", self.exclude_globs)):
            if values:
                described[key] = list(values)
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
            compiled.append(compile_tag_pattern(value, option))
        except InvalidInputError as exc:
            problems.append(str(exc))
    return tuple(compiled)


def parse_selection(block: Mapping[str, Any], where: str = "") -> TagSelection:
    """Validate a selector block (keys :data:`SELECTOR_KEYS`; others are the caller's business).

    ``include`` holds the candidate regexes, ``exclude`` the excluding ones. Every mistake gets its
    own line in the one :class:`InvalidInputError` raised, prefixed with ``where``
    (``mirror_spec[2]: ``) so a user fixes them all in one go.
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
    return TagSelection(names=tuple(dict.fromkeys(names)), patterns=include, semver=semver, prerelease=prerelease,
                        exclude_patterns=exclude, min_age=min_age, newest=newest, newest_by=newest_by,
                        newest_patch_per=patch_per)


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
    """What a :class:`TagSelection` chose from one repository's tags."""

    decisions: tuple[TagDecision, ...]
    #: Literal ``names`` the listing does not have (reported: a mirror never drops them silently).
    missing: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def selected(self) -> list[str]:
        """The selected tags, in the order of the listing."""
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


_Drop = Callable[[str, str, str], None]


def select_tags(tags: Iterable[str], selection: TagSelection, *,
                created: Mapping[str, datetime | None] | None = None, now: datetime | None = None,
                skip_referrer_tags: bool = True) -> Selection:
    """Decide every tag of ``tags`` (a repository listing) under ``selection``: the one answer to "which tags".

    ``created`` maps tag -> image creation time (None when unknown); it is needed only when
    :attr:`TagSelection.needs_ages`, with ``now`` (aware datetimes). Pure: the I/O side reads
    the times. Duplicate tags in ``tags`` are decided once. Referrers and cosign scheme tags are
    skipped unless ``skip_referrer_tags`` is false (then they are ordinary tags); lease tags always are.
    """
    tags = list(dict.fromkeys(tags))
    if selection.needs_ages and (created is None or now is None):
        raise ValueError("these selectors need image ages: pass created= and now=")
    created = created or {}
    decided: dict[str, TagDecision] = {}
    candidates: dict[str, str] = {}  # tag -> the candidate stage's "selector: reason"

    def drop(tag: str, selector: str, reason: str) -> None:
        decided[tag] = TagDecision(tag, False, selector, reason)
        candidates.pop(tag, None)

    listed = set(selection.names)
    for tag in tags:
        if skip_referrer_tags and is_attached_tag(tag):
            decided[tag] = TagDecision(tag, False, "scheme", "a referrers/cosign scheme tag travels with its subject")
            continue
        if is_lease_tag(tag):
            decided[tag] = TagDecision(tag, False, "scheme", "a prune lease is coordination, not an image")
            continue
        reason = (_candidate_reason(tag, selection, listed) if selection.has_candidates
                  else ("all", "no include selector: every tag"))
        if reason is None:
            decided[tag] = TagDecision(tag, False, "match", _no_candidate_reason(selection))
        else:
            candidates[tag] = f"{reason[0]}: {reason[1]}"

    if selection.has_exclusions:
        for tag in list(candidates):
            why = _exclusion(tag, selection)
            if why is not None:
                drop(tag, "exclude", why)
    if selection.min_age is not None:
        if now is None:  # needs_ages was checked above
            raise AssertionError("select_tags needs now= for min_age")
        for tag in list(candidates):
            when = created.get(tag)
            if when is None:
                drop(tag, "min_age", "age unknown (no creation time in the image config)")
            elif now - when < selection.min_age:
                drop(tag, "min_age", f"{_age_phrase(now - when)} old, younger than min_age "
                                     f"{format_duration(selection.min_age)}")
    _reduce(selection, [t for t in candidates if t not in listed], created, candidates, drop)

    for tag, matched in candidates.items():
        selector, _sep, why = matched.partition(": ")
        decided[tag] = TagDecision(tag, True, selector, why)
    missing = tuple(name for name in selection.names if name not in decided)
    notes = []
    if not any(d.selected for d in decided.values()):
        notes.append("no tag selected")
    return Selection(tuple(decided[t] for t in tags), missing, tuple(notes))


def _reduce(selection: TagSelection, reducible: list[str], created: Mapping[str, datetime | None],
            candidates: dict[str, str], drop: _Drop) -> None:
    """The reductions: the newest patch per group, then the newest N (literal names are not passed in)."""
    if selection.newest_patch_per is not None:
        groups: dict[tuple[int, ...], list[tuple[VersionKey, str]]] = {}
        for tag in reducible:
            full = semver_key(tag)
            if full is None:
                drop(tag, "newest_patch_per", "not a version, so it has no patch level")
                continue
            group = full[:1] if selection.newest_patch_per == "major" else full[:2]
            groups.setdefault(group, []).append((full, tag))
        for group, members in groups.items():
            members.sort()
            label = ".".join(str(n) for n in group)
            for _key, tag in members[:-1]:
                drop(tag, "newest_patch_per", f"{members[-1][1]} is newer in {label}")
        reducible = [t for t in reducible if t in candidates]
    if selection.newest is not None:
        ranked = _rank(reducible, selection.newest_by, created, drop)
        for position, tag in enumerate(ranked):
            if position >= selection.newest:
                drop(tag, "newest", f"{selection.newest} newer tags by {selection.newest_by} are selected")
            else:
                candidates[tag] += f"; newest by {selection.newest_by} (#{position + 1} of {selection.newest})"


def _candidate_reason(tag: str, selection: TagSelection, listed: set[str]) -> tuple[str, str] | None:
    if tag in listed:
        return "names", "listed by name"
    prefix = next((p for p in selection.prefixes if tag.startswith(p)), None)
    if prefix is not None:
        return "prefix", f"starts with {prefix!r}"
    glob = next((g for g in selection.globs if fnmatch.fnmatchcase(tag, g)), None)
    if glob is not None:
        return "glob", f"matches glob {glob!r}"
    hit = next((p for p in selection.patterns if p.fullmatch(tag)), None)
    if hit is not None:
        return "include", f"matches {hit.pattern!r}"
    if selection.semver is not None:
        key = version_key(tag)
        if key is not None and selection.semver.admits(key) and (selection.prerelease or not is_prerelease(key)):
            return "semver", f"in range {selection.semver.text!r}"
    return None


def _no_candidate_reason(selection: TagSelection) -> str:
    wanted = []
    if selection.names:
        wanted.append("not listed in names")
    if selection.prefixes:
        wanted.append("starts with no prefix")
    if selection.globs:
        wanted.append("matches no glob")
    if selection.patterns:
        wanted.append("matches no pattern")
    if selection.semver is not None:
        # "not a release version in '>=1.1 <2'" read as if 2.0.1 were no release: say the range first.
        wanted.append(f"outside the version range {selection.semver.text!r}"
                      + ("" if selection.prerelease else " (or a pre-release, which it leaves out)"))
    return ", ".join(wanted)


def _exclusion(tag: str, selection: TagSelection) -> str | None:
    """Why ``tag`` is excluded, or None when no ``exclude_*`` entry matches it."""
    if tag in selection.exclude_names:
        return "listed in exclude_names"
    prefix = next((p for p in selection.exclude_prefixes if tag.startswith(p)), None)
    if prefix is not None:
        return f"starts with exclude_prefix {prefix!r}"
    glob = next((g for g in selection.exclude_globs if fnmatch.fnmatchcase(tag, g)), None)
    if glob is not None:
        return f"matches exclude_glob {glob!r}"
    hit = next((p for p in selection.exclude_patterns if p.fullmatch(tag)), None)
    return None if hit is None else f"matches exclude {hit.pattern!r}"


def _rank(tags: Sequence[str], by: str, created: Mapping[str, datetime | None], drop: _Drop) -> list[str]:
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
    dated: list[tuple[datetime, str]] = []
    for tag in tags:
        when = created.get(tag)
        if when is None:
            drop(tag, "newest", "age unknown, so it cannot be ranked by age")
        else:
            dated.append((when, tag))
    # Newest first; equal times fall back to the tag text so the order is stable.
    return [tag for _when, tag in sorted(dated, key=lambda pair: (pair[0], pair[1]), reverse=True)]


def unmatched_candidates(tags: Iterable[str], selection: TagSelection) -> list[tuple[str, str]]:
    """The candidate entries (``(kind, text)``, see :meth:`TagSelection.candidate_entries`) that select
    none of ``tags`` on their own, for a warning naming each useless entry; none when ``tags`` is empty."""
    tags = list(tags)
    if not tags:
        return []
    out = []
    for kind, text in selection.candidate_entries():
        alone = _entry_selection(selection, kind, text)
        if not any(_candidate_reason(tag, alone, set(alone.names)) for tag in tags):
            out.append((kind, text))
    return out


def _entry_selection(selection: TagSelection, kind: str, text: str) -> TagSelection:
    """A selection holding one candidate entry of ``selection`` (the compiled regex or range is reused)."""
    if kind == "names":
        return TagSelection(names=(text,))
    if kind == "prefix":
        return TagSelection(prefixes=(text,))
    if kind == "glob":
        return TagSelection(globs=(text,))
    if kind == "regex":
        return TagSelection(patterns=tuple(p for p in selection.patterns if p.pattern == text)[:1])
    return TagSelection(semver=selection.semver, prerelease=selection.prerelease)
