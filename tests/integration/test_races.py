"""Concurrent writers against one real Distribution 2.8, judged by what the registry holds afterwards.

Each scenario runs a bounded number of trials with the race harness (tests/rig/race.py): the
racers are released together, each after a seeded random delay of a few milliseconds, and a
judge compares every racer's report with the final registry state, read with the rig's raw
puller (never our own client). Every scenario prints one summary line (``pytest -s`` shows them;
the figures in docs/guide_parallel.md come from them).

Fresh state per trial: each trial works in its own repository, so trials never share tags.
"""
from __future__ import annotations

import os
import random
import threading
import time
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import (
    Registry,
    Repository,
)
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.core import (
    TransportOptions,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    ConflictError,
    RegistryError,
    TransportError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.reference import (
    Reference,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_schemes import (
    is_lease_tag,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.coordination.plan import (
    WAIT_CAP,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.coordination.lease import (
    PruneLease,
    Written,
    honour_leases,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.image import (
    CopyOptions,
    copy_image,
    mirror_repository,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.promotion import (
    apply as promotion_apply,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.promotion.apply import (
    promote,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.apply import (
    CHANGED_SINCE_PLAN,
    ApplyError,
    apply_plan,
    deletion_groups,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.plan import (
    plan_retention,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.policy import (
    build_policy,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.snapshot import (
    collect_snapshot,
)

from tests.rig.flavours import RigRegistry
from tests.rig.images import RawPuller, RawPusher, make_image, make_multiarch
from tests.rig.race import Outcome, ScenarioSummary, Verdict, run_scenario

# Bounded so the file stays within CI's budget; raise them (OCIREG_RACE_TRIALS=200) to measure windows
# for the docs. Prune and mirror trials each need a fresh repository, so they get fewer.
TRIALS = int(os.environ.get("OCIREG_RACE_TRIALS", "20"))
FRESH_TRIALS = max(1, TRIALS * 3 // 5)
PLAYBOOK_TRIALS = 3
#: Cooperating writers copying new tags onto doomed digests per prune trial (each pushes ~once per prune,
#: since it waits while the lease is up), and that scenario's trials (a trial takes ~10 s on a loaded CI box).
COPIERS = 7
COOPERATING_TRIALS = max(1, TRIALS // 4)
DEV_OLD = {"rules": [{"name": "old-dev", "action": "delete", "prefix": ["dev-"], "older_than": "30d"}]}


def client(reg: RigRegistry, repository: str) -> Repository:
    """A client of its own per racer, as separate processes would have."""
    return Registry(reg.host, TransportOptions(sleep=lambda _s: None)).repository(repository)


def head(reg: RigRegistry, repository: str, reference: str) -> str | None:
    response = RawPuller.for_registry(reg).head_manifest(repository, reference)
    assert response.status_code in (200, 404), response.text
    return response.headers["Docker-Content-Digest"] if response.status_code == 200 else None


def complete(reg: RigRegistry, repository: str, reference: str) -> bool:
    """True when the image (every manifest and blob it references) can be pulled, verified."""
    try:
        RawPuller.for_registry(reg).pull(repository, reference)
    except AssertionError:
        return False
    return True


def report(summary: ScenarioSummary) -> ScenarioSummary:
    print(summary.line())
    return summary


# -- promotion versus promotion ---------------------------------------------------------------------
_STAGED: dict[tuple[str, str], tuple[dict[str, str], bytes, str]] = {}


def staged_promotion(reg: RigRegistry, repository: str) -> dict[str, str]:
    """prod -> old, and two candidates tagged cand-a / cand-b.

    Pushed once per repository; later trials only point prod back at old (one request), which
    keeps a trial at a few requests of setup on a slow, shared CI machine.
    """
    pusher = RawPusher.for_registry(reg)
    key = (reg.host, repository)
    if key not in _STAGED:
        old = pusher.push_image(repository, make_image(f"{repository}-old"), tag="prod")
        state = {
            "repository": repository,
            "old": old.digest,
            "a": pusher.push_image(repository, make_image(f"{repository}-a"), tag="cand-a").digest,
            "b": pusher.push_image(repository, make_image(f"{repository}-b"), tag="cand-b").digest,
        }
        _STAGED[key] = (state, old.manifest, old.media_type)
        return dict(state)
    state, raw, media_type = _STAGED[key]
    pusher.push_manifest(repository, "prod", raw, media_type)
    return dict(state)


def judge_promotions(reg: RigRegistry, state: dict[str, str], outcomes: list[Outcome]) -> Verdict:
    """Every success must be what prod holds; every lost race must name what prod holds."""
    final = head(reg, state["repository"], "prod")
    verdict = Verdict(counts={"both_succeeded": 0, "lost_race_reported": 0})
    succeeded = [o for o in outcomes if o.ok]
    verdict.counts["both_succeeded"] = int(len(succeeded) == len(outcomes))
    for outcome in outcomes:
        if outcome.ok:
            claimed = outcome.value["after"]["prod"]
            if claimed != final:
                verdict.disagreements.append(f"{outcome.name} reported prod -> {claimed}, the registry holds {final}")
        elif isinstance(outcome.error, ConflictError) and "lost a race" in outcome.error.message:
            verdict.counts["lost_race_reported"] += 1
            named = (outcome.error.detail or {}).get("lost", {}).get("prod", "unnamed")
            own = state.get(outcome.name.rsplit("-", 1)[-1])
            if named != final or named == own:
                verdict.disagreements.append(f"{outcome.name} lost a race to {named}, the registry holds {final}")
        elif not isinstance(outcome.error, ConflictError):
            verdict.disagreements.append(f"{outcome.name} failed unexpectedly: {outcome.error!r}")
    if not succeeded and final == state["old"]:
        verdict.disagreements.append("both failed, yet prod did not move: nobody's write stuck")
    return verdict


def promotion_scenario(reg: RigRegistry, name: str, trials: int = TRIALS) -> ScenarioSummary:
    def racers(state: dict[str, str]):
        def racer(candidate: str):
            repo = client(reg, state["repository"])
            source = Reference.parse(f"{reg.host}/{state['repository']}:cand-{candidate}")
            return lambda: promote(repo, ["prod"], source=source, expected_digest=state["old"]).to_result()
        return [("promote-a", racer("a")), ("promote-b", racer("b"))]

    return run_scenario(name, trials=trials, setup=lambda i: staged_promotion(reg, f"race/{name}"),
                        racers=racers, judge=lambda s, o: judge_promotions(reg, s, o), jitter=0.004)


def test_guarded_promotions_never_report_a_write_that_did_not_stick(plain_registry: RigRegistry) -> None:
    summary = report(promotion_scenario(plain_registry, "promote-threads"))
    assert summary.disagreeing_trials == 0, summary.explain()
    # The scenario must actually race: some trials end with a loser told it lost.
    assert summary.count("lost_race_reported") > 0, summary.explain()


def test_residual_window_without_the_settle_wait(plain_registry: RigRegistry, monkeypatch) -> None:
    """A measurement, not a guarantee: the read-back right after the write (no wait) and no read-back at all.

    These trials show what the settle wait buys; the figures go to docs/guide_parallel.md.
    """
    monkeypatch.setattr(promotion_apply, "SETTLE_MIN", 0.0)
    monkeypatch.setattr(promotion_apply, "SETTLE_FACTOR", 0.0)
    no_wait = report(promotion_scenario(plain_registry, "promote-threads-no-settle"))
    monkeypatch.setattr(promotion_apply, "_read_back", lambda *args, **kwargs: None)
    no_read_back = report(promotion_scenario(plain_registry, "promote-threads-no-read-back"))
    # Without any read-back the loser is told it won whenever both guards pass: the bug of issue 20.
    assert no_read_back.count("both_succeeded") == no_read_back.disagreeing_trials
    assert no_wait.count("both_succeeded") == no_wait.disagreeing_trials


@pytest.mark.oldest_core
def test_two_playbooks_promoting_the_same_tag(plain_registry: RigRegistry, run_playbook) -> None:
    """Two real ansible-playbook processes, started together, each moving prod with the guard."""
    reg = plain_registry

    def racers(state: dict[str, str]):
        def racer(candidate: str):
            task = {"name": "promote", "register": "out", "ocireg.registry.registry_tag": {
                "repository": f"{reg.host}/{state['repository']}", "tags": ["prod"],
                "source": f":cand-{candidate}", "expected_digest": state["old"]}}
            return lambda: run_playbook(tasks=[task])
        return [("playbook-a", racer("a")), ("playbook-b", racer("b"))]

    def judge(state: dict[str, str], outcomes: list[Outcome]) -> Verdict:
        # Turn each playbook's task result into the shape the thread judge reads.
        converted = []
        for outcome in outcomes:
            assert outcome.ok, outcome.error
            task = outcome.value.task("promote")
            if task.failed:
                converted.append(Outcome(outcome.name, error=ConflictError(task.result.get("msg", ""), detail=task.result)
                                         if "lost a race" in task.result.get("msg", "") or "blocked" in
                                         task.result.get("msg", "") else RuntimeError(outcome.value.explain())))
            else:
                converted.append(Outcome(outcome.name, value=task.result))
        return judge_promotions(reg, state, converted)

    summary = report(run_scenario("promote-playbooks", trials=PLAYBOOK_TRIALS,
                                  setup=lambda i: staged_promotion(reg, "race/playbooks"),
                                  racers=racers, judge=judge, jitter=0.05))
    assert summary.disagreeing_trials == 0, summary.explain()


# -- untag versus promotion ---------------------------------------------------------------------------
def test_untag_racing_a_promotion_of_the_same_tag(plain_registry: RigRegistry) -> None:
    reg = plain_registry

    def racers(state: dict[str, str]):
        promoter = client(reg, state["repository"])
        untagger = client(reg, state["repository"])
        source = Reference.parse(f"{reg.host}/{state['repository']}:cand-a")
        return [("promote", lambda: promote(promoter, ["prod"], source=source).to_result()),
                ("untag", lambda: promote(untagger, ["prod"], state="absent").to_result())]

    def judge(state: dict[str, str], outcomes: list[Outcome]) -> Verdict:
        final = head(reg, state["repository"], "prod")
        verdict = Verdict(counts={"promote_ok": 0, "untag_ok": 0, "lost_race_reported": 0, "stale_success": 0,
                                  "final_state_unreported": 0})
        for outcome in outcomes:
            if outcome.ok:
                verdict.counts[f"{outcome.name}_ok"] += 1
                claimed = outcome.value["after"]["prod"]
                if claimed != final:
                    # Its write stuck past its read-back, then the other's landed: the residual window.
                    verdict.counts["stale_success"] += 1
                    verdict.disagreements.append(f"{outcome.name} reported prod -> {claimed}, registry holds {final}")
            elif isinstance(outcome.error, ConflictError) and "lost a race" in outcome.error.message:
                verdict.counts["lost_race_reported"] += 1
            else:
                verdict.disagreements.append(f"{outcome.name} failed unexpectedly: {outcome.error!r}")
        if not any(o.ok and o.value["after"]["prod"] == final for o in outcomes):
            verdict.counts["final_state_unreported"] += 1
            verdict.disagreements.append(f"no task reported the final state: prod holds {final}")
        return verdict

    summary = report(run_scenario("untag-vs-promote", trials=TRIALS,
                                  setup=lambda i: staged_promotion(reg, "race/untag"),
                                  racers=racers, judge=judge, jitter=0.01))
    # The bar: the final state is always the one a task reported (whoever wrote last knows it).
    assert summary.count("final_state_unreported") == 0, summary.explain()
    assert summary.count("lost_race_reported") > 0, summary.explain()
    # The residual window (a promotion's success later undone by the untag's slower dummy-manifest
    # removal) is measured and printed in the summary line (stale_success), not bounded: it moved
    # between 1 and 9 of 20 with the machine's load (docs/guide_parallel.md).


# -- mirror versus mirror ------------------------------------------------------------------------------
def test_two_mirrors_of_one_source_into_one_destination(plain_registry: RigRegistry) -> None:
    reg = plain_registry
    pusher = RawPusher.for_registry(reg)
    source = {
        "multi": pusher.push(  # an index whose children share nothing: many blobs in flight
            "race/source", make_multiarch("mirror-src", platforms=("linux/amd64", "linux/arm64/v8")),
            tag="multi").digest,
        "single": pusher.push_image("race/source", make_image("mirror-single", layers=2), tag="single").digest,
    }

    def racers(dest: str):
        def racer():
            src, dst = client(reg, "race/source"), client(reg, dest)
            return lambda: mirror_repository(src, dst, [".*"], CopyOptions(), keep_going=False)
        return [("mirror-1", racer()), ("mirror-2", racer())]

    def judge(dest: str, outcomes: list[Outcome]) -> Verdict:
        verdict = Verdict(counts={"errors": 0, "incomplete": 0})
        for outcome in outcomes:
            if not outcome.ok or outcome.value.failed:
                verdict.counts["errors"] += 1
                verdict.disagreements.append(f"{outcome.name} failed: {outcome.error or outcome.value.failed}")
        for tag, digest in source.items():
            now = head(reg, dest, tag)
            if now != digest:
                verdict.disagreements.append(f"{dest}:{tag} holds {now}, the source {digest}")
            elif not complete(reg, dest, tag):
                verdict.counts["incomplete"] += 1
                verdict.disagreements.append(f"{dest}:{tag} cannot be pulled completely")
        return verdict

    summary = report(run_scenario("mirror-vs-mirror", trials=FRESH_TRIALS, setup=lambda i: f"race/mirror{i}",
                                  racers=racers, judge=judge, jitter=0.004))
    assert summary.disagreeing_trials == 0, summary.explain()


# -- prune versus push ---------------------------------------------------------------------------------
def staged_prune(reg: RigRegistry, repository: str, source: str | None = None) -> dict[str, Any]:
    """Six old dev- images the policy deletes, and release / keep images it keeps.

    With ``source``, the dev- images are also pushed there (tag ``<repository>-dev-N``), for
    pushers that copy them in as registry_copy does.
    """
    pusher = RawPusher.for_registry(reg)
    doomed = {}
    source_tags = {}
    for n in range(6):
        image = make_image(f"{repository}-dev{n}", created="2020-01-01T00:00:00Z")
        pushed = pusher.push_image(repository, image, tag=f"dev-{n}")
        doomed[pushed.digest] = pushed
        if source is not None:
            source_tags[pushed.digest] = f"{repository.replace('/', '-')}-dev-{n}"
            pusher.push_image(source, image, tag=source_tags[pushed.digest])
    release = pusher.push_image(repository, make_image(f"{repository}-release"), tag="release").digest
    pusher.push_image(repository, make_image(f"{repository}-keep"), tag="keep")
    return {"repository": repository, "source": source or repository, "source_tags": source_tags,
            "doomed": doomed, "release": release, "pushed": {}, "pushed_ever": set(), "push_errors": 0,
            "restored": 0, "waited": 0.0, "planned": threading.Event(), "done": threading.Event()}


def pushing(reg: RigRegistry, state: dict[str, Any], seed: int, move: bool, cooperating: bool = False,
            start_window: float = 0.04):
    """A CI job that keeps pushing onto the doomed digests while the prune runs.

    ``move`` moves the existing ``release`` tag; otherwise each push is a new tag. Each push
    that the registry accepted is recorded (tag -> digest): the judge checks none was lost.
    ``cooperating`` pushes as this collection's writers do: new tags with the copy engine
    (``copy_image`` from a source repository, as registry_copy), a moved tag with
    ``Repository.push_manifest`` and then the prune-lease check (``honour_leases``); otherwise
    with the rig's raw pusher, which knows nothing of leases (``docker push``).
    """
    rng = random.Random(seed)
    pusher = RawPusher.for_registry(reg)
    images = list(state["doomed"].values())
    repo = client(reg, state["repository"])
    source = client(reg, state.get("source", state["repository"]))

    def push(tag: str, image: Any) -> None:
        if not cooperating:
            pusher.push_manifest(state["repository"], tag, image.manifest, image.media_type)
            return
        if move:
            repo.push_manifest(tag, image.manifest, image.media_type)
            report = honour_leases(repo, [Written(tag, image.digest, image.manifest, image.media_type)])
            restored, waited = report.restored, report.waited
        else:
            outcome = copy_image(source, state["source_tags"][image.digest], repo, [tag], CopyOptions(honour_leases=True))
            restored, waited = outcome.restored_after_prune, 0.0
        state["restored"] += len(restored)
        state["waited"] += waited

    def run() -> int:
        count = 0
        # Between plan and delete is the race that matters: start once the plan exists, at a random
        # point of the apply.
        state["planned"].wait(timeout=30)
        time.sleep(rng.uniform(0, start_window))
        while not state["done"].is_set() and count < 40:
            image = rng.choice(images)
            tag = "release" if move else f"hotfix-{seed}-{count}"
            began = time.monotonic()
            try:
                push(tag, image)
                state["slowest_push"] = max(state.get("slowest_push", 0.0), time.monotonic() - began)
            except (AssertionError, RegistryError):
                # Distribution's filesystem storage can itself fail a push racing a delete (HTTP 500,
                # mkdir of a tag directory the delete just removed): the pusher knows it failed, so
                # the tag is no longer a claim the judge can hold the prune to.
                state["pushed"].pop(tag, None)
                state["push_errors"] += 1
            else:
                state["pushed"][tag] = image.digest  # last write wins for a moved tag, as on the registry
            state["pushed_ever"].add(image.digest)  # a push after the delete brings the manifest back
            count += 1
            time.sleep(rng.uniform(0, 0.004))
        return count
    return run


def judge_prune(reg: RigRegistry, state: dict[str, Any], outcomes: list[Outcome]) -> Verdict:
    """No pushed image may be lost; what the prune reports (applied or skipped) must be what is there.

    A prune that failed is judged on what its error says it applied: under an adversarial pusher
    Distribution's own storage answers 500 / 404 now and then (see docs/guide_parallel.md), and a
    failed run that reports truthfully what it did before failing is not a lie.
    """
    verdict = Verdict(counts={"pushes": 0, "push_errors_from_the_registry": state["push_errors"], "lost_images": 0,
                              "deleted": 0, "skipped_changed_since_plan": 0, "prune_errors_from_the_registry": 0,
                              "restored_after_prune": state["restored"], "leases_left": 0,
                              "slowest_push_ms": int(state.get("slowest_push", 0.0) * 1000), "prune_ms": 0})
    repository = state["repository"]
    applied = None
    for outcome in outcomes:
        if outcome.name == "prune":
            verdict.counts["prune_ms"] = int((outcome.finished - outcome.started) * 1000)
            if outcome.ok:
                applied = outcome.value.applied
            elif isinstance(outcome.error, ApplyError):
                applied = outcome.error.result
                verdict.counts["prune_errors_from_the_registry"] += 1
            elif isinstance(outcome.error, TransportError):
                verdict.counts["prune_errors_from_the_registry"] += 1
            else:
                verdict.disagreements.append(f"prune failed: {outcome.error!r}")
        elif outcome.ok:
            verdict.counts["pushes"] += outcome.value
        else:
            verdict.disagreements.append(f"{outcome.name} failed: {outcome.error!r}")
    for tag, digest in state["pushed"].items():
        if head(reg, repository, tag) != digest or not complete(reg, repository, tag):
            verdict.counts["lost_images"] += 1
            verdict.disagreements.append(f"pushed {tag} -> {digest}, and the image is gone after the prune")
    leases = [t for t in client(reg, repository).tags() if is_lease_tag(t)]
    if leases:
        verdict.counts["leases_left"] += len(leases)
        said = getattr(applied, "warnings", None)
        verdict.disagreements.append(f"the prune left its lease behind: {leases} (its warnings: {said})")
    if applied is not None:
        pushed_digests = state["pushed_ever"]
        for action in applied.applied:
            verdict.counts["deleted"] += action["action"] == "delete"
            # "already gone" counts as removed (its DELETE found nothing): held to the same check below.
            verdict.counts["already_gone"] = verdict.counts.get("already_gone", 0) + bool(action["already_gone"])
            if action["action"] == "delete" and head(reg, repository, action["digest"]) is not None \
                    and action["digest"] not in pushed_digests:
                verdict.disagreements.append(f"prune reported {action['digest']} deleted, it is still there")
        for item in applied.skipped:
            verdict.counts["skipped_changed_since_plan"] += item["reason"] == CHANGED_SINCE_PLAN
            if head(reg, repository, item["digest"]) is None:
                verdict.disagreements.append(f"prune reported {item['digest']} kept, it is gone")
    return verdict


def prune_scenario(reg: RigRegistry, name: str, *, cooperating: bool, trials: int = FRESH_TRIALS) -> ScenarioSummary:
    """A prune of six old images racing two pushers aimed at the doomed digests (new tags, a moved tag)."""
    policy = build_policy(DEV_OLD)

    def racers(state: dict[str, Any]):
        repo = client(reg, state["repository"])

        def run_prune():
            # prune()'s own steps, with a signal between plan and apply for the pushers.
            try:
                plan = plan_retention(collect_snapshot(repo), policy, datetime.now(UTC))
                state["planned"].set()
                return SimpleNamespace(applied=apply_plan(repo, plan, check_mode=False, prune_lease=cooperating))
            finally:
                state["planned"].set()
                state["done"].set()
        seed = int(state["repository"].rsplit("-", 1)[1])
        if not cooperating:
            return [("prune", run_prune), ("push-new", pushing(reg, state, seed, False)),
                    ("move-release", pushing(reg, state, seed + 1000, True))]
        # A cooperating writer waits while the prune's lease is up, so each one pushes about once
        # per prune: several writers, started over the whole apply, aim pushes at every group.
        return [("prune", run_prune), ("move-release", pushing(reg, state, seed + 1000, True, True, 0.4))] + [
            (f"copy-new-{k}", pushing(reg, state, seed + 100 * k, False, True, 0.4)) for k in range(COPIERS)]

    source = f"race/{name}-source" if cooperating else None
    return run_scenario(name, trials=trials, setup=lambda i: staged_prune(reg, f"race/{name}-{i}", source),
                        racers=racers, judge=lambda s, o: judge_prune(reg, s, o), jitter=0.03)


# The statistical run of the same scenario with raw pushers (how often a push lands in a window) is a
# measurement, not a test: bench/races.py. The windows themselves are forced one by one below.


def test_prune_racing_cooperating_writers_loses_no_image(plain_registry: RigRegistry) -> None:
    """This collection's writers honour the prune lease: zero lost images, zero disagreements.

    The pushers copy the doomed images in under new tags with the copy engine (registry_copy's
    path) and move ``release`` onto them with a push followed by the lease check (registry_tag's
    path). A push that lands in the last round trip before a DELETE is lost for a moment, then
    written back by its writer once the prune's lease is gone (``restored_after_prune``).
    """
    summary = report(prune_scenario(plain_registry, "prune-vs-cooperating-push", cooperating=True,
                                    trials=COOPERATING_TRIALS))
    assert summary.count("lost_images") == 0, summary.explain()
    assert summary.disagreeing_trials == 0, summary.explain()
    # The pushes really ran during prunes, and the prunes still deleted what nobody touched.
    assert summary.count("pushes") > COOPERATING_TRIALS and summary.count("deleted") > 0, summary.explain()


def forced_prune(reg: RigRegistry, repository: str, act: Any, *, before: bool, lease: bool = False) -> tuple[Any, str]:
    """Apply a fresh plan, running ``act(second)`` right before (``before``) or right after the first
    group's DELETE, where ``second`` is the digest of a later deletion group: an exact interleaving."""
    staged_prune(reg, repository)
    repo = client(reg, repository)
    plan = plan_retention(collect_snapshot(repo), build_policy(DEV_OLD), datetime.now(UTC))
    order = [group[0].digest for group in deletion_groups(plan.entries)]  # one image per group here
    first, second = order[0], order[-1]
    real_delete = repo.delete_manifest

    def interleaved(digest: str, **kwargs: Any) -> Any:
        if before and digest == second:
            act(second)
        outcome = real_delete(digest, **kwargs)
        if not before and digest == first:
            act(second)
        return outcome

    repo.delete_manifest = interleaved  # type: ignore[method-assign]
    return apply_plan(repo, plan, check_mode=False, prune_lease=lease), second


def raw_push(reg: RigRegistry, repository: str, tag: str):
    """What ``docker push`` of an existing image does: the manifest PUT, knowing nothing of the lease."""
    def act(digest: str) -> None:
        raw, media_type, _digest = RawPuller.for_registry(reg).manifest(repository, digest)
        RawPusher.for_registry(reg).push_manifest(repository, tag, raw, media_type)
    return act


def test_a_raw_push_in_the_last_round_trip_before_the_delete_is_lost(plain_registry: RigRegistry) -> None:
    """The window no read can close, forced: a new tag lands after the group's tag list, before its DELETE.

    Distribution removes every tag on a deleted manifest, so the tag goes with it; the prune reports
    the deletion it did, truthfully. (The race scenarios in bench/races.py measure how often.)
    """
    reg = plain_registry
    result, second = forced_prune(reg, "race/last-trip", raw_push(reg, "race/last-trip", "hotfix"), before=True)
    assert second in [a["digest"] for a in result.applied]
    assert head(reg, "race/last-trip", "hotfix") is None


def test_an_existing_tag_moved_onto_a_later_group_after_the_look_is_lost(plain_registry: RigRegistry) -> None:
    """The window the cheap checks leave, forced: a kept tag moved onto a doomed digest after the one look.

    The tag list before the later group shows no new name, so no HEAD is sent and the move is not
    seen (catching it needs a HEAD of every tag before every group: docs/guide_parallel.md).
    """
    reg = plain_registry
    result, second = forced_prune(reg, "race/moved", raw_push(reg, "race/moved", "release"), before=False)
    assert second in [a["digest"] for a in result.applied]
    assert head(reg, "race/moved", "release") is None


def test_a_new_tag_on_a_later_group_after_the_look_blocks_that_group(plain_registry: RigRegistry) -> None:
    """Forced: a new tag pushed onto a later group's digest after the first DELETE is seen by that group's list."""
    reg = plain_registry
    result, second = forced_prune(reg, "race/new-later", raw_push(reg, "race/new-later", "hotfix"), before=False)
    skipped = {s["digest"]: s["message"] for s in result.skipped if s["reason"] == CHANGED_SINCE_PLAN}
    assert second not in [a["digest"] for a in result.applied] and "hotfix was created" in skipped[second]
    assert head(reg, "race/new-later", "hotfix") == second and complete(reg, "race/new-later", "hotfix")


def test_a_cooperating_move_after_the_look_is_restored_with_the_lease(plain_registry: RigRegistry) -> None:
    """Forced: the moved-tag window, with the opt-in lease and this collection's writer: the tag comes back."""
    reg = plain_registry
    writer = client(reg, "race/moved-lease")
    reports: list[Any] = []
    threads: list[threading.Thread] = []
    listed = threading.Event()
    real_tags = writer.tags

    def tags_then_signal() -> list[str]:
        found = real_tags()
        listed.set()  # the writer's one tag list is in: it has seen the lease
        return found

    writer.tags = tags_then_signal  # type: ignore[method-assign]

    def cooperating_move(digest: str) -> None:
        raw, media_type, _digest = RawPuller.for_registry(reg).manifest("race/moved-lease", digest)
        writer.push_manifest("release", raw, media_type)

        def honour() -> None:
            reports.append(honour_leases(writer, [Written("release", digest, raw, media_type)]))
        threads.append(threading.Thread(target=honour))
        threads[0].start()
        assert listed.wait(timeout=30), "the writer never listed the tags"

    result, second = forced_prune(reg, "race/moved-lease", cooperating_move, before=False, lease=True)
    threads[0].join(timeout=120)
    assert second in [a["digest"] for a in result.applied]  # the DELETE took release with it ...
    assert reports and reports[0].restored == ["release"] and reports[0].warnings, reports  # ... and it came back
    assert head(reg, "race/moved-lease", "release") == second and complete(reg, "race/moved-lease", "release")


def test_a_tag_pushed_onto_a_later_group_while_an_earlier_one_is_deleted(plain_registry: RigRegistry) -> None:
    """Deterministic: the push lands after the apply's first read, between two groups' deletes.

    Before each group's delete the tags are read again, so the new tag blocks its digest.
    """
    reg = plain_registry
    state = staged_prune(reg, "race/between")
    repo = client(reg, "race/between")
    plan = plan_retention(collect_snapshot(repo), build_policy(DEV_OLD), datetime.now(UTC))
    first, second = sorted(state["doomed"])[:2]
    image = state["doomed"][second]
    real_delete = repo.delete_manifest

    def delete_then_push(digest: str, **kwargs: Any) -> None:
        real_delete(digest, **kwargs)
        if digest == first:  # a CI job re-tags the second doomed image right now
            RawPusher.for_registry(reg).push_manifest("race/between", "hotfix", image.manifest, image.media_type)

    repo.delete_manifest = delete_then_push  # type: ignore[method-assign]
    result = apply_plan(repo, plan, check_mode=False)
    assert head(reg, "race/between", "hotfix") == second and complete(reg, "race/between", "hotfix")
    assert first in [a["digest"] for a in result.applied]
    skipped = {s["digest"]: s["message"] for s in result.skipped if s["reason"] == CHANGED_SINCE_PLAN}
    assert "hotfix was created" in skipped[second]


# -- the prune lease, deterministically -------------------------------------------------------------------
def test_a_cooperating_push_in_the_last_round_trip_before_the_delete_is_restored(plain_registry: RigRegistry) -> None:
    """The window no read can close: the push lands after the prune's last read, right before its DELETE.

    The prune's DELETE takes the new tag with the manifest; the writer saw the lease in its one tag
    list, waited until the prune released it, found its tag gone and wrote it again.
    """
    reg = plain_registry
    state = staged_prune(reg, "race/lease-restore")
    repo = client(reg, "race/lease-restore")
    writer = client(reg, "race/lease-restore")
    plan = plan_retention(collect_snapshot(repo), build_policy(DEV_OLD), datetime.now(UTC))
    target = sorted(state["doomed"])[0]
    image = state["doomed"][target]
    real_delete = repo.delete_manifest
    reports: list[Any] = []
    listed_leases: list[list[str]] = []

    listed = threading.Event()
    real_tags = writer.tags

    def tags_then_signal() -> list[str]:
        found = real_tags()
        listed.set()  # the writer's one tag list after its PUT is in: it has seen the lease
        return found

    writer.tags = tags_then_signal  # type: ignore[method-assign]

    def cooperating_push() -> None:
        writer.push_manifest("hotfix", image.manifest, image.media_type)
        reports.append(honour_leases(writer, [Written("hotfix", target, image.manifest, image.media_type)]))

    threads: list[threading.Thread] = []

    def push_then_delete(digest: str, **kwargs: Any) -> None:
        if digest == target and not threads:
            thread = threading.Thread(target=cooperating_push)
            threads.append(thread)
            thread.start()
            # Hold the DELETE until the writer's PUT and its one tag list are in: then it takes the tag.
            assert listed.wait(timeout=30), "the writer never listed the tags"
            listed_leases.append([t for t in client(reg, "race/lease-restore").tags() if is_lease_tag(t)])
        real_delete(digest, **kwargs)

    repo.delete_manifest = push_then_delete  # type: ignore[method-assign]
    result = apply_plan(repo, plan, check_mode=False, prune_lease=True)
    threads[0].join(timeout=60)
    assert listed_leases and len(listed_leases[0]) == 1  # the prune held exactly one lease while deleting
    assert target in [a["digest"] for a in result.applied]  # the DELETE went ahead and took hotfix with it
    assert reports and reports[0].restored == ["hotfix"] and reports[0].leases == listed_leases[0], reports
    assert head(reg, "race/lease-restore", "hotfix") == target and complete(reg, "race/lease-restore", "hotfix")
    assert not [t for t in client(reg, "race/lease-restore").tags() if is_lease_tag(t)]  # released


def test_leases_stay_out_of_plans_and_expired_ones_are_cleared(plain_registry: RigRegistry) -> None:
    """A crashed prune's expired lease is ignored by writers and removed by the next prune; a live one is
    never a retention candidate, never blocks the plan, and is left to its owner."""
    reg = plain_registry
    state = staged_prune(reg, "race/lease-stale")
    repo = client(reg, "race/lease-stale")
    crashed = PruneLease(repo, clock=lambda: time.time() - 3600)  # wrote its lease an hour ago, then died
    crashed.acquire()
    running = PruneLease(repo)  # another prune, still running
    running.acquire()
    snapshot = collect_snapshot(repo)
    assert not [t for t in snapshot.tags if is_lease_tag(t)]
    plan = plan_retention(snapshot, build_policy({"keep_latest": 1}), datetime.now(UTC))
    assert not [t for e in plan.entries for t in e.tags if is_lease_tag(t)]
    result = apply_plan(repo, plan, check_mode=False)
    assert result.applied and not result.warnings
    assert not [t for a in result.applied for t in a["tags"] if is_lease_tag(t)]
    left = [t for t in repo.tags() if is_lease_tag(t)]
    assert left == [running.tag]  # the expired lease was cleared, the live one left to its prune
    # A live lease is no tag that keeps a repository from being emptied: deleting every image is still refused.
    emptying = plan_retention(collect_snapshot(repo), build_policy(
        {"rules": [{"name": "all", "action": "delete", "glob": ["*"]}]}), datetime.now(UTC))
    assert any("emptying the repository" in v for v in emptying.violations), emptying.violations
    # A writer ignores an expired lease: no wait, no read-back.
    image = next(iter(state["doomed"].values()))
    expired = PruneLease(repo, clock=lambda: time.time() - 3600)
    expired.acquire()
    running.release()
    repo.push_manifest("late", image.manifest, image.media_type)
    report = honour_leases(repo, [Written("late", image.digest, image.manifest, image.media_type)])
    assert report.leases == [] and report.waited == 0.0 and report.restored == []


def test_a_prune_with_the_lease_on_and_nothing_to_delete_still_clears_an_expired_lease(
        plain_registry: RigRegistry) -> None:
    """A crashed prune's lease must not outlive the next prune that has the lease on, even one that
    deletes nothing; a prune with the lease off touches no lease at all."""
    reg = plain_registry
    staged_prune(reg, "race/lease-idle")
    repo = client(reg, "race/lease-idle")
    crashed = PruneLease(repo, clock=lambda: time.time() - 3600)  # wrote its lease an hour ago, then died
    crashed.acquire()
    keep_all = plan_retention(collect_snapshot(repo), build_policy({"keep_latest": 100}), datetime.now(UTC))
    assert keep_all.entries and all(e.action == "keep" for e in keep_all.entries)
    mark = reg.mark()
    apply_plan(repo, keep_all, check_mode=False)
    assert reg.requests_since(mark) == [] and [t for t in repo.tags() if is_lease_tag(t)] == [crashed.tag]
    result = apply_plan(repo, keep_all, check_mode=False, prune_lease=True)
    assert result.applied == [] and result.warnings == []
    assert [t for t in repo.tags() if is_lease_tag(t)] == []
    assert [r.method for r in reg.writes_since(mark)] == ["DELETE"]  # the expired lease, nothing else


def test_a_writer_meeting_a_killed_prunes_lease_waits_at_most_the_bound_and_warns(plain_registry: RigRegistry) -> None:
    """A prune killed mid-way leaves its lease; a writer waits for it at most WAIT_CAP, saying so.

    The writer's clock and sleep are injected (fake time that the sleep advances), so the test
    waits for nothing and the bound is checked exactly, never on elapsed time.
    """
    reg = plain_registry
    state = staged_prune(reg, "race/lease-killed")
    repo = client(reg, "race/lease-killed")
    killed = PruneLease(repo)
    killed.acquire()  # ... and the prune is killed here: nobody releases it
    assert killed.tag is not None
    image = next(iter(state["doomed"].values()))
    repo.push_manifest("late", image.manifest, image.media_type)
    fake = {"now": time.time()}

    def sleep(seconds: float) -> None:
        fake["now"] += seconds

    report = honour_leases(repo, [Written("late", image.digest, image.manifest, image.media_type)],
                           clock=lambda: fake["now"], sleep=sleep)
    assert report.leases == [killed.tag] and report.restored == []
    assert 0 < report.waited <= WAIT_CAP
    (warning,) = report.warnings
    assert killed.tag in warning and "expires" in warning and "still there" in warning, warning
    assert head(reg, "race/lease-killed", "late") == image.digest
    # Without the option nothing is listed at all: the writer's path sends no request for the lease.
    mark = reg.mark()
    promote(repo, ["late2"], source=Reference.parse(f"{reg.host}/race/lease-killed:late"))
    assert not [r for r in reg.requests_since(mark) if "/tags/list" in r.path]
