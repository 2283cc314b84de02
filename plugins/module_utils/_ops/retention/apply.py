# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Retention's writes: apply a :class:`RetentionPlan` safely.

:func:`apply_plan` refuses a plan with guardrail violations before it writes anything. Before the
first deletion it looks at the repository once more (the tag list, and a HEAD of every tag the plan
does not remove: :func:`.snapshot.live_tags_for_apply`), and skips (``changed_since_plan``) every
deletion that a change since planning could make wrong: a tag the plan tied to the digest vanished,
a tag now points at it (or at a new image that references it), a new cosign tag names it. Right
before each later deletion group only what is new is read: the tag list, and a HEAD for names not
seen before (:meth:`_RepositoryApply.late_arrivals`). So a prune costs about tags + digests +
deletions requests whatever the latency (docs/guide_retention.md, "Requests").

Deletions happen by *cascade group* (a digest with everything it owns), all or nothing, in
reference order: an index before its children and a referrer before its subject, so no manifest
left behind ever points at a deleted one. Untagging removes one tag (``Repository.delete_tag``),
re-resolving it just before.

The registry API has no compare-and-swap for deletes: the checks narrow the race, they cannot
close it. What stays open (a tag created in the round trip before a DELETE, an existing tag moved
onto a doomed digest after the one look) is measured in docs/guide_parallel.md. For this
collection's own writers the opt-in prune lease closes it (:mod:`.._ops.coordination`): a run that
may delete writes its lease before the one look and removes it after the last DELETE.
"""
from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ansible_collections.ocireg.registry.plugins.module_utils._client.relink import (
    is_relink_refusal,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    ConflictError,
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
    clear_expired_leases,
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


#: Skip reason when the registry refuses to remove a tag at apply time.
TAG_DELETE_UNSUPPORTED = "tag_delete_unsupported"


#: Cascade relations where the owned digest is about its owner (a referrer names its subject, a
#: fallback index lists the subject's referrers): it goes first. For "child" the owner goes first.
_POINTS_AT_OWNER = frozenset({"referrer", "signature", "attestation", "sbom", "referrers_index"})
#: Requests of a plan beyond one read per tag and per digest (the tag list, the referrers probe) and
#: of an apply beyond its lists and deletions, kept out of the one look's HEAD budget.
LOOK_BUDGET_OVERHEAD = 3
#: HEADs the one look may always send: in a small repository the fixed requests (a list, a probe)
#: dominate any ratio, and re-reading every kept tag costs a few requests that are worth the safety.
LOOK_MIN_HEADS = 32

#: Tag list reads before one deletion group while new names keep arriving (each new name is HEADed
#: once); a repository still changing after that many is left for the next run.
LATE_ARRIVAL_ROUNDS = 3


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
               tag_delete_method: str | None = None, max_concurrency: int | None = None,
               prune_lease: bool = False) -> ApplyResult:
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
            if prune_lease and not check_mode:
                _clear_expired_leases(repositories[name], name, result)
            continue
        _RepositoryApply(repositories[name], name, entries, plan.tags_before.get(name, {}), result,
                         check_mode=check_mode, tag_delete_method=tag_delete_method,
                         max_concurrency=max_concurrency, prune_lease=prune_lease).run()
    return result


def _clear_expired_leases(repo: Repository, name: str, result: ApplyResult) -> None:
    """A run with the lease on but nothing to delete writes no lease; a crashed prune's expired one still goes."""
    try:
        clear_expired_leases(repo)
    except RegistryError as err:
        result.warnings.append(f"{name}: expired prune leases could not be cleared ({err.message}); "
                               "the next prune with the lease on removes them")


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
                 max_concurrency: int | None, prune_lease: bool = False) -> None:
        self.repo = repo
        self.name = name
        self.entries = list(entries)
        self.before = dict(tags_before)
        self.result = result
        self.check_mode = check_mode
        self.method = tag_delete_method
        self.max_concurrency = max_concurrency
        self.prune_lease = prune_lease
        self.lease: PruneLease | None = None
        self.live: dict[str, str] = {}
        self.just_looked = False
        self.known = {e.digest for e in self.entries}
        self.groups = deletion_groups(self.entries)
        self.group_of = {e.digest: i for i, group in enumerate(self.groups) for e in group}
        # tags removed by this plan (deleted with their digest, or untagged)
        self.planned_removals = {t for e in self.entries if e.action == ACTION_DELETE for t in e.tags}
        self.planned_removals |= {t for e in self.entries if e.action == ACTION_UNTAG for t in e.untag_tags}

    def run(self) -> None:
        try:
            if self.prune_lease and not self.check_mode and self.groups:
                # The lease (opt-in) goes up before the one look that lets a deletion happen and comes
                # down after the last DELETE: this collection's writers then either wrote before that
                # look, or wait and restore (_ops/coordination).
                self.lease = self.take_lease()
            elif self.prune_lease and not self.check_mode:
                _clear_expired_leases(self.repo, self.name, self.result)
            live = self.look()
            blocked = self.blocked_groups(live)
            if len(blocked) == len(self.groups):
                self.drop_lease()  # nothing left to delete: the lease has nothing to protect
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

    def look(self) -> dict[str, str]:
        """The one look at the repository before the first deletion (:func:`live_tags_for_apply`).

        The tag list it reads is also the first deletion group's late-arrival check, so that group
        sends no list of its own.
        """
        self.live = live_tags_for_apply(self.repo, self.entries, self.before, check_mode=self.check_mode,
                                        max_concurrency=self.max_concurrency, head_budget=self.look_budget())
        self.just_looked = True
        return dict(self.live)

    def look_budget(self) -> int:
        """HEADs the one look may send: what is left of 1.5 x (tags + digests + deletions) once the plan's
        reads (about tags + digests + a list and a probe) and the apply's own requests (a tag list per
        group, a DELETE per digest) are counted.

        A nightly prune that deletes little would otherwise re-read every kept tag and pass the budget
        (measured: 66 tags, 60 digests, 2 deletions cost 1.55 x); a large clean-up has room for all.
        """
        tags, digests = len(self.before), len(set(self.before.values()))
        deletions = sum(1 for entry in self.entries if entry.action == ACTION_DELETE)
        return max(LOOK_MIN_HEADS, (tags + digests + deletions) // 2 - len(self.groups) - LOOK_BUDGET_OVERHEAD)

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

    def late_arrivals(self, group: Sequence[PlanEntry]) -> str | None:
        """The cheap check right before a group's DELETE: the tag list, and a HEAD for each name not seen before.

        One request when nothing is new. A tag created on one of the group's digests (or on a new
        manifest that references one) since the last look blocks the group; so does a tag of the
        group that is no longer listed. A tag that already existed and was *moved* onto the group's
        digests since the one look is not seen (that needs a HEAD of every tag before every group):
        that is the window docs/guide_parallel.md measures. While new names keep arriving the list
        is read again, :data:`LATE_ARRIVAL_ROUNDS` at most; a repository still changing after that
        is left for the next run.
        """
        index = self.group_of[group[0].digest]
        for _round in range(LATE_ARRIVAL_ROUNDS):
            try:
                names = image_tags(self.repo)
            except NotFoundError:
                return None  # the repository is gone: the DELETEs will say so, one by one
            for tag in set(self.live) - names:
                del self.live[tag]
            new = sorted(names - set(self.live))
            self.live.update(resolve_tags(self.repo, new, self.max_concurrency))
            why = self.blocked_groups(self.live).get(index)
            if why is not None or not new:
                return why
        return "tags kept arriving while it was about to be deleted,"

    def delete_group(self, group: Sequence[PlanEntry]) -> None:
        """Check the group against what is new since the last look, then delete its digests in reference order.

        Check mode writes nothing, so it reads nothing here. Otherwise the first group is judged on
        the one look (:meth:`look`, read just before it), each later group on :meth:`late_arrivals`.
        When an opt-in lease is renewed, a writer that waited for the old one may have written
        since, so the repository is looked at again in full. Distribution deletes every tag
        pointing at a deleted manifest, so these checks are what keep a concurrent push's image.
        """
        why = None
        if not self.check_mode:
            if self.lease is not None and self.lease.keep_alive():
                self.look()
            if self.just_looked:
                why = self.blocked_groups(self.live).get(self.group_of[group[0].digest])
            else:
                why = self.late_arrivals(group)
            self.just_looked = False
        if why is not None:
            self.skip_group(group, why)
            return
        removed_with_group = {t for e in group for t in e.tags}
        for entry in group:
            fallback_update = None
            if entry.fallback_index and entry.fallback_index not in removed_with_group \
                    and entry.fallback_index not in self.planned_removals:
                fallback_update = entry.fallback_index
            gone = False
            if not self.check_mode:
                try:
                    # A 404 is also what a DELETE retried after a 5xx sees when the first attempt removed
                    # the manifest before failing (Distribution under concurrent pushes): removed either way.
                    gone = not self.repo.delete_manifest(entry.digest, missing_ok=True)
                except RegistryError as err:
                    # Distribution refuses a DELETE that reads a link a concurrent push is rewriting
                    # (_client/relink.py). A user's manifest is not sent a blind second DELETE (the push
                    # may be landing on it): report what the registry holds now, truthfully.
                    if not is_relink_refusal(err):
                        raise
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
                "already_gone": gone,
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
                "already_gone": False,
            })

    def _skip(self, digest: str, tags: Sequence[str], reason: str, message: str) -> None:
        self.result.skipped.append({"repository": self.name, "digest": digest, "tags": list(tags),
                                    "reason": reason, "message": message})
