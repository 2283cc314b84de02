"""Retention's reads and writes (_ops/retention/snapshot.py, apply.py) against a real Distribution 2.8: collect_snapshot and apply_plan.

Images are seeded and checked with the rig's raw clients (tests/rig/images.py),
never with our own client. Each race test plans, then changes the repository
with the raw pusher, then applies: the deletion the change makes unsafe must
be skipped as ``changed_since_plan`` while the rest of the plan goes ahead.
Write requests are counted in the registry's access log.
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any, Iterator

import pytest
import requests

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import ConflictError, UnsupportedError
from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import Registry, Repository
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.apply import ApplyError, apply_plan
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.verdicts import CHANGED_SINCE_PLAN, deletion_groups
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.snapshot import collect_snapshot
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.plan import (
    PlanEntry,
    RetentionPlan,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.policy import build_policy
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.plan import plan_retention
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.core import TransportOptions
from tests.rig.flavours import RigRegistry
from tests.rig.images import (
    RawPuller,
    RawPusher,
    cosign_tag,
    make_artifact,
    make_image,
    make_index,
    make_multiarch,
    make_referrers_index,
)

REPO = "team/app"
# These tests exercise apply's mechanics (race checks, untag methods, deletion order) on small
# repositories that the plans empty, so they opt in to both safe defaults they would otherwise trip:
# the emptying guardrail (tests/integration/test_safe_defaults.py covers it) and keep-whole-images.
DEV_OLD = {"rules": [{"name": "old-dev", "action": "delete", "prefix": ["dev-"], "older_than": "30d"}],
           "allow_empty_repository": True, "untag_kept_images": True}


def client(reg: RigRegistry) -> Repository:
    """Our client for the rig registry's test repository."""
    return Registry(reg.host, TransportOptions(sleep=lambda _s: None)).repository(REPO)


def plan_for(reg: RigRegistry, params: dict[str, Any]):
    """Collect ``REPO`` and plan it with ``params`` (now = the real clock)."""
    repo = client(reg)
    snapshot = collect_snapshot(repo)
    return repo, plan_retention(snapshot, build_policy(params), datetime.now(timezone.utc))


def exists(reg: RigRegistry, reference: str) -> bool:
    return head(reg, reference) is not None


def head(reg: RigRegistry, tag: str) -> str | None:
    return RawPuller.for_registry(reg).digest_of(REPO, tag)


def by_reason(result, reason: str) -> set[str]:
    return {s["digest"] for s in result.skipped if s["reason"] == reason}


def deleted(result) -> list[str]:
    return [a["digest"] for a in result.applied if a["action"] == "delete"]


# -- collect_snapshot ---------------------------------------------------------------------------------


def test_collect_snapshot_reads_tags_children_configs_and_referrers(plain_registry: RigRegistry) -> None:
    pusher = RawPusher.for_registry(plain_registry)
    image = pusher.push_image(REPO, make_image("v1", created="2025-02-03T04:05:06Z",
                                               labels={"quay.expires-after": "2w"}), tag="v1")
    multi = pusher.push(REPO, make_multiarch("multi", created="2025-01-01T00:00:00Z"), tag="multi")
    sbom = make_artifact(image.content)
    pusher.push_referrers(REPO, image.digest, [sbom])
    signature = pusher.push_cosign_signature(REPO, image.content)

    mark = plain_registry.mark()
    snapshot = collect_snapshot(client(plain_registry))
    sent = plain_registry.requests_since(mark)

    assert snapshot.repository == f"{plain_registry.host}/{REPO}"
    assert snapshot.tags["v1"] == image.digest and snapshot.tags["multi"] == multi.digest
    assert snapshot.tags[cosign_tag(image.digest)] == signature.digest
    v1 = snapshot.manifests[image.digest]
    assert (v1.created, v1.labels) == ("2025-02-03T04:05:06Z", {"quay.expires-after": "2w"})
    index = snapshot.manifests[multi.digest]
    assert index.children == tuple(c.digest for c in multi.children) and index.is_index
    for child in multi.children:  # children are read, with their configs (an index takes their time)
        assert snapshot.manifests[child.digest].created == "2025-01-01T00:00:00Z"
    assert snapshot.referrers == {image.digest: [sbom.digest]}
    assert snapshot.manifests[sbom.digest].subject == image.digest
    # Cosign artifacts follow their subject: their (epoch) config is never fetched.
    assert snapshot.manifests[signature.digest].created is None
    assert not [r for r in sent if signature.content.config.digest in r.path]
    # One referrers API probe (404 on 2.8); afterwards the fallback tags already read answer.
    assert len([r for r in sent if "/referrers/" in r.path]) == 1
    assert not [r for r in sent if r.method not in ("GET", "HEAD")]


