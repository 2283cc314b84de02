# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The whole retention run: :func:`prune` is the one call ``registry_prune`` makes.

Select repositories, collect, plan, apply (check mode runs the very same path with the writes
left out), and shape plain data.
"""
from __future__ import annotations

import fnmatch
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    AuthenticationError,
    AuthorizationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    RegistryError,
    UnsupportedError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.reference import (
    validate_repository,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.pool import (
    SharedPool,
    check_concurrency,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.apply import (
    ApplyError,
    ApplyResult,
    apply_repository,
    check_violations,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.in_use import (
    InUse,
    match_in_use,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.plan import (
    ACTION_DELETE,
    ACTION_KEEP,
    ACTION_UNTAG,
    PlanEntry,
    RepositorySnapshot,
    RetentionPlan,
    plan_retention,
    unsigned_candidates,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.policy import (
    RetentionPolicy,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.quarantine import (
    Quarantine,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.snapshot import (
    ConfigCache,
    collect_snapshot,
    repository_name,
)

if TYPE_CHECKING:  # annotations only: registry.py needs requests at import time
    from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import (
        Registry,
        Repository,
    )
    from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.deferred import (
        DeferredDelete,
        RepositoryDeferral,
    )


_GLOB_CHARS = frozenset("*?[")
#: ``missing_repository`` values: a repository the registry does not know fails the task, or is a warning.
MISSING_REPOSITORY = ("fail", "warn")
#: ``failed_repository`` values: a repository that could not be read or written fails the task at the end
#: (after the others were planned and applied), or is a warning.
FAILED_REPOSITORY = ("fail", "warn")
#: ``plan_detail`` values: ``changes`` returns the entries that change something or need a look (delete,
#: untag, and kept digests with a skip), ``full`` every entry (thousands of lines for a large repository).
PLAN_DETAIL = ("changes", "full")


def is_pattern(text: str) -> bool:
    """True when a ``repositories`` entry is a glob rather than a literal repository name."""
    return any(char in _GLOB_CHARS for char in text)


# How a registry refuses its catalog: 401 (Docker Hub, ACR, Harbor for a non-admin), 403, 404 or 405.
_CATALOG_REFUSALS = (AuthenticationError, AuthorizationError, NotFoundError, UnsupportedError)


def catalog_refused_message(host: str, globs: Sequence[str], error: str) -> str:
    """The one line for a catalog the registry would not list: what failed, why that is common, what to set.

    The registry's own error is kept: a wrong password reads the same as a refused catalog on some hosts.
    """
    return (f"repositories {', '.join(globs)} are patterns, which are matched against the registry's catalog "
            f"(GET /v2/_catalog), and {host} refused it: {error}. The catalog is optional in the distribution spec "
            "and Docker Hub, ACR and Harbor (for accounts that are not admins) do not serve it: list the "
            "repositories by name in repositories (no *, ? or [), or prune each one with repository")


def select_repositories(registry: Registry, patterns: Sequence[str], exclude: Sequence[str] = ()) -> list[str]:
    """Repository names matching ``patterns`` (globs) and none of ``exclude``, sorted.

    Literal names are taken as they are; the catalog (``GET /v2/_catalog``,
    which many hosted registries refuse) is read only when a pattern has a
    glob character. ``*`` matches across ``/`` (:mod:`fnmatch` rules).
    """
    if not patterns:
        raise InvalidInputError("repositories is empty: list repository names or globs such as team/*")
    for text in list(patterns) + list(exclude):
        if not isinstance(text, str) or not text.strip():
            raise InvalidInputError(f"repository pattern {text!r} must be a non-empty string such as team/*")
    literal = {p for p in patterns if not is_pattern(p)}
    for name in literal:
        validate_repository(name)
    globs = [p for p in patterns if is_pattern(p)]
    found = set(literal)
    if globs:
        try:
            found |= {name for name in registry.catalog() if any(fnmatch.fnmatchcase(name, g) for g in globs)}
        except _CATALOG_REFUSALS as exc:
            raise type(exc)(catalog_refused_message(registry.host, globs, exc.message),
                            status=exc.status, code=exc.code) from None
    return sorted(n for n in found if not any(fnmatch.fnmatchcase(n, x) for x in exclude))


@dataclass
class PruneResult:
    """The outcome of :func:`prune`: the plan, what was applied, and the module's result data."""

    plan: RetentionPlan
    applied: ApplyResult
    repositories: list[str]
    policy: RetentionPolicy
    warnings: list[str] = field(default_factory=list)
    #: Repositories that could not be read or written: ``{repository, error}``, sorted by repository;
    #: ``error`` is the :class:`RegistryError`, worded where it is shown (:meth:`to_result`).
    failed: list[dict[str, Any]] = field(default_factory=list)
    #: What ``in_use`` protected and what it could not (``in_use.InUseMatch.report``); None when not given.
    in_use: dict[str, Any] | None = None
    #: The deferred deletes (``quarantine.untag_for``), one item per state entry; None when off.
    deferred: list[dict[str, Any]] | None = None

    def tags_after(self) -> dict[str, dict[str, str]]:
        """Per repository, the tag -> digest map after the applied actions (check mode: after them as planned)."""
        removed = self.applied.removed_tags()
        return {repo: {t: d for t, d in tags.items() if t not in removed.get(repo, set())}
                for repo, tags in self.plan.tags_before.items()}

    def to_result(self, plan_detail: str = "full", diff: bool = True,
                  word: Callable[[RegistryError], str] = str) -> dict[str, Any]:
        """Plain data for ``registry_prune``'s result.

        ``word`` tells a failed repository's error (the caller's wording: the glue names options).

        ``plan_detail`` ``changes`` keeps in ``plan`` only what a person needs
        to read (see :func:`plan_entries`); ``summary.by_repository`` still
        counts every action. ``diff`` adds the exact before/after tag maps
        (every tag of every repository: the largest part of a large result).
        """
        data = self.plan.to_dict()
        skipped = data["skipped"] + self.applied.skipped
        skipped.sort(key=lambda s: (s["repository"], s["digest"], s["reason"], s["tags"]))
        summary = dict(data["summary"])
        reasons: dict[str, int] = defaultdict(int)
        for item in skipped:
            reasons[item["reason"]] += 1
        summary["skipped"] = dict(sorted(reasons.items()))
        summary["applied"] = {
            "delete": sum(1 for a in self.applied.applied if a["action"] == ACTION_DELETE),
            "untag": sum(1 for a in self.applied.applied if a["action"] == ACTION_UNTAG),
        }
        summary["by_repository"] = counts_by_repository(self.plan, self.repositories)
        summary["failed_repositories"] = len(self.failed)
        result = {
            "changed": self.applied.changed,
            "repositories": list(self.repositories),
            "policy": self.policy.to_dict(),
            "plan": plan_entries(self.plan, skipped, plan_detail),
            "plan_detail": plan_detail,
            # Not "skipped": Ansible reads a truthy "skipped" key as "this task was skipped".
            "skipped_items": skipped,
            "summary": summary,
            "applied": list(self.applied.applied),
            "gc_required": self.applied.gc_required,
            "violations": data["violations"],
            "failed_repositories": worded(self.failed, word),
        }
        if self.in_use is not None:
            result["in_use"] = dict(self.in_use)
        if self.deferred is not None:
            result["deferred"] = list(self.applied.deferred)
        if diff:
            result["diff"] = {"before": {repo: dict(tags) for repo, tags in self.plan.tags_before.items()},
                              "after": self.tags_after()}
        return result


