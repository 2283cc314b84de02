# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The retention planner: a snapshot and a policy in, an exact plan out.

Pure and deterministic: no I/O, no clock (``now`` is an argument), output
ordered by repository then digest. A later ``collect_snapshot(repo)`` fills
the snapshot dataclasses from a registry; the apply step acts on the plan.

How a plan is made (one repository at a time):

1. Tags are split into *normal* tags and *attached* tags: cosign
   ``sha256-<hex>.sig|.att|.sbom`` and the referrers fallback index
   ``sha256-<hex>``. Attached tags are never matched by rules and never take
   ``most_recent`` slots: they follow the digest they name (kept while it
   stays, removed when it is deleted). An attached tag whose subject is not
   in the repository is kept.
2. Every rule is evaluated on every normal tag (its tags chosen by
   ``select_tags`` of ``_model/tag_selection.py``, its other conditions per
   digest; see ``policy.py``); keep beats delete; unmatched tags get
   ``default_action``.
3. A condemned tag on a digest of unknown age, or younger than
   ``grace_period``, is kept instead (skipped: ``unknown_age`` /
   ``grace_period``); with ``on_unknown_age: fail`` the plan also carries a
   violation. Decisions never act on an age we cannot trust.
4. Digests are the unit of deletion. A digest is a deletion candidate when
   all its normal tags are condemned (or, for an untagged digest nothing
   owns, when an ``untagged`` delete rule selects it). Everything a
   candidate owns -- index children, referrers, cosign artifacts and the
   fallback index of its subject -- is a candidate with it (cascade,
   ``referrers: follow_subject``); cascaded digests follow their owner and
   their own age is not consulted (signatures often carry no real time).
5. Everything reachable from what stays is protected: from every kept tag
   and every digest with no reason to go, follow index children, referrers,
   a referrer's subject and attached tags, transitively. A candidate that is
   protected stays; its condemned tags are untagged (skipped: ``reachable``
   or ``shared_digest``). With ``tag_delete_method: never`` such tags stay
   too (skipped: ``tag_delete_unsupported``).
   Unless ``untag_kept_images`` is set, a digest that stays keeps every tag
   on it: keep wins for whole images (skipped: ``kept_image``), as Harbor,
   GAR and ECR retain images with all their tags.
6. Guardrails (``max_deletions`` over the whole plan, ``max_delete_ratio``
   and ``min_keep`` per repository, and, unless ``allow_empty_repository``,
   a repository left with no tagged digest or with every digest deleted)
   turn into ``violations``; the apply step must refuse to delete anything
   when there is one.
   A rule with ``unsigned`` matches a digest past its grace only when the
   signature check made before planning found no valid signature
   (``signatures``, see ``unsigned.py``); the entry says what was checked
   (``unsigned``). A digest inside the grace is kept without a check
   (skipped: ``unsigned_grace``); one whose check could not be made is kept
   (skipped: ``signature_unknown``).
