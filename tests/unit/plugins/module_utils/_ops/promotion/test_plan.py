"""Unit tests of promotion's pure planner (_ops/promotion/plan.py) and the result it feeds; apply is in test_apply.py."""
from __future__ import annotations

import hashlib
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import InvalidInputError
from ansible_collections.ocireg.registry.plugins.module_utils._ops.promotion.plan import (
    ABSENT,
    TagChange,
    check_source_text,
    check_tags,
    plan_promotion,
    short_digest,
    summary_lines,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.promotion.result import PromotionResult


def digest(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


D1, D2, D3 = digest("one"), digest("two"), digest("three")

# Strategies: a few distinct digests (collisions matter) and valid tags.
digests = st.sampled_from([digest(str(i)) for i in range(4)])
maybe_digests = st.one_of(st.none(), digests)
tag_names = st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,8}", fullmatch=True)
tag_maps = st.dictionaries(tag_names, maybe_digests, min_size=1, max_size=6)
expected_values = st.one_of(st.none(), st.just(ABSENT), digests)


# -- present ------------------------------------------------------------------------
def test_present_moves_only_tags_that_differ() -> None:
    plan = plan_promotion({"prod": D1, "stable": D2, "new": None}, source_digest=D2)
    assert plan.changed
    assert plan.digest == D2
    assert plan.tags_to_write == ("prod", "new")
    assert plan.before() == {"prod": D1, "stable": D2, "new": None}
    assert plan.after() == {"prod": D2, "stable": D2, "new": D2}
    assert [c.action for c in plan.changes] == ["move", "none", "create"]


def test_present_no_op_when_every_tag_already_points_to_the_source() -> None:
    plan = plan_promotion({"prod": D1, "stable": D1}, source_digest=D1)
    assert not plan.changed
    assert plan.tags_to_write == ()
    assert plan.before() == plan.after()


def test_present_needs_a_valid_source_digest() -> None:
    with pytest.raises(InvalidInputError):
        plan_promotion({"prod": D1}, source_digest=None)
    with pytest.raises(InvalidInputError):
        plan_promotion({"prod": D1}, source_digest="sha256:nothex")


def test_empty_tags_and_unknown_state_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="tags is empty"):
        plan_promotion({}, source_digest=D1)
    with pytest.raises(InvalidInputError, match="state must be"):
        plan_promotion({"prod": D1}, state="latest", source_digest=D1)


def test_malformed_expected_digest_says_which_option() -> None:
    with pytest.raises(InvalidInputError, match="expected_digest"):
        plan_promotion({"prod": D1}, source_digest=D2, expected_digest="sha256:abc")


# -- the compare-and-swap guard ------------------------------------------------------
def test_guard_passes_when_the_tag_points_to_the_expected_digest() -> None:
    plan = plan_promotion({"prod": D1}, source_digest=D2, expected_digest=D1)
    assert not plan.blocked
    assert plan.tags_to_write == ("prod",)


def test_stale_guard_blocks_every_write_and_names_both_digests() -> None:
    plan = plan_promotion({"prod": D3, "stable": D1}, source_digest=D2, expected_digest=D1)
    assert plan.blocked
    assert not plan.changed
    assert plan.tags_to_write == ()
    # Nothing moves, not even the tag that matched the guard.
    assert plan.after() == plan.before() == {"prod": D3, "stable": D1}
    (message,) = plan.violations
    assert "'prod'" in message and D3 in message and D1 in message


def test_guard_absent_allows_only_new_tags() -> None:
    assert not plan_promotion({"prod": None}, source_digest=D1, expected_digest=ABSENT).blocked
    plan = plan_promotion({"prod": D2}, source_digest=D1, expected_digest=ABSENT)
    assert plan.blocked
    assert "points to " + D2 in plan.violations[0] and "expected_digest is absent" in plan.violations[0]
    # The tag may have existed all along (a guard written wrong), not only been created by someone since:
    # the plan cannot tell, so the message claims neither.
    assert "someone created it since" not in plan.violations[0]
    assert "existed before this run or was created since" in plan.violations[0]


def test_missing_tag_violates_a_digest_guard_and_says_it_does_not_exist_yet() -> None:
    # The old message said "points to absent ... someone else moved it" for a tag that is simply new.
    plan = plan_promotion({"prod": None}, source_digest=D2, expected_digest=D1)
    assert plan.blocked
    (message,) = plan.violations
    assert message.startswith(f"tag 'prod' does not exist yet, but expected_digest is {D1}")
    assert "nobody moved it" in message and "someone else" not in message
    assert "{prod: absent, <other tag>: <its digest>}" in message