def plan_entries(plan: RetentionPlan, skipped: Sequence[Mapping[str, Any]], detail: str) -> list[dict[str, Any]]:
    """The ``plan`` entries a result holds: all of them (``full``), or those worth reading (``changes``).

    ``changes`` keeps every delete and untag, and the kept digests that have a
    skipped item (unknown age, a kept image's tags, a change since planning):
    what a person must look at. A repository of 10,000 tags where 40 go
    is 40 entries rather than 10,000.
    """
    if detail not in PLAN_DETAIL:
        raise InvalidInputError(f"plan_detail {detail!r} is not known; write one of {', '.join(PLAN_DETAIL)}")
    if detail == "full":
        return [entry.to_dict() for entry in plan.entries]
    flagged = {(item["repository"], item["digest"]) for item in skipped}
    return [entry.to_dict() for entry in plan.entries
            if entry.action != ACTION_KEEP or (entry.repository, entry.digest) in flagged]


def counts_by_repository(plan: RetentionPlan, repositories: Sequence[str]) -> dict[str, dict[str, int]]:
    """``{repository: {keep, delete, untag, tags_removed}}`` for every planned repository (pure)."""
    counts: dict[str, dict[str, int]] = {
        name: {ACTION_KEEP: 0, ACTION_DELETE: 0, ACTION_UNTAG: 0, "tags_removed": 0}
        for name in sorted(set(repositories) | set(plan.tags_before))}
    for entry in plan.entries:
        row = counts.setdefault(entry.repository,
                                {ACTION_KEEP: 0, ACTION_DELETE: 0, ACTION_UNTAG: 0, "tags_removed": 0})
        row[entry.action] = row.get(entry.action, 0) + 1
    for name, before in plan.tags_before.items():
        after = plan.tags_after.get(name, {})
        counts[name]["tags_removed"] = len(set(before) - set(after))
    return counts


