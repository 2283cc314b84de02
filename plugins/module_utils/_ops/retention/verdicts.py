# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What changed since the plan, decided (pure): per deletion group go, skip (with the reason) or stop.

The apply step is two parts. Its executor (:mod:`.apply`) takes the lease, reads the repository
once more and writes; this module gets what the plan said and what that read found, and answers
with a :class:`Verdict`:

- a whole plan that breaks a guardrail: **stop**, nothing is written (:func:`plan_verdict`);
- a deletion group (a digest with everything it owns, :func:`deletion_groups`): **skip** as
  ``changed_since_plan`` when a change since planning could make its deletion wrong (a tag the plan
  tied to a digest left it, a tag arrived on one, a cosign or referrers tag of one changed, a new
  manifest references one; :class:`GroupJudge`), else **go**;
- a tag to untag: skip when it moved since the plan, or when the method is ``never``.

A verdict carries the reason and the message the result shows, and a ``cause`` finer than the
reason (which check objected), so a test, or a later check, can tell them apart.
"""
from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_schemes import (
    attached_subject,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.plan import (
    ACTION_DELETE,
    ACTION_UNTAG,
    PlanEntry,
    RetentionPlan,
)

#: The skip reason the apply step adds to the planner's: the repository changed since the plan.
CHANGED_SINCE_PLAN = "changed_since_plan"
#: Skip reason when a tag is not removed because of how tags are removed (``never``, or the registry refused).
TAG_DELETE_UNSUPPORTED = "tag_delete_unsupported"

#: Skip reason when the quarantine copy of a group failed or could not be read back: the group stays.
QUARANTINE_FAILED = "quarantine_failed"

#: Verdict kinds: the group (or tag) goes; it is left with a reason; nothing more of the plan is written.
GO, SKIP, STOP = "go", "skip", "stop"

# Causes: which check objected (a verdict's ``cause``).
#: A tag the plan deletes with a digest no longer points at it (moved, or removed).
TAG_LEFT = "tag_left"
#: A tag was created on, or moved onto, a digest the plan deletes.
TAG_ARRIVED = "tag_arrived"
#: A cosign or referrers-fallback tag that names a doomed digest as its subject was created or moved.
ATTACHED_TAG_CHANGED = "attached_tag_changed"
#: A tag now points at a manifest the plan never saw, which references a doomed digest.
NEW_REFERENCE = "new_reference"
#: Tags kept arriving right before the group's DELETE, round after round.
TAGS_KEPT_ARRIVING = "tags_kept_arriving"
#: The registry refused the DELETE while a push rewrote a link, and the manifest is still there.
DELETE_REFUSED = "delete_refused"
#: A tag to untag points elsewhere now (or nowhere).
TAG_MOVED = "tag_moved"
#: The untag method is ``never``.
METHOD_NEVER = "method_never"
#: The registry refused to remove the tag.
TAG_DELETE_REFUSED = "tag_delete_refused"
#: The plan breaks a guardrail.
GUARDRAIL = "guardrail"

#: Cascade relations where the owned digest is about its owner (a referrer names its subject, a
#: fallback index lists the subject's referrers): it goes first. For "child" the owner goes first.
_POINTS_AT_OWNER = frozenset({"referrer", "signature", "attestation", "sbom", "referrers_index"})

_RUN_AGAIN = "run again to plan from the new state"


@dataclass(frozen=True)
class Verdict:
    """What to do with a deletion group, a tag to untag, or a whole plan."""

    kind: str
    #: The skip reason a result shows (``changed_since_plan``, ``tag_delete_unsupported``); empty for go.
    reason: str = ""
    #: Which check objected (``TAG_LEFT``, ``NEW_REFERENCE``...); empty for go.
    cause: str = ""
    #: The words a result shows.
    message: str = ""

    @property
    def goes(self) -> bool:
        """True when the write may happen."""
        return self.kind == GO


#: The verdict no check objected to.
GO_AHEAD = Verdict(GO)


def _changed(cause: str, why: str) -> Verdict:
    return Verdict(SKIP, CHANGED_SINCE_PLAN, cause, f"not deleted: {why} since the plan was made; {_RUN_AGAIN}")


def plan_verdict(plan: RetentionPlan) -> Verdict:
    """Stop when the plan breaks a guardrail (nothing may then be written), else go."""
    if not plan.violations:
        return GO_AHEAD
    listed = "; ".join(plan.violations)
    return Verdict(STOP, "", GUARDRAIL,
                   f"the retention plan breaks {len(plan.violations)} guardrail(s), so nothing was deleted or "
                   f"untagged: {listed}")


def deletion_groups(entries: Iterable[PlanEntry]) -> list[list[PlanEntry]]:
    """The plan's deletions as cascade groups, each in reference order.

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


@dataclass(frozen=True)
class Findings:
    """What the tags alone say about a view of the repository (:meth:`GroupJudge.findings`)."""

    #: Group index -> the first objection found for it.
    objections: Mapping[int, Verdict]
    #: Digests the plan never saw that a changed tag now points at -> that tag: the executor reads
    #: them (and what they reference) to see whether they reach a doomed digest.
    unknown: Mapping[str, str]


