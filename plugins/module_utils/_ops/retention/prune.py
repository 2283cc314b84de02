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
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.reference import (
    validate_repository,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.apply import (
    ApplyResult,
    apply_plan,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.plan import (
    ACTION_DELETE,
    ACTION_UNTAG,
    RetentionPlan,
    plan_retention,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.policy import (
    RetentionPolicy,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.snapshot import (
    collect_snapshot,
    repository_name,
)

if TYPE_CHECKING:  # annotations only: registry.py needs requests at import time
    from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import (
        Registry,
    )


_GLOB_CHARS = frozenset("*?[")
#: ``missing_repository`` values: a repository the registry does not know fails the task, or is a warning.
MISSING_REPOSITORY = ("fail", "warn")


def is_pattern(text: str) -> bool:
    """True when a ``repositories`` entry is a glob rather than a literal repository name."""
    return any(char in _GLOB_CHARS for char in text)


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
        found |= {name for name in registry.catalog() if any(fnmatch.fnmatchcase(name, g) for g in globs)}
    return sorted(n for n in found if not any(fnmatch.fnmatchcase(n, x) for x in exclude))


@dataclass
class PruneResult:
    """The outcome of :func:`prune`: the plan, what was applied, and the module's result data."""

    plan: RetentionPlan
    applied: ApplyResult
    repositories: list[str]
    policy: RetentionPolicy
    warnings: list[str] = field(default_factory=list)

    def tags_after(self) -> dict[str, dict[str, str]]:
        """Per repository, the tag -> digest map after the applied actions (check mode: after them as planned)."""
        removed = self.applied.removed_tags()
        return {repo: {t: d for t, d in tags.items() if t not in removed.get(repo, set())}
                for repo, tags in self.plan.tags_before.items()}

    def to_result(self) -> dict[str, Any]:
        """Plain data for ``registry_prune``'s result."""
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
        before = {repo: dict(tags) for repo, tags in self.plan.tags_before.items()}
        return {
            "changed": self.applied.changed,
            "repositories": list(self.repositories),
            "policy": self.policy.to_dict(),
            "plan": data["plan"],
            # Not "skipped": Ansible reads a truthy "skipped" key as "this task was skipped".
            "skipped_items": skipped,
            "summary": summary,
            "applied": list(self.applied.applied),
            "gc_required": self.applied.gc_required,
            "violations": data["violations"],
            "diff": {"before": before, "after": self.tags_after()},
        }


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


def prune(registry: Registry, policy: RetentionPolicy, repositories: Sequence[str], *, exclude: Sequence[str] = (),
          check_mode: bool, now: datetime | None = None, max_concurrency: int | None = None,
          missing_repository: str = "fail") -> PruneResult:
    """Select repositories, collect their snapshots, plan, then apply (check mode: the same walk, no writes).

    Raises :class:`NotFoundError` before any write when a repository does not
    exist (unless ``missing_repository`` is ``warn``), and
    :class:`ConflictError` (its ``detail`` holds the plan data and
    ``warnings``) when the plan breaks a guardrail, before anything is written.
    """
    now = now or datetime.now(timezone.utc)
    names = select_repositories(registry, repositories, exclude)
    repos = {}
    for name in names:
        repo = registry.repository(name)
        repos[repository_name(repo)] = repo
    snapshots = [collect_snapshot(repo, name=key, max_concurrency=max_concurrency) for key, repo in repos.items()]
    warnings = missing_repositories([s.repository for s in snapshots if not s.exists], registry.host,
                                    missing_repository)
    plan = plan_retention(snapshots, policy, now)
    outcome = PruneResult(plan, ApplyResult(), sorted(repos), policy, warnings + list(plan.warnings))
    try:
        outcome.applied = apply_plan(repos, plan, check_mode=check_mode, max_concurrency=max_concurrency)
    except ConflictError as err:
        detail = {**outcome.to_result(), "warnings": list(outcome.warnings)}
        raise ConflictError(err.message, status=err.status, code=err.code, detail=detail) from None
    return outcome
