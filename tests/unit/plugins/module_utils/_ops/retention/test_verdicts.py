"""The apply step's decisions (_ops/retention/verdicts.py), without a registry: every verdict and its words."""
from __future__ import annotations

import dataclasses

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_schemes import cosign_tag, referrers_tag
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.plan import (
    Cascade,
    PlanEntry,
    RetentionPlan,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention import verdicts
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.verdicts import (
    ATTACHED_TAG_CHANGED,
    CHANGED_SINCE_PLAN,
    DELETE_REFUSED,
    GO,
    GUARDRAIL,
    METHOD_NEVER,
    NEW_REFERENCE,
    SKIP,
    STOP,
    TAG_ARRIVED,
    TAG_DELETE_REFUSED,
    TAG_DELETE_UNSUPPORTED,
    TAG_LEFT,
    TAG_MOVED,
    TAGS_KEPT_ARRIVING,
    Findings,
    GroupJudge,
    deletion_groups,
)

REPO = "r.example/team/app"
OLD = "sha256:" + "a" * 64  # doomed, alone (dev-old)
INDEX = "sha256:" + "b" * 64  # doomed index (dev-multi) ...
CHILD = "sha256:" + "c" * 64  # ... and its child, one group
KEPT = "sha256:" + "d" * 64  # prod
SHARED = "sha256:" + "e" * 64  # untagged: dev-shared goes, release stays
NEW = "sha256:" + "f" * 64  # a manifest the plan never saw

BEFORE = {"dev-old": OLD, "dev-multi": INDEX, "prod": KEPT, "dev-shared": SHARED, "release": SHARED}
ENTRIES = [
    PlanEntry(REPO, OLD, "", ("dev-old",), "delete", delete_method="manifest_delete"),
    PlanEntry(REPO, INDEX, "", ("dev-multi",), "delete", cascaded=(Cascade(CHILD, "child"),)),
    PlanEntry(REPO, CHILD, "", (), "delete", cascaded_from=(INDEX,)),
    PlanEntry(REPO, KEPT, "", ("prod",), "keep"),
    PlanEntry(REPO, SHARED, "", ("dev-shared", "release"), "untag", untag_tags=("dev-shared",)),
]


def judge() -> GroupJudge:
    return GroupJudge(ENTRIES, BEFORE)


def group_of(digest: str) -> int:
    return judge().group_of[digest]


def held(live: dict[str, str], references: dict[str, tuple[str, str]] | None = None) -> dict[int, tuple[str, str, str]]:
    """Group index -> (kind, cause, message) of every group the view holds back."""
    j = judge()
    held_back = j.verdicts(j.findings(live), references or {})
    return {index: (v.kind, v.cause, v.message) for index, v in held_back.items()}


def skipped(cause: str, why: str) -> tuple[str, str, str]:
    return (SKIP, cause, f"not deleted: {why} since the plan was made; run again to plan from the new state")


def test_nothing_changed_lets_every_group_go() -> None:
    assert judge().groups and held(dict(BEFORE)) == {}
    assert judge().findings(dict(BEFORE)) == Findings({}, {})


def test_a_planned_tag_that_left_its_digest_holds_its_group() -> None:
    live = {**BEFORE, "dev-old": NEW}
    assert held(live)[group_of(OLD)] == skipped(TAG_LEFT, f"tag dev-old pointed at {OLD} when planned and now points at {NEW}")
    gone = {t: d for t, d in BEFORE.items() if t != "dev-multi"}
    assert held(gone) == {group_of(INDEX): skipped(
        TAG_LEFT, f"tag dev-multi pointed at {INDEX} when planned and now points at nowhere (removed)")}


def test_a_tag_created_or_moved_onto_a_doomed_digest_holds_its_whole_group() -> None:
    created = {**BEFORE, "hotfix": CHILD}
    assert held(created) == {group_of(CHILD): skipped(TAG_ARRIVED, f"tag hotfix was created to {CHILD}, which the plan deletes")}
    assert group_of(CHILD) == group_of(INDEX)  # the index goes with its child, or not at all
    moved = {**BEFORE, "prod": OLD}
    assert held(moved) == {group_of(OLD): skipped(TAG_ARRIVED, f"tag prod moved from {KEPT} to {OLD}, which the plan deletes")}


def test_a_new_cosign_or_referrers_tag_of_a_doomed_subject_holds_it() -> None:
    signature = cosign_tag(OLD, "sig")
    assert held({**BEFORE, signature: NEW}) == {group_of(OLD): skipped(
        ATTACHED_TAG_CHANGED, f"tag {signature} (signature of {OLD}) was created to {NEW}")}
    fallback = referrers_tag(INDEX)
    (kind, cause, message), = held({**BEFORE, fallback: NEW}).values()
    assert (kind, cause) == (SKIP, ATTACHED_TAG_CHANGED) and message.startswith(f"not deleted: tag {fallback} (")


def test_new_manifests_are_handed_to_the_executor_and_what_they_reference_holds_a_group() -> None:
    j = judge()
    findings = j.findings({**BEFORE, "next": NEW})
    assert findings == Findings({}, {NEW: "next"})  # a tag on a new manifest alone holds nothing back
    assert j.verdicts(findings, {}) == {}
    held_back = j.verdicts(findings, {NEW: (CHILD, "next")})
    assert {i: (v.kind, v.cause, v.message) for i, v in held_back.items()} == {group_of(CHILD): skipped(
        NEW_REFERENCE, f"tag next now points at {NEW}, a new manifest that references {CHILD}")}


def test_the_first_objection_per_group_wins_in_a_fixed_order() -> None:
    # dev-old left OLD, and prod moved onto it: the planned tag's objection is found first.
    live = {**BEFORE, "dev-old": NEW, "prod": OLD}
    assert held(live, {NEW: (OLD, "dev-old")})[group_of(OLD)][1] == TAG_LEFT


def test_tags_that_keep_arriving_leave_the_group_for_the_next_run() -> None:
    verdict = verdicts.tags_kept_arriving()
    assert (verdict.kind, verdict.reason, verdict.cause) == (SKIP, CHANGED_SINCE_PLAN, TAGS_KEPT_ARRIVING)
    assert verdict.message == ("not deleted: tags kept arriving while it was about to be deleted, since the plan "
                               "was made; run again to plan from the new state")


def test_a_delete_refused_mid_push_goes_only_if_the_manifest_went() -> None:
    assert verdicts.refused_delete(still_there=False).goes
    verdict = verdicts.refused_delete(still_there=True)
    assert (verdict.kind, verdict.reason, verdict.cause) == (SKIP, CHANGED_SINCE_PLAN, DELETE_REFUSED)
    assert verdict.message == ("not deleted: the registry refused the delete while a push rewrote its tags; "
                               "run again to plan from the new state")


def test_an_untag_goes_only_while_the_tag_points_where_the_plan_saw_it() -> None:
    assert verdicts.untag_tag(SHARED, "dev-shared", SHARED).goes
    for now, where in ((NEW, NEW), (None, "nowhere (removed)")):
        verdict = verdicts.untag_tag(SHARED, "dev-shared", now)
        assert (verdict.kind, verdict.reason, verdict.cause) == (SKIP, CHANGED_SINCE_PLAN, TAG_MOVED)
        assert verdict.message == (f"tag dev-shared not removed: it pointed at {SHARED} when planned and now points "
                                   f"at {where}; run again to plan from the new state")


@pytest.mark.parametrize("method", ["auto", "dummy_manifest", "tag_delete"])
def test_every_untag_method_but_never_goes(method: str) -> None:
    assert verdicts.untag_method(method).goes


def test_untag_method_never_keeps_the_tags_and_a_refused_untag_says_why() -> None:
    never = verdicts.untag_method("never")
    assert (never.kind, never.reason, never.cause) == (SKIP, TAG_DELETE_UNSUPPORTED, METHOD_NEVER)
    refused = verdicts.tag_delete_refused("dev-shared", "HTTP 405")
    assert (refused.kind, refused.reason, refused.cause, refused.message) == (
        SKIP, TAG_DELETE_UNSUPPORTED, TAG_DELETE_REFUSED, "tag dev-shared not removed: HTTP 405")


def test_a_plan_that_breaks_a_guardrail_stops_before_anything() -> None:
    plan = RetentionPlan(entries=tuple(ENTRIES), skipped=(), summary={}, gc_required=True,
                         tags_before={REPO: BEFORE}, tags_after={}, violations=("max_deletions 1 < 3",))
    verdict = verdicts.plan_verdict(plan)
    assert (verdict.kind, verdict.cause) == (STOP, GUARDRAIL)
    assert verdict.message == ("the retention plan breaks 1 guardrail(s), so nothing was deleted or untagged: "
                               "max_deletions 1 < 3")
    assert verdicts.plan_verdict(dataclasses.replace(plan, violations=())).kind == GO


def test_a_fallback_index_is_updated_only_when_it_stays() -> None:
    subject = KEPT
    tag = referrers_tag(subject)
    referrer = PlanEntry(REPO, NEW, "", (), "delete", fallback_index=tag)
    j = GroupJudge([referrer, PlanEntry(REPO, subject, "", ("prod",), "keep")], {"prod": subject, tag: INDEX})
    assert j.fallback_to_update(referrer, [referrer]) == tag and j.fallback_subject(tag) == subject
    doomed_too = GroupJudge([referrer, PlanEntry(REPO, INDEX, "", (tag,), "delete")], {"prod": subject, tag: INDEX})
    assert doomed_too.fallback_to_update(referrer, [referrer]) is None  # the index goes itself


def test_deletion_groups_are_ordered_index_before_child_and_referrer_before_subject() -> None:
    def entry(digest: str, *cascaded: tuple[str, str]) -> PlanEntry:
        return PlanEntry("r", digest, "", (), "delete", cascaded=tuple(Cascade(d, rel) for d, rel in cascaded))

    entries = [
        entry("sha256:subject", ("sha256:ref", "referrer"), ("sha256:fallback", "referrers_index")),
        entry("sha256:fallback", ("sha256:ref", "child")),
        entry("sha256:ref"),
        entry("sha256:alone"),
        PlanEntry("r", "sha256:kept", "", ("v1",), "keep"),
    ]
    groups = [[e.digest for e in group] for group in deletion_groups(entries)]
    assert groups == [["sha256:alone"], ["sha256:fallback", "sha256:ref", "sha256:subject"]]
