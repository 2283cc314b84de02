# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Retention's writes: apply a :class:`RetentionPlan` safely.

:func:`apply_plan` refuses a plan with guardrail violations before it writes anything, then re-reads
the tags and skips (``changed_since_plan``) every deletion that something changed since planning
could make wrong: a tag the plan tied to the digest moved or vanished, a tag now points at it (or
at a new image that references it), a new cosign tag names it. Deletions happen by *cascade group*
(a digest with everything it owns), all or nothing, in reference order: an index before its
children and a referrer before its subject, so no manifest left behind ever points at a deleted
one. Untagging removes one tag (``Repository.delete_tag``), re-resolving it just before.

The registry API has no compare-and-swap for deletes: the checks narrow the race to the moment
between the last read and the DELETE, they cannot close it. For this collection's own writers the
prune lease closes it (:mod:`.._ops.coordination`): a run that may delete writes its lease before
the read that lets the first deletion happen and removes it after the last DELETE.
"""
from __future__ import annotations

import heapq
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    ConflictError,
    DigestMismatchError,
    InvalidInputError,
    NotFoundError,
    RegistryError,
    UnsupportedError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_schemes import (
    attached_subject,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.coordination.lease import (
    PruneLease,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.pool import (
    map_bounded,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.reads import (
    fetch_manifest_or_none,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.plan import (
    ACTION_DELETE,
    ACTION_KEEP,
    ACTION_UNTAG,
    PlanEntry,
    RetentionPlan,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.snapshot import (
    image_tags,
    live_tags_for_apply,
    resolve_tags,
)

if TYPE_CHECKING:  # annotations only: registry.py needs requests at import time
    from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import (
        Repository,
    )


#: The skip reason the apply step adds to the planner's.
CHANGED_SINCE_PLAN = "changed_since_plan"


#: The message of a skipped deletion whose manifest was already gone when its DELETE was sent.
ALREADY_GONE = "not deleted by this run: already gone when its DELETE was sent (deleted since the plan was made)"


#: Skip reason when the registry refuses to remove a tag at apply time.
TAG_DELETE_UNSUPPORTED = "tag_delete_unsupported"


#: Cascade relations where the owned digest is about its owner (a referrer names its subject, a
#: fallback index lists the subject's referrers): it goes first. For "child" the owner goes first.
_POINTS_AT_OWNER = frozenset({"referrer", "signature", "attestation", "sbom", "referrers_index"})
#: How stale the full tag view may get before a deletion group reads every tag again. Reading
#: every tag before every group is quadratic (a 2,000-tag plan deleting 1,600 digests would send
#: millions of requests); inside this window a tag *moved* onto a doomed digest is caught by the
#: group's own reads only if it is one of them, while a tag *created* on it is always caught by
#: the list that :meth:`_RepositoryApply.late_arrivals` reads right before the DELETE.
FULL_READ_INTERVAL = 2.0
#: Below this many reads in all (deletion groups x tags), every group reads every tag again right
#: before its DELETE, which also catches a tag *moved* onto a doomed digest (a rollback during a
#: prune); above it, the interval rule keeps a very large plan from sending millions of requests.
FULL_READ_BUDGET = 20_000


@dataclass
class ApplyResult:
    """What :func:`apply_plan` did (or, in check mode, would do), in order, and what it skipped."""

    applied: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    #: What the user should read although nothing failed (a lease that could not be written or removed).
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """True when something was (or would be) written."""
        return bool(self.applied)

    @property
    def gc_required(self) -> bool:
        """True when a manifest was deleted: its blobs stay on disk until the registry's garbage collection."""
        return any(action["action"] == ACTION_DELETE for action in self.applied)

    def removed_tags(self) -> dict[str, set[str]]:
        """Per repository, the tags the applied actions removed."""
        out: dict[str, set[str]] = defaultdict(set)
        for action in self.applied:
            out[action["repository"]].update(action["tags"])
        return out


class ApplyError(RegistryError):
    """A write failed part-way through a plan; ``applied`` lists what was done before it."""

    def __init__(self, cause: RegistryError, result: ApplyResult) -> None:
        done = len(result.applied)
        super().__init__(
            f"{cause.message} (after {done} of the plan's actions were applied; they are listed in 'applied'. "
            "Fix the cause and run again: the next run plans from what is there now)",
            status=cause.status, code=cause.code, detail=cause.detail)
        self.cause = cause
        self.result = result

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["cause"] = type(self.cause).__name__
        return data