def test_expected_digest_per_tag_moves_one_and_creates_another() -> None:
    plan = plan_promotion({"prod": D1, "stable": None}, source_digest=D2,
                          expected_digest={"prod": D1, "stable": ABSENT})
    assert not plan.blocked and plan.tags_to_write == ("prod", "stable")
    # Each tag is held to its own guard.
    plan = plan_promotion({"prod": D3, "stable": D1}, source_digest=D2,
                          expected_digest={"prod": D1, "stable": ABSENT})
    assert len(plan.violations) == 2
    assert "someone else moved it" in plan.violations[0] and "already exists" in plan.violations[1]
    # Tags the mapping leaves out are not guarded.
    assert not plan_promotion({"prod": D1, "stable": D3}, source_digest=D2, expected_digest={"prod": D1}).blocked


def test_expected_digest_mapping_is_validated() -> None:
    with pytest.raises(InvalidInputError, match=r"names tag\(s\) prd that are not in tags \(prod\)"):
        plan_promotion({"prod": D1}, source_digest=D2, expected_digest={"prd": D1})
    with pytest.raises(InvalidInputError, match=r"expected_digest\[prod\]"):
        plan_promotion({"prod": D1}, source_digest=D2, expected_digest={"prod": "sha256:abc"})


@pytest.mark.parametrize("text", ["staging", "latest"])
def test_a_bare_word_source_is_refused_with_the_colon_hint(text: str) -> None:
    with pytest.raises(InvalidInputError, match=f"write source: ':{text}'"):
        check_source_text(text, "registry.example.com/team/app")


@pytest.mark.parametrize("text", [":staging", "@" + D1, "registry.example.com/team/app:1", "team/app:1",
                                  "localhost:5000"])
def test_sources_with_a_colon_slash_or_at_pass(text: str) -> None:
    assert check_source_text(text) == text


def test_finished_promotion_is_a_no_op_even_with_the_old_expected_digest() -> None:
    """Re-running a playbook after it promoted: the guard names the old digest, nothing to do."""
    plan = plan_promotion({"prod": D2}, source_digest=D2, expected_digest=D1)
    assert not plan.blocked
    assert not plan.changed


def test_interrupted_promotion_completes_on_rerun() -> None:
    plan = plan_promotion({"prod": D2, "stable": D1}, source_digest=D2, expected_digest=D1)
    assert not plan.blocked
    assert plan.tags_to_write == ("stable",)


def test_blocked_tags_result_shows_before_as_after() -> None:
    plan = plan_promotion({"prod": D3}, source_digest=D2, expected_digest=D1)
    assert plan.tags_result() == {"prod": {"before": D3, "after": D3, "action": "none", "sibling": False}}


# -- absent -------------------------------------------------------------------------
def test_absent_removes_existing_tags_only() -> None:
    plan = plan_promotion({"old": D1, "gone": None}, state=ABSENT)
    assert plan.changed
    assert plan.tags_to_write == ("old",)
    assert plan.after() == {"old": None, "gone": None}
    assert plan.delete_digests == ()
    assert plan.digest is None


def test_absent_is_a_no_op_when_tags_are_gone() -> None:
    plan = plan_promotion({"old": None}, state=ABSENT, expected_digest=D1)
    assert not plan.changed and not plan.blocked


def test_absent_guard_blocks_removing_a_moved_tag() -> None:
    plan = plan_promotion({"old": D2}, state=ABSENT, expected_digest=D1)
    assert plan.blocked and plan.tags_to_write == ()


def test_delete_manifest_needs_the_repository_tags() -> None:
    with pytest.raises(InvalidInputError, match="tag list"):
        plan_promotion({"old": D1}, state=ABSENT, delete_manifest=True)


def test_delete_manifest_refuses_when_other_tags_share_the_digest() -> None:
    plan = plan_promotion({"old": D1}, state=ABSENT, delete_manifest=True,
                          repository_tags={"old": D1, "prod": D1, "other": D2})
    assert plan.blocked
    assert "prod" in plan.violations[0] and "force" in plan.violations[0]
    assert "other" not in plan.violations[0]


def test_delete_manifest_with_force_lists_the_siblings_it_removes() -> None:
    plan = plan_promotion({"old": D1}, state=ABSENT, delete_manifest=True, force=True,
                          repository_tags={"old": D1, "prod": D1, "other": D2})
    assert not plan.blocked
    assert plan.delete_digests == (D1,)
    assert plan.tags_to_write == ("old",)
    assert plan.before() == {"old": D1, "prod": D1}
    assert plan.after() == {"old": None, "prod": None}
    assert plan.tags_result()["prod"]["sibling"] is True
    assert plan.notes and "prod" in plan.notes[0]


