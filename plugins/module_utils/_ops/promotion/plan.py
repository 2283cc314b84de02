# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The pure decision of a promotion: from what each tag points to now and where it should point,
a :class:`PromotionPlan` with every tag's before / after, the manifests to delete and the guard
violations; and the messages of a plan (the result built from it is in :mod:`.result`).

The compare-and-swap guard (``expected_digest``) is checked per tag that needs a change: such a
tag must currently point to its expected digest (or be absent when that is :data:`ABSENT`). One
digest applies to every tag; a mapping gives each tag its own (tags it does not list are not
guarded). A tag already in the desired state satisfies the guard, so re-running a finished
promotion is a no-op rather than a failure, and re-running an interrupted one completes it.
Messages say what really happened: a tag that does not exist yet was not "moved by someone else".
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._model.digest import (
    validate_digest,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.reference import (
    validate_tag,
)

#: ``expected_digest`` value meaning "every tag that changes must not exist yet".
ABSENT = "absent"


PRESENT = "present"


STATES = (PRESENT, ABSENT)


# Result ``method`` when the digest itself is deleted (rather than only the tag).
METHOD_MANIFEST_DELETE = "manifest_delete"


@dataclass(frozen=True)
class TagChange:
    """One tag's move: the digest it points to before and after (``None`` = absent).

    ``sibling`` marks a tag outside the requested list that disappears only
    because ``delete_manifest`` + ``force`` deletes the digest it shares.
    """

    tag: str
    before: str | None
    after: str | None
    sibling: bool = False

    @property
    def changed(self) -> bool:
        """True when the tag moves, appears or disappears."""
        return self.before != self.after

    @property
    def action(self) -> str:
        """``none``, ``create`` (new tag), ``move`` (retag) or ``remove``."""
        if not self.changed:
            return "none"
        if self.after is None:
            return "remove"
        return "create" if self.before is None else "move"

    def to_dict(self) -> dict[str, Any]:
        """Plain data for results."""
        return {"before": self.before, "after": self.after, "action": self.action, "sibling": self.sibling}


@dataclass(frozen=True)
class PromotionPlan:
    """What a promotion would do, computed without I/O by :func:`plan_promotion`."""

    state: str
    digest: str | None
    changes: tuple[TagChange, ...]
    delete_digests: tuple[str, ...] = ()
    violations: tuple[str, ...] = ()
    expected_digest: str | Mapping[str, str] | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def blocked(self) -> bool:
        """True when a guard failed: the plan must not be applied."""
        return bool(self.violations)

    @property
    def changed(self) -> bool:
        """True when applying the plan would write anything."""
        return not self.blocked and (bool(self.delete_digests) or any(c.changed for c in self.changes))

    @property
    def tags_to_write(self) -> tuple[str, ...]:
        """Requested tags whose digest must change (present: PUT; absent: untag)."""
        if self.blocked:
            return ()
        return tuple(c.tag for c in self.changes if c.changed and not c.sibling)

    def expected_for(self, tag: str) -> str | None:
        """The guard of one tag: its expected digest, :data:`ABSENT`, or None when the tag is not guarded."""
        return _expected_for(self.expected_digest, tag)

    @property
    def guarded(self) -> bool:
        """True when ``expected_digest`` guards at least one requested tag (so its reads are a guard's)."""
        return any(self.expected_for(c.tag) is not None for c in self.changes)

    def before(self) -> dict[str, str | None]:
        """tag -> digest before the promotion (siblings included when they would change)."""
        return {c.tag: c.before for c in self.changes}

    def after(self) -> dict[str, str | None]:
        """tag -> digest after the promotion; equal to :meth:`before` when the plan is blocked."""
        if self.blocked:
            return self.before()
        return {c.tag: c.after for c in self.changes}

    def shown_changes(self) -> tuple[TagChange, ...]:
        """The changes as results show them: when the plan is blocked, every tag stays where it was."""
        if not self.blocked:
            return self.changes
        return tuple(TagChange(c.tag, c.before, c.before, c.sibling) for c in self.changes)

    def tags_result(self) -> dict[str, dict[str, Any]]:
        """The ``tags`` result without methods: per tag before / after / action / sibling (after = before when blocked)."""
        return {change.tag: change.to_dict() for change in self.shown_changes()}


def _check_one(value: Any, label: str) -> str:
    if value == ABSENT:
        return ABSENT
    if not isinstance(value, str):
        raise InvalidInputError(f"{label} must be a digest such as sha256:... or 'absent', got {value!r}")
    try:
        return validate_digest(value)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{label}: {exc.message}; or use 'absent'") from None


def _check_expected(expected_digest: Any, tags: Sequence[str] = ()) -> str | dict[str, str] | None:
    """One digest (or ``absent``) for every tag, or a mapping tag -> digest / ``absent``, validated."""
    if expected_digest is None:
        return None
    if isinstance(expected_digest, Mapping):
        unknown = sorted(str(t) for t in expected_digest if t not in tags)
        if unknown:
            raise InvalidInputError(
                f"expected_digest names tag(s) {', '.join(unknown)} that are not in tags ({', '.join(tags)}); "
                "a mapping gives each tag of tags its expected digest or 'absent'")
        return {tag: _check_one(value, f"expected_digest[{tag}]") for tag, value in expected_digest.items()}
    return _check_one(expected_digest, "expected_digest")


def _render(digest: str | None) -> str:
    return digest if digest is not None else "absent"


def _expected_for(expected: str | Mapping[str, str] | None, tag: str) -> str | None:
    """The guard of one tag: its digest, ``absent``, or None when the tag is not guarded."""
    if isinstance(expected, Mapping):
        return expected.get(tag)
    return expected


def _guard_message(change: TagChange, expected: str) -> str:
    """Why one tag fails the guard, in the words of what happened."""
    will = f"the promotion would set it to {_render(change.after)}"
    if change.before is None:
        return (f"tag {change.tag!r} does not exist yet, but expected_digest is {expected} ({will}); nobody moved "
                f"it: to create it in the same task give expected_digest per tag, e.g. {{{change.tag}: absent, "
                "<other tag>: <its digest>}, or promote it in its own task")
    if expected == ABSENT:
        return (f"tag {change.tag!r} already exists and points to {change.before}, but expected_digest is absent "
                f"({will}); it existed before this run or was created since expected_digest was decided: read it "
                "again and decide before retrying")
    return (f"tag {change.tag!r} points to {change.before}, but expected_digest is {expected} ({will}); someone "
            "else moved it since the expected digest was read: read the current digest again and decide before "
            "retrying")


def _guard_violations(changes: Iterable[TagChange], expected_digest: str | Mapping[str, str] | None) -> list[str]:
    """Tags that must change but do not currently point where the guard expects."""
    out = []
    for change in changes:
        expected = _expected_for(expected_digest, change.tag)
        if expected is None or not change.changed or change.sibling:
            continue
        wanted = None if expected == ABSENT else expected
        if change.before != wanted:
            out.append(_guard_message(change, expected))
    return out


def check_source_text(text: str, repository: str = "") -> str:
    """Refuse a bare word as a promotion source: ``staging`` would silently mean ``docker.io/library/staging``.

    A source is ``:tag`` or ``@digest`` of the repository itself, or a reference with a ``/``.
    """
    if text and not any(char in text for char in "/:@"):
        where = f" of {repository}" if repository else ""
        raise InvalidInputError(
            f"source {text!r} is a bare name, which would mean the Docker Hub image library/{text}: for the tag "
            f"{text}{where} write source: ':{text}' (or '@sha256:...' for a digest); for another repository give "
            "host/repository:tag")
    return text


def plan_promotion(
    current: Mapping[str, str | None],
    *,
    state: str = PRESENT,
    source_digest: str | None = None,
    expected_digest: str | Mapping[str, str] | None = None,
    delete_manifest: bool = False,
    force: bool = False,
    repository_tags: Mapping[str, str | None] | None = None,
) -> PromotionPlan:
    """Plan a promotion. Pure: no I/O.

    ``current`` maps each requested tag (in order) to the digest it points to
    now, ``None`` when the tag does not exist. ``present`` points every tag at
    ``source_digest``; ``absent`` removes the tags, and with ``delete_manifest``
    the digests they point to. ``repository_tags`` (every tag of the
    repository -> digest) is required with ``delete_manifest``: a digest that a
    tag outside ``current`` also points to is only deleted with ``force`` (and
    that tag is then listed as a removed ``sibling``).
    """
    if state not in STATES:
        raise InvalidInputError(f"state must be one of {', '.join(STATES)}, got {state!r}")
    if not current:
        raise InvalidInputError("tags is empty: name at least one tag to promote or remove")
    expected = _check_expected(expected_digest, list(current))

    if state == PRESENT:
        if source_digest is None:
            raise InvalidInputError("state=present needs the source digest")
        validate_digest(source_digest)
        changes = [TagChange(tag, before, source_digest) for tag, before in current.items()]
        violations = _guard_violations(changes, expected)
        return PromotionPlan(PRESENT, source_digest, tuple(changes), (), tuple(violations), expected)

    changes = [TagChange(tag, before, None) for tag, before in current.items()]
    violations = _guard_violations(changes, expected)
    delete_digests: list[str] = []
    notes: list[str] = []
    if delete_manifest:
        if repository_tags is None:
            raise InvalidInputError("delete_manifest needs the repository's tag list to protect other tags")
        for digest in current.values():
            if digest is not None and digest not in delete_digests:
                delete_digests.append(digest)
        for digest in delete_digests:
            siblings = sorted(t for t, d in repository_tags.items() if d == digest and t not in current)
            if not siblings:
                continue
            if force:
                changes.extend(TagChange(tag, digest, None, sibling=True) for tag in siblings)
                notes.append(f"force: deleting {digest} also removes the tags {', '.join(siblings)}")
            else:
                violations.append(
                    f"deleting manifest {digest} would also remove the tags {', '.join(siblings)}, which are "
                    "not in tags: add them to tags, set force: true to delete them too, or use "
                    "delete_manifest: false to remove only the listed tags"
                )
    return PromotionPlan(
        ABSENT,
        None,
        tuple(changes),
        tuple(delete_digests),
        tuple(violations),
        expected,
        tuple(notes),
    )


def check_tags(tags: Iterable[str]) -> list[str]:
    """Validate tags, keeping their order and dropping repeats."""
    found: list[str] = []
    for tag in tags:
        validate_tag(tag)
        if tag not in found:
            found.append(tag)
    if not found:
        raise InvalidInputError("tags is empty: name at least one tag to promote or remove")
    return found


def blocked_message(plan: PromotionPlan, repository_name: str = "") -> str:
    """The failure message of a blocked plan: every violation, and that nothing changed."""
    where = f" in {repository_name}" if repository_name else ""
    return f"promotion{where} blocked, nothing was changed: " + "; ".join(plan.violations)


def short_digest(digest: str | None) -> str:
    """``sha256:0123456789ab`` (12 hex characters) for summaries; ``absent`` for no digest."""
    if digest is None:
        return "absent"
    algorithm, encoded = digest.split(":", 1)
    return f"{algorithm}:{encoded[:12]}"


_ACTION_WORDS = {
    "none": ("unchanged", "unchanged"),
    "create": ("created", "would be created"),
    "move": ("moved", "would move"),
    "remove": ("removed", "would be removed"),
}


def summary_lines(plan: PromotionPlan, name: str, check_mode: bool = False) -> list[str]:
    """One readable line per tag: ``name:tag  before -> after  (moved)``."""
    lines = []
    for shown in plan.shown_changes():
        word = "blocked" if plan.blocked else _ACTION_WORDS[shown.action][1 if check_mode else 0]
        extra = ", shared digest deleted" if shown.sibling else ""
        lines.append(f"{name}:{shown.tag}  {short_digest(shown.before)} -> "
                     f"{short_digest(shown.after)}  ({word}{extra})")
    return lines