def check_violations(plan: RetentionPlan) -> None:
    """Raise :class:`ConflictError` when the plan breaks a guardrail: nothing may then be written."""
    if plan.violations:
        listed = "; ".join(plan.violations)
        raise ConflictError(
            f"the retention plan breaks {len(plan.violations)} guardrail(s), so nothing was deleted or untagged: "
            f"{listed}", detail={"violations": list(plan.violations)})


def apply_plan(repo: Repository | Mapping[str, Repository], plan: RetentionPlan, *, check_mode: bool,
               tag_delete_method: str | None = None, max_concurrency: int | None = None) -> ApplyResult:
    """Perform ``plan`` (or in check mode, walk it with every write left out).

    ``repo`` is the repository of a one-repository plan, or a mapping from
    the plan's repository names (``host/name``) to repositories.
    ``tag_delete_method`` overrides the plan's untag method (``auto``,
    ``dummy_manifest``; ``never`` removes no tag). Raises
    :class:`ConflictError` before any request when the plan has guardrail
    violations, and :class:`ApplyError` (with what was done) when a write
    fails part-way.
    """
    check_violations(plan)
    if tag_delete_method not in (None, "auto", "dummy_manifest", "never"):
        raise InvalidInputError(
            f"tag_delete_method {tag_delete_method!r} is unknown: use auto, dummy_manifest or never")
    repositories = _repository_map(repo, plan)
    result = ApplyResult()
    by_repo: dict[str, list[PlanEntry]] = defaultdict(list)
    for entry in plan.entries:
        by_repo[entry.repository].append(entry)
    for name in sorted(by_repo):
        entries = by_repo[name]
        if all(entry.action == ACTION_KEEP for entry in entries):
            continue
        _RepositoryApply(repositories[name], name, entries, plan.tags_before.get(name, {}), result,
                         check_mode=check_mode, tag_delete_method=tag_delete_method,
                         max_concurrency=max_concurrency).run()
    return result


def _repository_map(repo: Repository | Mapping[str, Repository], plan: RetentionPlan) -> Mapping[str, Repository]:
    names = sorted(plan.tags_before)
    if isinstance(repo, Mapping):
        missing = [n for n in names if n not in repo]
        if missing:
            raise InvalidInputError(f"apply_plan got no repository for {', '.join(missing)}")
        return repo
    if len(names) > 1:
        raise InvalidInputError("apply_plan got one repository for a plan over several; pass a mapping name -> repository")
    return {name: repo for name in names}


def deletion_groups(entries: Iterable[PlanEntry]) -> list[list[PlanEntry]]:
    """The plan's deletions as cascade groups, each in reference order (pure).

    A group is a set of deleted digests connected by cascade edges (an index
    and its children, a subject and its referrers, cosign artifacts and
    fallback index). Within a group a digest comes before every digest it
    points at: index before child, referrer before subject, fallback index
    before the referrers it lists. Groups are ordered by their first digest.
    """
    doomed = {e.digest: e for e in entries if e.action == ACTION_DELETE}
    before: dict[str, set[str]] = defaultdict(set)  # digest -> digests that must be deleted first
    neighbours: dict[str, set[str]] = defaultdict(set)
    for entry in doomed.values():
        for cascade in entry.cascaded:
            if cascade.digest not in doomed:
                continue
            neighbours[entry.digest].add(cascade.digest)
            neighbours[cascade.digest].add(entry.digest)
            if cascade.relation in _POINTS_AT_OWNER:
                before[entry.digest].add(cascade.digest)  # referrer first, then its subject
            else:
                before[cascade.digest].add(entry.digest)  # index first, then its children
    groups: list[list[PlanEntry]] = []
    placed: set[str] = set()
    for start in sorted(doomed):
        if start in placed:
            continue
        members = {start}
        stack = [start]
        while stack:
            for nxt in neighbours[stack.pop()]:
                if nxt not in members:
                    members.add(nxt)
                    stack.append(nxt)
        placed |= members
        groups.append([doomed[d] for d in _reference_order(members, before)])
    return groups


def _reference_order(members: set[str], before: Mapping[str, set[str]]) -> list[str]:
    """Kahn's topological order, smallest digest first among the ready ones (deterministic)."""
    waiting = {d: {p for p in before.get(d, ()) if p in members} for d in members}
    ready = [d for d, deps in waiting.items() if not deps]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        digest = heapq.heappop(ready)
        order.append(digest)
        for other, deps in waiting.items():
            if digest in deps:
                deps.discard(digest)
                if not deps and other not in order:
                    heapq.heappush(ready, other)
    # Content addressing rules out cycles; a malformed plan must still not lose digests.
    order += sorted(d for d in members if d not in order)
    return order


