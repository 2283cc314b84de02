# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Promotion I/O: read the tags, copy a source from elsewhere, apply a plan.

:func:`apply_promotion` performs a plan's writes through the :class:`Repository` API and refuses
a plan with violations, so a failed guard can never write anything. :func:`promote` is the one
call a module makes: read, plan, apply (or not, in check mode), and return plain data.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
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
    promotion_result,
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
        "skipped": dict(result.already_present),
    }


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
    verify: Callable[[Repository, str], dict] | None = None,
) -> dict[str, Any]:
    """Read, plan and (unless ``check_mode``) apply a promotion; return the result as plain data.

    ``verify`` (the gate of the ``verify`` option) is called with the source repository and digest
    once that is resolved, before any copy or tag write; what it returns is ``verified`` in the
    result, and its :class:`VerificationError` propagates with nothing written.

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
    manifest = verified = None
    if state == PRESENT:
        if source is None:
            raise InvalidInputError("state=present needs source: ':tag', '@digest' or a full reference")
        same_repository = source_repository is None or source_repository is repository
        source_repo = repository if same_repository else source_repository
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
    result["verified"] = verified
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