def missing_repositories(names: Sequence[str], host: str, mode: str) -> list[str]:
    """Warnings for repositories the registry does not know; raises :class:`NotFoundError` when ``mode`` is fail.

    A misspelt repository would otherwise prune nothing, run after run, with nobody noticing.
    """
    if mode not in MISSING_REPOSITORY:
        raise InvalidInputError(f"missing_repository {mode!r} is not known; write one of {', '.join(MISSING_REPOSITORY)}")
    if not names:
        return []
    listed = ", ".join(names)
    if mode == "fail":
        raise NotFoundError(
            f"repository {listed} does not exist on {host}, so there is nothing to prune: check the name, or set "
            "missing_repository: warn if a repository may legitimately be absent", status=404)
    return [f"repository {name} does not exist on {host}; nothing was pruned there" for name in names]


def collect_snapshots(repos: Mapping[str, Repository], *, max_concurrency: int | None = None,
                      untagged: Mapping[str, Sequence[str]] | None = None
                      ) -> tuple[list[RepositorySnapshot], list[dict[str, Any]]]:
    """Read every repository within ONE bound of ``max_concurrency`` requests; ``(snapshots, failures)``.

    Repositories are read concurrently, their reads sharing one
    :class:`~.pool.SharedPool` (each gets a fair share of its workers, so a
    slow repository holds at most its share) and one :class:`ConfigCache`.
    A repository whose reads fail is reported as ``{repository, error}`` (the
    :class:`RegistryError` itself: the caller words it) and left out of the plan;
    the others are read and planned as usual. ``untagged`` names, per repository, untagged
    digests to read too (deferred deletes whose window passed).
    """
    workers = check_concurrency(max_concurrency)
    extra = untagged or {}
    names = sorted(repos)
    cache = ConfigCache()
    snapshots: dict[str, RepositorySnapshot] = {}
    failures: dict[str, RegistryError] = {}
    with SharedPool(workers) as pool:

        def one(name: str) -> None:
            with pool.tenant():
                try:
                    snapshots[name] = collect_snapshot(repos[name], name=name, max_concurrency=workers,
                                                       pool=pool, config_cache=cache,
                                                       untagged=sorted(extra.get(name, ())))
                except RegistryError as err:
                    failures[name] = err

        if len(names) <= 1:
            for name in names:
                one(name)
        else:
            # These threads only wait on the shared pool's workers; they send no request themselves.
            with ThreadPoolExecutor(max_workers=min(workers, len(names)),
                                    thread_name_prefix="ocireg-repository") as repositories:
                list(repositories.map(one, names))
    return ([snapshots[n] for n in names if n in snapshots],
            [{"repository": n, "error": failures[n]} for n in names if n in failures])


def worded(failed: Sequence[Mapping[str, Any]], word: Callable[[RegistryError], str] = str) -> list[dict[str, Any]]:
    """``failed`` as plain data: each ``{repository, error}`` with its error told by ``word``."""
    return [{**item, "error": word(item["error"]) if isinstance(item["error"], RegistryError) else item["error"]}
            for item in failed]


