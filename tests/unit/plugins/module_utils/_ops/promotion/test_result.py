"""Unit tests of the promotion results (plugins/module_utils/_ops/promotion/result.py).

The key order of these dicts is what registry_tag returns (its JSON output), so the tests pin it,
and :func:`promote` is run against an in-memory repository to show which result each path gives.
"""
from __future__ import annotations

import hashlib
import json
from types import SimpleNamespace

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import ConflictError, NotFoundError
from ansible_collections.ocireg.registry.plugins.module_utils._model.reference import Reference
from ansible_collections.ocireg.registry.plugins.module_utils._ops.promotion import apply as promotion_apply
from ansible_collections.ocireg.registry.plugins.module_utils._ops.promotion.apply import promote
from ansible_collections.ocireg.registry.plugins.module_utils._ops.promotion.plan import (
    ABSENT,
    TagChange,
    plan_promotion,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.promotion.result import (
    CopiedContent,
    LostRace,
    PromotionResult,
    TagResult,
)


def digest(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


D1, D2, D3 = digest("one"), digest("two"), digest("three")
RESULT_KEYS = ["changed", "digest", "tags", "before", "after", "deleted", "method", "copied", "summary", "notes",
               "verified"]


# -- the values and their plain data ---------------------------------------------------------------
def test_tag_result_is_the_change_then_its_method() -> None:
    entry = TagResult(TagChange("prod", D1, None), "dummy_manifest").to_dict()
    assert json.dumps(entry) == json.dumps(
        {"before": D1, "after": None, "action": "remove", "sibling": False, "method": "dummy_manifest"})


def test_copied_content_keeps_the_copy_engines_order() -> None:
    copied = CopiedContent(manifests=1, blobs=2, bytes=30, mounted=4, skipped_blobs=5, skipped_manifests=6,
                           skipped_bytes=70).to_dict()
    assert json.dumps(copied) == json.dumps(
        {"manifests": 1, "blobs": 2, "bytes": 30, "mounted": 4,
         "skipped": {"blobs": 5, "manifests": 6, "bytes": 70}})


def test_lost_race_carries_after_only_from_a_read_back() -> None:
    before_write = LostRace({"prod": D3}, ("stable",))
    assert before_write.to_dict() == {"lost": {"prod": D3}, "written": ["stable"]}
    read_back = LostRace({"prod": D3}, ("prod",), after={"prod": D3})
    assert list(read_back.to_dict()) == ["lost", "written", "after"]
    # Plain copies: a caller changing the dict cannot change the frozen value.
    read_back.to_dict()["lost"]["prod"] = None
    assert read_back.lost == {"prod": D3}


def test_result_keys_are_in_the_modules_order_for_every_state() -> None:
    present = PromotionResult(plan_promotion({"prod": D1}, source_digest=D2), "r/x").to_result()
    absent = PromotionResult(plan_promotion({"prod": D1}, state=ABSENT), "r/x").to_result()
    assert list(present) == list(absent) == RESULT_KEYS


def test_present_result_values() -> None:
    verified = {"digest": D2, "verified": []}
    copied = CopiedContent(manifests=1, mounted=2)
    result = PromotionResult(plan_promotion({"prod": D1, "new": None}, source_digest=D2), "reg/app",
                             copied=copied, verified=verified).to_result()
    assert result["changed"] is True and result["digest"] == D2
    assert result["tags"]["new"] == {"before": None, "after": D2, "action": "create", "sibling": False,
                                     "method": None}
    assert result["before"] == {"prod": D1, "new": None} and result["after"] == {"prod": D2, "new": D2}
    assert result["deleted"] == [] and result["method"] is None and result["notes"] == []
    assert result["copied"] == copied.to_dict() and result["verified"] is verified
    assert result["summary"][1] == f"reg/app:new  absent -> {D2[:19]}  (created)"


def test_check_mode_words_and_planned_method() -> None:
    plan = plan_promotion({"prod": D1}, state=ABSENT)
    result = PromotionResult(plan, "r/x", check_mode=True, method="tag_delete").to_result()
    assert result["method"] == "tag_delete"
    assert result["summary"] == [f"r/x:prod  {D1[:19]} -> absent  (would be removed)"]
    assert result["tags"]["prod"]["method"] is None  # nothing was removed yet


def test_blocked_result_shows_every_tag_where_it_was() -> None:
    plan = plan_promotion({"prod": D3, "new": None}, source_digest=D2, expected_digest=D1)
    result = PromotionResult(plan, "r/x").to_result()
    assert result["changed"] is False and result["after"] == result["before"] == {"prod": D3, "new": None}
    assert [entry["action"] for entry in result["tags"].values()] == ["none", "none"]
    assert all(line.endswith("(blocked)") for line in result["summary"])


def test_removed_tags_carry_their_method_and_siblings_are_listed() -> None:
    plan = plan_promotion({"old": D1}, state=ABSENT, delete_manifest=True, force=True,
                          repository_tags={"old": D1, "prod": D1})
    methods = {"old": "manifest_delete", "prod": "manifest_delete"}
    result = PromotionResult(plan, "r/x", method="manifest_delete", methods=methods).to_result()
    assert list(result["tags"]) == ["old", "prod"]
    assert result["tags"]["prod"] == {"before": D1, "after": None, "action": "remove", "sibling": True,
                                      "method": "manifest_delete"}
    assert result["deleted"] == [D1] and result["method"] == "manifest_delete"
    assert result["notes"] and "prod" in result["notes"][0]
    assert result["summary"][1].endswith("(removed, shared digest deleted)")


# -- promote() gives the result each path promises -------------------------------------------------
class MemoryRepository:
    """One repository in memory (tag -> manifest seed); ``rival`` overwrites a tag right after our write to it.

    A stand-in rather than a registry: these tests are about which result promote() builds.
    """

    name = "team/app"

    def __init__(self, tags: dict[str, str], rival: dict[str, str] | None = None) -> None:
        self.registry = SimpleNamespace(host="reg.example", supports_tag_delete=False)
        self.state = {tag: digest(seed) for tag, seed in tags.items()}
        self.seeds = {digest(seed): seed for seed in tags.values()}
        self.rival = dict(rival or {})

    def resolve(self, reference: str):
        found = self.state.get(reference) or (reference if reference in self.seeds else None)
        return None if found is None else SimpleNamespace(digest=found)

    def fetch_manifest(self, reference: str):
        found = self.resolve(reference)
        if found is None:
            raise NotFoundError(f"{reference} is not here")
        return SimpleNamespace(raw=self.seeds[found.digest].encode(), digest=found.digest, media_type="x")

    def push_manifest(self, reference, raw, media_type, *, update_referrers=True):
        self.state[reference] = digest(raw.decode())
        if reference in self.rival:
            self.state[reference] = digest(self.rival.pop(reference))

    def delete_tag(self, tag, method="auto", *, current=None):
        self.state.pop(tag)
        return "dummy_manifest"

    def tags(self) -> list[str]:
        # Listed once after the writes, for a prune's lease (none here).
        return sorted(self.state)


def source(tag: str) -> Reference:
    return Reference.parse(f"reg.example/team/app:{tag}")


@pytest.fixture(autouse=True)
def no_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(promotion_apply, "SETTLE_MIN", 0.0)


def test_promote_returns_a_result_and_shapes_it_only_on_request() -> None:
    repo = MemoryRepository({"prod": "one", "staging": "two"})
    outcome = promote(repo, ["prod"], source=source("staging"))
    assert isinstance(outcome, PromotionResult) and outcome.changed
    assert outcome.after == {"prod": D2} and repo.state["prod"] == D2
    # A run that wrote tags also says which ones a concurrent prune took and it wrote again.
    assert list(outcome.to_result()) == RESULT_KEYS + ["restored_after_prune"]
    assert outcome.to_result()["restored_after_prune"] == []


def test_promote_absent_reports_each_tags_method() -> None:
    repo = MemoryRepository({"prod": "one", "old": "two"})
    result = promote(repo, ["old", "gone"], state=ABSENT).to_result()
    assert result["method"] == "dummy_manifest"
    assert result["tags"]["old"]["method"] == "dummy_manifest" and result["tags"]["gone"]["method"] is None
    check = promote(MemoryRepository({"old": "two"}), ["old"], state=ABSENT, check_mode=True).to_result()
    assert check["method"] == "dummy_manifest" and check["tags"]["old"]["method"] is None


def test_a_blocked_promotion_fails_with_the_result_as_partial() -> None:
    repo = MemoryRepository({"prod": "three", "staging": "two"})
    with pytest.raises(ConflictError, match="blocked, nothing was changed") as caught:
        promote(repo, ["prod"], source=source("staging"), verify=lambda _r, d: {"digest": d}, expected_digest=D1)
    assert list(caught.value.partial) == RESULT_KEYS
    assert caught.value.partial["verified"] == {"digest": D2}


def test_a_lost_race_adds_lost_and_written_and_the_read_back_after() -> None:
    repo = MemoryRepository({"prod": "one", "staging": "two"}, rival={"prod": "three"})
    with pytest.raises(ConflictError, match="lost a race") as caught:
        promote(repo, ["prod"], source=source("staging"), expected_digest=D1)
    detail = caught.value.partial  # the failed task's result; the race's own facts are in .detail
    assert caught.value.detail == {"lost": {"prod": D3}, "written": ["prod"], "after": {"prod": D3}}
    # ``after`` keeps its place among the result keys but holds what the registry has now.
    assert list(detail) == RESULT_KEYS + ["lost", "written"]
    assert detail["lost"] == {"prod": D3} and detail["written"] == ["prod"] and detail["after"] == {"prod": D3}
    assert detail["tags"]["prod"]["after"] == D2  # what this task planned


# -- what promote() asks of the registry -------------------------------------------------------------------
class CountingRepository(MemoryRepository):
    """MemoryRepository that records each call as a request would be (method name, reference)."""

    def __init__(self, tags: dict[str, str], name: str = "team/app", **kwargs) -> None:
        super().__init__(tags, **kwargs)
        self.name = name
        self.requests: list[tuple[str, str]] = []

    def resolve(self, reference: str):
        self.requests.append(("HEAD", reference))
        return super().resolve(reference)

    def fetch_manifest(self, reference: str):
        self.requests.append(("GET", reference))
        found = MemoryRepository.resolve(self, reference)  # one request: not a HEAD as well
        if found is None:
            raise NotFoundError(f"{reference} is not here")
        return SimpleNamespace(raw=self.seeds[found.digest].encode(), digest=found.digest, media_type="x")

    def push_manifest(self, reference, raw, media_type, *, update_referrers=True):
        self.requests.append(("PUT", reference))
        return super().push_manifest(reference, raw, media_type, update_referrers=update_referrers)


def test_a_same_repository_promotion_reads_the_source_once_and_the_tag_once() -> None:
    repo = CountingRepository({"prod": "one", "staging": "two"})
    promote(repo, ["prod"], source=source("staging"), prune_lease=False)
    assert repo.requests == [("GET", "staging"), ("HEAD", "prod"), ("PUT", "prod")]
    repo.requests.clear()
    promote(repo, ["prod"], source=source("staging"), prune_lease=False)  # the no-op
    assert repo.requests == [("GET", "staging"), ("HEAD", "prod")]
    repo = CountingRepository({"prod": "one", "staging": "two"})
    promote(repo, ["prod"], source=source("staging"), expected_digest=D1, prune_lease=False)
    assert repo.requests == [("GET", "staging"), ("HEAD", "prod"), ("PUT", "prod"), ("HEAD", "prod")]


def cross(monkeypatch: pytest.MonkeyPatch, during_copy=None):
    """A promotion from team/src: the copy engine is replaced by a stand-in that records its ``tags``."""
    src = CountingRepository({"v1": "two"}, name="team/src")
    dest = CountingRepository({"prod": "one"})
    calls: list[tuple[str, ...]] = []

    def fake_copy(source_repository, source_digest, repository, digest_, options, check_mode, tags=()):
        calls.append(tuple(tags))
        if during_copy is not None:
            during_copy(dest)
        for tag in tags:
            repository.push_manifest(tag, b"two", "x")
        return CopiedContent(manifests=1, blobs=0, bytes=0, mounted=0)

    monkeypatch.setattr(promotion_apply, "copy_source", fake_copy)
    return src, dest, calls


def test_an_unguarded_cross_repository_promotion_lets_the_copy_write_the_tag(monkeypatch) -> None:
    src, dest, calls = cross(monkeypatch)
    outcome = promote(dest, ["prod"], source=Reference.parse("reg.example/team/src:v1"), source_repository=src,
                      prune_lease=False)
    assert calls == [("prod",)] and outcome.after == {"prod": D2}
    assert src.requests == [("GET", "v1")]
    assert dest.requests == [("HEAD", "prod"), ("PUT", "prod")]  # the copy's PUT; promote adds none


def test_a_guarded_cross_repository_promotion_reads_the_tag_again_after_the_copy(monkeypatch) -> None:
    # A rival moves prod while the content is copied: the guard read after the copy blocks the tag write.
    src, dest, calls = cross(monkeypatch, during_copy=lambda repo: repo.state.update(prod=D3))
    with pytest.raises(ConflictError, match="was copied but not tagged"):
        promote(dest, ["prod"], source=Reference.parse("reg.example/team/src:v1"), source_repository=src,
                expected_digest=D1, prune_lease=False)
    assert calls == [()]  # copied by digest, untagged
    assert dest.state["prod"] == D3 and ("PUT", "prod") not in dest.requests