class GroupJudge:
    """Judges one repository's deletion groups against a view of its tags (pure).

    ``entries`` are the repository's plan entries, ``tags_before`` the tag -> digest map the plan
    was made from. A view (``live``) is tag -> digest as the executor read it.
    """

    def __init__(self, entries: Sequence[PlanEntry], tags_before: Mapping[str, str]) -> None:
        self.entries = list(entries)
        self.before = dict(tags_before)
        #: Every digest the plan has an entry for: a walk from a new manifest stops there.
        self.known = {e.digest for e in self.entries}
        self.groups = deletion_groups(self.entries)
        #: Digest -> index of its deletion group.
        self.group_of = {e.digest: i for i, group in enumerate(self.groups) for e in group}
        # Tags this plan removes (deleted with their digest, or untagged).
        self._removed = {t for e in self.entries if e.action == ACTION_DELETE for t in e.tags}
        self._removed |= {t for e in self.entries if e.action == ACTION_UNTAG for t in e.untag_tags}

    def findings(self, live: Mapping[str, str]) -> Findings:
        """The objections the tags of ``live`` raise, and the new digests whose references still matter.

        The first objection per group wins, in this order: a planned tag that left its digest (in
        plan order), then each changed tag (sorted): arrived on a doomed digest, or an attached tag
        of a doomed subject.
        """
        objections: dict[int, Verdict] = {}

        def object_to(digest: str, cause: str, why: str) -> None:
            index = self.group_of.get(digest)
            if index is not None and index not in objections:
                objections[index] = _changed(cause, why)

        for entry in self.entries:
            if entry.action != ACTION_DELETE:
                continue
            for tag in entry.tags:
                if live.get(tag) != entry.digest:
                    now = live.get(tag) or "nowhere (removed)"
                    object_to(entry.digest, TAG_LEFT,
                              f"tag {tag} pointed at {entry.digest} when planned and now points at {now}")
        changed = sorted(t for t in set(self.before) | set(live) if self.before.get(t) != live.get(t))
        unknown: dict[str, str] = {}
        for tag in changed:
            digest = live.get(tag)
            if digest is None:
                continue
            was = self.before.get(tag)
            how = "was created" if was is None else f"moved from {was}"
            if digest in self.group_of:
                object_to(digest, TAG_ARRIVED, f"tag {tag} {how} to {digest}, which the plan deletes")
            attached = attached_subject(tag, self.group_of)
            if attached is not None and attached[0] in self.group_of:
                object_to(attached[0], ATTACHED_TAG_CHANGED,
                          f"tag {tag} ({attached[1]} of {attached[0]}) {how} to {digest}")
            if digest not in self.known:
                unknown.setdefault(digest, tag)
        return Findings(objections, unknown)

    def verdicts(self, findings: Findings, references: Mapping[str, tuple[str, str]]) -> dict[int, Verdict]:
        """Group index -> objection, for every group that may not go (the others go).

        ``references`` is what the executor found behind :attr:`Findings.unknown`: a new manifest's
        digest -> (the doomed digest it references, the tag that points at it), in the order read.
        """
        objections = dict(findings.objections)
        for digest, (target, tag) in references.items():
            index = self.group_of.get(target)
            if index is not None and index not in objections:
                objections[index] = _changed(
                    NEW_REFERENCE, f"tag {tag} now points at {digest}, a new manifest that references {target}")
        return objections

    def fallback_to_update(self, entry: PlanEntry, group: Sequence[PlanEntry]) -> str | None:
        """The referrers fallback tag to take ``entry`` out of, when that index stays (else None)."""
        tag = entry.fallback_index
        if not tag or tag in {t for e in group for t in e.tags} or tag in self._removed:
            return None
        return tag

    def fallback_subject(self, tag: str) -> str | None:
        """The subject digest a fallback tag names, when the plan knows that digest."""
        subject = attached_subject(tag, self.known | set(self.before.values()))
        return None if subject is None else subject[0]


def tags_kept_arriving() -> Verdict:
    """The group's late check saw new tags round after round: it is left for the next run."""
    return _changed(TAGS_KEPT_ARRIVING, "tags kept arriving while it was about to be deleted,")


def refused_delete(still_there: bool) -> Verdict:
    """After a DELETE the registry refused mid-rewrite: gone means it went, still there means it stays."""
    if not still_there:
        return GO_AHEAD
    return Verdict(SKIP, CHANGED_SINCE_PLAN, DELETE_REFUSED,
                   f"not deleted: the registry refused the delete while a push rewrote its tags; {_RUN_AGAIN}")


def untag_method(method: str) -> Verdict:
    """Whether an entry's tags may be removed at all with ``method``."""
    if method != "never":
        return GO_AHEAD
    return Verdict(SKIP, TAG_DELETE_UNSUPPORTED, METHOD_NEVER,
                   "tag_delete_method is never, so the tags stay; set tag_delete_method: auto to remove them")


def untag_tag(digest: str, tag: str, now: str | None) -> Verdict:
    """Whether ``tag`` may be removed: only while it still points at ``digest`` (``now``: where it points)."""
    if now == digest:
        return GO_AHEAD
    return Verdict(SKIP, CHANGED_SINCE_PLAN, TAG_MOVED,
                   f"tag {tag} not removed: it pointed at {digest} when planned and now points at "
                   f"{now or 'nowhere (removed)'}; {_RUN_AGAIN}")


def tag_delete_refused(tag: str, why: str) -> Verdict:
    """The registry would not remove ``tag`` (``why``: its words); the tag stays on its image."""
    return Verdict(SKIP, TAG_DELETE_UNSUPPORTED, TAG_DELETE_REFUSED, f"tag {tag} not removed: {why}")
