"""Measure the race windows that remain, statistically: unforced races, many trials, counts printed.

tests/integration/test_races.py forces each interleaving once and asserts its exact outcome. How
*often* an unforced race lands in a window depends on the machine's load, so it is measured here,
never asserted:

    .venv/bin/python bench/races.py                        # 20 trials per scenario
    .venv/bin/python bench/races.py --trials 200           # tighter figures
    .venv/bin/python bench/races.py --only promote --trials 5

It starts one local Distribution (tests/rig) and runs, each racer released by a barrier and then
after a seeded random delay:

- ``promote``: two guarded promotions of one tag (threads), then the same without the settle wait
  and without any read-back, to show what each buys (``both_succeeded``, ``lost_race_reported``,
  and the disagreeing trials, where a report disagrees with the registry);
- ``untag``: an untag racing an unguarded promotion of the same tag (``stale_success``: a
  promotion's success later undone by the untag);
- ``raw`` / ``cooperating``: a prune racing pushers aimed at its doomed digests, raw ones that know
  nothing of the lease and this collection's writers with the opt-in lease (``lost_images``).

Each prints the harness's summary line; docs/guide_parallel.md ("Measured windows") quotes them.
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

# pylint: disable=wrong-import-position
import conftest  # noqa: E402,F401  # pylint: disable=unused-import  # the collection on sys.path
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (  # noqa: E402
    ConflictError,
    RegistryError,
    TransportError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.reference import Reference  # noqa: E402
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_schemes import is_lease_tag  # noqa: E402
from ansible_collections.ocireg.registry.plugins.module_utils._ops.coordination.lease import (  # noqa: E402
    Written,
    honour_leases,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.image import (  # noqa: E402
    CopyOptions,
    copy_image,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.promotion import (  # noqa: E402
    apply as promotion_apply,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.promotion.apply import promote  # noqa: E402
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.apply import (  # noqa: E402
    ApplyError,
    apply_plan,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.verdicts import (  # noqa: E402
    CHANGED_SINCE_PLAN,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.plan import plan_retention  # noqa: E402
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.policy import build_policy  # noqa: E402
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.snapshot import (  # noqa: E402
    collect_snapshot,
)

from tests.integration.test_races import (  # noqa: E402
    DEV_OLD,
    client,
    complete,
    head,
    judge_promotions,
    staged_promotion,
    staged_prune,
)
from tests.rig.flavours import RigRegistry  # noqa: E402
from tests.rig.images import RawPusher  # noqa: E402
from tests.rig.race import Outcome, ScenarioSummary, Verdict, run_scenario  # noqa: E402

#: Cooperating writers copying new tags onto doomed digests per prune trial (each pushes about once per
#: prune, since it waits while the lease is up).
COPIERS = 7


def wait_delay(outcome: Outcome) -> None:
    """Start the racer after its seeded random delay: what makes these runs statistical."""
    time.sleep(outcome.delay)


# -- promotion versus promotion ---------------------------------------------------------------------
def promotion_scenario(reg: RigRegistry, name: str, trials: int) -> ScenarioSummary:
    def racers(state: dict[str, str]):
        def racer(candidate: str):
            repo = client(reg, state["repository"])
            source = Reference.parse(f"{reg.host}/{state['repository']}:cand-{candidate}")
            return lambda: promote(repo, ["prod"], source=source, expected_digest=state["old"]).to_result()
        return [("promote-a", racer("a")), ("promote-b", racer("b"))]

    return run_scenario(name, trials=trials, setup=lambda i: staged_promotion(reg, f"race/{name}"),
                        racers=racers, judge=lambda s, o: judge_promotions(reg, s, o), jitter=0.004,
                        stagger=wait_delay)


def promotion_windows(reg: RigRegistry, trials: int) -> list[ScenarioSummary]:
    """Guarded promotions as shipped, then without the settle wait, then without any read-back."""
    summaries = [promotion_scenario(reg, "promote-threads", trials)]
    saved = promotion_apply.SETTLE_MIN, promotion_apply.SETTLE_FACTOR, promotion_apply._read_back
    try:
        promotion_apply.SETTLE_MIN = promotion_apply.SETTLE_FACTOR = 0.0
        summaries.append(promotion_scenario(reg, "promote-threads-no-settle", trials))
        promotion_apply._read_back = lambda *args, **kwargs: None  # type: ignore[assignment]
        summaries.append(promotion_scenario(reg, "promote-threads-no-read-back", trials))
    finally:
        promotion_apply.SETTLE_MIN, promotion_apply.SETTLE_FACTOR, promotion_apply._read_back = saved
    return summaries


# -- untag versus promotion ---------------------------------------------------------------------------
def untag_scenario(reg: RigRegistry, trials: int) -> ScenarioSummary:
    """An untag racing an unguarded promotion of the same tag; ``stale_success`` is the residual window."""

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

    return run_scenario("untag-vs-promote", trials=trials, setup=lambda i: staged_promotion(reg, "race/untag"),
                        racers=racers, judge=judge, jitter=0.01, stagger=wait_delay)


# -- prune versus push ---------------------------------------------------------------------------------
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
            outcome = copy_image(source, state["source_tags"][image.digest], repo, [tag],
                                 CopyOptions(honour_leases=True))
            restored, waited = outcome.restored_after_prune, 0.0
        state["restored"] += len(restored)
        state["waited"] += waited

    def run() -> int:
        count = 0
        # Between plan and delete is the race that matters: start once the plan exists (up to 30 s),
        # at a random point of the apply.
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
            time.sleep(rng.uniform(0, 0.004))  # spread the pushes over the apply: a measurement's jitter
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


def prune_scenario(reg: RigRegistry, name: str, *, cooperating: bool, trials: int) -> ScenarioSummary:
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
                        racers=racers, judge=lambda s, o: judge_prune(reg, s, o), jitter=0.03,
                        stagger=wait_delay)


# The statistical run of the same scenario with raw pushers (how often a push lands in a window) is a
# measurement, not a test: bench/races.py. The windows themselves are forced one by one below.


def main(argv: list[str] | None = None) -> int:
    """Run the chosen scenarios against one local Distribution and print a summary line for each."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20, help="trials per scenario (default 20; the cooperating "
                        "prune scenario runs a third of them, at least one)")
    parser.add_argument("--only", choices=("promote", "untag", "raw", "cooperating"), default=None,
                        help="one scenario only")
    options = parser.parse_args(argv)
    chosen = [options.only] if options.only else ["promote", "untag", "raw", "cooperating"]
    with RigRegistry() as registry:
        for name in chosen:
            if name == "promote":
                summaries = promotion_windows(registry, options.trials)
            elif name == "untag":
                summaries = [untag_scenario(registry, options.trials)]
            else:
                cooperating = name == "cooperating"
                summaries = [prune_scenario(registry, f"prune-vs-{name}-push", cooperating=cooperating,
                                            trials=max(1, options.trials // 3) if cooperating else options.trials)]
            for summary in summaries:
                print(summary.line(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
