"""registry_prune through real ``ansible-playbook`` runs against real Distribution 2.8 registries.

One repository holds every retention hazard at once (a digest shared by a
condemned and a kept tag, a kept multi-platform index with untagged children,
a condemned index sharing a child with it, referrers through the
``sha256-<hex>`` fallback tag and cosign tags on a kept and on a condemned
image, epoch and missing timestamps). It is pruned in check mode, then for
real, then again. Images are seeded and checked with the rig's raw HTTP
clients (tests/rig/images.py), never with our own client; writes are counted
in the registry's access log.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_schemes import is_lease_tag

from tests.rig.flavours import RigRegistry
from tests.rig.images import (
    RawPuller,
    RawPusher,
    cosign_tag,
    make_artifact,
    make_image,
    make_index,
    referrers_tag,
)

REPO = "team/app"
RULES = [
    {"name": "releases", "action": "keep", "regex": ["release-.*", "v[0-9].*"]},
    {"name": "old-dev", "action": "delete", "prefix": ["dev-"], "older_than": "30d"},
]


def prune_task(server: RigRegistry, name: str = "prune", **options: Any) -> dict[str, Any]:
    """One registry_prune task on ``server`` with the rig's credentials (if any)."""
    auth = {"username": server.username, "password": server.password} if server.username else {}
    if "repositories" not in options:
        options = {"repository": f"{server.host}/{REPO}", **options}
    return {"name": name, "ocireg.registry.registry_prune": {**auth, **options}, "register": "out"}


def head(registry: RigRegistry, reference: str, repository: str = REPO) -> str | None:
    """The digest a tag or digest resolves to with raw HTTP, None when absent."""
    return RawPuller.for_registry(registry).digest_of(repository, reference)


def seed_hazards(registry: RigRegistry) -> dict[str, Any]:
    """Push the hazard repository; return the digests the assertions need."""
    pusher = RawPusher.for_registry(registry)
    d: dict[str, Any] = {}
    shared = make_image("shared")
    d["shared"] = pusher.push_image(REPO, shared, tag="release-1").digest
    pusher.push_image(REPO, shared, tag="dev-shared")

    amd64 = make_image("amd64", platform="linux/amd64")
    arm64_kept = make_image("arm64-kept", platform="linux/arm64/v8")
    arm64_old = make_image("arm64-old", platform="linux/arm64/v8")
    d["kept_index"] = pusher.push(REPO, make_index([amd64, arm64_kept]), tag="v1-multi").digest
    d["old_index"] = pusher.push(REPO, make_index([amd64, arm64_old]), tag="dev-multi").digest
    d["amd64"], d["arm64_kept"], d["arm64_old"] = amd64.digest, arm64_kept.digest, arm64_old.digest

    for key, tag in (("signed_kept", "v1"), ("signed_old", "dev-signed")):
        image = pusher.push_image(REPO, make_image(key), tag=tag)
        sbom = make_artifact(image.content, payload=key.encode())
        fallback = pusher.push_referrers(REPO, image.digest, [sbom])
        signature = pusher.push_cosign_signature(REPO, image.content)
        d[key] = {"digest": image.digest, "sbom": sbom.digest, "fallback": fallback.digest,
                  "signature": signature.digest}

    d["epoch"] = pusher.push_image(REPO, make_image("epoch", created="1970-01-01T00:00:00Z"), tag="dev-epoch").digest
    d["nodate"] = pusher.push_image(REPO, make_image("nodate", created=None), tag="dev-nodate").digest
    return d


