# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Declarative tag promotion: read the tags, plan, then (unless checking) apply.

The decision is a pure function, :func:`plan_promotion`: from "which digest does
each tag point to now" and "where should it point" it computes a
:class:`PromotionPlan` with every tag's before / after, the manifests to delete
and the guard violations. :func:`apply_promotion` performs a plan's writes
through the :class:`Repository` API and refuses a plan with violations, so a
failed guard can never write anything. :func:`promote` is the one call a module
makes: read, plan, apply (or not, in check mode), and return plain data.

The compare-and-swap guard (``expected_digest``) is checked per tag that needs
a change: such a tag must currently point to ``expected_digest`` (or be absent
when it is :data:`ABSENT`). A tag already in the desired state satisfies the
guard, so re-running a finished promotion is a no-op rather than a failure, and
re-running an interrupted one completes it.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ansible_collections.ocireg.registry.plugins.module_utils.copy import CopyOptions, copy_image
from ansible_collections.ocireg.registry.plugins.module_utils.copy_graph import parse_platforms
from ansible_collections.ocireg.registry.plugins.module_utils.digest import validate_digest
from ansible_collections.ocireg.registry.plugins.module_utils.errors import (
    ConflictError,
    DigestMismatchError,
    InvalidInputError,
    NotFoundError,
)
from ansible_collections.ocireg.registry.plugins.module_utils.reference import Reference, validate_tag

if TYPE_CHECKING:  # annotations only: registry.py needs requests at import time
    from ansible_collections.ocireg.registry.plugins.module_utils.manifest import Manifest
    from ansible_collections.ocireg.registry.plugins.module_utils.registry import Repository

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
    expected_digest: str | None = None
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

    def before(self) -> dict[str, str | None]:
        """tag -> digest before the promotion (siblings included when they would change)."""
        return {c.tag: c.before for c in self.changes}

    def after(self) -> dict[str, str | None]:
        """tag -> digest after the promotion; equal to :meth:`before` when the plan is blocked."""
        if self.blocked:
            return self.before()
        return {c.tag: c.after for c in self.changes}

    def tags_result(self) -> dict[str, dict[str, Any]]:
        """The ``tags`` result: per tag before / after / action (after = before when blocked)."""
        after = self.after()
        result = {}
        for change in self.changes:
            shown = TagChange(change.tag, change.before, after[change.tag], change.sibling)
            result[change.tag] = shown.to_dict()
        return result


def _check_expected(expected_digest: str | None) -> str | None:
    if expected_digest is None or expected_digest == ABSENT:
        return expected_digest
    try:
        return validate_digest(expected_digest)
    except InvalidInputError as exc:
        raise InvalidInputError(f"expected_digest: {exc.message}; or use 'absent'") from None


def _render(digest: str | None) -> str:
    return digest if digest is not None else "absent"


def _guard_violations(changes: Iterable[TagChange], expected_digest: str | None) -> list[str]:
    """Tags that must change but do not currently point where the guard expects."""
    if expected_digest is None:
        return []
    wanted = None if expected_digest == ABSENT else expected_digest
    return [
        f"tag {c.tag!r} points to {_render(c.before)}, but expected_digest is {expected_digest} "
        f"(the promotion would set it to {_render(c.after)}); someone else moved it since the "
        "expected digest was read: read the current digest again and decide before retrying"
        for c in changes
        if c.changed and not c.sibling and c.before != wanted
    ]