7. A positive tag pattern that selects no tag of the planned repositories
   (while they have tags) is named in ``warnings``, with a hint when it
   reads like a search regex: patterns match the whole tag.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.mediatypes import (
    is_index as is_index_type,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.referrers import (
    entries_refusal,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_order import (
    semver_key,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_patterns import (
    unmatched_pattern_warning,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_schemes import (
    attached_subject,
    referrers_tag,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_selection import (
    select_tags,
    unmatched_candidates,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.timestamps import (
    Timestamp,
    format_duration,
    label_or_annotation,
    parse_expires_after,
    resolve_timestamps,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.policy import (
    DELETE,
    KEEP,
    RetentionPolicy,
    Rule,
)

# Actions on a plan entry.
ACTION_KEEP = "keep"
ACTION_UNTAG = "untag"
ACTION_DELETE = "delete"
# Skip reasons (the apply step adds changed_since_plan).
UNKNOWN_AGE = "unknown_age"
GRACE_PERIOD = "grace_period"
SHARED_DIGEST = "shared_digest"
REACHABLE = "reachable"
TAG_DELETE_UNSUPPORTED = "tag_delete_unsupported"
KEPT_IMAGE = "kept_image"
IN_USE = "in_use"  # in_use names it (or what reaches it): what runs is never deleted
UNSIGNED_GRACE = "unsigned_grace"  # an unsigned rule selects it, but it is younger than the rule's grace
SIGNATURE_UNKNOWN = "signature_unknown"  # an unsigned rule selects it, but its signatures could not be read
DEFAULT_RULE = "default_action"
DELETE_BY_DIGEST = "manifest_delete"


@dataclass(frozen=True)
class ManifestRecord:
    """What the planner needs to know about one manifest in a repository.

    ``children`` are an index's manifests; ``subject`` is a referrer's
    subject digest; ``annotations`` are the manifest's, ``labels`` and
    ``created`` come from the image config (raw strings, parsed here).
    """

    digest: str
    media_type: str = ""
    size: int = 0
    children: tuple[str, ...] = ()
    subject: str | None = None
    artifact_type: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    created: str | None = None

    @property
    def is_index(self) -> bool:
        """True for an OCI index / Docker manifest list."""
        return is_index_type(self.media_type) or bool(self.children)


@dataclass(frozen=True)
class RepositorySnapshot:
    """One repository as seen at planning time.

    ``tags`` maps tag to digest, ``manifests`` digest to record (every
    tagged digest, every index child and every referrer that exists), and
    ``referrers`` subject digest to referrer digests (from the referrers API
    or the ``sha256-<hex>`` fallback index; a record's ``subject`` counts too).
    ``exists`` is false when the registry does not know the repository.
    """

    repository: str
    tags: Mapping[str, str] = field(default_factory=dict)
    manifests: Mapping[str, ManifestRecord] = field(default_factory=dict)
    referrers: Mapping[str, Sequence[str]] = field(default_factory=dict)
    exists: bool = True


@dataclass(frozen=True)
class SignatureCheck:
    """What checking one digest's signatures under an ``unsigned`` rule's ``verify`` block gave.

    ``signed`` is True (a signature verified), False (none did: the rule condemns it) or None
    (the signatures could not be read: the digest is kept). ``detail`` says what was checked.
    """

    signed: bool | None
    detail: str


#: repository -> digest -> rule name -> check; None tells the planner to assume every digest unsigned
#: (how :func:`unsigned_candidates` finds what to check).
Signatures = Mapping[str, Mapping[str, Mapping[str, SignatureCheck]]]


@dataclass(frozen=True)
class RuleMatch:
    """Which tags of a digest one rule matched (``default_action`` for unmatched tags)."""

    rule: str
    action: str
    tags: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for module results."""
        return {"rule": self.rule, "action": self.action, "tags": list(self.tags)}


@dataclass(frozen=True)
class Cascade:
    """A digest deleted because the digest that owns it is deleted."""

    digest: str
    relation: str  # child, referrer, signature, attestation, sbom, referrers_index

    def to_dict(self) -> dict[str, str]:
        """Plain data for module results."""
        return {"digest": self.digest, "relation": self.relation}


@dataclass(frozen=True)
class PlanEntry:
    """The plan for one digest."""

    repository: str
    digest: str
    media_type: str
    tags: tuple[str, ...]
    action: str
    untag_tags: tuple[str, ...] = ()
    matched_rules: tuple[RuleMatch, ...] = ()
    timestamp: str | None = None
    timestamp_source: str | None = None
    timestamp_via: str | None = None
    unknown_age_reason: str | None = None
    reachable_from: tuple[str, ...] = ()
    cascaded: tuple[Cascade, ...] = ()
    cascaded_from: tuple[str, ...] = ()
    delete_method: str | None = None
    fallback_index: str | None = None
    #: The ``in_use`` references that keep this digest: it runs, or what runs reaches it.
    in_use: tuple[str, ...] = ()
    #: Why an ``unsigned`` rule condemns it: ``{rule, grace, checked}`` (None when none does).
    unsigned: Mapping[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data for module results."""
        return {
            "repository": self.repository,
            "digest": self.digest,
            "media_type": self.media_type,
            "tags": list(self.tags),
            "action": self.action,
            "untag_tags": list(self.untag_tags),
            "matched_rules": [match.to_dict() for match in self.matched_rules],
            "timestamp": self.timestamp,
            "timestamp_source": self.timestamp_source,
            "timestamp_via": self.timestamp_via,
            "unknown_age_reason": self.unknown_age_reason,
            "reachable_from": list(self.reachable_from),
            "cascaded": [c.to_dict() for c in self.cascaded],
            "cascaded_from": list(self.cascaded_from),
            "delete_method": self.delete_method,
            "fallback_index": self.fallback_index,
            "in_use": list(self.in_use),
            "unsigned": dict(self.unsigned) if self.unsigned is not None else None,
        }


@dataclass(frozen=True)
class SkippedItem:
    """Something a rule asked for that the plan does not do, and why."""

    repository: str
    digest: str
    tags: tuple[str, ...]
    reason: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        """Plain data for module results."""
        return {
            "repository": self.repository,
            "digest": self.digest,
            "tags": list(self.tags),
            "reason": self.reason,
            "message": self.message,
        }


@dataclass(frozen=True)
class RetentionPlan:
    """The whole plan: entries per digest, skips, counts, tag lists and violations."""

    entries: tuple[PlanEntry, ...]
    skipped: tuple[SkippedItem, ...]
    summary: Mapping[str, Any]
    gc_required: bool
    tags_before: Mapping[str, Mapping[str, str]]
    tags_after: Mapping[str, Mapping[str, str]]
    violations: tuple[str, ...]
    warnings: tuple[str, ...] = ()

    @property
    def deletions(self) -> tuple[PlanEntry, ...]:
        """Entries whose digest is deleted."""
        return tuple(e for e in self.entries if e.action == ACTION_DELETE)

    @property
    def untags(self) -> tuple[PlanEntry, ...]:
        """Entries whose digest stays but loses some tags."""
        return tuple(e for e in self.entries if e.action == ACTION_UNTAG)

    @property
    def changes(self) -> bool:
        """True when applying the plan would change the registry."""
        return any(e.action != ACTION_KEEP for e in self.entries)

    def diff(self) -> dict[str, Any]:
        """``before``/``after`` tag -> digest maps per repository, for ``--diff``."""
        return {"before": _plain(self.tags_before), "after": _plain(self.tags_after)}

    def to_dict(self) -> dict[str, Any]:
        """Plain data for module results (``plan``, ``skipped``, ``summary``...)."""
        return {
            "plan": [entry.to_dict() for entry in self.entries],
            "skipped": [item.to_dict() for item in self.skipped],
            "summary": dict(self.summary),
            "gc_required": self.gc_required,
            "tags_before": _plain(self.tags_before),
            "tags_after": _plain(self.tags_after),
            "violations": list(self.violations),
            "warnings": list(self.warnings),
        }


def _plain(tag_maps: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:
    return {repo: dict(tags) for repo, tags in tag_maps.items()}


class _Graph:
    """Ownership and protection edges between the digests of one repository."""

    def __init__(self, snapshot: RepositorySnapshot, manifests: Mapping[str, ManifestRecord],
                 attached: Mapping[str, tuple[str, str]]) -> None:
        # owner -> {owned digest: relation}; deleting the owner deletes what it owns.
        self.owned: dict[str, dict[str, str]] = defaultdict(dict)
        # referrer/attached digest -> subject digests; a kept referrer protects its subject.
        self.subjects: dict[str, set[str]] = defaultdict(set)
        for digest in sorted(manifests):
            record = manifests[digest]
            for child in record.children:
                if child in manifests and child != digest:
                    self.owned[digest].setdefault(child, "child")
            if record.subject is not None and record.subject in manifests and record.subject != digest:
                self._referrer(record.subject, digest, "referrer")
        for subject in sorted(snapshot.referrers):
            listed = snapshot.referrers[subject]
            judged = {d: manifests[d].subject for d in listed if d in manifests}
            # A "fallback index" whose entries all name another subject (or none) lists no referrers of this one.
            if subject in manifests and entries_refusal(subject, judged) is None:
                for referrer in sorted(listed):
                    if referrer in manifests and referrer != subject:
                        self._referrer(subject, referrer, "referrer")
        for tag in sorted(attached):
            subject, kind = attached[tag]
            self._referrer(subject, snapshot.tags[tag], kind)
        self.owners: dict[str, set[str]] = defaultdict(set)
        for owner, owned in self.owned.items():
            for digest in owned:
                self.owners[digest].add(owner)

    def _referrer(self, subject: str, digest: str, relation: str) -> None:
        self.owned[subject].setdefault(digest, relation)
        self.subjects[digest].add(subject)

    def owned_closure(self, roots: Iterable[str]) -> set[str]:
        """Roots plus everything they own, transitively."""
        return self._closure(roots, lambda d: self.owned.get(d, {}))

    def protected_closure(self, roots: Iterable[str]) -> set[str]:
        """Roots plus everything they reach: owned digests and subjects of referrers."""
        return self._closure(roots, lambda d: list(self.owned.get(d, {})) + sorted(self.subjects.get(d, ())))

    @staticmethod
    def _closure(roots: Iterable[str], edges: Callable[[str], Iterable[str]]) -> set[str]:
        seen = set(roots)
        stack = list(seen)
        while stack:
            for nxt in edges(stack.pop()):
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return seen


@dataclass
class _RepoResult:
    entries: list[PlanEntry]
    skipped: list[SkippedItem]
    violations: list[str]
    tags_after: dict[str, str]
    total: int
    deleted: int
    tagged_before: int
    tagged_after: int
    removed_tags: int


class _RepositoryPlanner:
    """Plans one repository; split into steps so each reads on its own."""

    def __init__(self, snapshot: RepositorySnapshot, policy: RetentionPolicy, now: datetime,
                 in_use: Mapping[str, Sequence[str]] | None = None,
                 signatures: Mapping[str, Mapping[str, SignatureCheck]] | None = None,
                 assume_unsigned: bool = False, expired: Mapping[str, Sequence[str]] | None = None) -> None:
        self.snapshot = snapshot
        # Untagged digests whose deferred-delete window has passed -> the rules that condemned them then.
        self.expired = dict(expired or {})
        # digest -> unsigned rule name -> check; assume_unsigned (finding candidates) reads none.
        self.signatures = signatures or {}
        self.assume_unsigned = assume_unsigned
        # digest -> unsigned rule names that select it but whose grace has not run out (reported, never checked).
        self.unsigned_grace: dict[str, set[str]] = defaultdict(set)
        # digest -> unsigned rule names whose check could not be made.
        self.unsigned_unknown: dict[str, set[str]] = defaultdict(set)
        # What runs: digest -> the in_use references naming it (tags already resolved, see in_use.py).
        self.in_use = {d: tuple(refs) for d, refs in (in_use or {}).items() if d in snapshot.manifests
                       or d in snapshot.tags.values()}
        self.running: dict[str, set[str]] = {}
        self.policy = policy
        self.now = now
        self.repo = snapshot.repository
        self.tags = dict(snapshot.tags)
        self.manifests: dict[str, ManifestRecord] = dict(snapshot.manifests)
        for digest in self.tags.values():
            # A tag whose manifest the snapshot lacks still counts; with no data its age is unknown.
            self.manifests.setdefault(digest, ManifestRecord(digest))
        self.times: dict[str, Timestamp] = resolve_timestamps(self.manifests, policy.timestamp_sources, now)
        self.attached: dict[str, tuple[str, str]] = {}
        self.orphan_attached: set[str] = set()
        self.normal: dict[str, str] = {}
        for tag in sorted(self.tags):
            found = attached_subject(tag, self.manifests)
            if found is None:
                self.normal[tag] = self.tags[tag]
            elif found[0] in self.manifests and found[0] != self.tags[tag]:
                self.attached[tag] = found
            else:
                self.orphan_attached.add(tag)
        self.graph = _Graph(snapshot, self.manifests, self.attached)
        self.tags_of: dict[str, list[str]] = defaultdict(list)
        for tag in sorted(self.tags):
            self.tags_of[self.tags[tag]].append(tag)
        self.normal_of: dict[str, list[str]] = defaultdict(list)
        for tag in sorted(self.normal):
            self.normal_of[self.normal[tag]].append(tag)
        # Untagged digests that nothing owns: the only ones untagged rules select.
        self.orphans = sorted(d for d in self.manifests if d not in self.tags_of and not self.graph.owners.get(d))
        self.skipped: list[SkippedItem] = []
        self.violations: list[str] = []

    # -- step 2: rules ---------------------------------------------------------------------

    def _age_condition(self, rule: Rule, digest: str) -> bool | None:
        """True/False when the age conditions decide, None when they need an unknown age."""
        ts = self.times[digest]
        age = ts.age(self.now)
        results: list[bool | None] = []
        if rule.older_than is not None:
            results.append(None if age is None else age > rule.older_than)
        if rule.newer_than is not None:
            results.append(None if age is None else age < rule.newer_than)
        if rule.unsigned is not None:
            results.append(None if age is None else age > rule.unsigned.grace)
        if rule.expires_after_label is not None:
            lifetime = parse_expires_after(self._label(digest, rule.expires_after_label))
            if lifetime is None:
                results.append(False)  # quay: no label or an invalid value means no expiry
            else:
                results.append(None if ts.value is None else self.now >= ts.value + lifetime)
        if False in results:
            return False
        return None if None in results else True

    def _label(self, digest: str, key: str, visiting: frozenset[str] = frozenset()) -> str | None:
        """A label/annotation; an index without its own takes its children's when they all agree."""
        record = self.manifests[digest]
        value = label_or_annotation(record, key)
        if value is not None or not record.is_index:
            return value
        inner = visiting | {digest}
        found = {
            self._label(child, key, inner)
            for child in record.children
            if child in self.manifests and child not in inner
        } - {None}
        return found.pop() if len(found) == 1 else None

    def _matches(self, rule: Rule, digest: str) -> bool:
        # Keep rules need a known, true age condition; delete rules also match on unknown age so
        # the plan can report the digest as skipped (unknown_age) instead of silently passing it.
        outcome = self._age_condition(rule, digest)
        if rule.unsigned is not None:
            return self._unsigned(rule, digest, outcome)
        return outcome is True or (outcome is None and rule.action == DELETE)

    def _unsigned(self, rule: Rule, digest: str, outcome: bool | None) -> bool:
        """An unsigned rule: past grace and found unsigned (unknown age: matched, so it is reported as such)."""
        if outcome is None:
            return True
        if outcome is False:
            age = self.times[digest].age(self.now)
            # Spared by the grace: the rule's other conditions hold, and only the grace has not run out.
            if (rule.unsigned is not None and age is not None and age <= rule.unsigned.grace
                    and self._age_condition(replace(rule, unsigned=None), digest) is not False):
                self.unsigned_grace[digest].add(rule.name)
            return False
        if self.assume_unsigned:
            return True
        check = self.signatures.get(digest, {}).get(rule.name)
        if check is None:
            return False  # not checked: only digests the rule could condemn are, and this one is kept anyway
        if check.signed is None:
            self.unsigned_unknown[digest].add(rule.name)
        return check.signed is False

    def _most_recent(self, rule: Rule, candidates: Mapping[str, list[str]]) -> set[str]:
        """The ``rule.most_recent`` newest digests among ``candidates`` (digest -> matching tags)."""
        def key(digest: str) -> tuple:
            if rule.order_by == "semver":
                versions = [v for v in (semver_key(t) for t in candidates[digest]) if v is not None]
                return (bool(versions), max(versions) if versions else ())
            if rule.order_by == "tag_name":
                return (max(candidates[digest]),)
            value = self.times[digest].value
            return (value is not None, value.timestamp() if value is not None else 0.0)

        # sorted() is stable with reverse=True, so equal keys stay in digest order.
        ranked = sorted(sorted(candidates), key=key, reverse=True)
        return set(ranked[: rule.most_recent])

    def evaluate_rules(self) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
        """Rule indexes matching each normal tag, and each orphan digest."""
        tag_matches: dict[str, list[int]] = defaultdict(list)
        orphan_matches: dict[str, list[int]] = defaultdict(list)
        for index, rule in enumerate(self.policy.rules):
            if rule.untagged:
                for digest in self.orphans:
                    if self._matches(rule, digest):
                        orphan_matches[digest].append(index)
                continue
            candidates: dict[str, list[str]] = defaultdict(list)
            for tag in select_tags(self.normal, rule.selector).selected:
                if self._matches(rule, self.normal[tag]):
                    candidates[self.normal[tag]].append(tag)
            if rule.most_recent is not None:
                chosen = self._most_recent(rule, candidates)
                candidates = {d: tags for d, tags in candidates.items() if d in chosen}
            for tags in candidates.values():
                for tag in tags:
                    tag_matches[tag].append(index)
        return tag_matches, orphan_matches

    def _verdict(self, matched: Sequence[int], default: str) -> str:
        actions = {self.policy.rules[i].action for i in matched}
        if KEEP in actions:
            return KEEP
        return DELETE if DELETE in actions else default

    # -- step 3: age protections -------------------------------------------------------------

    def protect_by_age(self, condemned: dict[str, list[str]], rule_names: dict[str, list[str]]) -> None:
        """Drop condemnations of digests whose age is unknown or within the grace period."""
        for digest in sorted(condemned):
            if digest in self.expired and not condemned[digest]:
                continue
            ts = self.times[digest]
            tags = tuple(condemned[digest])
            rules = ", ".join(f"'{name}'" for name in rule_names[digest])
            what = f"tag(s) {', '.join(tags)}" if tags else "this untagged digest"
            if not ts.known:
                del condemned[digest]
                self._skip(digest, tags, UNKNOWN_AGE,
                           f"rule(s) {rules} condemn {what} but its age is unknown ({ts.reason}: {ts.detail}); "
                           "kept. Give the image a timestamp or list another timestamp_sources entry")
                if self.policy.on_unknown_age == "fail":
                    self.violations.append(
                        f"{self.repo}@{digest}: rule(s) {rules} condemn {what} but its age is unknown "
                        f"({ts.reason}: {ts.detail}) and on_unknown_age is fail; fix the image's timestamp, "
                        "list another timestamp_sources entry, or set on_unknown_age: keep"
                    )
            elif (age := ts.age(self.now)) is not None and age < self.policy.grace_period:
                del condemned[digest]
                self._skip(digest, tags, GRACE_PERIOD,
                           f"rule(s) {rules} condemn {what} but it was made {ts.iso()}, within grace_period "
                           f"{format_duration(self.policy.grace_period)}; kept")

    def protect_in_use(self, condemned: dict[str, list[str]], rule_names: dict[str, list[str]]) -> None:
        """Drop condemnations of digests that run, and note what each in-use digest keeps (``running``).

        An image in use is kept whole, with every tag on it, like one of unknown age; what it
        reaches (index children, referrers, its subject) stays with it through the seeds of step 5.
        """
        for digest in sorted(self.in_use):
            for reached in self.graph.protected_closure([digest]):
                self.running.setdefault(reached, set()).update(self.in_use[digest])
        for digest in sorted(set(condemned) & set(self.in_use)):
            tags = tuple(condemned.pop(digest))
            rules = ", ".join(f"'{name}'" for name in rule_names[digest])
            what = f"tag(s) {', '.join(tags)}" if tags else "this untagged digest"
            self._skip(digest, tags, IN_USE,
                       f"rule(s) {rules} condemn {what} but it is in use ({', '.join(self.in_use[digest])}); "
                       "kept with all its tags")

    def _skip(self, digest: str, tags: Sequence[str], reason: str, message: str) -> None:
        self.skipped.append(SkippedItem(self.repo, digest, tuple(tags), reason, message))

    # -- steps 4 and 5: digests --------------------------------------------------------------

    def reachable_from(self, alive: set[str], kept_tags: Iterable[str]) -> dict[str, set[str]]:
        """For each digest that stays, the kept tags (or kept untagged digests) that reach it."""
        protectors: dict[str, list[str]] = defaultdict(list)
        for tag in kept_tags:
            protectors[self.tags[tag]].append(tag)
        for digest in self.orphans:
            if digest in alive and digest not in protectors:
                protectors[digest].append(digest)
        result: dict[str, set[str]] = defaultdict(set)
        for start in sorted(protectors):
            for digest in self.graph.protected_closure([start]) - {start}:
                result[digest].update(protectors[start])
        return result

    def condemn(self) -> tuple[dict[str, list[int]], dict[str, list[int]], dict[str, list[str]],
                               dict[str, list[str]]]:
        """Steps 2 and 3: rule matches, then the condemned digests (with their rules) after age and use."""
        rules = self.policy.rules
        tag_matches, orphan_matches = self.evaluate_rules()
        condemned: dict[str, list[str]] = {}  # digest -> condemned normal tags ([] for an orphan)
        rule_names: dict[str, list[str]] = {}
        for digest, tags in self.normal_of.items():
            bad = [t for t in tags if self._verdict(tag_matches[t], self.policy.default_action) == DELETE]
            if bad:
                condemned[digest] = bad
                names = {rules[i].name for t in bad for i in tag_matches[t]}
                by_default = [DEFAULT_RULE] if any(not tag_matches[t] for t in bad) else []
                rule_names[digest] = [r.name for r in rules if r.name in names] + by_default
        for digest in self.orphans:
            if digest in self.expired and self._verdict(orphan_matches[digest], DELETE) == DELETE:
                # Condemned when it was untagged; the window it waited out, not its age, decides now.
                condemned[digest] = []
                rule_names[digest] = list(self.expired[digest])
            elif self._verdict(orphan_matches[digest], KEEP) == DELETE:
                condemned[digest] = []
                rule_names[digest] = [rules[i].name for i in orphan_matches[digest]]
        self.protect_by_age(condemned, rule_names)
        self.protect_in_use(condemned, rule_names)
        return tag_matches, orphan_matches, condemned, rule_names

    def report_unsigned(self, condemned: Mapping[str, list[str]], tag_matches: Mapping[str, list[int]]) -> None:
        """Skips for what unsigned rules spared: inside the grace (never checked), or a check that failed."""
        keeps = {i for i, rule in enumerate(self.policy.rules) if rule.action == KEEP}
        for reason, found in ((UNSIGNED_GRACE, self.unsigned_grace), (SIGNATURE_UNKNOWN, self.unsigned_unknown)):
            for digest in sorted(found):
                tags = self.normal_of.get(digest, [])
                if digest in condemned or digest in self.in_use or any(
                        keeps.intersection(tag_matches.get(t, ())) for t in tags):
                    continue  # condemned anyway, or kept for a stronger reason
                names = ", ".join(f"'{name}'" for name in sorted(found[digest]))
                what = f"tag(s) {', '.join(tags)}" if tags else "this untagged digest"
                if reason == UNSIGNED_GRACE:
                    graces = ", ".join(sorted({format_duration(r.unsigned.grace) for r in self.policy.rules
                                               if r.name in found[digest] and r.unsigned is not None}))
                    message = (f"unsigned rule(s) {names} select {what} but it was made {self.times[digest].iso()}, "
                               f"within its grace ({graces}); its signatures were not checked; kept")
                else:
                    checks = "; ".join(self.signatures[digest][n].detail for n in sorted(found[digest])
                                       if n in self.signatures.get(digest, {}))
                    message = (f"unsigned rule(s) {names} select {what} but its signatures could not be "
                               f"checked ({checks}); kept")
                self._skip(digest, tuple(tags), reason, message)

    def plan(self) -> _RepoResult:
        """Run every step and build the entries."""
        tag_matches, orphan_matches, condemned, rule_names = self.condemn()
        self.report_unsigned(condemned, tag_matches)

        condemned_tags = {t for tags in condemned.values() for t in tags}
        kept_normal = [t for t in self.normal if t not in condemned_tags]
        roots = {d for d in condemned if len(condemned[d]) == len(self.normal_of.get(d, ()))}
        candidates = self.graph.owned_closure(roots)
        no_reason = set(self.manifests) - candidates
        seeds = {self.normal[t] for t in kept_normal} | no_reason | {self.tags[t] for t in self.orphan_attached}
        seeds |= set(self.in_use)  # an in-use index child stays even when its index goes
        alive = self.graph.protected_closure(seeds)
        doomed = candidates - alive

        removed = condemned_tags | {t for t, (subject, _kind) in self.attached.items() if subject in doomed}
        # Kept attached tags are not listed as protectors: they stay only because their subject does.
        protectors = self.reachable_from(alive, sorted(set(kept_normal) | self.orphan_attached))
        entries = [
            self._entry(digest, doomed, removed, tag_matches, orphan_matches, protectors, digest in candidates)
            for digest in sorted(self.manifests)
        ]
        gone = self._removed_tags(entries)
        tags_after = {t: d for t, d in sorted(self.tags.items()) if t not in gone}
        tagged_after = len({d for t, d in tags_after.items() if t in self.normal})
        return _RepoResult(
            entries=entries,
            skipped=self.skipped,
            violations=self.violations,
            tags_after=tags_after,
            total=len(self.manifests),
            deleted=sum(1 for e in entries if e.action == ACTION_DELETE),
            tagged_before=len(self.normal_of),
            tagged_after=tagged_after,
            removed_tags=len(self.tags) - len(tags_after),
        )

    @staticmethod
    def _removed_tags(entries: Sequence[PlanEntry]) -> set[str]:
        out: set[str] = set()
        for entry in entries:
            out.update(entry.tags if entry.action == ACTION_DELETE else entry.untag_tags)
        return out

    def _entry(
        self,
        digest: str,
        doomed: set[str],
        removed: set[str],
        tag_matches: Mapping[str, list[int]],
        orphan_matches: Mapping[str, list[int]],
        protectors: Mapping[str, set[str]],
        wanted_gone: bool,
    ) -> PlanEntry:
        record = self.manifests[digest]
        tags = tuple(self.tags_of.get(digest, ()))
        ts = self.times[digest]
        action, method = ACTION_KEEP, None
        untag: tuple[str, ...] = ()
        cascaded: tuple[Cascade, ...] = ()
        fallback = None
        if digest in doomed:
            action, method = ACTION_DELETE, DELETE_BY_DIGEST
            cascaded = tuple(
                Cascade(d, rel) for d, rel in sorted(self.graph.owned.get(digest, {}).items()) if d in doomed
            )
            fallback = self._fallback_index(digest)
        else:
            untag = tuple(t for t in tags if t in removed)
            if untag and not self.policy.untag_kept_images:
                kept_here = [t for t in tags if t not in untag]
                why = (f"{', '.join(kept_here)} keep(s) it" if kept_here else
                       f"it is reachable from {', '.join(sorted(protectors.get(digest, ()))) or 'a digest that stays'}")
                self._skip(digest, untag, KEPT_IMAGE,
                           f"tag(s) {', '.join(untag)} are condemned but the image stays ({why}), and a kept image "
                           "keeps all its tags; set untag_kept_images: true to remove them")
                untag = ()
            elif untag:
                self._explain_untag(digest, tags, untag, protectors.get(digest, set()), wanted_gone)
                if self.policy.tag_delete_method == "never":
                    self._skip(digest, untag, TAG_DELETE_UNSUPPORTED,
                               f"tag(s) {', '.join(untag)} should be removed while the digest stays, but "
                               "tag_delete_method is never; set tag_delete_method: auto to untag them")
                    untag = ()
                else:
                    action, method = ACTION_UNTAG, self.policy.tag_delete_method
        return PlanEntry(
            repository=self.repo,
            digest=digest,
            media_type=record.media_type,
            tags=tags,
            action=action,
            untag_tags=untag,
            matched_rules=self._rule_matches(digest, tag_matches, orphan_matches),
            timestamp=ts.iso(),
            timestamp_source=ts.source,
            timestamp_via=ts.via,
            unknown_age_reason=ts.reason,
            reachable_from=tuple(sorted(protectors.get(digest, ()))) if digest not in doomed else (),
            cascaded=cascaded,
            cascaded_from=tuple(sorted(o for o in self.graph.owners.get(digest, ()) if o in doomed))
            if digest in doomed else (),
            delete_method=method,
            fallback_index=fallback,
            in_use=tuple(sorted(self.running.get(digest, ()))) if digest not in doomed else (),
            unsigned=self._unsigned_reason(digest, tag_matches, orphan_matches) if digest in doomed else None,
        )

    def _unsigned_reason(self, digest: str, tag_matches: Mapping[str, list[int]],
                         orphan_matches: Mapping[str, list[int]]) -> dict[str, str] | None:
        """``{reason: unsigned, rule, grace, checked}`` when an unsigned rule condemns ``digest`` (the first one)."""
        indexes = set(orphan_matches.get(digest, ()))
        for tag in self.normal_of.get(digest, ()):
            indexes.update(tag_matches.get(tag, ()))
        for index in sorted(indexes):
            rule = self.policy.rules[index]
            check = self.signatures.get(digest, {}).get(rule.name)
            if rule.unsigned is not None and check is not None and check.signed is False:
                return {"reason": "unsigned", "rule": rule.name, "grace": format_duration(rule.unsigned.grace),
                        "checked": check.detail}
        return None

    def _explain_untag(
        self, digest: str, tags: Sequence[str], untag: Sequence[str], protectors: set[str], wanted_gone: bool
    ) -> None:
        kept_here = [t for t in tags if t not in untag]
        if kept_here:
            self._skip(digest, untag, SHARED_DIGEST,
                       f"tag(s) {', '.join(untag)} are condemned but {', '.join(kept_here)} point at the same "
                       "digest, and deleting a digest deletes every tag on it; only the condemned tags are removed")
        elif wanted_gone:
            self._skip(digest, untag, REACHABLE,
                       f"every tag on this digest is condemned but it is reachable from "
                       f"{', '.join(sorted(protectors)) or 'a digest that stays'}; only the tags are removed")

    def _fallback_index(self, digest: str) -> str | None:
        """The fallback index tag (``sha256-<hex>``) listing this referrer, when the repository has one."""
        for subject in sorted(self.graph.subjects.get(digest, ())):
            if self.graph.owned[subject].get(digest) != "referrer":
                continue
            tag = referrers_tag(subject)
            if tag in self.tags:
                return tag
        return None

    def _rule_matches(
        self, digest: str, tag_matches: Mapping[str, list[int]], orphan_matches: Mapping[str, list[int]]
    ) -> tuple[RuleMatch, ...]:
        normal = self.normal_of.get(digest, [])
        by_rule: dict[int, list[str]] = defaultdict(list)
        for tag in normal:
            for index in tag_matches.get(tag, ()):
                by_rule[index].append(tag)
        for index in orphan_matches.get(digest, ()):
            by_rule.setdefault(index, [])
        rules = self.policy.rules
        out = [RuleMatch(rules[i].name, rules[i].action, tuple(by_rule[i])) for i in sorted(by_rule)]
        unmatched = tuple(t for t in normal if not tag_matches.get(t))
        if unmatched:
            out.append(RuleMatch(DEFAULT_RULE, self.policy.default_action, unmatched))
        return tuple(out)


def unsigned_candidates(
    snapshots: Iterable[RepositorySnapshot],
    policy: RetentionPolicy,
    now: datetime,
    in_use: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
) -> dict[str, dict[str, tuple[str, ...]]]:
    """The digests whose signatures an ``unsigned`` rule needs checked: ``{repository: {digest: rule names}}``.

    Pure. The rules are evaluated as if every digest were unsigned; a digest is a candidate when
    an unsigned rule is among those condemning it after keep-wins, age, grace and ``in_use``
    protections. So a repository where everything is kept, or young, costs no check; a
    policy without unsigned rules gives ``{}`` at once.
    """
    if not any(rule.unsigned is not None for rule in policy.rules):
        return {}
    running = in_use or {}
    out: dict[str, dict[str, tuple[str, ...]]] = {}
    for snapshot in sorted(snapshots, key=lambda s: s.repository):
        planner = _RepositoryPlanner(snapshot, policy, now, running.get(snapshot.repository), assume_unsigned=True)
        _tags, _orphans, condemned, rule_names = planner.condemn()
        unsigned = {rule.name for rule in policy.rules if rule.unsigned is not None}
        found = {d: tuple(n for n in rule_names[d] if n in unsigned) for d in sorted(condemned)}
        found = {d: names for d, names in found.items() if names}
        if found:
            out[snapshot.repository] = found
    return out


def plan_retention(
    snapshot: RepositorySnapshot | Iterable[RepositorySnapshot],
    policy: RetentionPolicy,
    now: datetime,
    in_use: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
    signatures: Signatures | None = None,
    expired: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
) -> RetentionPlan:
    """Plan retention for one repository snapshot or several (pure, deterministic).

    ``now`` must be timezone-aware. The plan is ordered by repository then
    digest whatever the order of the input mappings. ``in_use`` maps a repository
    to the digests that run in it (with the references naming them, see
    ``in_use.match_in_use``): they are kept, with what they reach. ``signatures`` holds the
    checks :func:`unsigned_candidates` asked for (``unsigned.check_signatures``); an unsigned
    rule matches only a digest checked and found unsigned. ``expired`` maps a repository to the
    untagged digests whose deferred-delete window has passed (``quarantine.untag_for``, see
    ``deferred.py``), each with the rules that condemned it: such a digest nothing owns is condemned
    again whatever its age (a keep ``untagged`` rule, ``in_use`` or a kept image reaching it still keep it).
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise InvalidInputError("plan_retention needs a timezone-aware now, e.g. datetime.now(timezone.utc)")
    snapshots = [snapshot] if isinstance(snapshot, RepositorySnapshot) else list(snapshot)
    names = [s.repository for s in snapshots]
    if len(set(names)) != len(names):
        raise InvalidInputError("plan_retention got the same repository twice; pass one snapshot per repository")
    running = in_use or {}
    checks = signatures or {}
    waited = expired or {}
    results = {s.repository: _RepositoryPlanner(s, policy, now, running.get(s.repository),
                                                checks.get(s.repository), expired=waited.get(s.repository)).plan()
               for s in sorted(snapshots, key=lambda s: s.repository)}
    violations: list[str] = []
    entries: list[PlanEntry] = []
    skipped: list[SkippedItem] = []
    for repo, result in results.items():
        entries.extend(result.entries)
        skipped.extend(result.skipped)
        violations.extend(result.violations)
        violations.extend(_repository_guardrails(repo, result, policy))
    deleted = sum(r.deleted for r in results.values())
    if policy.max_deletions is not None and deleted > policy.max_deletions:
        violations.append(
            f"the plan deletes {deleted} digests, more than max_deletions ({policy.max_deletions}); nothing is "
            "deleted. Check the plan, then raise max_deletions or narrow the rules"
        )
    skipped.sort(key=lambda s: (s.repository, s.digest, s.reason, s.tags))
    warnings = unmatched_patterns(snapshots, policy)
    return RetentionPlan(
        entries=tuple(entries),
        skipped=tuple(skipped),
        summary=_summary(results, entries, skipped, violations),
        gc_required=deleted > 0,
        tags_before={s.repository: dict(sorted(s.tags.items())) for s in sorted(snapshots, key=lambda s: s.repository)},
        tags_after={repo: result.tags_after for repo, result in results.items()},
        violations=tuple(violations),
        warnings=tuple(warnings),
    )


# Rule names the shorthand options compile to, and the option a warning should name instead.
_SHORTHAND_OPTION = {"protect": "protect", "keep_latest": "match", "older_than": "match", "match": "match"}


def unmatched_patterns(snapshots: Sequence[RepositorySnapshot], policy: RetentionPolicy) -> list[str]:
    """Warnings for positive tag patterns that select no normal tag of any repository that has some.

    Counted over all repositories at once, so a glob over many repositories
    warns only about a pattern that is useless everywhere.
    """
    tags = sorted({t for s in snapshots for t in s.tags if attached_subject(t) is None})
    if not tags:
        return []
    with_tags = [s.repository for s in snapshots if any(attached_subject(t) is None for t in s.tags)]
    where = with_tags[0] if len(with_tags) == 1 else f"any of {len(with_tags)} repositories"
    out: list[str] = []
    for rule in policy.rules:
        if rule.untagged:
            continue
        for kind, text in unmatched_candidates(tags, rule.selector):
            option = _SHORTHAND_OPTION.get(rule.name) if kind == "regex" else None
            label = f"{option} pattern" if option else f"rule '{rule.name}' {kind}"
            text_out = unmatched_pattern_warning(label, text, len(tags), where, regex=kind == "regex")
            if text_out not in out:
                out.append(text_out)
    return out


def _repository_guardrails(repo: str, result: _RepoResult, policy: RetentionPolicy) -> list[str]:
    out = []
    if policy.max_delete_ratio is not None and result.total and result.deleted / result.total > policy.max_delete_ratio:
        out.append(
            f"{repo}: the plan deletes {result.deleted} of {result.total} digests "
            f"({result.deleted / result.total:.0%}), more than max_delete_ratio ({policy.max_delete_ratio:.0%}); "
            "nothing is deleted. Check the plan, then raise max_delete_ratio or narrow the rules"
        )
    changed = result.deleted or result.removed_tags
    emptied = (result.tagged_before and not result.tagged_after) or (result.total and result.deleted == result.total)
    if changed and emptied and not policy.allow_empty_repository:
        out.append(
            f"{repo}: the plan deletes {result.deleted} of {result.total} digests and leaves {result.tagged_after} "
            f"of {result.tagged_before} tagged digests ({len(result.tags_after)} of "
            f"{len(result.tags_after) + result.removed_tags} tags), emptying the repository; nothing is deleted. "
            "Keep what must stay (e.g. protect: ['prod', 'latest'] or keep_latest: 1), or set "
            "allow_empty_repository: true if emptying it is intended"
        )
    if policy.min_keep is not None and changed and result.tagged_after < policy.min_keep:
        out.append(
            f"{repo}: the plan would leave {result.tagged_after} tagged digests, fewer than min_keep "
            f"({policy.min_keep}); nothing is deleted. Keep more (e.g. a keep rule with most_recent: "
            f"{policy.min_keep}) or lower min_keep"
        )
    return out


def _summary(
    results: Mapping[str, _RepoResult],
    entries: Sequence[PlanEntry],
    skipped: Sequence[SkippedItem],
    violations: Sequence[str],
) -> dict[str, Any]:
    reasons: dict[str, int] = defaultdict(int)
    for item in skipped:
        reasons[item.reason] += 1
    return {
        "repositories": len(results),
        "digests": len(entries),
        "keep": sum(1 for e in entries if e.action == ACTION_KEEP),
        "untag": sum(1 for e in entries if e.action == ACTION_UNTAG),
        "delete": sum(1 for e in entries if e.action == ACTION_DELETE),
        "delete_cascaded": sum(1 for e in entries if e.action == ACTION_DELETE and e.cascaded_from),
        "tags_before": sum(len(r.tags_after) + r.removed_tags for r in results.values()),
        "tags_after": sum(len(r.tags_after) for r in results.values()),
        "tags_removed": sum(r.removed_tags for r in results.values()),
        "skipped": dict(sorted(reasons.items())),
        "violations": len(violations),
    }