class _RepositoryApply:
    """Applies one repository's part of a plan; see the module docstring for the checks."""

    def __init__(self, repo: Repository, name: str, entries: Sequence[PlanEntry], tags_before: Mapping[str, str],
                 result: ApplyResult, *, check_mode: bool, tag_delete_method: str | None,
                 max_concurrency: int | None) -> None:
        self.repo = repo
        self.name = name
        self.entries = list(entries)
        self.before = dict(tags_before)
        self.result = result
        self.check_mode = check_mode
        self.method = tag_delete_method
        self.max_concurrency = max_concurrency
        self.lease: PruneLease | None = None
        self.known = {e.digest for e in self.entries}
        self.groups = deletion_groups(self.entries)
        self.group_of = {e.digest: i for i, group in enumerate(self.groups) for e in group}
        # tags removed by this plan (deleted with their digest, or untagged)
        self.planned_removals = {t for e in self.entries if e.action == ACTION_DELETE for t in e.tags}
        self.planned_removals |= {t for e in self.entries if e.action == ACTION_UNTAG for t in e.untag_tags}

    def run(self) -> None:
        try:
            live = self.live = live_tags_for_apply(self.repo, self.entries, self.before, check_mode=self.check_mode,
                                                   max_concurrency=self.max_concurrency)
            self.read_at = time.monotonic()
            blocked = self.blocked_groups(live)
            if not self.check_mode and len(blocked) < len(self.groups):
                # The lease goes up before the first read that lets a deletion happen (the first group
                # reads every tag again) and comes down after the last DELETE: this collection's writers
                # then either wrote before that read, or wait and restore (_ops/coordination). A run
                # whose every deletion is already blocked writes nothing, not even a lease.
                self.lease = self.take_lease()
                self.read_at = float("-inf")
            for index, group in enumerate(self.groups):
                if index in blocked:
                    self.skip_group(group, blocked[index])
                else:
                    self.delete_group(group)
            self.drop_lease()
            for entry in self.entries:
                if entry.action == ACTION_UNTAG:
                    self.untag(entry, live)
        except ApplyError:
            raise
        except RegistryError as err:
            raise ApplyError(err, self.result) from None
        finally:
            self.drop_lease()

    # -- the prune lease -----------------------------------------------------------------------

    def take_lease(self) -> PruneLease | None:
        """Write this run's lease; a registry that refuses it (a delete-only credential) gets a warning, no lease."""
        lease = PruneLease(self.repo)
        try:
            lease.acquire()
        except RegistryError as err:
            self.result.warnings.append(
                f"{self.name}: the prune lease could not be written ({err.message}); deletions went ahead without "
                "it, so a concurrent registry_copy or registry_tag is not told to check its tags afterwards")
            return None
        return lease

    def drop_lease(self) -> None:
        """Remove the lease (after the last DELETE); a failure is a warning, the lease then expires by itself."""
        lease, self.lease = self.lease, None
        if lease is None:
            return
        try:
            lease.release()
        except RegistryError as err:
            self.result.warnings.append(f"{self.name}: the prune lease {lease.tag} could not be removed "
                                        f"({err.message}); it expires by itself and the next prune removes it")

    # -- what changed since the plan ---------------------------------------------------------

    def blocked_groups(self, live: Mapping[str, str]) -> dict[int, str]:
        """Deletion groups that a change since planning makes unsafe, with the reason in words."""
        blocked: dict[int, str] = {}

        def block(digest: str, why: str) -> None:
            index = self.group_of.get(digest)
            if index is not None and index not in blocked:
                blocked[index] = why

        for entry in self.entries:
            if entry.action != ACTION_DELETE:
                continue
            for tag in entry.tags:
                if live.get(tag) != entry.digest:
                    now = live.get(tag) or "nowhere (removed)"
                    block(entry.digest, f"tag {tag} pointed at {entry.digest} when planned and now points at {now}")
        changed = sorted(t for t in set(self.before) | set(live) if self.before.get(t) != live.get(t))
        unknown: dict[str, str] = {}
        for tag in changed:
            digest = live.get(tag)
            if digest is None:
                continue
            was = self.before.get(tag)
            how = "was created" if was is None else f"moved from {was}"
            if digest in self.group_of:
                block(digest, f"tag {tag} {how} to {digest}, which the plan deletes")
            attached = attached_subject(tag, self.group_of)
            if attached is not None and attached[0] in self.group_of:
                block(attached[0], f"tag {tag} ({attached[1]} of {attached[0]}) {how} to {digest}")
            if digest not in self.known:
                unknown.setdefault(digest, tag)
        for digest, (target, tag) in self.references_into_groups(unknown).items():
            block(target, f"tag {tag} now points at {digest}, a new manifest that references {target}")
        return blocked

    def references_into_groups(self, new: Mapping[str, str]) -> dict[str, tuple[str, str]]:
        """For manifests the plan never saw (new tags), which planned deletions they reference.

        Follows index children and subjects of what the new tags point at;
        digests the plan knows stop the walk (a kept one reaches nothing
        deleted, a deleted one is caught by its own check).
        """
        hits: dict[str, tuple[str, str]] = {}
        frontier = sorted(new)
        origin = dict(new)
        seen = set(frontier)
        while frontier:
            fetched = map_bounded(lambda d: fetch_manifest_or_none(self.repo, d), frontier, self.max_concurrency)
            found: list[str] = []
            for digest, manifest in zip(frontier, fetched):
                if manifest is None:
                    continue
                pointed = [c.digest for c in manifest.children()]
                if manifest.subject is not None:
                    pointed.append(manifest.subject.digest)
                for target in pointed:
                    if target in self.group_of:
                        hits.setdefault(digest, (target, origin[digest]))
                    elif target not in self.known and target not in seen:
                        seen.add(target)
                        origin[target] = origin[digest]
                        found.append(target)
            frontier = sorted(found)
        return hits

    # -- deleting ------------------------------------------------------------------------------

    def skip_group(self, group: Sequence[PlanEntry], why: str) -> None:
        for entry in group:
            self._skip(entry.digest, entry.tags, CHANGED_SINCE_PLAN,
                       f"not deleted: {why} since the plan was made; run again to plan from the new state")

    def fresh_tags(self, known: Iterable[str]) -> dict[str, str]:
        """Every tag as it is right now, read in the order that leaves the shortest windows before a delete.

        The tags already known are read first (a tag moved onto a doomed digest shows in its
        HEAD), then the tag list, last, so a tag created meanwhile is seen up to one round trip
        before the DELETE; only names new in that list are read after it.
        """
        known = sorted(known)
        heads = resolve_tags(self.repo, known, self.max_concurrency)
        try:
            names = image_tags(self.repo)
        except NotFoundError:
            return {}
        heads.update(resolve_tags(self.repo, sorted(names - set(known)), self.max_concurrency))
        return {tag: digest for tag, digest in heads.items() if tag in names}

    def late_arrivals(self, group: Sequence[PlanEntry], rounds: int = 3) -> str | None:
        """List the tags once more right before the DELETE; a name new since :meth:`fresh_tags` is read.

        The list is one request, so a tag created on the group's digests later than this
        leaves a window of one round trip (the measured residual, docs/guide_parallel.md).
        While new names keep arriving the list is read again, a few ``rounds`` at most; a
        repository still changing after that is left for the next run.
        """
        doomed = {e.digest for e in group}
        for _round in range(rounds):
            try:
                names = image_tags(self.repo)
            except NotFoundError:
                return None
            new = sorted(names - set(self.live))
            if not new:
                return None
            found = resolve_tags(self.repo, new, self.max_concurrency)
            self.live.update(found)
            for tag, digest in found.items():
                if digest in doomed or (attached_subject(tag, doomed) or ("",))[0] in doomed:
                    return f"tag {tag} was created on {digest}, which the plan deletes,"
            why = self.blocked_groups(self.live).get(self.group_of[group[0].digest])
            if why is not None:
                return why
        return "tags kept arriving while it was about to be deleted,"

    def delete_group(self, group: Sequence[PlanEntry]) -> None:
        """Check the group against the registry as it is now, then delete its digests in reference order.

        Check mode writes nothing, so it reads nothing here. Otherwise the tags are read again
        (:meth:`fresh_tags`, every tag) when the whole plan stays within :data:`FULL_READ_BUDGET`
        reads or the last full read is older than :data:`FULL_READ_INTERVAL`, else only the
        group's own tags; then :meth:`blocked_groups`
        runs on that view and :meth:`late_arrivals` lists the tags once more right before the
        first DELETE. A tag of the plan that moved away, and a tag pushed or moved onto one of
        the group's digests (or onto a new manifest that references one), each skip the whole
        group: Distribution deletes every tag pointing at a deleted manifest, so these reads are
        what keep a concurrent push's image.
        """
        if not self.check_mode:
            if self.lease is not None and self.lease.keep_alive():
                self.read_at = float("-inf")  # a writer that waited for the old lease is done: read everything
            if len(self.groups) * max(1, len(self.live)) <= FULL_READ_BUDGET \
                    or time.monotonic() - self.read_at > FULL_READ_INTERVAL:
                self.live = self.fresh_tags(set(self.live) | {t for e in group for t in e.tags})
                self.read_at = time.monotonic()
            else:
                own = sorted({t for e in group for t in e.tags})
                found = resolve_tags(self.repo, own, self.max_concurrency)
                for tag in own:
                    if tag in found:
                        self.live[tag] = found[tag]
                    else:
                        self.live.pop(tag, None)
        # Check mode reads nothing, so the view is the one run() already judged (this group was not blocked);
        # judging it again per group would cost O(groups x tags): 100 s of CPU for 8,000 groups (issue 18).
        why = None if self.check_mode else self.blocked_groups(self.live).get(self.group_of[group[0].digest])
        if why is None and not self.check_mode:
            why = self.late_arrivals(group)
        if why is not None:
            self.skip_group(group, why)
            return
        removed_with_group = {t for e in group for t in e.tags}
        for entry in group:
            fallback_update = None
            if entry.fallback_index and entry.fallback_index not in removed_with_group \
                    and entry.fallback_index not in self.planned_removals:
                fallback_update = entry.fallback_index
            if not self.check_mode:
                try:
                    self.repo.delete_manifest(entry.digest)
                except NotFoundError:
                    # Also what a DELETE retried after a 5xx sees when the first attempt removed the
                    # manifest before failing (Distribution under concurrent pushes): gone either way.
                    self._skip(entry.digest, entry.tags, CHANGED_SINCE_PLAN, ALREADY_GONE)
                    continue
                except DigestMismatchError:
                    # Distribution answers 400 DIGEST_INVALID when its DELETE reads a tag link a
                    # concurrent push is rewriting: report what the registry holds now, truthfully.
                    if self.repo.resolve(entry.digest) is not None:
                        self._skip(entry.digest, entry.tags, CHANGED_SINCE_PLAN,
                                   "not deleted: the registry refused the delete while a push rewrote its tags; "
                                   "run again to plan from the new state")
                        continue
                if fallback_update is not None:
                    subject = attached_subject(fallback_update, self.known | set(self.before.values()))
                    if subject is not None:
                        self.repo.remove_referrer_fallback(subject[0], entry.digest)
            self.result.applied.append({
                "repository": self.name,
                "action": ACTION_DELETE,
                "digest": entry.digest,
                "media_type": entry.media_type,
                "tags": list(entry.tags),
                "cascaded_from": list(entry.cascaded_from),
                "method": entry.delete_method,
                "fallback_index_updated": fallback_update,
            })

    # -- untagging -----------------------------------------------------------------------------

    def untag(self, entry: PlanEntry, live: Mapping[str, str]) -> None:
        """Remove each of the entry's condemned tags that still points where the plan saw it."""
        method = self.method or entry.delete_method or "auto"
        if method == "never":
            self._skip(entry.digest, entry.untag_tags, TAG_DELETE_UNSUPPORTED,
                       "tag_delete_method is never, so the tags stay; set tag_delete_method: auto to remove them")
            return
        for tag in entry.untag_tags:
            now = live.get(tag)
            if now == entry.digest and not self.check_mode:
                # The last read before the write: narrows the race with a concurrent push to one request.
                descriptor = self.repo.resolve(tag)
                now = None if descriptor is None else descriptor.digest
            if now != entry.digest:
                self._skip(entry.digest, (tag,), CHANGED_SINCE_PLAN,
                           f"tag {tag} not removed: it pointed at {entry.digest} when planned and now points at "
                           f"{now or 'nowhere (removed)'}; run again to plan from the new state")
                continue
            used = method
            if not self.check_mode:
                try:
                    used = self.repo.delete_tag(tag, method)
                except UnsupportedError as err:
                    # delete_tag has already pointed the tag back at its image.
                    self._skip(entry.digest, (tag,), TAG_DELETE_UNSUPPORTED, f"tag {tag} not removed: {err.message}")
                    continue
            self.result.applied.append({
                "repository": self.name,
                "action": ACTION_UNTAG,
                "digest": entry.digest,
                "media_type": entry.media_type,
                "tags": [tag],
                "cascaded_from": [],
                "method": used,
                "fallback_index_updated": None,
            })

    def _skip(self, digest: str, tags: Sequence[str], reason: str, message: str) -> None:
        self.result.skipped.append({"repository": self.name, "digest": digest, "tags": list(tags),
                                    "reason": reason, "message": message})
