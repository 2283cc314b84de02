"""The deferred delete's pure parts (_ops/retention/deferred.py): the state's tag and document, the option's
refusals, and what a run makes of each entry.

The registry side (reads, writes, windows on a real Distribution) is tested in
tests/integration/test_registry_prune_deferred.py. :func:`settle` is given a recording owner here: it
stands for the state repository, whose writes are counted on a real registry there.
"""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import InvalidInputError
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.deferred import (
    DELETED,
    PENDING,
    RESCUED,
    STATE_ANNOTATION,
    STATE_ARTIFACT_TYPE,
    UNTAGGED,
    DeferredDelete,
    DeferredStateError,
    Pending,
    decode_state,
    encode_state,
    parse_state_repository,
    state_tag,
    undo_window,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.plan import (
    Cascade,
    ManifestRecord,
    PlanEntry,
    RepositorySnapshot,
    RuleMatch,
    plan_retention,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.policy import build_policy

NOW = datetime(2026, 5, 2, 3, 0, tzinfo=UTC)
A, B, C, S = ("sha256:" + ch * 64 for ch in "abcd")
HOST = "r.example"


def pending(digest: str, days_left: int = 7, tags: tuple[str, ...] = ("old-1",)) -> Pending:
    return Pending(digest, tags, NOW - timedelta(days=7 - days_left), NOW + timedelta(days=days_left), ("older_than",),
                   "application/vnd.oci.image.manifest.v1+json")


def test_state_tags_are_readable_valid_and_apart():
    assert state_tag("team/app").startswith("team_app-")
    assert state_tag("team/app") != state_tag("team_app")
    long = "/".join(["a" * 60] * 4)
    assert len(state_tag(long)) <= 128
    assert state_tag(long) != state_tag(long + "x")


def test_the_document_round_trips_and_is_an_artifact_of_ours():
    entries = [pending(B), pending(A, days_left=2)]
    raw = encode_state("team/app", entries)
    manifest = json.loads(raw)
    assert manifest["artifactType"] == STATE_ARTIFACT_TYPE
    document = json.loads(manifest["annotations"][STATE_ANNOTATION])
    assert document["repository"] == "team/app" and [e["digest"] for e in document["pending"]] == [A, B]
    assert document["pending"][0]["delete_after"] == "2026-05-04T03:00:00Z"
    assert decode_state("team/app", raw, "x") == sorted(entries, key=lambda e: e.digest)


@pytest.mark.parametrize("raw, says", [
    (b"not json", "no state annotation"),
    (json.dumps({"artifactType": "application/x", "annotations": {}}).encode(), "artifactType is not"),
    (encode_state("team/other", []), "it describes repository 'team/other'"),
    (json.dumps({"artifactType": STATE_ARTIFACT_TYPE, "annotations": {STATE_ANNOTATION: json.dumps(
        {"version": 1, "repository": "team/app", "pending": [{"digest": A, "tags": [], "untagged_at": "yesterday",
                                                              "delete_after": "soon"}]})}}).encode(),
     "an entry is not"),
    (json.dumps({"artifactType": STATE_ARTIFACT_TYPE, "annotations": {STATE_ANNOTATION: json.dumps(
        {"version": 9, "repository": "team/app", "pending": []})}}).encode(), "version 9"),
])
def test_a_corrupted_state_is_one_line(raw, says):
    with pytest.raises(DeferredStateError) as caught:
        decode_state("team/app", raw, "r.example/ops/state:team_app-x")
    assert says in caught.value.message and "is corrupted" in caught.value.message
    assert "\n" not in caught.value.message


def test_the_state_repository_stays_on_the_pruned_host():
    assert parse_state_repository("ops/prune-state", HOST) == "ops/prune-state"
    assert parse_state_repository(f"{HOST}/ops/prune-state", HOST) == "ops/prune-state"
    for text, says in (("other.example/ops/state", "not on r.example"), ("", "is empty"),
                       ("Ops/State", "quarantine.state 'Ops/State'"), (f"{HOST}/ops/state:1", "carries a tag")):
        with pytest.raises(InvalidInputError) as caught:
            parse_state_repository(text, HOST)
        assert says in caught.value.message and "\n" not in caught.value.message


@pytest.mark.parametrize("options, says", [
    ({"dest": "oci:/q", "untag_for": "7d", "state": "ops/s"}, "not both"),
    ({"dest": "oci:/q", "state": "ops/s"}, "not both"),
    ({"untag_for": "7d"}, "quarantine needs dest"),
    ({"state": "ops/s"}, "quarantine needs dest"),
    ({"untag_for": "seven days", "state": "ops/s"}, "quarantine.untag_for: 'seven days' is not a duration"),
    ({"untag_for": "0s", "state": "ops/s"}, "is no window"),
])
def test_the_option_is_refused_in_one_line(options, says):
    with pytest.raises(InvalidInputError) as caught:
        undo_window({"dest": None, "untag_for": None, "state": None, **options}, lambda ref: None)
    assert says in caught.value.message and "\n" not in caught.value.message


def test_the_option_picks_its_mode():
    assert undo_window(None, lambda ref: None) == (None, None)
    quarantine, deferred = undo_window({"dest": None, "untag_for": "1d12h", "state": "ops/s"}, lambda ref: None)
    assert quarantine is None and deferred.window == timedelta(days=1, hours=12)


class _Owner(DeferredDelete):
    """Records the state writes instead of sending them (the registry side is counted in the integration test)."""

    def __init__(self) -> None:
        super().__init__("7d", "ops/state")
        self.writes: list[tuple[str, list[Pending]]] = []

    def write(self, repository, entries):
        self.writes.append((repository, list(entries)))


def entry(digest: str, action: str, tags: tuple[str, ...] = (), **kw) -> PlanEntry:
    return PlanEntry(f"{HOST}/team/app", digest, "application/vnd.oci.image.manifest.v1+json", tags, action, **kw)


def test_settle_sorts_each_entry_and_writes_once_when_the_state_changed():
    owner = _Owner()
    state = [pending(A, days_left=-1), pending(B, days_left=3), pending(C, days_left=-1, tags=("old-3",))]
    deferral = owner.open(f"{HOST}/team/app", "team/app", state, NOW)
    assert set(deferral.due) == {A, C}
    deferral.observe({"back": C}, running=())
    assert set(deferral.due) == {A}  # tagged again: not due, rescued
    condemned = entry(S, "delete", ("old-9",), matched_rules=(RuleMatch("older_than", "delete", ("old-9",)),))
    new = deferral.recorded([[condemned]])
    deferral.settle([entry(A, "delete"), entry(C, "keep", ("back",))], {"back": C}, {A: False}, new,
                    check_mode=False)
    assert {i["digest"]: i["status"] for i in deferral.report} == {A: DELETED, B: PENDING, C: RESCUED, S: UNTAGGED}
    assert [(i["digest"], i["rescued_by"]) for i in deferral.report if i["status"] == RESCUED] == [(C, "tagged again")]
    assert [[e.digest for e in entries] for _repo, entries in owner.writes] == [sorted([B, S])]
    assert new[0].delete_after == NOW + timedelta(days=7) and new[0].rules == ("older_than",)


def test_settle_writes_nothing_when_nothing_changed_or_in_check_mode():
    owner = _Owner()
    deferral = owner.open(f"{HOST}/team/app", "team/app", [pending(B, days_left=3)], NOW)
    deferral.settle([], {}, {}, [], check_mode=False)
    assert owner.writes == [] and not deferral.changed
    deferral = owner.open(f"{HOST}/team/app", "team/app", [pending(A, days_left=-1)], NOW)
    deferral.settle([], {}, {}, [], check_mode=True)
    assert owner.writes == [] and deferral.changed
    assert deferral.report[0]["status"] == DELETED and deferral.report[0]["already_gone"]


def test_recorded_keeps_attached_tags_on_their_subject():
    owner = _Owner()
    deferral = owner.open(f"{HOST}/team/app", "team/app", [], NOW)
    signature = "sha256-" + "a" * 64 + ".sig"
    group = [entry(S, "delete", (signature,), cascaded_from=(A,)),
             entry(A, "delete", ("old-1",), cascaded=(Cascade(S, "signature"),))]
    assert [(p.digest, p.tags) for p in deferral.recorded([group])] == [(A, ("old-1",))]


def test_the_planner_condemns_an_expired_digest_whatever_its_age_unless_something_keeps_it():
    policy = build_policy({"match": ["old-.*"], "older_than": "30d"})
    young = ManifestRecord(A, created="2026-05-01T00:00:00Z")
    index = ManifestRecord(C, media_type="application/vnd.oci.image.index.v1+json", children=(B,),
                           created="2020-01-01T00:00:00Z")
    snapshot = RepositorySnapshot(f"{HOST}/team/app", tags={"keep": C},
                                  manifests={A: young, B: ManifestRecord(B), C: index})
    plan = plan_retention(snapshot, policy, NOW, expired={f"{HOST}/team/app": {A: ("older_than",), B: ("x",)}})
    actions = {e.digest: e.action for e in plan.entries}
    assert actions[A] == "delete"          # its window passed: its age is not asked again
    assert actions[B] == "keep"            # a kept index reaches it
    assert plan_retention(snapshot, policy, NOW).entries[0].action == "keep"  # without the window: kept


def test_only_a_kept_tag_rescues_an_entry_anything_else_holds_it_in_the_state():
    """An untagged entry dropped from the state is found by no later prune: only a tag that now owns it may drop it."""
    owner = _Owner()
    index = "sha256:" + "e" * 64
    state = [pending(A, days_left=-1), pending(B, days_left=3), pending(C, days_left=-1), pending(S, days_left=-1)]
    deferral = owner.open(f"{HOST}/team/app", "team/app", state, NOW)
    deferral.observe({}, running=(B,))  # B runs, inside its window
    entries = [entry(A, "keep", reachable_from=("bundle",)), entry(C, "keep"),
               entry(S, "keep", reachable_from=(index,))]
    deferral.settle(entries, {}, {}, [], check_mode=False)
    said = {i["digest"]: (i["status"], i["rescued_by"], i["held_by"]) for i in deferral.report}
    assert said == {A: (RESCUED, "reached by bundle", None), B: (PENDING, None, "in use"),
                    C: (PENDING, None, "kept by the policy"), S: (PENDING, None, f"reached by {index}")}
    assert [[e.digest for e in entries] for _repo, entries in owner.writes] == [sorted([B, C, S])]


def test_a_state_whose_entries_are_all_held_is_not_written_again():
    owner = _Owner()
    deferral = owner.open(f"{HOST}/team/app", "team/app", [pending(A, days_left=-1)], NOW)
    deferral.observe({}, running=(A,))
    deferral.settle([entry(A, "keep", in_use=("r.example/team/app@" + A,))], {}, {}, [], check_mode=False)
    assert [(i["status"], i["held_by"]) for i in deferral.report] == [(PENDING, "in use")]
    assert owner.writes == [] and deferral.changed is False