def failed_repositories(failed: Sequence[Mapping[str, Any]], mode: str,
                        word: Callable[[RegistryError], str] = str, *, of: int | None = None) -> RegistryError | None:
    """The error that fails the task for ``failed`` repositories (None when none failed or ``mode`` is warn).

    ``word`` tells each repository's error (the caller's wording: the glue names options); ``of`` is
    how many repositories the run had. When none could be pruned there are no others to speak of and
    a warning would hide the only news, so the message is the causes alone.
    """
    if mode not in FAILED_REPOSITORY:
        raise InvalidInputError(f"failed_repository {mode!r} is not known; write one of {', '.join(FAILED_REPOSITORY)}")
    if not failed or mode == "warn":
        return None
    listed = "; ".join(f"{item['repository']}: {item['error']}" for item in worded(failed, word))
    if of is not None and len(failed) >= of:
        return RegistryError(listed if len(failed) == 1 else f"none of the {len(failed)} repositories could be "
                                                             f"pruned: {listed}")
    return RegistryError(
        f"{len(failed)} repository(ies) could not be pruned (the others were planned and applied, see "
        f"failed_repositories): {listed}. Set failed_repository: warn to make this a warning")


def _apply_each(repos: Mapping[str, Repository], plan: RetentionPlan, *, check_mode: bool,
                max_concurrency: int | None, prune_lease: bool = False,
                quarantine: Quarantine | None = None, deferrals: Mapping[str, RepositoryDeferral] | None = None,
                tag_delete_method: str = "auto") -> tuple[ApplyResult, list[dict[str, Any]]]:
    """Apply ``plan`` one repository at a time, its guardrails checked once first; a write that fails
    stops only its own repository."""
    check_violations(plan)
    result = ApplyResult()
    failures = []
    by_repo: dict[str, list[PlanEntry]] = defaultdict(list)
    for entry in plan.entries:
        by_repo[entry.repository].append(entry)
    for name in sorted(plan.tags_before):
        try:
            done = apply_repository(repos[name], name, by_repo.get(name, ()), plan.tags_before[name],
                                    check_mode=check_mode, max_concurrency=max_concurrency, prune_lease=prune_lease,
                                    quarantine=quarantine, deferral=(deferrals or {}).get(name),
                                    tag_delete_method=tag_delete_method)
        except ApplyError as err:
            done = err.result
            failures.append({"repository": name, "error": err})
        result.applied.extend(done.applied)
        result.skipped.extend(done.skipped)
        result.warnings.extend(done.warnings)
        result.deferred.extend(done.deferred)
        result.state_changed = result.state_changed or done.state_changed
    return result, failures


def _signature_checker(policy: RetentionPolicy, max_concurrency: int | None
                       ) -> Callable[[Mapping[str, Any], Any, Sequence[RepositorySnapshot]], dict[str, Any]] | None:
    """The signature check of a policy's ``unsigned`` rules, None when it has none (given the snapshots:
    what they read is not read again).

    The signature machinery (and ``cryptography``) is imported only for such a policy, so a prune
    that checks no signature loads none of it.
    """
    if not any(rule.unsigned is not None for rule in policy.rules):
        return None
    from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.unsigned import (  # pylint: disable=import-outside-toplevel
        check_signatures,
        unsigned_verifiers,
    )
    verifiers = unsigned_verifiers(policy)
    return lambda repos, wanted, snapshots: check_signatures(repos, wanted, verifiers, snapshots=snapshots,
                                                             max_concurrency=max_concurrency)


def _named_digests(in_use: InUse | None, running: Any, repository: str) -> set[str]:
    """The digests ``in_use`` names for ``repository``: matched in its snapshot, or given by digest (an untagged
    image waiting for its window is in no snapshot)."""
    if in_use is None:
        return set()
    named = set(running.digests.get(repository, {})) | set(in_use.digests)
    named.update(r.digest for r in in_use.references if r.digest is not None
                 and f"{r.registry}/{r.repository}" == repository)
    return named