def without_method(actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Applied actions minus the untag method (check mode cannot learn it without writing)."""
    return [{k: v for k, v in action.items() if k != "method"} for action in actions]


@pytest.mark.parametrize("untag_kept", [False, True], ids=["kept-images-keep-all-tags", "untag_kept_images"])
def test_every_hazard_check_mode_then_real_run_then_rerun(plain_registry: RigRegistry, run_playbook,
                                                          untag_kept: bool) -> None:
    # "A kept image keeps all its tags" is the default (a rollback name survives): dev-shared (on release-1's image) now
    # survives unless untag_kept_images: true, which gives the tag-level retention this test first encoded.
    d = seed_hazards(plain_registry)
    task = prune_task(plain_registry, rules=RULES, **({"untag_kept_images": True} if untag_kept else {}))

    mark = plain_registry.mark()
    checked = run_playbook(tasks=[task], check=True, diff=True)
    assert checked.rc == 0, checked.explain()
    assert plain_registry.writes_since(mark) == []
    dry = checked.task("prune")
    assert dry.changed

    mark = plain_registry.mark()
    real = run_playbook(tasks=[task], diff=True)
    assert real.rc == 0, real.explain()
    done = real.task("prune")
    assert done.changed
    # The dry run's plan is exactly what the real run did.
    assert dry["plan"] == done["plan"] and dry["skipped_items"] == done["skipped_items"]
    assert without_method(dry["applied"]) == without_method(done["applied"])
    assert dry.diff == done.diff
    deletes = [r for r in plain_registry.writes_since(mark) if r.method == "DELETE" and r.status == 202]
    deleted = {a["digest"] for a in done["applied"] if a["action"] == "delete"}
    assert {r.path.rsplit("/", 1)[1] for r in deletes} >= deleted

    old = d["signed_old"]
    assert deleted == {d["old_index"], d["arm64_old"], old["digest"], old["sbom"], old["fallback"], old["signature"]}
    untags = [(a["action"], a["tags"]) for a in done["applied"] if a["action"] == "untag"]
    assert untags == ([("untag", ["dev-shared"])] if untag_kept else [])
    assert done["gc_required"] is True

    # Shared digest: only untagged (opt-in) or kept with all its tags (default); the sibling tag keeps its
    # digest and everything under it.
    puller = RawPuller.for_registry(plain_registry)
    assert head(plain_registry, "dev-shared") == (None if untag_kept else d["shared"])
    if not untag_kept:
        (skip,) = [s for s in done["skipped_items"] if s["reason"] == "kept_image"]
        assert skip["tags"] == ["dev-shared"] and "release-1 keep(s) it" in skip["message"]
    assert puller.pull(REPO, "release-1").digest == d["shared"]
    # Kept index: every child and blob still there; the child it shared with the deleted index too.
    assert puller.pull(REPO, "v1-multi").digest == d["kept_index"]
    assert head(plain_registry, d["arm64_old"]) is None and head(plain_registry, d["amd64"]) == d["amd64"]
    # Referrers and cosign tags follow their subject both ways.
    kept = d["signed_kept"]
    assert head(plain_registry, referrers_tag(kept["digest"])) == kept["fallback"]
    assert head(plain_registry, cosign_tag(kept["digest"])) == kept["signature"]
    assert head(plain_registry, kept["sbom"]) == kept["sbom"]
    for digest in old.values():
        assert head(plain_registry, digest) is None
    assert head(plain_registry, referrers_tag(old["digest"])) is None
    assert head(plain_registry, cosign_tag(old["digest"])) is None
    # Epoch and missing timestamps: unknown age, kept and reported.
    unknown = {s["digest"]: s for s in done["skipped_items"] if s["reason"] == "unknown_age"}
    assert set(unknown) == {d["epoch"], d["nodate"]}
    reasons = {e["digest"]: e["unknown_age_reason"] for e in done["plan"] if e["digest"] in unknown}
    assert reasons == {d["epoch"]: "before_2000", d["nodate"]: "missing"}
    assert head(plain_registry, "dev-epoch") == d["epoch"] and head(plain_registry, "dev-nodate") == d["nodate"]
    # The diff is the tag list per repository, before and after.
    name = f"{plain_registry.host}/{REPO}"
    removed = set(done.diff["before"][name]) - set(done.diff["after"][name])
    assert removed == {"dev-multi", "dev-signed", referrers_tag(old["digest"]),
                       cosign_tag(old["digest"])} | ({"dev-shared"} if untag_kept else set())
    assert sorted(done.diff["after"][name]) == sorted(puller.tags(REPO))

    mark = plain_registry.mark()
    again = run_playbook(tasks=[task])
    assert again.rc == 0, again.explain()
    assert not again.task("prune").changed and again.task("prune")["applied"] == []
    assert plain_registry.writes_since(mark) == []


def test_guardrails_fail_with_nothing_deleted(plain_registry: RigRegistry, run_playbook) -> None:
    pusher = RawPusher.for_registry(plain_registry)
    for n in range(3):
        pusher.push_image(REPO, make_image(f"dev{n}"), tag=f"dev-{n}")
    pusher.push_image(REPO, make_image("dev-epoch", created="1970-01-01T00:00:00Z"), tag="dev-epoch")
    pusher.push_image(REPO, make_image("keep"), tag="release-1")
    # max_delete_ratio and min_keep take the same path (plan violations); test_retention_apply covers it without
    # Ansible, and the planner's unit tests compute each guardrail.
    guarded = [("max_deletions", {"max_deletions": 2}), ("on_unknown_age", {"on_unknown_age": "fail"})]
    tasks = [{**prune_task(plain_registry, name=key, rules=RULES, **options), "ignore_errors": True}
             for key, options in guarded]

    mark = plain_registry.mark()
    result = run_playbook(tasks=tasks)
    assert result.rc == 0, result.explain()
    assert plain_registry.writes_since(mark) == []
    for key, _options in guarded:
        failed = result.task(key)
        assert failed.failed, failed.result
        assert key in failed["msg"] and "nothing was deleted" in failed["msg"]
        assert failed["violations"] and failed["error"]["type"] == "ConflictError"
        assert failed["summary"]["delete"] == 3  # the plan comes back so the user can see what tripped
    assert sorted(RawPuller.for_registry(plain_registry).tags(REPO)) == [
        "dev-0", "dev-1", "dev-2", "dev-epoch", "release-1"]


@pytest.mark.oldest_core
def test_repository_globs_over_the_catalog_with_token_auth(token_registry: RigRegistry, run_playbook) -> None:
    pusher = RawPusher.for_registry(token_registry)
    recent = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for repo in ("team/a", "team/b", "team/skip", "other/c"):
        pusher.push_image(repo, make_image(f"{repo}-old"), tag="dev-old")
        pusher.push_image(repo, make_image(f"{repo}-new", created=recent), tag="dev-new")
    task = prune_task(token_registry, registry=token_registry.host, repositories=["team/*"],
                      exclude_repositories=["team/skip"], match=["dev-.*"], older_than="30d")

    result = run_playbook(tasks=[task])
    assert result.rc == 0, result.explain()
    out = result.task("prune")
    assert out.changed
    assert out["repositories"] == [f"{token_registry.host}/team/a", f"{token_registry.host}/team/b"]
    assert out["policy"]["rules"] == [{"name": "older_than", "action": "delete", "regex": ["dev-.*"],
                                       "older_than": "30d"}]
    puller = RawPuller.for_registry(token_registry)
    for repo, tags in (("team/a", ["dev-new"]), ("team/b", ["dev-new"]),
                       ("team/skip", ["dev-new", "dev-old"]), ("other/c", ["dev-new", "dev-old"])):
        assert sorted(puller.tags(repo)) == tags, repo


def test_bad_rules_fail_cleanly_before_any_request(plain_registry: RigRegistry, run_playbook) -> None:
    bad = prune_task(plain_registry, rules=[{"name": "oops", "action": "delete", "most_recent": 3}])
    mark = plain_registry.mark()
    result = run_playbook(tasks=[{**bad, "ignore_errors": True}])
    assert result.rc == 0, result.explain()
    assert "rule 'oops' (rules[0]): most_recent on a delete rule" in result.task("prune")["msg"]
    assert plain_registry.requests_since(mark) == []


def seed_catalog(registry: RigRegistry, repos: list[str]) -> None:
    """Per repository one old and one recent dev tag, plus a release (kept)."""
    pusher = RawPusher.for_registry(registry)
    recent = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for repo in repos:
        pusher.push_image(repo, make_image(f"{repo}-old"), tag="dev-old")
        pusher.push_image(repo, make_image(f"{repo}-new", created=recent), tag="dev-new")
        pusher.push_image(repo, make_image(f"{repo}-rel"), tag="release-1")


def test_one_failing_repository_does_not_stop_the_others_and_is_named(plain_registry: RigRegistry,
                                                                      run_playbook) -> None:
    # One failing repository must not stop a prune of many. The fault proxy answers 500 to every tag listing of team/broken (Distribution cannot be
    # made to fail one repository's reads); the other repositories must still be planned and applied.
    from tests.rig.fault_proxy import FaultProxy

    repos = ["team/a", "team/b", "team/broken", "team/c"]
    seed_catalog(plain_registry, repos)
    with FaultProxy.for_registry(plain_registry) as proxy:
        proxy.add("500", method="GET", path=r"^/v2/team/broken/tags/list", times=None)
        task = {**prune_task(plain_registry, registry=proxy.host, repositories=["team/*"], match=["dev-.*"],
                             older_than="30d", retries=0), "ignore_errors": True}
        failed = run_playbook(tasks=[task])
        assert failed.rc == 0, failed.explain()
        out = failed.task("prune")
        # failed_repository: fail (the default) fails the task at the end, naming the repository...
        assert out.failed and f"{proxy.host}/team/broken" in out["msg"]
        assert [f["repository"] for f in out["failed_repositories"]] == [f"{proxy.host}/team/broken"]
        assert "500" in out["failed_repositories"][0]["error"]
        assert out["summary"]["failed_repositories"] == 1
        # ...after the others were planned and applied.
        assert sorted({a["repository"] for a in out["applied"]}) == [f"{proxy.host}/team/{r}" for r in "abc"]
        puller = RawPuller.for_registry(plain_registry)
        for repo in ("team/a", "team/b", "team/c"):
            assert sorted(puller.tags(repo)) == ["dev-new", "release-1"], repo
        assert sorted(puller.tags("team/broken")) == ["dev-new", "dev-old", "release-1"]

        # failed_repository: warn: a warning naming it, the task succeeds.
        warn = {**task, "ocireg.registry.registry_prune": {**task["ocireg.registry.registry_prune"],
                                                           "failed_repository": "warn"}}
        warned = run_playbook(tasks=[warn])
        assert warned.rc == 0, warned.explain()
        again = warned.task("prune")
        assert not again.failed and not again.changed
        assert [f["repository"] for f in again["failed_repositories"]] == [f"{proxy.host}/team/broken"]
        assert any("team/broken" in w for w in again.get("warnings", [])), again.get("warnings")


def test_default_plan_holds_the_changes_full_holds_every_entry_and_the_diff_is_exact(
        plain_registry: RigRegistry, run_playbook) -> None:
    seed_catalog(plain_registry, ["team/a", "team/b"])
    nodate = RawPusher.for_registry(plain_registry).push_image(
        "team/a", make_image("nodate", created=None), tag="dev-nodate").digest
    base = prune_task(plain_registry, registry=plain_registry.host, repositories=["team/*"], match=["dev-.*"],
                      older_than="30d")
    full = {**base, "name": "full", "ocireg.registry.registry_prune": {
        **base["ocireg.registry.registry_prune"], "plan_detail": "full"}}
    checked = run_playbook(tasks=[base, full], check=True, diff=True)
    assert checked.rc == 0, checked.explain()
    changes, every = checked.task("prune"), checked.task("full")
    assert changes["plan_detail"] == "changes" and every["plan_detail"] == "full"
    # full: one entry per digest (3 per repository, plus the undated one).
    assert len(every["plan"]) == 7 and every["summary"]["digests"] == 7
    # changes: the deletions, and the kept digest the user must look at (unknown age); no plain keep.
    assert {(e["action"], tuple(e["tags"])) for e in changes["plan"]} == {
        ("delete", ("dev-old",)), ("delete", ("dev-old",)), ("keep", ("dev-nodate",))}
    assert [e for e in every["plan"] if e["action"] != "keep" or e["digest"] == nodate] == changes["plan"]
    assert changes["summary"]["by_repository"] == {
        f"{plain_registry.host}/team/a": {"keep": 3, "delete": 1, "untag": 0, "tags_removed": 1},
        f"{plain_registry.host}/team/b": {"keep": 2, "delete": 1, "untag": 0, "tags_removed": 1}}
    # The diff is exact whatever plan_detail says: every tag before, every tag left after.
    assert changes.diff == every.diff
    for repo in ("team/a", "team/b"):
        name = f"{plain_registry.host}/{repo}"
        before = changes.diff["before"][name]
        assert sorted(before) == sorted(RawPuller.for_registry(plain_registry).tags(repo))
        assert sorted(set(before) - set(changes.diff["after"][name])) == ["dev-old"]
    # Without --diff the result carries no tag maps (they are the bulk of a large result).
    plain = run_playbook(tasks=[base], check=True)
    assert plain.rc == 0, plain.explain()
    assert "diff" not in plain.task("prune").result and plain.task("prune")["plan"] == changes["plan"]


# -- the prune lease is opt-in, set once for the action group -------------------------------------------
def test_a_default_prune_writes_only_its_deletions_and_the_lease_is_set_once_for_the_group(
        plain_registry: RigRegistry, run_playbook) -> None:
    pusher = RawPusher.for_registry(plain_registry)
    old = {n: pusher.push_image(REPO, make_image(f"lease-dev-{n}", created="2020-01-01T00:00:00Z"), tag=f"dev-{n}")
           for n in range(3)}
    keep = pusher.push_image(REPO, make_image("lease-keep"), tag="release-1")
    mark = plain_registry.mark()
    run = run_playbook(tasks=[prune_task(plain_registry, rules=RULES, grace_period="0s")])
    assert not run.task("prune").failed, run.explain()
    # Default: nothing of ours is written, only the DELETEs the plan made, and no tag but the plan's goes.
    assert sorted(r.path.rsplit("/", 1)[1] for r in plain_registry.writes_since(mark)) == sorted(
        i.digest for i in old.values())
    assert [r.method for r in plain_registry.writes_since(mark)] == ["DELETE"] * 3

    # With module_defaults for the group: every module of the group accepts the option (here a reader and a
    # writer besides the prune); the prune writes its lease and removes it after its last DELETE.
    for n in range(2):
        pusher.push_image(REPO, make_image(f"lease-dev2-{n}", created="2020-01-01T00:00:00Z"), tag=f"dev-x{n}")
    group = {"name": "lease", "hosts": "localhost", "gather_facts": False,
             "module_defaults": {"group/ocireg.registry.registry": {"prune_lease": True}},
             "tasks": [
                 {"name": "read", "ocireg.registry.registry_manifest_info": {
                     "reference": f"{plain_registry.host}/{REPO}:release-1"}},
                 {"name": "tag", "register": "out", "ocireg.registry.registry_tag": {
                     "repository": f"{plain_registry.host}/{REPO}", "tags": ["release-2"], "source": ":release-1"}},
                 prune_task(plain_registry, rules=RULES, grace_period="0s")]}
    mark = plain_registry.mark()
    run = run_playbook([group])
    for name in ("read", "tag", "prune"):
        assert not run.task(name).failed, run.explain()
    assert run.task("tag")["restored_after_prune"] == []
    writes = [(r.method, r.path.rsplit("/", 1)[1]) for r in plain_registry.writes_since(mark)]
    leases = [ref for method, ref in writes if method == "PUT" and is_lease_tag(ref)]
    assert len(leases) == 1, writes
    assert not [t for t in RawPuller.for_registry(plain_registry).tags(REPO) if is_lease_tag(t)]
    assert head(plain_registry, "release-2") == keep.digest