def test_delete_manifest_deletes_each_distinct_digest_once() -> None:
    plan = plan_promotion({"a": D1, "b": D1, "c": D2, "d": None}, state=ABSENT, delete_manifest=True,
                          repository_tags={"a": D1, "b": D1, "c": D2})
    assert not plan.blocked
    assert plan.delete_digests == (D1, D2)


def test_tag_change_actions() -> None:
    assert TagChange("t", None, D1).action == "create"
    assert TagChange("t", D1, D2).action == "move"
    assert TagChange("t", D1, None).action == "remove"
    assert TagChange("t", D1, D1).action == "none"


# -- properties ---------------------------------------------------------------------
@given(tags=st.lists(tag_names, min_size=1, max_size=6, unique=True), source=digests, expected=expected_values)
def test_property_no_writes_when_all_tags_already_match(tags: list[str], source: str, expected: str | None) -> None:
    plan = plan_promotion({t: source for t in tags}, source_digest=source, expected_digest=expected)
    assert not plan.changed
    assert not plan.blocked
    assert plan.tags_to_write == ()


@given(current=tag_maps, source=digests, expected=expected_values)
def test_property_guard_blocks_every_write(current: dict[str, str | None], source: str,
                                           expected: str | None) -> None:
    plan = plan_promotion(current, source_digest=source, expected_digest=expected)
    wanted = None if expected == ABSENT else expected
    stale = [t for t, d in current.items() if d != source and expected is not None and d != wanted]
    assert plan.blocked == bool(stale)
    if plan.blocked:
        assert plan.tags_to_write == () and not plan.changed
        assert plan.after() == plan.before()
    else:
        assert set(plan.tags_to_write) == {t for t, d in current.items() if d != source}
        assert all(d == source for d in plan.after().values())


@given(current=tag_maps, others=tag_maps, force=st.booleans(), expected=expected_values)
def test_property_delete_manifest_never_silently_removes_other_tags(
    current: dict[str, str | None], others: dict[str, str | None], force: bool, expected: str | None
) -> None:
    repository_tags = {**others, **{t: d for t, d in current.items() if d is not None}}
    plan = plan_promotion(current, state=ABSENT, delete_manifest=True, force=force,
                          repository_tags=repository_tags, expected_digest=expected)
    hit = {t for t, d in repository_tags.items() if t not in current and d in plan.delete_digests}
    if hit and not force:
        assert plan.blocked and not plan.changed
    if not plan.blocked:
        # Every tag a deleted digest takes away is shown in the result, never hidden.
        assert hit <= set(plan.after())
        assert all(plan.after()[t] is None for t in hit)


# -- results and summaries ----------------------------------------------------------------
def test_check_tags_keeps_order_drops_repeats_and_validates() -> None:
    assert check_tags(["b", "a", "b"]) == ["b", "a"]
    with pytest.raises(InvalidInputError):
        check_tags([])
    with pytest.raises(InvalidInputError):
        check_tags(["-bad"])


def test_summary_lines_read_before_to_after() -> None:
    plan = plan_promotion({"prod": D1, "stable": D2}, source_digest=D2)
    assert short_digest(D1) == D1[:19] and short_digest(None) == "absent"
    assert summary_lines(plan, "reg/team/app") == [
        f"reg/team/app:prod  {D1[:19]} -> {D2[:19]}  (moved)",
        f"reg/team/app:stable  {D2[:19]} -> {D2[:19]}  (unchanged)",
    ]
    assert "(would move)" in summary_lines(plan, "r/x", check_mode=True)[0]
    blocked = plan_promotion({"prod": D1}, source_digest=D2, expected_digest=D3)
    assert summary_lines(blocked, "r/x") == [f"r/x:prod  {D1[:19]} -> {D1[:19]}  (blocked)"]


def test_promotion_result_shape_is_the_same_for_every_state() -> None:
    present = PromotionResult(plan_promotion({"prod": D1}, source_digest=D2), "r/x").to_result()
    absent = PromotionResult(plan_promotion({"prod": D1}, state=ABSENT), "r/x").to_result()
    assert set(present) == set(absent)
    assert present["tags"]["prod"] == {"before": D1, "after": D2, "action": "move", "sibling": False,
                                       "method": None}
    assert present["before"] == {"prod": D1} and present["after"] == {"prod": D2}
    assert absent["after"] == {"prod": None} and absent["digest"] is None