def test_collect_snapshot_of_a_missing_repository_is_empty(plain_registry: RigRegistry) -> None:
    snapshot = collect_snapshot(client(plain_registry))
    assert (snapshot.tags, snapshot.manifests, snapshot.exists) == ({}, {}, False)


# -- guardrails and check mode ----------------------------------------------------------------------------


@pytest.mark.parametrize("guard", [
    {"max_deletions": 2}, {"max_delete_ratio": 0.5}, {"min_keep": 2}, {"on_unknown_age": "fail"},
], ids=lambda guard: next(iter(guard)))
def test_guardrail_refuses_before_any_request(plain_registry: RigRegistry, guard: dict[str, Any]) -> None:
    pusher = RawPusher.for_registry(plain_registry)
    for n in range(3):
        pusher.push_image(REPO, make_image(f"dev{n}"), tag=f"dev-{n}")
    pusher.push_image(REPO, make_image("epoch", created="1970-01-01T00:00:00Z"), tag="dev-epoch")
    repo, plan = plan_for(plain_registry, {**DEV_OLD, **guard})
    assert len(plan.deletions) == 3 and len(plan.violations) == 1

    mark = plain_registry.mark()
    for check_mode in (False, True):
        with pytest.raises(ConflictError, match=next(iter(guard))) as raised:
            apply_plan(repo, plan, check_mode=check_mode)
        assert raised.value.detail == {"violations": list(plan.violations)}
    assert plain_registry.requests_since(mark) == []
    assert sorted(RawPuller.for_registry(plain_registry).tags(REPO)) == ["dev-0", "dev-1", "dev-2", "dev-epoch"]


def test_check_mode_walks_the_same_path_without_writing(plain_registry: RigRegistry) -> None:
    pusher = RawPusher.for_registry(plain_registry)
    shared = make_image("shared")
    pusher.push_image(REPO, shared, tag="dev-shared")
    pusher.push_image(REPO, shared, tag="release")
    pusher.push_image(REPO, make_image("gone"), tag="dev-gone")
    repo, plan = plan_for(plain_registry, DEV_OLD)

    mark = plain_registry.mark()
    checked = apply_plan(repo, plan, check_mode=True)
    assert plain_registry.writes_since(mark) == []
    applied = apply_plan(repo, plan, check_mode=False)

    def strip(actions):
        return [{k: v for k, v in a.items() if k != "method"} for a in actions]

    assert strip(checked.applied) == strip(applied.applied)
    assert [(a["action"], a["tags"]) for a in applied.applied] == [("delete", ["dev-gone"]), ("untag", ["dev-shared"])]
    assert applied.applied[1]["method"] == "dummy_manifest" and checked.applied[1]["method"] == "auto"
    # What registry_prune.md says: a deletion is manifest_delete in check mode too.
    assert applied.applied[0]["method"] == checked.applied[0]["method"] == "manifest_delete"
    assert sorted(RawPuller.for_registry(plain_registry).tags(REPO)) == ["release"]
    assert head(plain_registry, "release") == shared.digest  # the sibling tag keeps its digest


# -- race safety -------------------------------------------------------------------------------------------


