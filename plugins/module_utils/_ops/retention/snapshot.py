# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Retention's reads: a repository into a :class:`RepositorySnapshot` (tags, manifests, configs, referrers).

:func:`collect_snapshot` lists a repository's tags, resolves each one (concurrently, bounded), fetches
every distinct manifest by digest (verified), the image config of images whose age matters
(size-capped), index children and referrers (the referrers API, or the fallback index).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    ManifestError,
    NotFoundError,
    TooLargeError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_schemes import (
    attached_subject,
    referrers_tag,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.pool import (
    map_bounded,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.reads import (
    fetch_config,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.plan import (
    ManifestRecord,
    RepositorySnapshot,
)

if TYPE_CHECKING:  # annotations only: registry.py needs requests at import time
    from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import (
        Registry,
        Repository,
    )
    from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (
        Manifest,
    )


def repository_name(repo: Repository) -> str:
    """How plans name a repository: ``host/name``."""
    return f"{repo.registry.host}/{repo.name}"



def _referrers_api_absent(registry: Registry) -> bool:
    """True once a referrers request showed the registry has no referrers API.

    Then the ``sha256-<hex>`` fallback indexes (tags, already read) are the
    whole truth and no per-digest request is needed.
    """
    # Repository.referrers learns this on its first call.
    return registry.supports_referrers_api is False



def resolve_tags(repo: Repository, tags: Sequence[str], max_concurrency: int | None = None) -> dict[str, str]:
    """``{tag: digest}`` for ``tags`` (HEAD each, concurrently); tags that vanished meanwhile are left out."""
    def one(tag: str) -> str | None:
        descriptor = repo.resolve(tag)
        return None if descriptor is None else descriptor.digest

    found = map_bounded(one, list(tags), max_concurrency)
    return {tag: digest for tag, digest in zip(tags, found) if digest is not None}



def read_manifest(repo: Repository, digest: str, with_config: bool) -> ManifestRecord | None:
    """The planner's record of one manifest (None when it no longer exists).

    ``with_config`` fetches the image config (labels, ``created``); a config
    that is missing, too large or unparsable leaves them empty, so the age is
    *unknown* and the planner keeps the digest rather than guess.
    """
    try:
        manifest = repo.fetch_manifest(digest)
    except NotFoundError:
        return None
    labels: dict[str, str] = {}
    created = None
    if with_config and not manifest.is_index:
        try:
            config = fetch_config(repo, manifest)
        except (NotFoundError, TooLargeError, ManifestError):
            config = None
        if config:
            labels, created = dict(config.get("labels") or {}), config.get("created")
    return _record(manifest, labels, created)



def _record(manifest: Manifest, labels: Mapping[str, str], created: str | None) -> ManifestRecord:
    return ManifestRecord(
        digest=manifest.digest,
        media_type=manifest.media_type,
        size=manifest.size,
        children=tuple(child.digest for child in manifest.children()) if manifest.is_index else (),
        subject=manifest.subject.digest if manifest.subject is not None else None,
        artifact_type=manifest.effective_artifact_type,
        annotations=dict(manifest.annotations or {}),
        labels=dict(labels),
        created=created,
    )



def collect_snapshot(repo: Repository, *, name: str | None = None,
                     max_concurrency: int | None = None) -> RepositorySnapshot:
    """Read one repository into a :class:`RepositorySnapshot` (reads only).

    Tags are resolved with HEAD; each distinct manifest is fetched once by
    digest and verified; index children and referrers are followed
    transitively. Image configs are fetched only where an age can decide
    something: digests reached from a normal tag (directly or as an index
    child). Referrers and cosign artifacts follow their subject, so their own
    time is never consulted and their configs are not fetched. A repository
    that does not exist gives an empty snapshot with ``exists`` false.
    """
    name = name or repository_name(repo)
    try:
        tags = sorted(repo.tags())
    except NotFoundError:
        return RepositorySnapshot(name, exists=False)
    resolved = resolve_tags(repo, tags, max_concurrency)
    timed = {digest for tag, digest in resolved.items() if attached_subject(tag) is None}
    records: dict[str, ManifestRecord] = {}
    referrers: dict[str, list[str]] = {}
    frontier = sorted(set(resolved.values()))
    seen = set(frontier)
    while frontier:
        fetched = map_bounded(lambda d: read_manifest(repo, d, d in timed), frontier, max_concurrency)
        found: list[str] = []
        for digest, record in zip(frontier, fetched):
            if record is None:
                continue
            records[digest] = record
            for child in record.children:
                if digest in timed:
                    timed.add(child)
                found.append(child)
        present = [d for d in frontier if d in records]
        for digest, listed in zip(present, _referrers(repo, present, resolved, records, max_concurrency)):
            if listed:
                referrers[digest] = listed
                found.extend(listed)
        frontier = sorted(set(found) - seen)
        seen.update(frontier)
    return RepositorySnapshot(name, tags=resolved, manifests=records, referrers=referrers)



def _referrers(repo: Repository, digests: Sequence[str], tags: Mapping[str, str],
               records: Mapping[str, ManifestRecord], max_concurrency: int | None) -> list[list[str]]:
    """The referrer digests of each of ``digests``, asking the registry only when needed."""
    if not digests:
        return []

    def ask(digest: str) -> list[str]:
        return sorted({d.digest for d in repo.referrers(digest)})

    def from_fallback(digest: str) -> list[str]:
        index = records.get(tags.get(referrers_tag(digest), ""))
        return sorted(set(index.children)) if index is not None else []

    out: dict[str, list[str]] = {}
    pending = list(digests)
    if not _referrers_api_absent(repo.registry):
        # The first answer tells whether the registry has the API at all.
        first = pending.pop(0)
        out[first] = ask(first)
    if _referrers_api_absent(repo.registry):
        # The fallback indexes are tags: already resolved and fetched, with the referrers as children.
        out.update({d: from_fallback(d) for d in pending})
    else:
        out.update(zip(pending, map_bounded(ask, pending, max_concurrency)))
    return [out[d] for d in digests]
