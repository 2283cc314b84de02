# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Retention's reads: a repository into a :class:`RepositorySnapshot` (tags, manifests, configs, referrers).

:func:`collect_snapshot` reads a repository near the request floor: the tag list, then **one GET per
tag** (the answer gives the digest and the manifest at once), one GET per index child or referrer
that no tag already gave, one config read per distinct image config whose age matters, and the
referrers API once per subject only where the registry has it. Nothing is read twice in a run.
A normal tag's config is read by the worker that read the tag, right after it, so the config reads
overlap the tag reads rather than wait for the last of them.
Parsed manifests are reduced to :class:`ManifestRecord` at once, so their bytes are not held.

:func:`live_tags_for_apply` is the apply step's re-resolution scope (see its docstring).

Why GET by tag and not HEAD per tag plus GET per digest: a tag's manifest is a few hundred bytes,
so on Distribution a GET costs the same round trip as a HEAD (bench/retention.py measures both);
HEAD + GET would be ``tags + 2 x digests`` requests where GET by tag is ``tags + digests``.
"""
from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    ManifestError,
    NotFoundError,
    TooLargeError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.mediatypes import (
    is_config,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_schemes import (
    attached_subject,
    is_lease_tag,
    referrers_tag,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.pool import (
    SharedPool,
    map_bounded,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.reads import (
    fetch_config_of,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.plan import (
    ACTION_DELETE,
    ACTION_UNTAG,
    ManifestRecord,
    PlanEntry,
    RepositorySnapshot,
)

if TYPE_CHECKING:  # annotations only: registry.py needs requests at import time
    from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import (
        Registry,
        Repository,
    )
    from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (
        Descriptor,
        Manifest,
    )


def repository_name(repo: Repository) -> str:
    """How plans name a repository: ``host/name``."""
    return f"{repo.registry.host}/{repo.name}"


def image_tags(repo: Repository) -> set[str]:
    """The repository's tags without prune leases: a lease is coordination, never an image to plan for.

    Raises :class:`NotFoundError` for a repository the registry does not know.
    """
    return {tag for tag in repo.tags() if not is_lease_tag(tag)}


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


_T = TypeVar("_T")
_R = TypeVar("_R")

#: What retention needs of an image config: its labels and its ``created`` time.
ConfigFacts = tuple[dict[str, str], "str | None"]


class ConfigCache:
    """Image config facts by config digest, shared by the snapshots of one run (thread-safe).

    Configs are content-addressed: a digest read and verified in one
    repository says the same in every other, so a registry whose
    repositories share base images reads each config once. A config being
    read by one repository is waited for, not read again, by the others
    (the reader is already running, so the wait cannot deadlock the pool).
    """

    def __init__(self) -> None:
        self._facts: dict[str, ConfigFacts] = {}
        self._reading: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def get_many(self, digests: Iterable[str]) -> dict[str, ConfigFacts]:
        """The cached facts of those of ``digests`` already read."""
        with self._lock:
            return {d: self._facts[d] for d in digests if d in self._facts}

    def read(self, digest: str, load: Callable[[], ConfigFacts | None]) -> ConfigFacts:
        """The facts of config ``digest``: cached, or read once by ``load`` (None: unreadable, not cached)."""
        while True:
            with self._lock:
                if digest in self._facts:
                    return self._facts[digest]
                waiting = self._reading.get(digest)
                if waiting is None:
                    done = self._reading[digest] = threading.Event()
                    break
            waiting.wait()  # another repository is reading it; its answer (or failure) is what we need
        try:
            facts = load()
            if facts is not None:
                with self._lock:
                    self._facts[digest] = facts
            return facts if facts is not None else ({}, None)
        finally:
            with self._lock:
                del self._reading[digest]
            done.set()

    def __len__(self) -> int:
        return len(self._facts)


@dataclass(frozen=True)
class _Read:
    """One manifest as read: the planner's record (no config facts yet) and the config to read for its age."""

    record: ManifestRecord
    #: The image config descriptor (None for indexes and artifacts): read later, only if the age matters.
    config: Descriptor | None = None