def test_condemned_tag_moved_to_a_new_image_keeps_the_new_image(plain_registry: RigRegistry) -> None:
    """A tag the plan removes is rebuilt between plan and apply: the rebuild survives.

    The apply step does not read a condemned tag again (its DELETE would take it anyway, and a
    HEAD per condemned tag would double a prune's reads): the old digest, which the plan deletes
    and nothing points at any more, goes; the tag and its new image stay.
    """
    pusher = RawPusher.for_registry(plain_registry)
    first = pusher.push_image(REPO, make_image("first"), tag="dev-1")
    second = pusher.push_image(REPO, make_image("second"), tag="dev-2")
    repo, plan = plan_for(plain_registry, DEV_OLD)
    assert {e.digest for e in plan.deletions} == {first.digest, second.digest}

    moved = pusher.push_image(REPO, make_image("rebuilt", created=datetime.now(timezone.utc).isoformat()), tag="dev-1")
    result = apply_plan(repo, plan, check_mode=False)

    assert sorted(deleted(result)) == sorted([first.digest, second.digest])
    assert head(plain_registry, "dev-1") == moved.digest
    assert RawPuller.for_registry(plain_registry).pull(REPO, "dev-1").digest == moved.digest
    assert not exists(plain_registry, first.digest) and not exists(plain_registry, second.digest)


def two_doomed_groups(registry: RigRegistry, seed: str) -> tuple[Repository, Any, list[str], dict[str, str]]:
    """dev-1 and dev-2 (two deletion groups) and a kept image; (repo, plan, group order, tag -> digest)."""
    pusher = RawPusher.for_registry(registry)
    tags = {tag: pusher.push_image(REPO, make_image(f"{seed}-{tag}"), tag=tag).digest for tag in ("dev-1", "dev-2")}
    pusher.push_image(REPO, make_image(f"{seed}-keep"), tag="keep")
    repo, plan = plan_for(registry, DEV_OLD)
    order = [g[0].digest for g in deletion_groups(plan.entries)]
    assert sorted(order) == sorted(tags.values())
    return repo, plan, order, tags


def test_condemned_tag_removed_between_plan_and_apply_blocks_its_group(plain_registry: RigRegistry) -> None:
    """A tag of a later group that is gone from the tag list since the plan: that group is left alone."""
    pusher = RawPusher.for_registry(plain_registry)
    repo, plan, groups, tags = two_doomed_groups(plain_registry, "removed")
    later = groups[1]
    later_tag = next(tag for tag, digest in tags.items() if digest == later)
    real_delete = repo.delete_manifest

    def delete_then_untag(digest: str, **kwargs: Any) -> Any:
        outcome = real_delete(digest, **kwargs)
        if digest == groups[0]:  # someone removes the later group's tag (re-pushes it as something else, then deletes that)
            replaced = pusher.push_image(REPO, make_image("placeholder"), tag=later_tag)
            gone = requests.delete(f"{plain_registry.url}/v2/{REPO}/manifests/{replaced.digest}", timeout=30)
            assert gone.status_code == 202, gone.text
        return outcome

    repo.delete_manifest = delete_then_untag  # type: ignore[method-assign]
    result = apply_plan(repo, plan, check_mode=False)
    assert deleted(result) == [groups[0]]
    assert by_reason(result, CHANGED_SINCE_PLAN) == {later}
    assert exists(plain_registry, later)


def test_kept_tag_moved_onto_a_condemned_digest_blocks_its_deletion(plain_registry: RigRegistry) -> None:
    pusher = RawPusher.for_registry(plain_registry)
    old = pusher.push_image(REPO, make_image("old"), tag="dev-old")
    pusher.push_image(REPO, make_image("current"), tag="prod")
    repo, plan = plan_for(plain_registry, DEV_OLD)
    assert [e.digest for e in plan.deletions] == [old.digest]

    pusher.push_manifest(REPO, "prod", old.manifest, old.media_type)  # a rollback lands on the old image
    mark = plain_registry.mark()
    result = apply_plan(repo, plan, check_mode=False)

    assert result.applied == [] and by_reason(result, CHANGED_SINCE_PLAN) == {old.digest}
    assert plain_registry.writes_since(mark) == []
    assert head(plain_registry, "prod") == old.digest == head(plain_registry, "dev-old")


