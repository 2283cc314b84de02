# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Retention's writes: apply a :class:`RetentionPlan` safely (the executor; :mod:`.verdicts` decides).

:func:`apply_plan` refuses a plan with guardrail violations before it writes anything. Before the
first deletion it looks at the repository once more (the tag list, and a HEAD of every tag the plan
does not remove: :func:`.snapshot.live_tags_for_apply`), and skips (``changed_since_plan``) every
deletion that a change since planning could make wrong: a tag the plan tied to the digest vanished,
a tag now points at it (or at a new image that references it), a new cosign tag names it. Right
before each later deletion group only what is new is read: the tag list, and a HEAD for names not
seen before (:meth:`_RepositoryApply.late_arrivals`). So a prune costs about tags + digests +
deletions requests whatever the latency (docs/guide_retention.md, "Requests").

What to make of what was read is decided by :class:`.verdicts.GroupJudge` (pure); this module only
reads, writes and records. :meth:`_RepositoryApply.decide` is the one place a deletion group is let
go.

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

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
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
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.quarantine import (
    Quarantine,
    QuarantineError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.snapshot import (
    image_tags,
    live_tags_for_apply,
    resolve_tags,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.verdicts import (
    GO_AHEAD,
    STOP,
    QUARANTINE_FAILED,
    SKIP,
    GroupJudge,
    Verdict,
    plan_verdict,
    refused_delete,
    tag_delete_refused,
    tags_kept_arriving,
    untag_method,
    untag_tag,
)

if TYPE_CHECKING:  # annotations only: registry.py needs requests at import time
    from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import (
        Repository,
    )
    from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.deferred import (
        RepositoryDeferral,
    )


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
    #: The deferred deletes' entries and what became of them (``quarantine.untag_for``).
    deferred: list[dict[str, Any]] = field(default_factory=list)
    #: True when a deferred-delete state was (or would be) rewritten.
    state_changed: bool = False

    @property
    def changed(self) -> bool:
        """True when something was (or would be) written."""
        return bool(self.applied) or self.state_changed

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
        # The cause's fields travel with it (host, operation, status, the registry's errors, the hint), so
        # the glue words the advice for a failed write as it does for any other failure.
        fields = cause.fields()
        fields.pop("partial")
        super().__init__(
            f"{cause.reason} (after {done} of the plan's actions were applied; they are listed in 'applied'. "
            "Fix the cause and run again: the next run plans from what is there now)", **fields)
        self.cause = cause
        self.result = result

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["cause"] = type(self.cause).__name__
        return data


def check_violations(plan: RetentionPlan) -> None:
    """Raise :class:`ConflictError` when the plan breaks a guardrail: nothing may then be written.

    Once per run, before any request: :func:`apply_plan` calls it, and so does a caller that
    applies a plan one repository at a time (:func:`apply_repository`).
    """
    verdict = plan_verdict(plan)
    if verdict.kind == STOP:
        raise ConflictError(verdict.message, detail={"violations": list(plan.violations)})


def apply_plan(repo: Repository, plan: RetentionPlan, *, check_mode: bool, max_concurrency: int | None = None,
               prune_lease: bool = False, quarantine: Quarantine | None = None) -> ApplyResult:
    """Perform one repository's ``plan`` (or in check mode, walk it with every write left out).

    Raises :class:`ConflictError` before any request when the plan has guardrail violations,
    :class:`InvalidInputError` for a plan over several repositories (apply each with
    :func:`apply_repository`), and :class:`ApplyError` (with what was done) when a write fails
    part-way.
    """
    check_violations(plan)
    names = sorted(plan.tags_before)
    if len(names) > 1:
        raise InvalidInputError("apply_plan got one repository for a plan over several; apply each repository's "
                                "entries with apply_repository")
    if not names:
        return ApplyResult()
    name = names[0]
    return apply_repository(repo, name, [e for e in plan.entries if e.repository == name], plan.tags_before[name],
                            check_mode=check_mode, max_concurrency=max_concurrency, prune_lease=prune_lease,
                            quarantine=quarantine)


def apply_repository(repo: Repository, name: str, entries: Sequence[PlanEntry], tags_before: Mapping[str, str], *,
                     check_mode: bool, max_concurrency: int | None = None, prune_lease: bool = False,
                     quarantine: Quarantine | None = None, deferral: RepositoryDeferral | None = None,
                     tag_delete_method: str = "auto") -> ApplyResult:
    """Perform the plan ``entries`` of repository ``name`` (``host/name``), planned from ``tags_before``.

    The plan's guardrails are the caller's to check first (:func:`check_violations`). Raises
    :class:`ApplyError` (with what was done) when a write fails part-way. With ``quarantine`` each
    deletion group is first copied there and read back (:mod:`.quarantine`); a group whose copy
    fails stays, skipped with the reason ``quarantine_failed``. With ``deferral``
    (``quarantine.untag_for``, :mod:`.deferred`) a group whose window has passed is deleted; any
    other deletion group is recorded in the state, then untagged (``tag_delete_method``), and stays.
    """
    result = ApplyResult()
    if all(entry.action == ACTION_KEEP for entry in entries):
        if prune_lease and not check_mode and entries:
            _clear_expired_leases(repo, name, result)
        if deferral is not None:
            try:
                deferral.settle(entries, tags_before, {}, [], check_mode=check_mode)
            except RegistryError as err:
                raise ApplyError(_state_write_failed(deferral, err), result) from None
            result.deferred.extend(deferral.report)
            result.warnings.extend(deferral.warnings)
            result.state_changed = deferral.changed
        return result
    _RepositoryApply(repo, name, entries, tags_before, result, check_mode=check_mode,
                     max_concurrency=max_concurrency, prune_lease=prune_lease, quarantine=quarantine,
                     deferral=deferral, tag_delete_method=tag_delete_method).run()
    return result


def _state_write_failed(deferral: RepositoryDeferral, err: RegistryError) -> RegistryError:
    return RegistryError(f"the deferred-delete state of {deferral.name} could not be written to "
                         f"{deferral.owner.where} ({err.message}); nothing was untagged",
                         host=err.host, status=err.status)


def _clear_expired_leases(repo: Repository, name: str, result: ApplyResult) -> None:
    """A run with the lease on but nothing to delete writes no lease; a crashed prune's expired one still goes."""
    try:
        clear_expired_leases(repo)
    except RegistryError as err:
        result.warnings.append(f"{name}: expired prune leases could not be cleared ({err.message}); "
                               "the next prune with the lease on removes them")


class _RepositoryApply:
    """Applies one repository's part of a plan: the lease, the reads, the writes; :class:`GroupJudge` decides."""

    def __init__(self, repo: Repository, name: str, entries: Sequence[PlanEntry], tags_before: Mapping[str, str],
                 result: ApplyResult, *, check_mode: bool, max_concurrency: int | None,
                 prune_lease: bool = False, quarantine: Quarantine | None = None,
                 deferral: RepositoryDeferral | None = None, tag_delete_method: str = "auto") -> None:
        self.repo = repo
        self.name = name
        self.entries = list(entries)
        self.before = dict(tags_before)
        self.result = result
        self.check_mode = check_mode
        self.max_concurrency = max_concurrency
        self.prune_lease = prune_lease
        self.quarantine = quarantine
        self.deferral = deferral
        self.tag_delete_method = tag_delete_method
        #: Digest -> where its quarantine copy is (or, in check mode, would be).
        self.quarantined: dict[str, str] = {}
        self.judge = GroupJudge(self.entries, self.before)
        self.lease: PruneLease | None = None
        #: The tag -> digest view of the latest read, and the groups it holds back.
        self.live: dict[str, str] = {}
        self.held: dict[int, Verdict] = {}
        #: True until the latest full look has served the group it was read for.
        self.fresh = False

    def run(self) -> None:
        groups = self.judge.groups
        try:
            if self.prune_lease and not self.check_mode and groups:
                # The lease (opt-in) goes up before the one look that lets a deletion happen and comes
                # down after the last DELETE: this collection's writers then either wrote before that
                # look, or wait and restore (_ops/coordination).
                self.lease = self.take_lease()
            elif self.prune_lease and not self.check_mode:
                _clear_expired_leases(self.repo, self.name, self.result)
            self.look()
            looked = dict(self.live)
            held = dict(self.held)
            if len(held) == len(groups):
                self.drop_lease()  # nothing left to delete: the lease has nothing to protect
            later: list[Sequence[PlanEntry]] = []
            for index, group in enumerate(groups):
                if self.deferral is not None and not self.deferral.is_due(group):
                    # Untagged after the state is written (below), and deleted on a run after the window.
                    verdict = held.get(index)
                    if verdict is None:
                        later.append(group)
                    else:
                        self.skip_group(group, verdict)
                    continue
                verdict = held.get(index) or self.decide(index)
                if verdict.goes:
                    self.delete_group(group)
                else:
                    self.skip_group(group, verdict)
            self.drop_lease()
            if self.deferral is not None:
                self.defer(later, looked)
            for entry in self.entries:
                if entry.action == ACTION_UNTAG:
                    self.untag(entry, looked)
        except ApplyError:
            raise
        except RegistryError as err:
            raise ApplyError(err, self.result) from None
        finally:
            self.drop_lease()

    # -- reading -------------------------------------------------------------------------------

    def look(self) -> None:
        """The one look at the repository before the first deletion (:func:`live_tags_for_apply`), judged.

        The tag list it reads is also the late-arrival check of the first group it lets go, so
        that group sends no list of its own.
        """
        self.live = live_tags_for_apply(self.repo, self.entries, self.before, check_mode=self.check_mode,
                                        max_concurrency=self.max_concurrency, head_budget=self.look_budget())
        self.held = self.judged()
        self.fresh = True

    def look_budget(self) -> int:
        """HEADs the one look may send: what is left of 1.5 x (tags + digests + deletions) once the plan's
        reads (about tags + digests + a list and a probe) and the apply's own requests (a tag list per
        group, a DELETE per digest) are counted.

        A nightly prune that deletes little would otherwise re-read every kept tag and pass the budget
        (measured: 66 tags, 60 digests, 2 deletions cost 1.55 x); a large clean-up has room for all.
        """
        tags, digests = len(self.before), len(set(self.before.values()))
        deletions = sum(1 for entry in self.entries if entry.action == ACTION_DELETE)
        return max(LOOK_MIN_HEADS, (tags + digests + deletions) // 2 - len(self.judge.groups) - LOOK_BUDGET_OVERHEAD)

    def judged(self) -> dict[int, Verdict]:
        """The groups :attr:`live` holds back: what its tags say, and what new manifests behind them reference."""
        findings = self.judge.findings(self.live)
        return self.judge.verdicts(findings, self.references_into_groups(findings.unknown))

    def references_into_groups(self, new: Mapping[str, str]) -> dict[str, tuple[str, str]]:
        """For manifests the plan never saw (new tags), which planned deletions they reference.

        Follows index children and subjects of what the new tags point at;
        digests the plan knows stop the walk (a kept one reaches nothing
        deleted, a deleted one is caught by its own check).
        """
        group_of, known = self.judge.group_of, self.judge.known
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
                    if target in group_of:
                        hits.setdefault(digest, (target, origin[digest]))
                    elif target not in known and target not in seen:
                        seen.add(target)
                        origin[target] = origin[digest]
                        found.append(target)
            frontier = sorted(found)
        return hits

    def decide(self, index: int) -> Verdict:
        """Whether deletion group ``index`` goes, right before its DELETEs: the one place a group is let go.

        Check mode writes nothing, so it reads nothing here. Otherwise the first group let go is
        judged on the one look (read just before it), each later group on :meth:`late_arrivals`.
        When an opt-in lease is renewed, a writer that waited for the old one may have written
        since, so the repository is looked at again in full. Distribution deletes every tag
        pointing at a deleted manifest, so these checks are what keep a concurrent push's image.
        A later check that must agree before a group goes adds its verdict here, after these.

        With a quarantine the group is first copied there and read back (:meth:`keep`); a copy takes
        time, so the checks then run after it (the first group too: one tag list more per run), and
        the window between the last check and the DELETE stays one request wide.
        """
        if self.check_mode:
            if self.quarantine is not None:
                self.quarantined.update(self.quarantine.planned(self.repo.name, self.judge.groups[index]))
            return GO_AHEAD
        if self.lease is not None and self.lease.keep_alive():
            self.look()
        if self.quarantine is not None:
            failed = self.keep(index)
            if failed is not None:
                return failed
            self.fresh = False
        if self.fresh:
            self.fresh = False
            return self.held.get(index, GO_AHEAD)
        return self.late_arrivals(index)

    def keep(self, index: int) -> Verdict | None:
        """Copy group ``index`` to the quarantine and read it back; a failure keeps the group, in one line."""
        if self.quarantine is None:
            return None
        try:
            self.quarantined.update(self.quarantine.keep(self.repo, self.repo.name, self.judge.groups[index]))
        except QuarantineError as err:
            message = f"not deleted: {err.message}; the image stays"
            self.result.warnings.append(f"{self.name}: {message}")
            return Verdict(SKIP, QUARANTINE_FAILED, QUARANTINE_FAILED, message)
        return None

    def late_arrivals(self, index: int) -> Verdict:
        """The cheap check right before a group's DELETE: the tag list, and a HEAD for each name not seen before.

        One request when nothing is new. A tag created on one of the group's digests (or on a new
        manifest that references one) since the last look holds the group back; so does a tag of
        the group that is no longer listed. A tag that already existed and was *moved* onto the
        group's digests since the one look is not seen (that needs a HEAD of every tag before every
        group): that is the window docs/guide_parallel.md measures. While new names keep arriving
        the list is read again, :data:`LATE_ARRIVAL_ROUNDS` at most; a group whose repository is
        still changing after that is left for the next run.
        """
        for _round in range(LATE_ARRIVAL_ROUNDS):
            try:
                names = image_tags(self.repo)
            except NotFoundError:
                return GO_AHEAD  # the repository is gone: the DELETEs will say so, one by one
            for tag in set(self.live) - names:
                del self.live[tag]
            new = sorted(names - set(self.live))
            self.live.update(resolve_tags(self.repo, new, self.max_concurrency))
            verdict = self.judged().get(index)
            if verdict is not None:
                return verdict
            if not new:
                return GO_AHEAD
        return tags_kept_arriving()

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

    # -- writing -------------------------------------------------------------------------------

    def skip_group(self, group: Sequence[PlanEntry], verdict: Verdict) -> None:
        for entry in group:
            self._skip(entry.digest, entry.tags, verdict)

    def delete_group(self, group: Sequence[PlanEntry]) -> None:
        """Delete the group's digests in reference order (check mode: record them, write nothing)."""
        for entry in group:
            fallback_update = self.judge.fallback_to_update(entry, group)
            gone = False
            if not self.check_mode:
                try:
                    # A 404 is also what a DELETE retried after a 5xx sees when the first attempt removed
                    # the manifest before failing (Distribution under concurrent pushes): removed either way.
                    gone = not self.repo.delete_manifest(entry.digest, missing_ok=True)
                except RegistryError as err:
                    # Distribution refuses a DELETE that reads a link a concurrent push is rewriting
                    # (_client/relink.py). A user's manifest is not sent a blind second DELETE (the push
                    # may be landing on it): what the registry holds now decides, truthfully.
                    if not is_relink_refusal(err):
                        raise
                    verdict = refused_delete(self.repo.resolve(entry.digest) is not None)
                    if not verdict.goes:
                        self._skip(entry.digest, entry.tags, verdict)
                        continue
                if fallback_update is not None:
                    subject = self.judge.fallback_subject(fallback_update)
                    if subject is not None:
                        self.repo.remove_referrer_fallback(subject, entry.digest)
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
                "quarantined": self.quarantined.get(entry.digest),
            })

    def untag(self, entry: PlanEntry, live: Mapping[str, str]) -> None:
        """Remove each of the entry's condemned tags that still points where the plan saw it."""
        method = entry.delete_method or "auto"
        verdict = untag_method(method)
        if not verdict.goes:
            self._skip(entry.digest, entry.untag_tags, verdict)
            return
        for tag in entry.untag_tags:
            now = live.get(tag)
            if now == entry.digest and not self.check_mode:
                # The last read before the write: narrows the race with a concurrent push to one request.
                descriptor = self.repo.resolve(tag)
                now = None if descriptor is None else descriptor.digest
            verdict = untag_tag(entry.digest, tag, now)
            if not verdict.goes:
                self._skip(entry.digest, (tag,), verdict)
                continue
            used = method
            if not self.check_mode:
                try:
                    used = self.repo.delete_tag(tag, method)
                except UnsupportedError as err:
                    # delete_tag has already pointed the tag back at its image.
                    self._skip(entry.digest, (tag,), tag_delete_refused(tag, err.message))
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
                "quarantined": None,
            })

    def defer(self, groups: Sequence[Sequence[PlanEntry]], live: Mapping[str, str]) -> None:
        """Write the state (what was deleted or rescued out, ``groups`` in), then untag ``groups``.

        The state goes first: a crash then leaves an entry for a digest still tagged (the next
        run drops it as rescued), never an untagged image the state does not name.
        """
        deferral = self.deferral
        if deferral is None:
            return
        deleted = {a["digest"]: a["already_gone"] for a in self.result.applied if a["action"] == ACTION_DELETE}
        new = deferral.recorded(groups)
        try:
            deferral.settle(self.entries, live, deleted, new, check_mode=self.check_mode)
        except RegistryError as err:
            raise ApplyError(_state_write_failed(deferral, err), self.result) from None
        self.result.deferred.extend(deferral.report)
        self.result.warnings.extend(deferral.warnings)
        self.result.state_changed = deferral.changed
        planned = {entry.digest: entry for entry in self.entries}
        for item in new:
            if item.tags:
                self.untag(replace(planned[item.digest], action=ACTION_UNTAG, untag_tags=item.tags,
                                   delete_method=self.tag_delete_method), live)

    def _skip(self, digest: str, tags: Sequence[str], verdict: Verdict) -> None:
        self.result.skipped.append({"repository": self.name, "digest": digest, "tags": list(tags),
                                    "reason": verdict.reason, "message": verdict.message})