def plan_promotion(
    current: Mapping[str, str | None],
    *,
    state: str = PRESENT,
    source_digest: str | None = None,
    expected_digest: str | None = None,
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
    expected = _check_expected(expected_digest)

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


# -- I/O: reading state, applying a plan -------------------------------------------------------


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


def read_tags(repository: Repository, tags: Iterable[str]) -> dict[str, str | None]:
    """tag -> digest it points to now (``None`` when absent): one ``HEAD`` per tag, no writes."""
    current: dict[str, str | None] = {}
    for tag in tags:
        descriptor = repository.resolve(tag)
        current[tag] = descriptor.digest if descriptor is not None else None
    return current


def read_repository_tags(repository: Repository) -> dict[str, str | None]:
    """Every tag of the repository -> its digest: the tag list, then one ``HEAD`` per tag.

    Needed only to protect other tags when a manifest is deleted; a repository
    the registry does not know has no tags.
    """
    try:
        names = repository.tags()
    except NotFoundError:
        return {}
    return read_tags(repository, names)


def resolve_source(repository: Repository, reference: Reference) -> str:
    """The digest a source reference names; a digest in the reference wins over its tag, as in ``docker pull``.

    Raises :class:`NotFoundError` saying which source is missing.
    """
    descriptor = repository.resolve(reference.identifier)
    if descriptor is None:
        raise NotFoundError(
            f"source {reference} does not exist on {reference.registry}: check the tag or digest "
            "(a tag must be pushed before it can be promoted)")
    return descriptor.digest


def fetch_source(repository: Repository, digest: str) -> Manifest:
    """Fetch the source manifest by digest; the client hashes it, so a changed or corrupt manifest fails here."""
    manifest = repository.fetch_manifest(digest)
    if manifest.digest != digest:  # the client already verified; this guards a future client change
        raise DigestMismatchError(f"source manifest {digest} hashed to {manifest.digest}; nothing was tagged")
    return manifest


def apply_promotion(
    plan: PromotionPlan,
    repository: Repository,
    *,
    manifest: Manifest | None = None,
) -> dict[str, str | None]:
    """Perform the writes of ``plan`` on ``repository``; return tag -> method used (absent) or None.

    present: the exact bytes of ``manifest`` (which must have the plan's
    digest and already exist in ``repository``) are ``PUT`` under each tag
    that has to move. absent: each tag is removed with
    :meth:`Repository.delete_tag` (``tag_delete`` or ``dummy_manifest``), or,
    with ``delete_manifest``, the digests are deleted (every tag pointing at
    them goes with them). A blocked plan raises :class:`ConflictError` before
    any request.
    """
    if plan.blocked:
        raise ConflictError(blocked_message(plan, repository_name=getattr(repository, "name", "")),
                            detail={"violations": list(plan.violations)})
    methods: dict[str, str | None] = {}
    if plan.state == PRESENT:
        if plan.tags_to_write and (manifest is None or manifest.digest != plan.digest):
            raise InvalidInputError("apply_promotion needs the source manifest whose digest the plan promotes")
        for tag in plan.tags_to_write:
            # The manifest already lives in this repository (by digest), so its
            # referrers are registered; do not touch the fallback index again.
            repository.push_manifest(tag, manifest.raw, manifest.media_type, update_referrers=False)
            methods[tag] = None
        return methods
    if plan.delete_digests:
        for digest in plan.delete_digests:
            repository.delete_manifest(digest)
        return {change.tag: METHOD_MANIFEST_DELETE for change in plan.changes if change.changed}
    for tag in plan.tags_to_write:
        try:
            methods[tag] = repository.delete_tag(tag)
        except NotFoundError:
            methods[tag] = None  # removed by someone else meanwhile: the desired state holds
    return methods


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
    after = plan.after()
    for change in plan.changes:
        shown = TagChange(change.tag, change.before, after[change.tag], change.sibling)
        word = _ACTION_WORDS[shown.action][1 if check_mode else 0]
        if plan.blocked:
            word = "blocked"
        extra = ", shared digest deleted" if change.sibling else ""
        lines.append(f"{name}:{change.tag}  {short_digest(change.before)} -> "
                     f"{short_digest(after[change.tag])}  ({word}{extra})")
    return lines


@dataclass(frozen=True)
class SourceCopy:
    """Options for a source in another repository, passed to the copy engine (see :mod:`.copy`).

    ``platforms`` None (or ``all``) copies an index as it is, keeping its
    digest; a subset of an index makes a new index with another digest, which
    needs ``allow_index_rewrite``.
    """

    platforms: tuple[str, ...] | None = None
    allow_index_rewrite: bool = False
    referrers: bool = False


def target_digest(source_repository: Repository, source_digest: str, repository: Repository,
                  options: SourceCopy) -> str:
    """The digest the tags will point to: the source's, or that of the reduced index a platform subset makes.

    Read-only: for a subset the copy engine runs in check mode to compute the
    reduced index (no writes).
    """
    if parse_platforms(options.platforms) is None:
        return source_digest
    preview = copy_image(source_repository, source_digest, repository, [],
                         CopyOptions(platforms=options.platforms, allow_index_rewrite=True, check_mode=True))
    if preview.digest != source_digest and not options.allow_index_rewrite:
        raise InvalidInputError(
            f"the platforms {', '.join(options.platforms)} are only part of the index {source_digest}, so the tags "
            f"would point to a new, reduced index ({preview.digest}) instead of the source digest: set "
            "allow_index_rewrite: true to accept that, or leave platforms unset to promote every platform")
    return preview.digest


def copy_source(source_repository: Repository, source_digest: str, repository: Repository, digest: str,
                options: SourceCopy, check_mode: bool) -> dict[str, Any]:
    """Copy the source graph into ``repository`` by digest, untagged; return what was copied.

    No tag is written here: the tags are set afterwards, once the guard has
    been read again, so a long copy cannot hide a concurrent promotion.
    """
    result = copy_image(source_repository, source_digest, repository, [], CopyOptions(
        platforms=options.platforms,
        allow_index_rewrite=digest != source_digest,
        referrers=options.referrers,
        check_mode=check_mode,
    ))
    if result.digest != digest:
        raise DigestMismatchError(
            f"copying {source_digest} produced {result.digest}, not the {digest} that was planned; nothing was "
            "tagged: retry, and report it if it persists")
    return {
        **dict(result.copied),
        "mounted": len(result.mounted),
        "skipped": dict(result.skipped),
    }


def promote(
    repository: Repository,
    tags: Sequence[str],
    *,
    state: str = PRESENT,
    source: Reference | None = None,
    source_repository: Repository | None = None,
    source_copy: SourceCopy | None = None,
    expected_digest: str | None = None,
    delete_manifest: bool = False,
    force: bool = False,
    check_mode: bool = False,
) -> dict[str, Any]:
    """Read, plan and (unless ``check_mode``) apply a promotion; return the result as plain data.

    ``source_repository`` is where ``source`` lives. When it is another
    repository (of this registry or another one), the content is first copied
    by digest with the copy engine (``source_copy`` options), then the tags
    are read again and the guard checked before they are written as for a
    same-repository promotion. Raises :class:`ConflictError` when the guard
    blocks the plan (``detail`` holds the result data: tags, before, after),
    having written nothing.
    """
    tags = check_tags(tags)
    current = read_tags(repository, tags)
    name = f"{repository.registry.host}/{repository.name}"
    copied: dict[str, Any] | None = None
    manifest = None
    if state == PRESENT:
        if source is None:
            raise InvalidInputError("state=present needs source: ':tag', '@digest' or a full reference")
        same_repository = source_repository is None or source_repository is repository
        source_repo = repository if same_repository else source_repository
        source_digest = resolve_source(source_repo, source)
        digest = source_digest if same_repository else \
            target_digest(source_repo, source_digest, repository, source_copy or SourceCopy())
        plan = plan_promotion(current, source_digest=digest, expected_digest=expected_digest)
        if plan.changed and not same_repository:
            copied = copy_source(source_repo, source_digest, repository, digest, source_copy or SourceCopy(),
                                 check_mode)
            if not check_mode:
                # The copy may have taken minutes: read the tags again so the
                # guard sees what is there right before tagging.
                plan = plan_promotion(read_tags(repository, tags), source_digest=digest,
                                      expected_digest=expected_digest)
                if plan.blocked:
                    result = promotion_result(plan, name, copied=copied)
                    raise ConflictError(blocked_message(plan, name) + f" ({digest} was copied but not tagged)",
                                        detail=result)
        if plan.changed and not check_mode:
            manifest = fetch_source(repository, digest)
    else:
        repository_tags = read_repository_tags(repository) if delete_manifest else None
        plan = plan_promotion(current, state=ABSENT, expected_digest=expected_digest,
                              delete_manifest=delete_manifest, force=force, repository_tags=repository_tags)

    result = promotion_result(plan, name, check_mode=check_mode, copied=copied)
    if plan.blocked:
        raise ConflictError(blocked_message(plan, name), detail=result)
    if check_mode or not plan.changed:
        result["method"] = _planned_method(plan, repository)
        return result
    methods = apply_promotion(plan, repository, manifest=manifest)
    if state == ABSENT:
        used = sorted({m for m in methods.values() if m})
        result["method"] = used[0] if len(used) == 1 else ("mixed" if used else None)
        for tag, method in methods.items():
            result["tags"][tag]["method"] = method
    return result


def _planned_method(plan: PromotionPlan, repository: Repository) -> str | None:
    """The removal method a run would use, when known without writing (None otherwise)."""
    if plan.state != ABSENT or not plan.changed:
        return None
    if plan.delete_digests:
        return METHOD_MANIFEST_DELETE
    known = repository.registry.supports_tag_delete
    if known is None:
        return None  # only a DELETE would tell, and check mode does not write
    return "tag_delete" if known else "dummy_manifest"


def promotion_result(plan: PromotionPlan, name: str, *, check_mode: bool = False,
                     copied: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The module result of a plan: changed, digest, tags, before / after maps, summary."""
    tags = plan.tags_result()
    for entry in tags.values():
        entry["method"] = None
    return {
        "changed": plan.changed,
        "digest": plan.digest,
        "tags": tags,
        "before": plan.before(),
        "after": plan.after(),
        "deleted": list(plan.delete_digests) if plan.changed else [],
        "method": None,
        "copied": dict(copied) if copied is not None else None,
        "summary": summary_lines(plan, name, check_mode),
        "notes": list(plan.notes),
    }
