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
from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (
    parse_platforms,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.reference import (
    Reference,
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


def read_source(repository: Repository, reference: Reference) -> Manifest:
    """``GET`` the source manifest by its tag or digest: its digest and its bytes in one request.

    A digest in the reference wins over its tag, as in ``docker pull``. By digest the client checks
    the bytes hash to it; by tag, that they match the registry's ``Docker-Content-Digest``.
    Raises :class:`NotFoundError` saying which source is missing.
    """
    try:
        return repository.fetch_manifest(reference.identifier)
    except NotFoundError:
        raise _source_missing(reference) from None


def _source_missing(reference: Reference) -> NotFoundError:
    return NotFoundError(
        f"source {reference} does not exist on {reference.registry}: check the tag or digest "
        "(a tag must be pushed before it can be promoted)")


@dataclass(frozen=True)
class _Known:
    """What a read of a tag found: its digest (all the copy engine asks of a descriptor there)."""

    digest: str


class _Remembered:
    """The destination of a copy, answering repeated reads from memory.

    The copy engine asks whether the destination holds the root twice (its fast path, then its
    graph walk) before it writes anything, and it reads the tags it writes, which the promotion
    has just read (``tags``: tag -> digest or None). Those answers cannot differ in between except
    through the copy's own pushes, which forget what they change.
    """

    def __init__(self, repository: Repository, tags: Mapping[str, str | None] | None = None) -> None:
        self._repository = repository
        self._known: dict[str, Any] = {tag: None if digest is None else _Known(digest)
                                       for tag, digest in (tags or {}).items()}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._repository, name)

    def resolve(self, reference: str) -> Any:
        """The repository's answer, asked once per digest (and not at all for a tag already read)."""
        if reference not in self._known:
            if ":" not in reference:
                return self._repository.resolve(reference)
            self._known[reference] = self._repository.resolve(reference)
        return self._known[reference]

    def push_manifest(self, reference: str, raw: bytes, media_type: str, **kwargs: Any) -> str:
        """Push through, forgetting what was known of the pushed tag or digest."""
        digest = self._repository.push_manifest(reference, raw, media_type, **kwargs)
        self._known.pop(digest, None)
        self._known.pop(reference, None)
        return digest


class _Fetched:
    """A repository whose source manifest was already read: the copy engine gets it from memory.

    The copy engine resolves and fetches its source by digest; the promotion has just read those
    bytes, so asking again would be two more requests for what is already here.
    """

    def __init__(self, repository: Repository, manifest: Manifest) -> None:
        self._repository = repository
        self._manifest = manifest

    def __getattr__(self, name: str) -> Any:
        return getattr(self._repository, name)

    def resolve(self, reference: str) -> Any:
        """The descriptor of the read manifest, else the repository's answer."""
        if reference == self._manifest.digest:
            return self._manifest.descriptor()
        return self._repository.resolve(reference)

    def fetch_manifest(self, reference: str) -> Manifest:
        """The read manifest, else the repository's answer."""
        if reference == self._manifest.digest:
            return self._manifest
        return self._repository.fetch_manifest(reference)


#: How long to wait after the last tag write before reading the tags back, as a multiple of the time
#: this task took from its last guard read to the end of its write (two requests). A rival promotion
#: that read the guard before our write landed sends its write within about that gap; a rival untag
#: with the dummy-manifest method needs about three requests after its read. Three times our gap
#: lets the read-back see either. Measured with bench/races.py: see
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


def _read_back(repository: Repository, plan: PromotionPlan, tags: Sequence[str],
               settle: float, sleep: Callable[[float], None], *, written: Sequence[str] | None = None) -> None:
    """After the writes, wait ``settle`` seconds and check every tag of ``tags`` still holds what was written.

    The registry has no conditional write: a rival that passed its own guard before our write
    landed overwrites it. Reading back turns that silent loss into a failure naming the digest
    now there, so a task never reports a promotion (or removal) that did not stick. ``written``
    (default ``tags``) is every tag this task wrote, for the message.
    """
    if not tags:
        return
    written = list(tags if written is None else written)
    if settle > 0:
        sleep(settle)
    wanted = plan.digest if plan.state == PRESENT else None
    now = read_tags(repository, tags)
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
    clock: Callable[[], float] = time.monotonic,
    read_at: float | None = None,
) -> dict[str, str | None]:
    """Perform the writes of ``plan`` on ``repository``; return tag -> method used (absent) or None.

    present: the exact bytes of ``manifest`` (which must have the plan's
    digest and already exist in ``repository``) are ``PUT`` under each tag
    that has to move. absent: each tag is removed with
    :meth:`Repository.delete_tag` (``tag_delete`` or ``dummy_manifest``), or,
    with ``delete_manifest``, the digests are deleted (every tag pointing at
    them goes with them). A blocked plan raises :class:`ConflictError` before
    any request.

    Concurrent writers, present: a tag guarded by ``expected_digest`` is
    checked on a read made right before its write: the plan's own read for
    the first write when the caller made it just before (``read_at``, the
    ``clock`` time it started), else a new read (absent: the same for the
    first removal, and every later tag is read again). After the writes, once
    ``settle`` seconds have passed (default: :data:`SETTLE_FACTOR` times the
    read-to-write time, within :data:`SETTLE_MIN`..:data:`SETTLE_MAX`), every
    guarded tag is read back. An unguarded tag is written as it is, with no
    read before or after and no wait: the last writer wins, as the user asked.
    absent: every tag is read before its removal and read back after.
    Either check failing raises :class:`ConflictError` ("lost a race",
    ``detail['lost']``: tag -> digest now there), so success is only
    reported for writes that stuck.
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
        guarded: list[str] = []
        for tag in plan.tags_to_write:
            if manifest is None:  # checked just above; this narrows the type for the checker
                raise InvalidInputError("apply_promotion needs the source manifest whose digest the plan promotes")
            now: str | None = None
            if plan.expected_for(tag) is None:
                started = clock()
            elif read_at is not None and not written:
                started = read_at  # the plan's read was made right before: it is this write's guard read
            else:
                # The plan's read is older than one of our writes (or of unknown age): read the guard again.
                started = clock()
                now = _now(repository, tag)
                if now != plan.digest:
                    _guard_before_write(plan, tag, now, written)
            if plan.expected_for(tag) is not None:
                guarded.append(tag)
            if now != plan.digest:
                # The manifest already lives in this repository (by digest), so its
                # referrers are registered; do not touch the fallback index again.
                repository.push_manifest(tag, manifest.raw, manifest.media_type, update_referrers=False)
            gap = max(gap, clock() - started)
            written.append(tag)
            methods[tag] = None
        _read_back(repository, plan, guarded, _settle(settle, gap), sleep, written=written)
        return methods
    if plan.delete_digests:
        for digest in plan.delete_digests:
            started = clock()
            repository.delete_manifest(digest)
            gap = max(gap, clock() - started)
        removed = [change.tag for change in plan.changes if change.changed]
        _read_back(repository, plan, removed, _settle(settle, gap), sleep)
        return {tag: METHOD_MANIFEST_DELETE for tag in removed}
    read = plan.before()
    for tag in plan.tags_to_write:
        if read_at is not None and not written:
            started, now = read_at, read[tag]  # the plan's read was made right before: no second one
        else:
            started = clock()
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
            methods[tag] = repository.delete_tag(tag, current=now)
        except NotFoundError:
            methods[tag] = None  # removed by someone else meanwhile: the read-back confirms it
        written.append(tag)
        gap = max(gap, clock() - started)
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
    # The copy engine is imported only by the promotions that copy: a tag move in one repository never loads it.
    from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.image import (
        CopyOptions,
        copy_image,
    )

    preview = copy_image(source_repository, source_digest, repository, [],
                         CopyOptions(platforms=options.platforms, allow_index_rewrite=True, check_mode=True))
    if preview.digest != source_digest and not options.allow_index_rewrite:
        raise InvalidInputError(
            f"the platforms {', '.join(options.platforms or ())} are only part of the index {source_digest}, so the tags "
            f"would point to a new, reduced index ({preview.digest}) instead of the source digest: set "
            "allow_index_rewrite: true to accept that, or leave platforms unset to promote every platform")
    return preview.digest


def copy_source(source_repository: Repository, source_digest: str, repository: Repository, digest: str,
                options: SourceCopy, check_mode: bool, tags: Sequence[str] = ()) -> CopiedContent:
    """Copy the source graph into ``repository``; return what was copied.

    By default no tag is written here: the tags are set afterwards, once the
    guard has been read again, so a long copy cannot hide a concurrent
    promotion. ``tags`` (for unguarded tags only, which have no guard to read
    again) are written by the copy itself, last, instead of the root by digest.
    The prune lease is not honoured here; the caller does it once.
    """
    from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.image import (
        CopyOptions,
        copy_image,
    )

    result = copy_image(source_repository, source_digest, repository, list(tags), CopyOptions(
        platforms=options.platforms,
        allow_index_rewrite=digest != source_digest,
        referrers=options.referrers,
        check_mode=check_mode,
        honour_leases=False,
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

    Requests, same repository: one ``GET`` of the source (digest and bytes), one ``HEAD`` per tag,
    one ``PUT`` per tag that moves, and, only for tags guarded by ``expected_digest``, one
    read-back each after the settle wait (see :func:`apply_promotion`); a no-op stops after the reads.

    ``source_repository`` is where ``source`` lives. When it is another
    repository (of this registry or another one), the content is first copied
    by digest with the copy engine (``source_copy`` options; the source
    manifest already read is not asked for again), then guarded tags are read
    again and the guard checked before the tags are written as for a
    same-repository promotion. Raises :class:`ConflictError` when the guard
    blocks the plan or a race is lost, having written nothing (or, for a lost
    race, only what its ``detail['written']`` lists); its ``partial`` is the
    result data (:meth:`PromotionResult.to_result`) plus :class:`LostRace`'s keys,
    its ``detail`` (a lost race) :class:`LostRace`'s keys alone.
    """
    tags = check_tags(tags)
    name = f"{repository.registry.host}/{repository.name}"
    copied: CopiedContent | None = None
    manifest: Manifest | None = None
    verified: Mapping[str, Any] | None = None
    read_at: float | None = None
    written_tags: Sequence[str] = ()
    if state == PRESENT:
        if source is None:
            raise InvalidInputError("state=present needs source: ':tag', '@digest' or a full reference")
        source_repo = repository if source_repository is None else source_repository
        same_repository = source_repo is repository
        # One GET gives the source's digest and the bytes every tag write sends.
        source_manifest = read_source(source_repo, source)
        source_digest = source_manifest.digest
        verified = verify(source_repo, source_digest) if verify is not None else None
        fetched = _Fetched(source_repo, source_manifest)
        digest = source_digest if same_repository else \
            target_digest(fetched, source_digest, repository, source_copy or SourceCopy())  # type: ignore[arg-type]
        # The destination tags are read after the source, right before the writes: that read is the guard's.
        read_at = time.monotonic()
        plan = plan_promotion(read_tags(repository, tags), source_digest=digest, expected_digest=expected_digest)
        if plan.changed and not same_repository:
            # Unguarded tags have no guard to read again after the copy: the copy writes them itself,
            # last, instead of the root by digest (one PUT less).
            tagged_by_copy = not check_mode and not plan.guarded and digest == source_digest
            written_tags = plan.tags_to_write if tagged_by_copy else ()
            destination = _Remembered(repository, plan.before() if tagged_by_copy else None)
            copied = copy_source(fetched, source_digest, destination, digest,  # type: ignore[arg-type]
                                 source_copy or SourceCopy(), check_mode, tags=written_tags)
            if not check_mode and plan.guarded:
                # The copy may have taken minutes: read the guarded tags again so the
                # guard sees what is there right before tagging.
                read_at = time.monotonic()
                plan = plan_promotion(read_tags(repository, tags), source_digest=digest,
                                      expected_digest=expected_digest)
                if plan.blocked:
                    # This failure's data has never carried ``verified``; kept so the output is unchanged.
                    partial = PromotionResult(plan, name, copied=copied).to_result()
                    del partial["verified"]
                    raise ConflictError(blocked_message(plan, name) + f" ({digest} was copied but not tagged)",
                                        partial=partial)
        if plan.changed and not check_mode:
            # A platform subset is a new index the copy wrote into this repository: read it there.
            manifest = source_manifest if digest == source_digest else repository.fetch_manifest(digest)
    else:
        read_at = None if delete_manifest else time.monotonic()
        current = read_tags(repository, tags)
        repository_tags = read_repository_tags(repository) if delete_manifest else None
        plan = plan_promotion(current, state=ABSENT, expected_digest=expected_digest,
                              delete_manifest=delete_manifest, force=force, repository_tags=repository_tags)

    planned = PromotionResult(plan, name, check_mode=check_mode, copied=copied, verified=verified)
    if plan.blocked:
        raise ConflictError(blocked_message(plan, name), partial=planned.to_result())
    if check_mode or not plan.changed:
        return replace(planned, method=_planned_method(plan, repository))
    try:
        methods = {tag: None for tag in written_tags} if written_tags else \
            apply_promotion(plan, repository, manifest=manifest, read_at=read_at)
    except ConflictError as err:
        # A lost race: the result says what was planned, ``lost`` / ``after`` what the registry holds.
        raise ConflictError(err.message, detail=err.detail,
                            partial={**planned.to_result(), **(err.detail or {})}) from None
    if state != ABSENT:
        if manifest is None:
            return planned
        if not prune_lease:
            return replace(planned, restored_after_prune=())
        # The opt-in prune lease: wait, then restore what a prune took (its code is loaded only then).
        # pylint: disable=import-outside-toplevel
        from ansible_collections.ocireg.registry.plugins.module_utils._ops.coordination.lease import (
            honour_leases,
        )
        from ansible_collections.ocireg.registry.plugins.module_utils._ops.coordination.written import (
            Written,
        )

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
