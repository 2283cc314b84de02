# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Promotion I/O: read the tags, copy a source from elsewhere, apply a plan.

:func:`apply_promotion` performs a plan's writes through the :class:`Repository` API and refuses
a plan with violations, so a failed guard can never write anything. :func:`promote` is the one
call a module makes: read, plan, apply (or not, in check mode), and return a :class:`PromotionResult`.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    ConflictError,
    DigestMismatchError,
    InvalidInputError,
    NotFoundError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.reference import (
    Reference,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.coordination.lease import (
    Written,
    honour_leases,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.graph import (
    parse_platforms,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.image import (
    CopyOptions,
    copy_image,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.promotion.plan import (
    ABSENT,
    METHOD_MANIFEST_DELETE,
    PRESENT,
    PromotionPlan,
    blocked_message,
    check_tags,
    plan_promotion,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.promotion.result import (
    CopiedContent,
    LostRace,
    PromotionResult,
)

if TYPE_CHECKING:  # annotations only: registry.py needs requests at import time
    from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import (
        Repository,
    )
    from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (
        Manifest,
    )


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


#: How long to wait after the last tag write before reading the tags back, as a multiple of the time
#: this task took from its last guard read to the end of its write (two requests). A rival promotion
#: that read the guard before our write landed sends its write within about that gap; a rival untag
#: with the dummy-manifest method needs about three requests after its read. Three times our gap
#: lets the read-back see either. Measured with tests/integration/test_races.py: see
#: docs/guide_parallel.md for the window with and without it.
SETTLE_FACTOR = 3.0

#: Bounds of that wait in seconds: the floor covers scheduler jitter on a busy controller (two
#: ansible-playbook processes on two cores), the ceiling keeps a slow registry from stalling a play.
SETTLE_MIN = 0.05
SETTLE_MAX = 2.0


def _render(digest: str | None) -> str:
    return digest if digest is not None else "absent"


def _now(repository: Repository, tag: str) -> str | None:
    descriptor = repository.resolve(tag)
    return descriptor.digest if descriptor is not None else None


def _guard_before_write(plan: PromotionPlan, tag: str, now: str | None, written: Sequence[str]) -> None:
    """Re-check the compare-and-swap guard on the value read right before the write.

    The plan was made from an earlier read; a rival may have moved the tag since. A tag whose
    guard (``expected_digest``, or its own entry of a mapping) no longer holds is not written.
    """
    expected = plan.expected_for(tag)
    if expected is None:
        return
    wanted = None if expected == ABSENT else expected
    if now == wanted:
        return
    done = f" (already written: {', '.join(written)})" if written else ""
    raise ConflictError(
        f"lost a race on tag {tag!r}: it now points to {_render(now)}, no longer to the expected "
        f"{expected}; another writer moved it after this task read it, so it was not written{done}. "
        "Read the current digest again and decide before retrying",
        detail=LostRace({tag: now}, tuple(written)).to_dict())


def _read_back(repository: Repository, plan: PromotionPlan, written: Sequence[str],
               settle: float, sleep: Callable[[float], None]) -> None:
    """After the writes, wait ``settle`` seconds and check every written tag still holds what was written.

    The registry has no conditional write: a rival that passed its own guard before our write
    landed overwrites it. Reading back turns that silent loss into a failure naming the digest
    now there, so a task never reports a promotion (or removal) that did not stick.
    """
    if not written:
        return
    if settle > 0:
        sleep(settle)
    wanted = plan.digest if plan.state == PRESENT else None
    now = read_tags(repository, written)
    lost = {tag: digest for tag, digest in now.items() if digest != wanted}
    if not lost:
        return
    listed = "; ".join(f"{tag!r} now points to {_render(digest)}" for tag, digest in lost.items())
    what = f"set to {plan.digest}" if plan.state == PRESENT else "removed"
    raise ConflictError(
        f"lost a race: this task {what} the tags {', '.join(written)}, but another writer changed them right "
        f"after: {listed}. The registry holds the other writer's value; read the current digest again and decide "
        "before retrying (serialize writers of the same tag: see the guide on running in parallel)",
        detail=LostRace(lost, tuple(written), after=now).to_dict())


def apply_promotion(
    plan: PromotionPlan,
    repository: Repository,
    *,
    manifest: Manifest | None = None,
    settle: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, str | None]:
    """Perform the writes of ``plan`` on ``repository``; return tag -> method used (absent) or None.

    present: the exact bytes of ``manifest`` (which must have the plan's
    digest and already exist in ``repository``) are ``PUT`` under each tag
    that has to move. absent: each tag is removed with
    :meth:`Repository.delete_tag` (``tag_delete`` or ``dummy_manifest``), or,
    with ``delete_manifest``, the digests are deleted (every tag pointing at
    them goes with them). A blocked plan raises :class:`ConflictError` before
    any request.

    Concurrent writers: each tag is read again right before its write and the
    ``expected_digest`` guard re-checked on that read; after the writes, once
    ``settle`` seconds have passed (default: :data:`SETTLE_FACTOR` times the
    read-to-write time, within :data:`SETTLE_MIN`..:data:`SETTLE_MAX`), every
    written tag is read back. Either check failing raises
    :class:`ConflictError` ("lost a race", ``detail['lost']``: tag -> digest
    now there), so success is only reported for writes that stuck.
    """
    if plan.blocked:
        raise ConflictError(blocked_message(plan, repository_name=getattr(repository, "name", "")),
                            detail={"violations": list(plan.violations)})
    methods: dict[str, str | None] = {}
    written: list[str] = []
    gap = 0.0
    if plan.state == PRESENT:
        if plan.tags_to_write and (manifest is None or manifest.digest != plan.digest):
            raise InvalidInputError("apply_promotion needs the source manifest whose digest the plan promotes")
        for tag in plan.tags_to_write:
            if manifest is None:  # checked just above; this narrows the type for the checker
                raise InvalidInputError("apply_promotion needs the source manifest whose digest the plan promotes")
            started = time.monotonic()
            now = _now(repository, tag)
            if now != plan.digest:
                _guard_before_write(plan, tag, now, written)
                # The manifest already lives in this repository (by digest), so its
                # referrers are registered; do not touch the fallback index again.
                repository.push_manifest(tag, manifest.raw, manifest.media_type, update_referrers=False)
            gap = max(gap, time.monotonic() - started)
            written.append(tag)
            methods[tag] = None
        _read_back(repository, plan, written, _settle(settle, gap), sleep)
        return methods
    if plan.delete_digests:
        for digest in plan.delete_digests:
            started = time.monotonic()
            repository.delete_manifest(digest)
            gap = max(gap, time.monotonic() - started)
        removed = [change.tag for change in plan.changes if change.changed]
        _read_back(repository, plan, removed, _settle(settle, gap), sleep)
        return {tag: METHOD_MANIFEST_DELETE for tag in removed}
    read = plan.before()
    for tag in plan.tags_to_write:
        started = time.monotonic()
        now = _now(repository, tag)
        if now is None:
            # Removed by someone else meanwhile, or read while a rival rewrote it (Distribution
            # rewrites a tag's link in place): the read-back tells which.
            methods[tag] = None
            written.append(tag)
            continue
        _guard_before_write(plan, tag, now, written)
        if now != read[tag]:
            # Someone promoted it since this task read it: a removal must not destroy a
            # promotion it never saw (retention's untag skips such a tag for the same reason).
            raise ConflictError(
                f"lost a race on tag {tag!r}: it pointed to {_render(read[tag])} when this task read it and now "
                f"points to {_render(now)}; another writer moved it meanwhile, so it was not removed"
                + (f" (already removed: {', '.join(written)})" if written else "")
                + ". Read it again and decide before retrying",
                detail=LostRace({tag: now}, tuple(written)).to_dict())
        try:
            methods[tag] = repository.delete_tag(tag)
        except NotFoundError:
            methods[tag] = None  # removed by someone else meanwhile: the read-back confirms it
        written.append(tag)
        gap = max(gap, time.monotonic() - started)
    _read_back(repository, plan, written, _settle(settle, gap), sleep)
    return methods


def _settle(settle: float | None, gap: float) -> float:
    """The wait before the read-back: ``settle`` when given, else scaled from the measured gap."""
    if settle is not None:
        return settle
    return min(max(SETTLE_FACTOR * gap, SETTLE_MIN), SETTLE_MAX)


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
            f"the platforms {', '.join(options.platforms or ())} are only part of the index {source_digest}, so the tags "
            f"would point to a new, reduced index ({preview.digest}) instead of the source digest: set "
            "allow_index_rewrite: true to accept that, or leave platforms unset to promote every platform")
    return preview.digest


def copy_source(source_repository: Repository, source_digest: str, repository: Repository, digest: str,
                options: SourceCopy, check_mode: bool) -> CopiedContent:
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
    return CopiedContent(
        manifests=result.copied["manifests"],
        blobs=result.copied["blobs"],
        bytes=result.copied["bytes"],
        mounted=len(result.mounted),
        skipped_blobs=result.already_present["blobs"],
        skipped_manifests=result.already_present["manifests"],
        skipped_bytes=result.already_present["bytes"],
    )


def promote(
    repository: Repository,
    tags: Sequence[str],
    *,
    state: str = PRESENT,
    source: Reference | None = None,
    source_repository: Repository | None = None,
    source_copy: SourceCopy | None = None,
    expected_digest: str | Mapping[str, str] | None = None,
    delete_manifest: bool = False,
    force: bool = False,
    check_mode: bool = False,
    verify: Callable[[Repository, str], Mapping[str, Any]] | None = None,
    prune_lease: bool = False,
) -> PromotionResult:
    """Read, plan and (unless ``check_mode``) apply a promotion; return what it did.

    ``prune_lease`` (the opt-in option) lists the tags once after the writes and honours a
    prune's lease (_ops/coordination); off, nothing is sent for it.

    ``verify`` (the gate of the ``verify`` option) is called with the source repository and digest
    once that is resolved, before any copy or tag write; what it returns is ``verified`` in the
    result, and its :class:`VerificationError` propagates with nothing written.

    ``source_repository`` is where ``source`` lives. When it is another
    repository (of this registry or another one), the content is first copied
    by digest with the copy engine (``source_copy`` options), then the tags
    are read again and the guard checked before they are written as for a
    same-repository promotion. Raises :class:`ConflictError` when the guard
    blocks the plan or a race is lost, having written nothing (or, for a lost
    race, only what its ``detail['written']`` lists); its ``detail`` is the
    result data (:meth:`PromotionResult.to_result`) plus :class:`LostRace`'s keys.
    """
    tags = check_tags(tags)
    current = read_tags(repository, tags)
    name = f"{repository.registry.host}/{repository.name}"
    copied: CopiedContent | None = None
    manifest: Manifest | None = None
    verified: Mapping[str, Any] | None = None
    if state == PRESENT:
        if source is None:
            raise InvalidInputError("state=present needs source: ':tag', '@digest' or a full reference")
        source_repo = repository if source_repository is None else source_repository
        same_repository = source_repo is repository
        source_digest = resolve_source(source_repo, source)
        verified = verify(source_repo, source_digest) if verify is not None else None
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
                    # This failure's data has never carried ``verified``; kept so the output is unchanged.
                    detail = PromotionResult(plan, name, copied=copied).to_result()
                    del detail["verified"]
                    raise ConflictError(blocked_message(plan, name) + f" ({digest} was copied but not tagged)",
                                        detail=detail)
        if plan.changed and not check_mode:
            manifest = fetch_source(repository, digest)
    else:
        repository_tags = read_repository_tags(repository) if delete_manifest else None
        plan = plan_promotion(current, state=ABSENT, expected_digest=expected_digest,
                              delete_manifest=delete_manifest, force=force, repository_tags=repository_tags)

    planned = PromotionResult(plan, name, check_mode=check_mode, copied=copied, verified=verified)
    if plan.blocked:
        raise ConflictError(blocked_message(plan, name), detail=planned.to_result())
    if check_mode or not plan.changed:
        return replace(planned, method=_planned_method(plan, repository))
    try:
        methods = apply_promotion(plan, repository, manifest=manifest)
    except ConflictError as err:
        # A lost race: the result says what was planned, ``lost`` / ``after`` what the registry holds.
        raise ConflictError(err.message, detail={**planned.to_result(), **(err.detail or {})}) from None
    if state != ABSENT:
        if manifest is None:
            return planned
        if not prune_lease:
            return replace(planned, restored_after_prune=())
        # The opt-in prune lease: wait, then restore what a prune took.
        lease = honour_leases(repository, [Written(t, manifest.digest, manifest.raw, manifest.media_type)
                                           for t in plan.tags_to_write])
        return replace(planned, restored_after_prune=tuple(lease.restored), lease_notes=tuple(lease.warnings))
    return replace(planned, method=_applied_method(methods), methods=methods)


def _applied_method(methods: Mapping[str, str | None]) -> str | None:
    """The removal method of the whole task: the one every removed tag used, ``mixed``, or None."""
    used = sorted({m for m in methods.values() if m})
    return used[0] if len(used) == 1 else ("mixed" if used else None)


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
