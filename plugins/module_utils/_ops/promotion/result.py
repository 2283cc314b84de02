# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a promotion did, as typed values; plain data only at the edge (:meth:`PromotionResult.to_result`).

:func:`.apply.promote` builds a :class:`PromotionResult` from the plan and what applying it found;
``registry_tag`` turns it into the module result. The key order of every ``to_dict`` /
``to_result`` is part of the module's output (a failing task's result is the same data plus the
lost-race keys), so it is fixed here and pinned by the unit tests.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._ops.promotion.plan import (
    PromotionPlan,
    TagChange,
    summary_lines,
)


@dataclass(frozen=True)
class TagResult:
    """One tag in the result: its planned change (after = before when blocked) and how it was removed.

    ``method`` is the removal method a run used for this tag (``tag_delete``,
    ``dummy_manifest``, ``manifest_delete``); ``None`` for a tag that was
    written, left alone, or not touched because of check mode.
    """

    change: TagChange
    method: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """``before``, ``after``, ``action``, ``sibling``, ``method``: one entry of the ``tags`` result."""
        return {**self.change.to_dict(), "method": self.method}


@dataclass(frozen=True)
class CopiedContent:
    """What copying a source from another repository wrote into the target (or would, in check mode).

    The counts are the copy engine's: manifests and blobs uploaded with their
    bytes, blobs mounted from another repository of the same registry, and
    what the target already held (``skipped_*``).
    """

    manifests: int = 0
    blobs: int = 0
    bytes: int = 0
    mounted: int = 0
    skipped_blobs: int = 0
    skipped_manifests: int = 0
    skipped_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The ``copied`` result; ``skipped`` in the copy engine's order (blobs, manifests, bytes)."""
        return {
            "manifests": self.manifests,
            "blobs": self.blobs,
            "bytes": self.bytes,
            "mounted": self.mounted,
            "skipped": {"blobs": self.skipped_blobs, "manifests": self.skipped_manifests, "bytes": self.skipped_bytes},
        }


@dataclass(frozen=True)
class LostRace:
    """A write another writer overtook: what the tags hold now, and which tags this task had written.

    ``after`` is the read-back of every written tag, set when the race was
    found after the writes (it then replaces the planned ``after`` in a failed
    task's result); ``None`` when it was found right before a write.
    """

    lost: Mapping[str, str | None]
    written: tuple[str, ...] = ()
    after: Mapping[str, str | None] | None = None

    def to_dict(self) -> dict[str, Any]:
        """``lost``, ``written`` and (from the read-back) ``after``: the ``detail`` of the ConflictError."""
        data: dict[str, Any] = {"lost": dict(self.lost), "written": list(self.written)}
        if self.after is not None:
            data["after"] = dict(self.after)
        return data


@dataclass(frozen=True)
class PromotionResult:
    """One promotion's outcome: the plan, and what carrying it out (or checking it) found.

    ``name`` is ``host/repository`` for the summary lines. ``method`` is the
    removal method of the whole task (one method, ``mixed``, or ``None``; in
    check mode the one a run would use, when known); ``methods`` the method
    per removed tag. ``verified`` is what the ``verify`` gate returned.
    ``restored_after_prune`` (set once tags were written) lists the tags a
    concurrent prune took and this promotion wrote again; ``lease_notes`` say so.
    """

    plan: PromotionPlan
    name: str
    check_mode: bool = False
    copied: CopiedContent | None = None
    verified: Mapping[str, Any] | None = None
    method: str | None = None
    methods: Mapping[str, str | None] = field(default_factory=dict)
    restored_after_prune: tuple[str, ...] | None = None
    lease_notes: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        """True when the promotion wrote (or, in check mode, would write) anything."""
        return self.plan.changed

    @property
    def after(self) -> dict[str, str | None]:
        """tag -> digest after the promotion (what it would be in check mode; before, when blocked)."""
        return self.plan.after()

    def tags(self) -> dict[str, TagResult]:
        """Per tag (requested tags in order, then removed siblings): its change and removal method."""
        return {change.tag: TagResult(change, self.methods.get(change.tag)) for change in self.plan.shown_changes()}

    def to_result(self) -> dict[str, Any]:
        """The module result: changed, digest, tags, before / after maps, deleted, method, copied, summary,
        notes, verified (in that order)."""
        plan = self.plan
        result: dict[str, Any] = {
            "changed": plan.changed,
            "digest": plan.digest,
            "tags": {tag: entry.to_dict() for tag, entry in self.tags().items()},
            "before": plan.before(),
            "after": plan.after(),
            "deleted": list(plan.delete_digests) if plan.changed else [],
            "method": self.method,
            "copied": self.copied.to_dict() if self.copied is not None else None,
            "summary": summary_lines(plan, self.name, self.check_mode),
            "notes": list(plan.notes) + list(self.lease_notes),
            "verified": self.verified,
        }
        if self.restored_after_prune is not None:
            result["restored_after_prune"] = list(self.restored_after_prune)
        return result