def prune(registry: Registry, policy: RetentionPolicy, repositories: Sequence[str], *, exclude: Sequence[str] = (),
          check_mode: bool, now: datetime | None = None, max_concurrency: int | None = None,
          missing_repository: str = "fail", plan_detail: str = "full", diff: bool = True,
          prune_lease: bool = False, in_use: InUse | None = None, quarantine: Quarantine | None = None,
          deferred: DeferredDelete | None = None) -> PruneResult:
    """Select repositories, collect their snapshots, plan, then apply (check mode: the same walk, no writes).

    Raises :class:`NotFoundError` before any write when a repository does not
    exist (unless ``missing_repository`` is ``warn``), and
    :class:`ConflictError` (its ``partial`` holds the plan data and
    ``warnings``) when the plan breaks a guardrail, before anything is written.
    A repository that cannot be read, or whose writes fail, is listed in
    :attr:`PruneResult.failed` and does not stop the others: the caller
    decides whether that fails the task (:func:`failed_repositories`).
    ``plan_detail`` and ``diff`` shape the result a guardrail error carries
    (as :meth:`PruneResult.to_result`). ``prune_lease`` turns the opt-in
    coordination lease on (:mod:`.._ops.coordination`); off, the run writes
    nothing but what its plan deletes or untags. ``in_use`` (see :mod:`.in_use`)
    names what runs: kept with what it reaches, at no request beyond the snapshot's.
    An ``unsigned`` rule's key files are read before any request; its signature checks
    (:mod:`.unsigned`) are made after the snapshots, for the digests it could condemn only.
    ``quarantine`` (see :mod:`.quarantine`) copies each deletion group there, and reads it back,
    before deleting it. ``deferred`` (see :mod:`.deferred`) untags each deletion group instead, after
    recording it in a state repository beside the pruned ones, and deletes it on a run after its
    window (one state read per repository, before the snapshots; one write when the state changed).
    """
    if plan_detail not in PLAN_DETAIL:
        raise InvalidInputError(f"plan_detail {plan_detail!r} is not known; write one of {', '.join(PLAN_DETAIL)}")
    now = now or datetime.now(UTC)
    check_signatures = _signature_checker(policy, max_concurrency)  # key files are read here, before any request
    names = select_repositories(registry, repositories, exclude)
    if quarantine is not None:
        quarantine.check_not_pruned(registry.host, names)
    if deferred is not None:
        if quarantine is not None:
            raise InvalidInputError("quarantine takes dest or untag_for, not both")
        if policy.tag_delete_method == "never":
            raise InvalidInputError("quarantine.untag_for untags each condemned image, and tag_delete_method is never: "
                                    "set tag_delete_method: auto (or dummy_manifest)")
        deferred.bind(registry, names, check_mode=check_mode)
    repos = {}
    for name in names:
        repo = registry.repository(name)
        repos[repository_name(repo)] = repo
    # The deferred deletes' state is read before anything else: a state that cannot be read stops the run here.
    deferrals = {key: deferred.open(key, repo.name, deferred.read(repo.name), now)
                 for key, repo in sorted(repos.items())} if deferred is not None else {}
    snapshots, failed = collect_snapshots(repos, max_concurrency=max_concurrency,
                                          untagged={key: list(d.due) for key, d in deferrals.items()})
    warnings = missing_repositories([s.repository for s in snapshots if not s.exists], registry.host,
                                    missing_repository)
    running = match_in_use(in_use or InUse(), snapshots)
    for snapshot in snapshots:
        if snapshot.repository in deferrals:
            deferrals[snapshot.repository].observe(snapshot.tags, _named_digests(in_use, running, snapshot.repository))
    wanted = unsigned_candidates(snapshots, policy, now, in_use=running.digests)
    signatures = check_signatures(repos, wanted, snapshots) if check_signatures is not None else {}
    plan = plan_retention(snapshots, policy, now, in_use=running.digests, signatures=signatures,
                          expired={key: d.due for key, d in deferrals.items()})
    planned = {s.repository: repos[s.repository] for s in snapshots}
    outcome = PruneResult(plan, ApplyResult(), sorted(repos), policy, warnings + running.warnings + list(plan.warnings),
                          list(failed), in_use=running.report() if in_use is not None else None,
                          deferred=[] if deferred is not None else None)
    try:
        outcome.applied, apply_failed = _apply_each(planned, plan, check_mode=check_mode,
                                                    max_concurrency=max_concurrency, prune_lease=prune_lease,
                                                    quarantine=quarantine, deferrals=deferrals,
                                                    tag_delete_method=policy.tag_delete_method)
    except ConflictError as err:
        partial = {**outcome.to_result(plan_detail, diff), "warnings": list(outcome.warnings)}
        raise ConflictError(err.message, status=err.status, code=err.code, detail=err.detail, partial=partial) from None
    outcome.failed = sorted(failed + apply_failed, key=lambda item: item["repository"])
    outcome.warnings.extend(outcome.applied.warnings)
    return outcome