def test_new_index_referencing_a_condemned_child_blocks_the_whole_group(plain_registry: RigRegistry) -> None:
    pusher = RawPusher.for_registry(plain_registry)
    multi = make_multiarch("old-multi")
    pushed = pusher.push(REPO, multi, tag="dev-multi")
    other = pusher.push_image(REPO, make_image("other"), tag="dev-other")
    repo, plan = plan_for(plain_registry, DEV_OLD)
    group = {pushed.digest, *(c.digest for c in pushed.children)}
    assert {e.digest for e in plan.deletions} == group | {other.digest}

    # Someone builds a new index that reuses one platform image of the condemned one.
    fresh = make_index([multi.children[0], make_image("fresh-arm", platform="linux/arm64/v8")])
    pusher.push(REPO, fresh, tag="next")
    result = apply_plan(repo, plan, check_mode=False)

    assert deleted(result) == [other.digest]
    assert by_reason(result, CHANGED_SINCE_PLAN) == group
    puller = RawPuller.for_registry(plain_registry)
    assert puller.pull(REPO, "next").digest == fresh.digest  # every child and blob still there


def test_new_cosign_signature_of_a_condemned_subject_blocks_it(plain_registry: RigRegistry) -> None:
    pusher = RawPusher.for_registry(plain_registry)
    old = pusher.push_image(REPO, make_image("signed-late"), tag="dev-x")
    repo, plan = plan_for(plain_registry, DEV_OLD)
    pusher.push_cosign_signature(REPO, old.content)
    result = apply_plan(repo, plan, check_mode=False)
    assert result.applied == [] and by_reason(result, CHANGED_SINCE_PLAN) == {old.digest}
    assert exists(plain_registry, "dev-x")


def test_untag_skips_a_tag_that_moved(plain_registry: RigRegistry) -> None:
    pusher = RawPusher.for_registry(plain_registry)
    shared = make_image("both")
    pusher.push_image(REPO, shared, tag="dev-a")
    pusher.push_image(REPO, shared, tag="dev-b")
    pusher.push_image(REPO, shared, tag="stable")
    repo, plan = plan_for(plain_registry, DEV_OLD)
    assert [e.untag_tags for e in plan.untags] == [("dev-a", "dev-b")]

    moved = pusher.push_image(REPO, make_image("new-b"), tag="dev-b")
    result = apply_plan(repo, plan, check_mode=False)

    assert [(a["action"], a["tags"]) for a in result.applied] == [("untag", ["dev-a"])]
    assert [(s["tags"], s["reason"]) for s in result.skipped] == [(["dev-b"], CHANGED_SINCE_PLAN)]
    assert head(plain_registry, "dev-b") == moved.digest and head(plain_registry, "stable") == shared.digest
    assert head(plain_registry, "dev-a") is None


# -- deletion order --------------------------------------------------------------------------------------


def test_cascade_is_deleted_parents_first_and_referrers_before_their_subject(plain_registry: RigRegistry) -> None:
    pusher = RawPusher.for_registry(plain_registry)
    multi = pusher.push(REPO, make_multiarch("doomed"), tag="dev-multi")
    sbom = make_artifact(multi.content)
    fallback = pusher.push_referrers(REPO, multi.digest, [sbom])
    signature = pusher.push_cosign_signature(REPO, multi.content)
    repo, plan = plan_for(plain_registry, DEV_OLD)

    mark = plain_registry.mark()
    result = apply_plan(repo, plan, check_mode=False)

    order = deleted(result)
    writes = plain_registry.writes_since(mark)
    logged = [r.path.rsplit("/", 1)[1] for r in writes if r.method == "DELETE"]
    # Exactly the planned deletes, in order, and nothing written besides: the prune lease is opt-in.
    assert logged == order
    assert [r for r in writes if r.method != "DELETE"] == []
    children = [c.digest for c in multi.children]
    assert set(order) == {multi.digest, sbom.digest, fallback.digest, signature.digest, *children}
    position = {digest: i for i, digest in enumerate(order)}
    assert all(position[multi.digest] < position[c] for c in children)  # index before children
    assert position[fallback.digest] < position[sbom.digest] < position[multi.digest]
    assert position[signature.digest] < position[multi.digest]
    assert RawPuller.for_registry(plain_registry).tags(REPO) == []