def _reduce(manifest: Manifest) -> _Read:
    """Keep what the planner needs and drop the manifest's bytes (memory stays flat as tags grow)."""
    config = None if manifest.is_index else manifest.config
    return _Read(
        record=ManifestRecord(
            digest=manifest.digest,
            media_type=manifest.media_type,
            size=manifest.size,
            children=tuple(child.digest for child in manifest.children()) if manifest.is_index else (),
            subject=manifest.subject.digest if manifest.subject is not None else None,
            artifact_type=manifest.effective_artifact_type,
            annotations=dict(manifest.annotations or {}),
        ),
        config=config if config is not None and is_config(config.media_type) else None,
    )


class _Reader:
    """The reads of one snapshot: every manifest at most once, every image config at most once.

    Worker threads store what they read here (under a lock), so the thread
    pool returns only digests and no duplicate manifest is kept per tag.
    """

    def __init__(self, repo: Repository, max_concurrency: int | None, pool: SharedPool | None = None,
                 config_cache: ConfigCache | None = None) -> None:
        self.repo = repo
        self.max_concurrency = max_concurrency
        self.pool = pool
        self.config_cache = config_cache if config_cache is not None else ConfigCache()
        self.reads: dict[str, _Read] = {}
        #: Config facts this snapshot read or looked up, an unreadable config's ``({}, None)`` included (read once).
        self.config_facts: dict[str, ConfigFacts] = {}
        #: Configs a worker has taken on (read or being read): another worker leaves them alone.
        self._configs_taken: set[str] = set()
        self._lock = threading.Lock()

    def map(self, function: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
        """Fan out on the shared pool when there is one, else on this snapshot's own bounded threads."""
        return map_bounded(function, items, self.max_concurrency, pool=self.pool)

    def _keep(self, manifest: Manifest) -> _Read:
        read = _reduce(manifest)
        with self._lock:
            return self.reads.setdefault(read.record.digest, read)

    def by_tags(self, tags: Sequence[str]) -> dict[str, str]:
        """``{tag: digest}``: one GET per tag gives both the digest and the manifest (verified against
        the registry's ``Docker-Content-Digest``). Tags that vanished meanwhile are left out.

        A normal tag's image config is read by the same worker right after the tag (the first tag of a
        digest to arrive reads it; see :meth:`configs`): its age will be needed (:func:`_timed`), and
        reading it now keeps every worker busy to the end instead of waiting for the slowest tag
        before the first config read starts.
        """
        def one(tag: str) -> str | None:
            try:
                read = self._keep(self.repo.fetch_manifest(tag))
            except NotFoundError:
                return None
            if read.config is not None and attached_subject(tag) is None:
                self._config(read.config)
            return read.record.digest

        found = self.map(one, list(tags))
        return {tag: digest for tag, digest in zip(tags, found) if digest is not None}

    def by_digests(self, digests: Iterable[str]) -> None:
        """GET (verified) each of ``digests`` that no earlier read gave; a missing one is left out."""
        wanted = sorted(set(digests) - set(self.reads))

        def one(digest: str) -> None:
            try:
                self._keep(self.repo.fetch_manifest(digest))
            except NotFoundError:
                pass

        self.map(one, wanted)

    def _config(self, descriptor: Descriptor) -> ConfigFacts | None:
        """Read the facts of one image config unless this snapshot has (or another worker is reading) them.

        Answers the facts it read, None when it left the config to the worker that took it.
        """
        digest = descriptor.digest
        with self._lock:
            if digest in self._configs_taken:
                return None
            self._configs_taken.add(digest)
        facts = self.config_cache.read(digest, lambda: self._load_config(descriptor))
        with self._lock:
            self.config_facts[digest] = facts
        return facts

    def _load_config(self, descriptor: Descriptor) -> ConfigFacts | None:
        """One config GET: ``(labels, created)``; None when missing, too large or unparsable (not cached)."""
        try:
            config = fetch_config_of(self.repo, descriptor)
        except (NotFoundError, TooLargeError, ManifestError):
            # Not cached: a config missing here may be readable in another repository.
            return None
        return (dict(config.get("labels") or {}), config.get("created")) if config else None

    def configs(self, timed: Iterable[str]) -> dict[str, tuple[dict[str, str], str | None]]:
        """``{config digest: (labels, created)}`` for the image configs of ``timed`` digests, each read once.

        Configs the tag reads already fetched (:meth:`by_tags`) are not read again; the rest (those of
        index children, found later) are read here. A config that is missing, too large or unparsable
        gives no labels and no time: the age is *unknown* and the planner keeps the digest rather than guess.
        """
        wanted: dict[str, Descriptor] = {}
        for digest in timed:
            read = self.reads.get(digest)
            if read is not None and read.config is not None:
                wanted.setdefault(read.config.digest, read.config)
        with self._lock:
            known = {d: self.config_facts[d] for d in wanted if d in self.config_facts}
        known.update(self.config_cache.get_many(d for d in wanted if d not in known))
        names = sorted(set(wanted) - set(known))
        # Every worker of by_tags has returned, so nothing is being read: each name is read here, once.
        facts = self.map(lambda name: self._config(wanted[name]) or ({}, None), names)
        known.update(zip(names, facts))
        return known


def collect_snapshot(repo: Repository, *, name: str | None = None, max_concurrency: int | None = None,
                     pool: SharedPool | None = None, config_cache: ConfigCache | None = None,
                     untagged: Sequence[str] = ()) -> RepositorySnapshot:
    """Read one repository into a :class:`RepositorySnapshot` (reads only).

    Each tag is read with one GET (digest and manifest at once); index
    children and referrers are followed transitively, each distinct manifest
    read once and verified. Image configs are read (once per distinct
    config) only where an age can decide something: digests reached from a
    normal tag (directly or as an index child). Referrers and cosign
    artifacts follow their subject, so their own time is never consulted and
    their configs are not read; cosign and referrers-fallback tags are known
    from their names, and the fallback indexes were read as tags, so on a
    registry without the referrers API one probe is the only referrers
    request. A repository that does not exist gives an empty snapshot.

    ``pool`` runs the reads on a pool shared with other snapshots (one bound
    for a whole registry) and ``config_cache`` shares the image configs read
    (content-addressed, so one read serves every repository holding it). ``untagged`` digests (a
    deferred delete's, whose window passed) are read too, with what they own; one gone is left out.
    """
    name = name or repository_name(repo)
    try:
        tags = sorted(image_tags(repo))
    except NotFoundError:
        return RepositorySnapshot(name, exists=False)
    reader = _Reader(repo, max_concurrency, pool, config_cache)
    resolved = reader.by_tags(tags)
    reader.by_digests(untagged)
    referrers: dict[str, list[str]] = {}
    frontier = sorted((set(resolved.values()) | set(untagged)) & set(reader.reads))
    seen = set(frontier)
    while frontier:
        found: list[str] = []
        for digest in frontier:
            found.extend(reader.reads[digest].record.children)
        records = {d: reader.reads[d].record for d in reader.reads}
        for digest, listed in zip(frontier, _referrers(repo, frontier, resolved, records, reader.map)):
            if listed:
                referrers[digest] = listed
                found.extend(listed)
        reader.by_digests(d for d in found if d not in seen)
        frontier = sorted({d for d in found if d not in seen and d in reader.reads})
        seen.update(found)
    timed = _timed(resolved, reader.reads)
    configs = reader.configs(timed)
    manifests: dict[str, ManifestRecord] = {}
    for digest, read in reader.reads.items():
        record = read.record
        if digest in timed and read.config is not None and read.config.digest in configs:
            labels, created = configs[read.config.digest]
            record = dataclasses.replace(record, labels=labels, created=created)
        manifests[digest] = record
    return RepositorySnapshot(name, tags=resolved, manifests=manifests, referrers=referrers)


def _timed(tags: Mapping[str, str], reads: Mapping[str, _Read]) -> set[str]:
    """Digests whose age can decide something: tagged by a normal tag, and their index children."""
    timed = {digest for tag, digest in tags.items() if attached_subject(tag) is None}
    stack = list(timed)
    while stack:
        read = reads.get(stack.pop())
        for child in read.record.children if read is not None else ():
            if child not in timed:
                timed.add(child)
                stack.append(child)
    return timed


def _referrers(repo: Repository, digests: Sequence[str], tags: Mapping[str, str],
               records: Mapping[str, ManifestRecord],
               fan_out: Callable[[Callable[[str], list[str]], Sequence[str]], list[list[str]]]) -> list[list[str]]:
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
        # The first answer tells whether the registry has the API at all. Without it, Repository.referrers
        # also reads the subject's fallback tag: probe with a subject that has none, so no tag is read twice.
        first = next((d for d in pending if referrers_tag(d) not in tags), pending[0])
        pending.remove(first)
        out[first] = ask(first)
    if _referrers_api_absent(repo.registry):
        # The fallback indexes are tags: already read, with the referrers as children.
        out.update({d: from_fallback(d) for d in pending})
    else:
        out.update(zip(pending, fan_out(ask, pending)))
    return [out[d] for d in digests]


# -- the apply step's re-resolution scope ------------------------------------------------------------


def recheck_scope(entries: Iterable[PlanEntry]) -> tuple[set[str], bool]:
    """The tags the apply step re-reads itself just before each write, and whether anything is deleted (pure).

    Condemned tags (those of digests about to be deleted, and tags about to
    be untagged) are re-resolved by the apply step right before their write,
    once each; the second item says whether the plan deletes any manifest,
    which is when the other tags need one look too (a tag that moved onto a
    condemned digest since planning would be deleted with it).
    """
    condemned: set[str] = set()
    deletes = False
    for entry in entries:
        if entry.action == ACTION_DELETE:
            deletes = True
            condemned.update(entry.tags)
        elif entry.action == ACTION_UNTAG:
            condemned.update(entry.untag_tags)
    return condemned, deletes


def live_tags_for_apply(repo: Repository, entries: Sequence[PlanEntry], tags_before: Mapping[str, str], *,
                        check_mode: bool, max_concurrency: int | None = None,
                        head_budget: int | None = None) -> dict[str, str]:
    """The tag -> digest view the apply step checks the plan against, with as few reads as keep it safe.

    - Check mode: the plan's own view, with no request at all (nothing is
      written, so nothing can be hurt by a change since planning).
    - A plan that only untags: the plan's view too; each condemned tag is
      re-resolved by the apply step just before it is removed.
    - A plan that deletes: the tag list (one request, paginated) shows tags
      created or removed since planning; every tag that is *not* condemned is
      resolved once (any of them may have moved onto a condemned digest, and
      deleting that digest would take the tag with it: invariant 7). A
      condemned tag keeps its planned digest here, because the apply step
      re-resolves it right before its write (one read per tag, not two).

    A tag that the list no longer shows is left out, so the deletion that
    would have taken it is skipped as changed since the plan.

    ``head_budget`` caps the HEADs of this look (a safety check is budgeted like
    any other request): names the plan never saw are always resolved, then the
    kept tags in the plan's order until the budget is spent; the rest keep their
    planned digest.
    """
    before = dict(tags_before)
    condemned, deletes = recheck_scope(entries)
    if check_mode or not deletes:
        return before
    try:
        listed = image_tags(repo)
    except NotFoundError:
        return {}
    live = {tag: before[tag] for tag in sorted(listed & condemned) if tag in before}
    new = sorted(listed - condemned - set(before))
    kept = [tag for tag in before if tag in listed and tag not in condemned]
    if head_budget is not None:
        unread = kept[max(0, head_budget - len(new)):]
        kept = kept[:len(kept) - len(unread)]
        live.update({tag: before[tag] for tag in unread})
    live.update(resolve_tags(repo, new + kept, max_concurrency))
    return live
