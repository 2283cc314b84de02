"""Retention's request budget against a real Distribution 2.8, counted in the registry's access log.

- collect_snapshot reads near the floor: the tag list, one GET per tag (no HEAD), one GET per
  manifest no tag gave (index children, untagged referrers), one config read per distinct config
  whose age matters, one referrers probe; nothing twice.
- check mode re-resolves nothing (zero requests after planning);
- a real apply looks once before its first DELETE (the tag list, a HEAD of each tag it keeps: a kept
  tag that moved onto a condemned digest would be deleted with it), then lists the tags once before
  each later deletion group, HEADing only names it has not seen; a condemned tag is not read again;
  a plan that only untags reads nothing but the tags it removes;
- a whole prune (plan + apply) stays within 1.5 x (tags + distinct digests + deletions) requests on
  loopback and behind a 10 ms-each-way delay alike.

Images are seeded with the rig's raw pusher, never with our own client.
"""
from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import (
    Registry,
    Repository,
)
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.core import (
    TransportOptions,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_schemes import is_lease_tag
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.apply import (
    apply_plan,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.verdicts import (
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
from tests.rig.latency import LatencyProxy
from tests.rig.images import (
    RawPuller,
    RawPusher,
    make_artifact,
    make_image,
    make_multiarch,
)

REPO = "team/scale"
NOW = datetime.now(UTC)


def client(reg: RigRegistry) -> Repository:
    return Registry(reg.host, TransportOptions(sleep=lambda _s: None)).repository(REPO)


def seed(reg: RigRegistry) -> dict[str, object]:
    """Eight builds (two tags on build-0), a signed build with a fallback-index SBOM, a multi-arch index."""
    pusher = RawPusher.for_registry(reg)
    builds = []
    for n in range(8):
        image = make_image(f"build-{n}", created=f"2025-01-0{n + 1}T00:00:00Z")
        builds.append(pusher.push_image(REPO, image, tag=f"build-{n}"))
        if n == 0:
            pusher.push_image(REPO, image, tag="ci-0")
    signed = builds[7]
    sbom = make_artifact(signed.content)
    pusher.push_referrers(REPO, signed.digest, [sbom])
    pusher.push_cosign_signature(REPO, signed.content)
    multi = pusher.push(REPO, make_multiarch("multi", created="2025-02-01T00:00:00Z"), tag="multi")
    return {"builds": builds, "sbom": sbom, "multi": multi}


def by_method(requests) -> Counter[str]:
    return Counter(r.method for r in requests)


def test_snapshot_reads_each_tag_once_with_get_and_nothing_twice(plain_registry: RigRegistry) -> None:
    d = seed(plain_registry)
    tags = RawPuller.for_registry(plain_registry).tags(REPO)
    mark = plain_registry.mark()
    snapshot = collect_snapshot(client(plain_registry))
    sent = plain_registry.requests_since(mark)

    assert set(snapshot.tags) == set(tags)
    assert "HEAD" not in by_method(sent)
    paths = Counter(r.path.split("?")[0] for r in sent)
    assert [p for p, n in paths.items() if n > 1] == []  # nothing read twice
    manifest_reads = [r.path.rsplit("/", 1)[1] for r in sent if "/manifests/" in r.path]
    # Every tag once; by digest only what no tag gave: the index's children and the untagged SBOM.
    multi = d["multi"]
    by_digest = {ref for ref in manifest_reads if ":" in ref}
    by_tag = [ref for ref in manifest_reads if ":" not in ref]
    # The referrers probe: on a registry without the API, Repository.referrers also GETs the probed
    # subject's fallback tag, and the probe picks a subject that has none (a 404, not a second read).
    probe = [ref for ref in by_tag if ref not in tags]
    assert len(probe) == 1 and probe[0].startswith("sha256-")
    assert sorted(ref for ref in by_tag if ref in tags) == sorted(tags)
    assert by_digest == {c.digest for c in multi.children} | {d["sbom"].digest}
    # Configs: one per distinct image config whose age matters (8 builds + 2 platform children).
    config_reads = [r for r in sent if "/blobs/" in r.path]
    assert len(config_reads) == 8 + len(multi.children)
    assert len([r for r in sent if "/referrers/" in r.path]) == 1  # one probe; 2.8 has no referrers API
    distinct = len(set(snapshot.tags.values()))
    assert len(sent) <= len(tags) + distinct + len(by_digest) + len(multi.children) + 3


def test_a_check_mode_plan_sends_exactly_its_floor_with_config_reads_beside_the_tag_reads(
        plain_registry: RigRegistry) -> None:
    # A whole plan (prune() in check mode, as registry_prune runs it): 24 images, every third under a
    # second tag (the two tags of one digest may be read at once: its config is still read once), one
    # cosign signature (an attached tag: read as a tag, its config never).
    from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.prune import prune

    pusher = RawPusher.for_registry(plain_registry)
    tags: dict[str, str] = {}
    for n in range(24):
        image = make_image(f"floor-{n}", created=f"2025-01-{n + 1:02d}T00:00:00Z")
        for tag in [f"b{n}", f"ci{n}"] if n % 3 == 0 else [f"b{n}"]:
            tags[tag] = pusher.push_image(REPO, image, tag=tag).digest
    signature = pusher.push_cosign_signature(REPO, image)
    registry = Registry(plain_registry.host, TransportOptions(sleep=lambda _s: None))
    mark = plain_registry.mark()
    outcome = prune(registry, build_policy({"keep_latest": 3, "grace_period": "0s"}), [REPO], check_mode=True,
                    max_concurrency=4, now=NOW)
    sent = plain_registry.requests_since(mark)

    assert outcome.failed == [] and outcome.to_result()["summary"]["delete"] == 21
    # The floor: the tag list, a GET per tag, a GET per distinct image config whose age matters, and the
    # referrers probe with its fallback-tag read (a 404: Distribution 2.8 has no referrers API).
    all_tags = len(tags) + 1
    assert len(sent) == 1 + all_tags + len(set(tags.values())) + 2, Counter(r.path for r in sent)
    assert Counter(r.path for r in sent).most_common(1)[0][1] == 1  # nothing read twice
    blobs = [r.path.rsplit("/", 1)[1] for r in sent if "/blobs/" in r.path]
    assert signature.config_digest not in blobs and len(blobs) == len(set(tags.values()))
    # Configs are read while tags are still being read (4 workers, 33 tags), not after the last of them.
    order = [i for i, r in enumerate(sent) if "/blobs/" in r.path]
    tag_reads = [i for i, r in enumerate(sent) if r.path.rsplit("/", 1)[1] in tags]
    assert order[0] < tag_reads[-1], [r.path for r in sent]


def test_check_mode_re_resolves_nothing(plain_registry: RigRegistry) -> None:
    seed(plain_registry)
    repo = client(plain_registry)
    plan = plan_retention(collect_snapshot(repo), build_policy({"keep_latest": 2, "grace_period": "0s"}), NOW)
    assert plan.deletions and any(e.action == "untag" for e in plan.entries) is False

    mark = plain_registry.mark()
    result = apply_plan(repo, plan, check_mode=True)
    assert result.changed
    assert plain_registry.requests_since(mark) == []


def test_apply_looks_once_then_lists_the_tags_before_each_later_group(plain_registry: RigRegistry) -> None:
    seed(plain_registry)
    repo = client(plain_registry)
    plan = plan_retention(collect_snapshot(repo), build_policy({"keep_latest": 2, "grace_period": "0s"}), NOW)
    condemned = {t for e in plan.entries if e.action == "delete" for t in e.tags}
    kept = set(plan.tags_before[f"{plain_registry.host}/{REPO}"]) - condemned
    assert condemned and kept

    mark = plain_registry.mark()
    result = apply_plan(repo, plan, check_mode=False)
    sent = plain_registry.requests_since(mark)
    order = [(r.method, r.path.rsplit("/", 1)[1].split("?")[0]) for r in sent]
    deletes = [i for i, (method, _ref) in enumerate(order) if method == "DELETE"]
    groups = len({a["digest"] for a in result.applied})
    assert len(deletes) == groups == len(plan.deletions)
    # The one look, all before the first DELETE: one tag list, one HEAD of each tag the plan keeps.
    first = deletes[0]
    assert Counter(order[:first]) == Counter([("GET", "list")] + [("HEAD", tag) for tag in kept])
    # A condemned tag is never read again (its DELETE would take it anyway), a kept one only by the look.
    assert not [ref for method, ref in order if method == "HEAD" and ref in condemned]
    assert [r for r in sent if r.method == "GET" and "/manifests/" in r.path] == []
    # Before each later deletion group: one tag list (nothing new here, so no HEAD), then its DELETEs.
    lists = [i for i, step in enumerate(order) if step == ("GET", "list")]
    assert len(lists) == 1 + (len(deletion_groups(plan.entries)) - 1)
    assert all(order[i + 1][0] == "DELETE" for i in lists[1:])
    assert {a["digest"] for a in result.applied} == {e.digest for e in plan.deletions}
    assert not [t for t in RawPuller.for_registry(plain_registry).tags(REPO) if is_lease_tag(t)]
    assert sorted(RawPuller.for_registry(plain_registry).tags(REPO)) == sorted(kept)


def test_an_opt_in_lease_goes_up_before_the_look_and_down_after_the_last_delete(plain_registry: RigRegistry) -> None:
    seed(plain_registry)
    repo = client(plain_registry)
    plan = plan_retention(collect_snapshot(repo), build_policy({"keep_latest": 2, "grace_period": "0s"}), NOW)
    mark = plain_registry.mark()
    apply_plan(repo, plan, check_mode=False, prune_lease=True)
    order = [(r.method, r.path.rsplit("/", 1)[1].split("?")[0]) for r in plain_registry.requests_since(mark)]
    lease_put = [i for i, (method, tag) in enumerate(order) if method == "PUT" and is_lease_tag(tag)]
    assert len(lease_put) == 1
    heads = [i for i, (method, ref) in enumerate(order) if method == "HEAD" and not ref.startswith("sha256:")
             and not is_lease_tag(ref)]
    deletes = [i for i, (method, _ref) in enumerate(order) if method == "DELETE"]
    assert lease_put[0] < min(heads) and max(heads) < deletes[0]
    # The lease is deleted by its digest after the last deletion of the plan.
    assert deletes[-1] > max(i for i, (method, ref) in enumerate(order) if method == "DELETE"
                             and ref in {e.digest for e in plan.deletions})
    assert not [t for t in RawPuller.for_registry(plain_registry).tags(REPO) if is_lease_tag(t)]


def test_a_plan_that_only_untags_reads_only_the_tags_it_removes(plain_registry: RigRegistry) -> None:
    pusher = RawPusher.for_registry(plain_registry)
    shared = make_image("shared", created="2025-01-01T00:00:00Z")
    for tag in ("dev-1", "dev-2", "release"):
        pusher.push_image(REPO, shared, tag=tag)
    pusher.push_image(REPO, make_image("other", created="2025-01-02T00:00:00Z"), tag="v2")
    repo = client(plain_registry)
    policy = build_policy({"rules": [{"name": "dev", "action": "delete", "prefix": ["dev-"]}], "grace_period": "0s",
                           "untag_kept_images": True})  # untagging a kept image is an opt-in
    plan = plan_retention(collect_snapshot(repo), policy, NOW)
    assert [(e.action, e.untag_tags) for e in plan.entries if e.action != "keep"] == [("untag", ("dev-1", "dev-2"))]

    mark = plain_registry.mark()
    apply_plan(repo, plan, check_mode=False)
    sent = plain_registry.requests_since(mark)
    # Only the untagged tags are looked at (Repository.delete_tag's dummy-manifest path, the write
    # itself, resolves its tag once more on a registry without DELETE by tag: that is the client's).
    looked = {r.path.rsplit("/", 1)[1] for r in sent if r.method in ("HEAD", "GET") and "/manifests/" in r.path}
    assert looked == {"dev-1", "dev-2"}
    assert not [r for r in sent if "/tags/list" in r.path]
    assert sorted(RawPuller.for_registry(plain_registry).tags(REPO)) == ["release", "v2"]


def test_a_registry_is_read_within_one_bound_and_a_config_is_read_once_across_repositories(
        plain_registry: RigRegistry) -> None:
    # A prune of many repositories: they share one pool (never more than max_concurrency requests in flight,
    # counted here by wrapping the client's manifest and blob reads) and one config cache.
    import threading

    from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.prune import (
        prune,
    )

    pusher = RawPusher.for_registry(plain_registry)
    base = make_image("shared-base", created="2025-01-01T00:00:00Z")
    names = [f"fleet/app-{i}" for i in range(6)]
    for name in names:
        pusher.push_image(name, base, tag="v1")
        for n in range(4):
            pusher.push_image(name, make_image(f"{name}-{n}", created=f"2025-01-0{n + 2}T00:00:00Z"), tag=f"b{n}")
    registry = Registry(plain_registry.host, TransportOptions(sleep=lambda _s: None))
    lock, state = threading.Lock(), {"now": 0, "peak": 0, "held": False}
    overlapped = threading.Event()
    original = registry.transport.request  # every request of the client goes through it

    def counted(*args, **kwargs):
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
            if state["now"] > 1:
                overlapped.set()
            # The first manifest read (the reads the pool runs in parallel; the catalog and tag lists
            # come before them) waits until a second request is in flight: a pool that really runs
            # reads in parallel gets there at once; a serial one never does (and fails below).
            hold = not state["held"] and "/manifests/" in str(args[1] if len(args) > 1 else kwargs.get("path"))
            state["held"] = state["held"] or hold
        try:
            if hold:
                overlapped.wait(timeout=10)
            return original(*args, **kwargs)
        finally:
            with lock:
                state["now"] -= 1

    registry.transport.request = counted
    mark = plain_registry.mark()
    outcome = prune(registry, build_policy({"keep_latest": 2, "grace_period": "0s"}), ["fleet/*"],
                    check_mode=True, max_concurrency=3, now=NOW)
    sent = plain_registry.requests_since(mark)
    assert outcome.failed == [] and len(outcome.repositories) == 6
    assert overlapped.is_set() and 1 < state["peak"] <= 3
    # The shared base image's config: read in one repository, known in the five others.
    blob_reads = Counter(r.path.rsplit("/", 1)[1] for r in sent if "/blobs/" in r.path)
    assert base.config is not None and blob_reads[base.config.digest] == 1
    assert set(blob_reads.values()) == {1} and len(blob_reads) == 1 + 6 * 4, blob_reads
    assert outcome.to_result()["summary"]["by_repository"][f"{plain_registry.host}/fleet/app-0"] == {
        "keep": 2, "delete": 3, "untag": 0, "tags_removed": 3}  # keep b2, b3; v1, b0, b1 are older


# -- a real prune's request budget, on loopback and over a slow link ----------------------------------
#: The new user's policy: dev builds older than 30 days go, the newest 10 stay, three names are protected.
NEW_USER = {"match": ["dev-.*"], "keep_latest": 10, "older_than": "30d", "protect": ["latest", "prod", "staging"]}


def seed_new_user(reg: RigRegistry, repository: str, builds: int = 118) -> dict[str, str]:
    """``builds`` dev builds (a day apart, all older than 30 days) plus latest / prod / staging on three of them."""
    pusher = RawPusher.for_registry(reg)
    tags = {}
    for n in range(builds):
        image = make_image(f"{repository}-dev-{n}", created=f"2024-{1 + n // 28:02d}-{1 + n % 28:02d}T00:00:00Z")
        tags[f"dev-{n}"] = pusher.push_image(repository, image, tag=f"dev-{n}").digest
    for name, build in (("latest", builds - 1), ("prod", builds // 2), ("staging", builds - 3)):
        image = make_image(f"{repository}-dev-{build}", created=f"2024-{1 + build // 28:02d}-{1 + build % 28:02d}T00:00:00Z")
        pusher.push_image(repository, image, tag=name)
        tags[name] = tags[f"dev-{build}"]
    return tags


def prune_and_count(reg: RigRegistry, host: str, repository: str) -> tuple[Any, list[Any]]:
    """``prune()`` as registry_prune calls it (plan + apply), through ``host``; the requests the registry logged."""
    from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.prune import prune

    registry = Registry(host, TransportOptions(sleep=lambda _s: None))
    mark = reg.mark()
    outcome = prune(registry, build_policy(NEW_USER), [repository], check_mode=False, now=NOW)
    return outcome, reg.requests_since(mark)


def assert_within_budget(outcome: Any, sent: list[Any], tags: dict[str, str]) -> None:
    deleted = [a for a in outcome.applied.applied if a["action"] == "delete"]
    digests = len(set(tags.values()))
    floor = len(tags) + digests + len(deleted)
    # Everything old outside keep_latest and protect goes: 118 builds - 10 newest - prod's build.
    assert len(deleted) == 118 - 10 - 1, outcome.to_result(plan_detail="changes", diff=False)["summary"]
    assert outcome.applied.skipped == [] and outcome.failed == []
    by_kind = Counter(f"{r.method} {'tags' if '/tags/' in r.path else r.path.split('/')[-2]}" for r in sent)
    print(f"prune: {len(sent)} requests, floor {floor} (tags {len(tags)} + digests {digests} + deletions "
          f"{len(deleted)}): {dict(sorted(by_kind.items()))}")
    # The bar of the request budget: 1.5 x (tags + distinct digests + deletions), whatever the latency.
    assert len(sent) <= 1.5 * floor, (len(sent), floor, by_kind)
    # One DELETE per deleted digest, nothing written besides, no lease, and no tag HEADed per group.
    assert [r.method for r in sent if r.method not in ("GET", "HEAD")] == ["DELETE"] * len(deleted), by_kind
    heads = Counter(r.path for r in sent if r.method == "HEAD")
    assert set(heads.values()) <= {1}, heads.most_common(3)


def test_a_real_prune_stays_within_its_request_budget(plain_registry: RigRegistry) -> None:
    tags = seed_new_user(plain_registry, "team/newuser")
    outcome, sent = prune_and_count(plain_registry, plain_registry.host, "team/newuser")
    assert_within_budget(outcome, sent, tags)
    assert sorted(RawPuller.for_registry(plain_registry).tags("team/newuser")) == sorted(
        ["latest", "prod", "staging"] + [f"dev-{n}" for n in range(108, 118)] + ["dev-59"])


def test_a_real_prune_sends_no_more_requests_over_a_slow_link(plain_registry: RigRegistry) -> None:
    """10 ms each way (tests/rig/latency.py): the same count as on loopback; no rule turns time into reads."""
    tags = seed_new_user(plain_registry, "team/slow")
    with LatencyProxy(plain_registry.host, 10) as proxy:
        outcome, sent = prune_and_count(plain_registry, proxy.host, "team/slow")
    assert_within_budget(outcome, sent, tags)


def test_a_prune_that_deletes_little_stays_within_its_request_budget(plain_registry: RigRegistry) -> None:
    """A nightly prune deleting 4 of 40 builds: re-reading every kept tag in the one look would cost
    about 2 x tags + digests (1.52 x the floor here); the look's HEADs are budgeted instead."""
    from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.prune import prune

    tags = seed_new_user(plain_registry, "team/nightly", builds=40)
    registry = Registry(plain_registry.host, TransportOptions(sleep=lambda _s: None))
    mark = plain_registry.mark()
    outcome = prune(registry, build_policy({**NEW_USER, "keep_latest": 36}), ["team/nightly"], check_mode=False,
                    now=NOW)
    sent = plain_registry.requests_since(mark)
    deleted = [a for a in outcome.applied.applied if a["action"] == "delete"]
    assert 0 < len(deleted) <= 4 and outcome.applied.skipped == [] and outcome.failed == []
    floor = len(tags) + len(set(tags.values())) + len(deleted)
    assert len(sent) <= 1.5 * floor, (len(sent), floor)
    # The budget still leaves the look most kept tags to re-read.
    heads = [r for r in sent if r.method == "HEAD" and "/manifests/" in r.path]
    assert len(heads) >= len(tags) // 2, len(heads)