def test_referrer_leaving_a_fallback_index_that_stays_is_removed_from_it(plain_registry: RigRegistry) -> None:
    """A hand-made plan (the planner itself always deletes the index with its subject) exercises the update."""
    pusher = RawPusher.for_registry(plain_registry)
    image = pusher.push_image(REPO, make_image("subject"), tag="v1")
    keep = make_artifact(image.content, payload=b"keep")
    drop = make_artifact(image.content, payload=b"drop")
    fallback_tag = pusher.push_referrers(REPO, image.digest, [keep, drop]).reference
    name = f"{plain_registry.host}/{REPO}"
    plan = RetentionPlan(
        entries=(PlanEntry(name, drop.digest, drop.media_type, (), "delete", delete_method="manifest_delete",
                           fallback_index=fallback_tag),),
        skipped=(), summary={}, gc_required=True,
        tags_before={name: {"v1": image.digest, fallback_tag: head(plain_registry, fallback_tag)}},
        tags_after={}, violations=())

    result = apply_plan(client(plain_registry), plan, check_mode=False)

    assert result.applied[0]["fallback_index_updated"] == fallback_tag
    raw, _media_type, _digest = RawPuller.for_registry(plain_registry).manifest(REPO, fallback_tag)
    assert json.loads(raw)["manifests"] == json.loads(make_referrers_index([keep]).raw)["manifests"]
    assert not exists(plain_registry, drop.digest) and exists(plain_registry, keep.digest)


# -- an OCI 1.1 registry (fake) --------------------------------------------------------------------------


class Oci11Fake:
    """A tiny in-memory registry with what Distribution 2.8 lacks: the referrers API and tag DELETE.

    Why a fake: the real rig registry has neither, and on a registry with the
    referrers API, referrers are untagged manifests only that API reveals.
    Only what retention uses is served: tag list, manifests (HEAD / GET /
    DELETE by tag or digest), blobs (GET), referrers.
    """

    def __init__(self) -> None:
        self.manifests: dict[str, tuple[bytes, str]] = {}
        self.blobs: dict[str, bytes] = {}
        self.tags: dict[str, str] = {}
        self.requests: list[tuple[str, str]] = []

    def add(self, content, tag: str | None = None) -> str:
        for blob in content.blobs():
            self.blobs[blob.digest] = blob.data
        self.manifests[content.digest] = (content.data, content.media_type)
        if tag:
            self.tags[tag] = content.digest
        return content.digest

    def handle(self, request):
        from werkzeug import Response

        self.requests.append((request.method, request.path))
        prefix = f"/v2/{REPO}/"
        if request.path == "/v2/":
            return Response("{}", 200)
        kind, _sep, ref = request.path[len(prefix):].partition("/")
        if kind == "tags":
            return Response(json.dumps({"name": REPO, "tags": sorted(self.tags)}), 200,
                            content_type="application/json")
        if kind == "blobs" and ref in self.blobs:
            return Response(self.blobs[ref], 200, content_type="application/octet-stream")
        if kind == "referrers":
            found = []
            for digest, (raw, media_type) in sorted(self.manifests.items()):
                doc = json.loads(raw)
                if doc.get("subject", {}).get("digest") == ref:
                    found.append({"mediaType": media_type, "digest": digest, "size": len(raw),
                                  "artifactType": doc.get("artifactType") or doc["config"]["mediaType"]})
            return Response(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                                        "manifests": found}), 200,
                            content_type="application/vnd.oci.image.index.v1+json")
        if kind == "manifests":
            digest = ref if ":" in ref else self.tags.get(ref)
            if digest not in self.manifests:
                return Response('{"errors":[{"code":"MANIFEST_UNKNOWN"}]}', 404, content_type="application/json")
            if request.method == "DELETE":
                if ":" in ref:
                    del self.manifests[ref]
                    self.tags = {t: d for t, d in self.tags.items() if d != ref}
                else:
                    del self.tags[ref]
                return Response("", 202)
            raw, media_type = self.manifests[digest]
            return Response(raw, 200, content_type=media_type, headers={"Docker-Content-Digest": digest})
        return Response('{"errors":[{"code":"NAME_UNKNOWN"}]}', 404, content_type="application/json")


