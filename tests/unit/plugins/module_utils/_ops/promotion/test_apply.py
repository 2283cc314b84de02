"""Unit tests of promotion's apply step (_ops/promotion/apply.py): which calls it makes, in which order.

The repository is a recording stand-in, because these tests are about the calls apply_promotion makes
and the races it must catch; the same against a real registry is in tests/integration/test_races.py.
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import ConflictError, InvalidInputError
from ansible_collections.ocireg.registry.plugins.module_utils._ops.promotion.apply import (
    SETTLE_MAX,
    SETTLE_MIN,
    apply_promotion,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.promotion.plan import (
    ABSENT,
    plan_promotion,
)

from tests.unit.plugins.module_utils._ops.promotion.test_plan import (
    D1,
    D2,
    D3,
    digest,
    digests,
    expected_values,
    tag_maps,
)


# -- apply_promotion against recording stand-ins (no HTTP: this is about which calls are made) --
class NoRepository:
    """Any use fails: proves a blocked plan is refused before touching the repository."""

    def __getattr__(self, name: str):
        raise AttributeError(f"blocked plan touched repository.{name}")


class RecordingRepository:
    """A registry in memory (tag -> digest) that records the write calls apply_promotion makes.

    ``rival`` (tag -> digest) is written by "another task" right after this one's next write
    to that tag: the lost-race case the read-back must catch.
    """

    name = "team/app"

    def __init__(self, tags: dict[str, str | None] | None = None, rival: dict[str, str | None] | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.reads: list[str] = []
        self.state = {t: d for t, d in (tags or {}).items() if d is not None}
        self.rival = dict(rival or {})

    def _rival_writes(self, tag: str) -> None:
        if tag in self.rival:
            rival = self.rival.pop(tag)
            if rival is None:
                self.state.pop(tag, None)
            else:
                self.state[tag] = rival

    def resolve(self, reference):
        self.reads.append(reference)
        found = self.state.get(reference)
        return None if found is None else SimpleNamespace(digest=found)

    def push_manifest(self, reference, raw, media_type, *, update_referrers=True):
        self.calls.append(("push_manifest", reference))
        self.state[reference] = digest(raw.decode())
        self._rival_writes(reference)
        return digest(raw.decode())

    def delete_tag(self, tag, method="auto", *, current=None):
        self.calls.append(("delete_tag", tag))
        self.state.pop(tag, None)
        self._rival_writes(tag)
        return "dummy_manifest"

    def delete_manifest(self, digest_, *, subject=None):
        self.calls.append(("delete_manifest", digest_))
        self.state = {t: d for t, d in self.state.items() if d != digest_}


class FakeManifest:
    def __init__(self, seed: str) -> None:
        self.raw = seed.encode()
        self.digest = digest(seed)
        self.media_type = "application/vnd.oci.image.manifest.v1+json"


def test_apply_refuses_a_blocked_plan_before_any_call() -> None:
    plan = plan_promotion({"prod": D3}, source_digest=D2, expected_digest=D1)
    with pytest.raises(ConflictError, match="nothing was changed"):
        apply_promotion(plan, NoRepository(), manifest=FakeManifest("two"))


def test_apply_present_puts_only_the_tags_that_move() -> None:
    current = {"prod": D1, "stable": D2, "new": None}
    repo = RecordingRepository(current)
    plan = plan_promotion(current, source_digest=D2)
    apply_promotion(plan, repo, manifest=FakeManifest("two"), settle=0)
    assert repo.calls == [("push_manifest", "prod"), ("push_manifest", "new")]


def test_apply_present_needs_the_planned_manifest() -> None:
    plan = plan_promotion({"prod": D1}, source_digest=D2)
    with pytest.raises(InvalidInputError):
        apply_promotion(plan, RecordingRepository(), manifest=FakeManifest("one"))


def test_apply_absent_untags_or_deletes_manifests() -> None:
    repo = RecordingRepository({"a": D1, "b": None})
    methods = apply_promotion(plan_promotion({"a": D1, "b": None}, state=ABSENT), repo, settle=0)
    assert repo.calls == [("delete_tag", "a")] and methods == {"a": "dummy_manifest"}

    repo = RecordingRepository({"a": D1, "b": D1})
    plan = plan_promotion({"a": D1, "b": D1}, state=ABSENT, delete_manifest=True, repository_tags={"a": D1, "b": D1})
    methods = apply_promotion(plan, repo, settle=0)
    assert repo.calls == [("delete_manifest", D1)]
    assert methods == {"a": "manifest_delete", "b": "manifest_delete"}


@given(current=tag_maps, source=digests, expected=expected_values, absent=st.booleans())
def test_property_applied_writes_are_exactly_the_plan(
    current: dict[str, str | None], source: str, expected: str | None, absent: bool
) -> None:
    plan = plan_promotion(current, state=ABSENT if absent else "present", source_digest=source,
                          expected_digest=expected)
    repo = RecordingRepository(current)
    manifest = next(FakeManifest(str(i)) for i in range(4) if digest(str(i)) == source)
    if plan.blocked:
        with pytest.raises(ConflictError):
            apply_promotion(plan, repo, manifest=manifest, settle=0)
        assert repo.calls == []
        return
    apply_promotion(plan, repo, manifest=manifest, settle=0)
    assert [call[1] for call in repo.calls] == list(plan.tags_to_write)
    assert [tag for tag, before in current.items() if before == plan.after()[tag]] == \
        [tag for tag in current if tag not in plan.tags_to_write]


def test_a_rival_write_right_after_ours_is_reported_as_a_lost_race() -> None:
    # The rival passed its guard before our PUT landed and overwrote it: the read-back sees it.
    repo = RecordingRepository({"prod": D1}, rival={"prod": D3})
    plan = plan_promotion({"prod": D1}, source_digest=D2, expected_digest=D1)
    slept: list[float] = []
    with pytest.raises(ConflictError, match=f"lost a race.*'prod' now points to {D3}") as caught:
        apply_promotion(plan, repo, manifest=FakeManifest("two"), settle=0.25, sleep=slept.append)
    assert caught.value.detail["lost"] == {"prod": D3}
    assert slept == [0.25]


def test_the_guard_is_read_again_right_before_each_write() -> None:
    # Planned from prod -> D1, but a rival moved it to D3 before our write: nothing is written.
    repo = RecordingRepository({"prod": D3})
    plan = plan_promotion({"prod": D1}, source_digest=D2, expected_digest=D1)
    with pytest.raises(ConflictError, match=f"lost a race on tag 'prod': it now points to {D3}"):
        apply_promotion(plan, repo, manifest=FakeManifest("two"), settle=0)
    assert repo.calls == [] and repo.state == {"prod": D3}


def test_an_unguarded_write_overwrites_a_rival_with_no_read_and_no_wait() -> None:
    # Without expected_digest the last writer wins, as asked: no read before or after, no sleep.
    repo = RecordingRepository({"prod": D3})
    plan = plan_promotion({"prod": D1}, source_digest=D2)
    slept: list[float] = []
    apply_promotion(plan, repo, manifest=FakeManifest("two"), sleep=slept.append)
    assert repo.state == {"prod": D2} and repo.calls == [("push_manifest", "prod")]
    assert repo.reads == [] and slept == []


def test_a_fresh_plan_read_is_the_first_writes_guard_and_later_guarded_tags_are_read_again() -> None:
    # read_at: the caller read the tags right before, so the first write needs no second read; the
    # next tag's read is older than our first write, so it is read again before its own.
    current = {"prod": D1, "stable": D1}
    repo = RecordingRepository(current)
    plan = plan_promotion(current, source_digest=D2, expected_digest=D1)
    apply_promotion(plan, repo, manifest=FakeManifest("two"), settle=0, read_at=0.0)
    assert repo.calls == [("push_manifest", "prod"), ("push_manifest", "stable")]
    assert repo.reads == ["stable", "prod", "stable"]  # the guard read of stable, then the read-back
    # Without read_at the plan's read is of unknown age: every guarded tag is read again.
    repo = RecordingRepository(current)
    apply_promotion(plan, repo, manifest=FakeManifest("two"), settle=0)
    assert repo.reads == ["prod", "stable", "prod", "stable"]


def test_an_untag_undone_by_a_rival_promotion_is_a_lost_race() -> None:
    repo = RecordingRepository({"prod": D1}, rival={"prod": D2})
    with pytest.raises(ConflictError, match=f"removed the tags prod.*'prod' now points to {D2}"):
        apply_promotion(plan_promotion({"prod": D1}, state=ABSENT), repo, settle=0)


def test_an_untag_after_a_fresh_read_reads_only_the_later_tags_again() -> None:
    current = {"a": D1, "b": D1}
    repo = RecordingRepository(current)
    apply_promotion(plan_promotion(current, state=ABSENT), repo, settle=0, read_at=0.0)
    assert repo.calls == [("delete_tag", "a"), ("delete_tag", "b")]
    assert repo.reads == ["b", "a", "b"]  # b's read before its removal, then the read-back of both
    # The later tag moved after the plan read it (a promotion): not removed, a lost race.
    repo = RecordingRepository({"a": D1, "b": D2})
    with pytest.raises(ConflictError, match="lost a race on tag 'b'"):
        apply_promotion(plan_promotion(current, state=ABSENT), repo, settle=0, read_at=0.0)
    assert repo.calls == [("delete_tag", "a")]


class SlowRepository(RecordingRepository):
    """Each request takes ``latency`` seconds of an injected clock (no wall-clock time passes)."""

    def __init__(self, tags: dict[str, str | None], latency: float) -> None:
        super().__init__(tags)
        self.now = 100.0
        self.latency = latency

    def clock(self) -> float:
        return self.now

    def resolve(self, reference):
        self.now += self.latency
        return super().resolve(reference)

    def push_manifest(self, reference, raw, media_type, *, update_referrers=True):
        self.now += self.latency
        return super().push_manifest(reference, raw, media_type, update_referrers=update_referrers)


@pytest.mark.parametrize(("latency", "expected"), [
    (0.001, SETTLE_MIN),  # gap 0.002 s: 3 x 0.002 = 0.006 s is under the floor
    (0.05, 0.3),          # gap 0.1 s (guard read + PUT): three times it
    (0.2, 1.2),           # gap 0.4 s: three times it, still under the ceiling
    (1.0, SETTLE_MAX),    # gap 2 s: 6 s is capped
])
def test_the_default_settle_is_three_times_the_guard_read_to_write_gap_within_bounds(
        latency: float, expected: float) -> None:
    repo = SlowRepository({"prod": D1}, latency)
    slept: list[float] = []
    plan = plan_promotion({"prod": D1}, source_digest=D2, expected_digest=D1)
    apply_promotion(plan, repo, manifest=FakeManifest("two"), sleep=slept.append, clock=repo.clock)
    assert slept == [pytest.approx(expected)]
    assert repo.reads == ["prod", "prod"]  # the guard read, then the read-back after the wait


def test_the_settle_gap_starts_at_the_callers_read_and_takes_the_slowest_tag() -> None:
    # read_at 0.5 s before the PUT's start: the first tag's gap is 0.5 + 0.1; the second tag's
    # own re-read and PUT take 0.2: the wait is three times the larger, 1.8 s.
    current = {"prod": D1, "stable": D1}
    repo = SlowRepository(current, 0.1)
    slept: list[float] = []
    plan = plan_promotion(current, source_digest=D2, expected_digest=D1)
    apply_promotion(plan, repo, manifest=FakeManifest("two"), sleep=slept.append, clock=repo.clock,
                    read_at=repo.now - 0.5)
    assert slept == [pytest.approx(1.8)]


def test_an_untag_waits_the_settle_scaled_from_its_read_and_delete() -> None:
    repo = SlowRepository({"prod": D1}, 0.1)
    repo.delete_tag = lambda tag, method="auto", current=None: (setattr(repo, "now", repo.now + 0.1), repo.state.pop(tag))[0]
    slept: list[float] = []
    apply_promotion(plan_promotion({"prod": D1}, state=ABSENT), repo, sleep=slept.append, clock=repo.clock)
    assert slept == [pytest.approx(0.6)]


def test_a_per_tag_guard_is_read_again_per_tag_before_each_write() -> None:
    # expected_digest as a mapping: each tag is checked against its own value right before its write.
    guard = {"prod": D1, "new": ABSENT}
    repo = RecordingRepository({"prod": D1})
    plan = plan_promotion({"prod": D1, "new": None}, source_digest=D2, expected_digest=guard)
    apply_promotion(plan, repo, manifest=FakeManifest("two"), settle=0)
    assert repo.calls == [("push_manifest", "prod"), ("push_manifest", "new")]
    # A rival creates "new" after the plan read it: lost, naming that tag's own expected value.
    repo = RecordingRepository({"prod": D1, "new": D3})
    with pytest.raises(ConflictError, match=f"'new': it now points to {D3}, no longer to the expected absent") as caught:
        apply_promotion(plan, repo, manifest=FakeManifest("two"), settle=0)
    assert caught.value.detail == {"lost": {"new": D3}, "written": ["prod"]}
    # A tag the mapping leaves out is not guarded, before the write as in the plan.
    repo = RecordingRepository({"prod": D1, "other": D3})
    plan = plan_promotion({"prod": D1, "other": D1}, source_digest=D2, expected_digest={"prod": D1})
    apply_promotion(plan, repo, manifest=FakeManifest("two"), settle=0)
    assert repo.state == {"prod": D2, "other": D2}