def test_referrers_api_and_tag_delete_on_an_oci_1_1_registry(httpserver) -> None:
    fake = Oci11Fake()
    httpserver.expect_request(re.compile(r"^/v2/.*")).respond_with_handler(fake.handle)
    kept = make_image("api-kept")
    fake.add(kept, "v1")
    kept_sbom = fake.add(make_artifact(kept, payload=b"kept"))
    old = make_image("api-old")
    fake.add(old, "dev-old")
    old_sbom = fake.add(make_artifact(old, payload=b"old"))
    shared = make_image("api-shared")
    fake.add(shared, "dev-shared")
    fake.tags["release"] = shared.digest

    repo = Registry(f"{httpserver.host}:{httpserver.port}", TransportOptions(sleep=lambda _s: None)).repository(REPO)
    snapshot = collect_snapshot(repo)
    assert snapshot.referrers == {kept.digest: [kept_sbom], old.digest: [old_sbom]}
    plan = plan_retention(snapshot, build_policy(DEV_OLD), datetime.now(timezone.utc))
    assert {e.digest for e in plan.deletions} == {old.digest, old_sbom}

    result = apply_plan(repo, plan, check_mode=False)

    assert [(a["action"], a["digest"], a["method"]) for a in result.applied] == [
        ("delete", old_sbom, "manifest_delete"), ("delete", old.digest, "manifest_delete"),
        ("untag", shared.digest, "tag_delete")]
    assert set(fake.manifests) == {kept.digest, kept_sbom, shared.digest}
    assert fake.tags == {"v1": kept.digest, "release": shared.digest}
    assert not [path for _method, path in fake.requests if "/manifests/sha256-" in path]  # no fallback tags needed


@pytest.fixture
def no_delete_registry() -> Iterator[RigRegistry]:
    """A rig registry with storage.delete.enabled false (the rig enables deletes by default)."""
    server = RigRegistry()
    server.config["storage"]["delete"] = {"enabled": False}
    with server:
        yield server


def test_registry_refusing_deletes(no_delete_registry: RigRegistry) -> None:
    """Distribution with storage.delete.enabled false: deletions fail the run, untags leave the tag as it was."""
    server = no_delete_registry
    pusher = RawPusher.for_registry(server)
    shared = make_image("no-delete")
    pusher.push_image(REPO, shared, tag="dev-shared")
    pusher.push_image(REPO, shared, tag="release")
    repo, plan = plan_for(server, DEV_OLD)
    assert [e.untag_tags for e in plan.untags] == [("dev-shared",)] and not plan.deletions

    result = apply_plan(repo, plan, check_mode=False)

    assert result.applied == []
    (skip,) = result.skipped
    assert skip["reason"] == "tag_delete_unsupported" and "still points at" in skip["message"]
    # The placeholder the dummy-manifest method pushed could not be deleted; the tag is back on its image.
    assert head(server, "dev-shared") == shared.digest == head(server, "release")

    doomed = pusher.push_image(REPO, make_image("doomed"), tag="dev-doomed")
    repo, plan = plan_for(server, DEV_OLD)
    with pytest.raises(ApplyError, match="storage.delete.enabled") as raised:
        apply_plan(repo, plan, check_mode=False)
    assert raised.value.result.applied == [] and isinstance(raised.value.cause, UnsupportedError)
    assert head(server, "dev-doomed") == doomed.digest


def test_a_deletion_already_gone_counts_as_removed_and_says_so(plain_registry: RigRegistry) -> None:
    """The second DELETE finds its manifest deleted out of band (404): removed, reported as already gone."""
    repo, plan, order, tags = two_doomed_groups(plain_registry, "gone")
    real_delete = repo.delete_manifest

    def someone_else_deletes_it_first(digest: str, **kwargs: Any) -> Any:
        if digest == order[1]:  # another prune (or a person) deletes it by digest in the last round trip
            gone = requests.delete(f"{plain_registry.url}/v2/{REPO}/manifests/{digest}", timeout=30)
            assert gone.status_code == 202, gone.text
        return real_delete(digest, **kwargs)

    repo.delete_manifest = someone_else_deletes_it_first  # type: ignore[method-assign]
    result = apply_plan(repo, plan, check_mode=False)
    assert [(a["digest"], a["already_gone"]) for a in result.applied] == [(order[0], False), (order[1], True)]
    assert result.skipped == []
    assert not any(exists(plain_registry, digest) for digest in tags.values())
