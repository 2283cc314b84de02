"""registry_tag through real ``ansible-playbook`` runs against real Distribution 2.8 registries.

Images are seeded with the rig's raw pusher (tests/rig/images.py), never with
our own client, and checked with the rig's raw puller and ``skopeo``. Write
requests are counted in the registry's access log.
"""
from __future__ import annotations

import hashlib
import json
import re
import subprocess
from typing import Any

import pytest
from werkzeug.wrappers import Response

from tests.rig.flavours import RigRegistry
from tests.rig.images import RawPuller, RawPusher, make_image, make_multiarch
from tests.rig.tools import require_tool

REPO = "team/app"


def tag_task(registry: RigRegistry, name: str = "promote", repository: str = REPO, **options: Any) -> dict[str, Any]:
    """One registry_tag task on ``registry`` (plain HTTP is the default for 127.0.0.1)."""
    return {"name": name, "ocireg.registry.registry_tag": {"repository": f"{registry.host}/{repository}", **options},
            "register": "out"}


def skopeo_digest(registry: RigRegistry, repository: str, tag: str) -> str:
    """sha256 of the manifest bytes skopeo reads for ``repository:tag`` (a third party's view)."""
    proc = subprocess.run([require_tool("skopeo"), "inspect", "--raw", "--tls-verify=false", registry.docker_ref(repository, tag)],
                          capture_output=True, check=True)
    return "sha256:" + hashlib.sha256(proc.stdout).hexdigest()


def digest_of(registry: RigRegistry, repository: str, tag: str) -> str | None:
    """What the tag points to, read with raw HTTP; None when the tag does not exist."""
    return RawPuller.for_registry(registry).digest_of(repository, tag)


@pytest.fixture
def staged(plain_registry: RigRegistry) -> dict[str, str]:
    """team/app with staging -> image A and prod -> image B; returns their digests."""
    pusher = RawPusher.for_registry(plain_registry)
    a = pusher.push_image(REPO, make_image("a"), tag="staging")
    b = pusher.push_image(REPO, make_image("b"), tag="prod")
    return {"a": a.digest, "b": b.digest}


# -- present, same repository ----------------------------------------------------------------
@pytest.mark.oldest_core
def test_check_diff_apply_then_rerun(plain_registry: RigRegistry, staged: dict[str, str], run_playbook) -> None:
    task = tag_task(plain_registry, source=":staging", tags=["prod", "stable"])

    mark = plain_registry.mark()
    checked = run_playbook(tasks=[task], check=True, diff=True)
    assert checked.rc == 0, checked.explain()
    assert plain_registry.writes_since(mark) == []
    result = checked.task("promote")
    assert result.changed
    assert result.diff["before"] == {"prod": staged["b"], "stable": "absent"}
    assert result.diff["after"] == {"prod": staged["a"], "stable": staged["a"]}
    assert staged["b"] in checked.stdout and staged["a"] in checked.stdout  # --diff printed digests
    assert result["tags"]["prod"] == {"before": staged["b"], "after": staged["a"], "action": "move",
                                      "sibling": False, "method": None}
    assert result["digest"] == staged["a"]
    assert digest_of(plain_registry, REPO, "prod") == staged["b"]

    mark = plain_registry.mark()
    applied = run_playbook(tasks=[task], diff=True)
    assert applied.rc == 0, applied.explain()
    assert applied.task("promote").changed
    assert applied.task("promote")["tags"] == result["tags"]  # check mode predicted exactly this
    writes = plain_registry.writes_since(mark)
    assert sorted((w.method, w.path) for w in writes) == [
        ("PUT", f"/v2/{REPO}/manifests/prod"), ("PUT", f"/v2/{REPO}/manifests/stable")]
    assert digest_of(plain_registry, REPO, "prod") == staged["a"]
    assert digest_of(plain_registry, REPO, "stable") == staged["a"]

    mark = plain_registry.mark()
    again = run_playbook(tasks=[task])
    assert again.rc == 0, again.explain()
    assert not again.task("promote").changed
    assert plain_registry.writes_since(mark) == []


def test_same_repository_promotion_is_byte_exact(plain_registry: RigRegistry, staged: dict[str, str],
                                                 run_playbook) -> None:
    run = run_playbook(tasks=[tag_task(plain_registry, source=f"@{staged['a']}", tags=["prod"])])
    assert run.rc == 0, run.explain()
    assert skopeo_digest(plain_registry, REPO, "prod") == staged["a"]


def test_multiarch_index_keeps_its_digest(plain_registry: RigRegistry, run_playbook) -> None:
    index = RawPusher.for_registry(plain_registry).push(REPO, make_multiarch("multi"), tag="staging")
    run = run_playbook(tasks=[tag_task(plain_registry, source=":staging", tags=["prod"])])
    assert run.rc == 0, run.explain()
    assert run.task("promote")["digest"] == index.digest
    assert skopeo_digest(plain_registry, REPO, "prod") == index.digest


# -- the compare-and-swap guard ------------------------------------------------------------
def test_stale_expected_digest_blocks_and_changes_nothing(plain_registry: RigRegistry, staged: dict[str, str],
                                                          run_playbook) -> None:
    stale = make_image("c").digest  # prod was read as C, but B is there now
    mark = plain_registry.mark()
    run = run_playbook(tasks=[tag_task(plain_registry, source=":staging", tags=["new", "prod"],
                                       expected_digest=stale)])
    assert run.rc != 0
    failed = run.task("promote")
    assert failed.failed
    assert staged["b"] in failed["msg"] and stale in failed["msg"] and "'prod'" in failed["msg"]
    assert "nothing was changed" in failed["msg"]
    assert failed["tags"]["prod"]["after"] == staged["b"]
    assert plain_registry.writes_since(mark) == []
    assert digest_of(plain_registry, REPO, "prod") == staged["b"]
    assert digest_of(plain_registry, REPO, "new") is None


def test_matching_expected_digest_promotes(plain_registry: RigRegistry, staged: dict[str, str],
                                           run_playbook) -> None:
    run = run_playbook(tasks=[
        tag_task(plain_registry, "swap", source=":staging", tags=["prod"], expected_digest=staged["b"]),
        tag_task(plain_registry, "create", source=":prod", tags=["fresh"], expected_digest="absent"),
        tag_task(plain_registry, "rerun", source=":staging", tags=["prod"], expected_digest=staged["b"]),
    ])
    assert run.rc == 0, run.explain()
    assert run.task("swap").changed and run.task("create").changed
    assert not run.task("rerun").changed  # finished promotion: old guard, nothing to do
    assert digest_of(plain_registry, REPO, "prod") == staged["a"]
    assert digest_of(plain_registry, REPO, "fresh") == staged["a"]


def test_expected_digest_per_tag_moves_one_tag_and_creates_another(plain_registry: RigRegistry,
                                                                   staged: dict[str, str], run_playbook) -> None:
    """The documented example: a mapping guards prod by its digest and the new tag by absent, in one task."""
    run = run_playbook(tasks=[tag_task(plain_registry, source=":staging", tags=["prod", "1.4.0"],
                                       expected_digest={"prod": staged["b"], "1.4.0": "absent"})])
    assert run.rc == 0, run.explain()
    result = run.task("promote")
    assert result.changed and result["tags"]["prod"]["action"] == "move" and result["tags"]["1.4.0"]["action"] == "create"
    assert digest_of(plain_registry, REPO, "prod") == staged["a"]
    assert digest_of(plain_registry, REPO, "1.4.0") == staged["a"]


def test_expected_digest_absent_refuses_to_overwrite(plain_registry: RigRegistry, staged: dict[str, str],
                                                     run_playbook) -> None:
    run = run_playbook(tasks=[tag_task(plain_registry, source=":staging", tags=["prod"], expected_digest="absent")])
    assert run.rc != 0
    assert "expected_digest is absent" in run.task("promote")["msg"] and staged["b"] in run.task("promote")["msg"]
    assert digest_of(plain_registry, REPO, "prod") == staged["b"]


def test_missing_source_fails_cleanly(plain_registry: RigRegistry, staged: dict[str, str], run_playbook) -> None:
    mark = plain_registry.mark()
    run = run_playbook(tasks=[tag_task(plain_registry, source=":nope", tags=["prod"])])
    assert run.rc != 0
    assert "does not exist" in run.task("promote")["msg"] and "nope" in run.task("promote")["msg"]
    assert plain_registry.writes_since(mark) == []


# -- absent --------------------------------------------------------------------------------
def test_untag_on_distribution_keeps_sibling_tags(plain_registry: RigRegistry, staged: dict[str, str],
                                                  run_playbook) -> None:
    """Distribution 2.8 has no tag DELETE: the dummy-manifest untag must leave 'staging' on A."""
    RawPusher.for_registry(plain_registry).push_image(REPO, make_image("a"), tag="old")  # old and staging share A
    task = tag_task(plain_registry, tags=["old", "never-existed"], state="absent")

    mark = plain_registry.mark()
    checked = run_playbook(tasks=[task], check=True, diff=True)
    assert checked.rc == 0, checked.explain()
    assert plain_registry.writes_since(mark) == []
    assert checked.task("promote").changed
    assert checked.task("promote")["method"] is None  # unknown until a DELETE is tried
    assert checked.task("promote").diff["after"] == {"old": "absent", "never-existed": "absent"}

    run = run_playbook(tasks=[task])
    assert run.rc == 0, run.explain()
    result = run.task("promote")
    assert result.changed and result["method"] == "dummy_manifest"
    assert result["tags"]["old"]["method"] == "dummy_manifest"
    assert result["digest"] is None and result["deleted"] == []
    assert digest_of(plain_registry, REPO, "old") is None
    assert skopeo_digest(plain_registry, REPO, "staging") == staged["a"]
    assert RawPuller.for_registry(plain_registry).pull(REPO, staged["a"]).digest == staged["a"]
    assert sorted(RawPuller.for_registry(plain_registry).tags(REPO)) == ["prod", "staging"]

    mark = plain_registry.mark()
    again = run_playbook(tasks=[task])
    assert again.rc == 0 and not again.task("promote").changed
    assert plain_registry.writes_since(mark) == []


def test_the_refused_tag_delete_is_sent_once_per_registry(plain_registry: RigRegistry, staged: dict[str, str],
                                                          run_playbook) -> None:
    """Distribution 2.8 answers DELETE by tag with 400: learnt on the first tag, the second goes straight to the
    placeholder, whose empty blob is looked for once."""
    pusher = RawPusher.for_registry(plain_registry)
    for tag in ("old1", "old2"):
        pusher.push_image(REPO, make_image("a"), tag=tag)  # both share A with staging
    mark = plain_registry.mark()
    run = run_playbook(tasks=[tag_task(plain_registry, tags=["old1", "old2"], state="absent")])
    assert run.rc == 0, run.explain()
    result = run.task("promote")
    assert result["method"] == "dummy_manifest"
    assert {tag: result["tags"][tag]["method"] for tag in ("old1", "old2")} == {"old1": "dummy_manifest",
                                                                                "old2": "dummy_manifest"}
    sent = plain_registry.requests_since(mark)
    by_tag = [(r.method, r.path, r.status) for r in sent if r.method == "DELETE" and not r.path.split("/")[-1]
              .startswith("sha256:")]
    assert by_tag == [("DELETE", f"/v2/{REPO}/manifests/old1", 400)]
    assert len([r for r in sent if r.method == "HEAD" and "/blobs/" in r.path]) == 1
    placeholders = [r for r in sent if r.method == "PUT" and r.path.startswith(f"/v2/{REPO}/manifests/")]
    assert [r.path.split("/")[-1] for r in placeholders] == ["old1", "old2"]
    assert len([r for r in sent if r.method == "DELETE" and "/manifests/sha256:" in r.path]) == 2
    assert digest_of(plain_registry, REPO, "old1") is None and digest_of(plain_registry, REPO, "old2") is None
    assert digest_of(plain_registry, REPO, "staging") == staged["a"]


def test_delete_manifest_refuses_without_force_when_other_tags_share_it(
        plain_registry: RigRegistry, staged: dict[str, str], run_playbook) -> None:
    RawPusher.for_registry(plain_registry).push_image(REPO, make_image("a"), tag="old")  # old, staging -> A
    mark = plain_registry.mark()
    run = run_playbook(tasks=[tag_task(plain_registry, tags=["old"], state="absent", delete_manifest=True)])
    assert run.rc != 0
    message = run.task("promote")["msg"]
    assert staged["a"] in message and "staging" in message and "force" in message
    assert plain_registry.writes_since(mark) == []
    assert digest_of(plain_registry, REPO, "old") == staged["a"]

    forced = run_playbook(tasks=[tag_task(plain_registry, tags=["old"], state="absent", delete_manifest=True,
                                          force=True)], diff=True)
    assert forced.rc == 0, forced.explain()
    result = forced.task("promote")
    assert result["method"] == "manifest_delete" and result["deleted"] == [staged["a"]]
    assert result["tags"]["staging"]["sibling"] is True  # the casualty is reported, not hidden
    assert result.diff["after"] == {"old": "absent", "staging": "absent"}
    assert digest_of(plain_registry, REPO, "staging") is None
    assert digest_of(plain_registry, REPO, "prod") == staged["b"]


def test_delete_manifest_without_siblings(plain_registry: RigRegistry, staged: dict[str, str],
                                          run_playbook) -> None:
    mark = plain_registry.mark()
    run = run_playbook(tasks=[tag_task(plain_registry, tags=["prod"], state="absent", delete_manifest=True)])
    assert run.rc == 0, run.explain()
    assert run.task("promote")["deleted"] == [staged["b"]]
    writes = plain_registry.writes_since(mark)
    assert [(w.method, w.path) for w in writes] == [("DELETE", f"/v2/{REPO}/manifests/{staged['b']}")]
    assert RawPuller.for_registry(plain_registry).head_manifest(REPO, staged["b"]).status_code == 404
    assert digest_of(plain_registry, REPO, "staging") == staged["a"]


def test_tag_delete_used_where_the_registry_supports_it(httpserver, run_playbook) -> None:
    """A fake registry, because Distribution 2.8 has no OCI 1.1 tag DELETE (it refuses DELETE by tag).

    The fake answers HEAD for tags and DELETE by tag with 202; the module must
    use that single DELETE and no dummy manifest.
    """
    manifest = make_image("fake").data
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    tags = {"old": digest, "keep": digest}
    seen: list[tuple[str, str]] = []

    def handler(request):
        seen.append((request.method, request.path))
        if request.path == "/v2/":
            return Response("{}", status=200, content_type="application/json")
        prefix = f"/v2/{REPO}/manifests/"
        if not request.path.startswith(prefix):
            return Response(json.dumps({"errors": [{"code": "UNSUPPORTED"}]}), status=405)
        tag = request.path[len(prefix):]
        if tag not in tags:
            return Response(json.dumps({"errors": [{"code": "MANIFEST_UNKNOWN"}]}), status=404,
                            content_type="application/json")
        if request.method == "DELETE":
            del tags[tag]
            return Response("", status=202)
        headers = {"Docker-Content-Digest": tags[tag], "Content-Length": str(len(manifest))}
        body = manifest if request.method == "GET" else b""
        response = Response(body, status=200, headers=headers,
                            content_type="application/vnd.oci.image.manifest.v1+json")
        response.headers["Content-Length"] = str(len(manifest))
        return response

    httpserver.expect_request(re.compile(".*")).respond_with_handler(handler)
    host = f"127.0.0.1:{httpserver.port}"
    run = run_playbook(tasks=[{"name": "untag", "ocireg.registry.registry_tag": {
        "repository": f"{host}/{REPO}", "tags": ["old"], "state": "absent"}}])
    assert run.rc == 0, run.explain()
    assert run.task("untag")["method"] == "tag_delete"
    assert tags == {"keep": digest}
    assert [s for s in seen if s[0] in ("PUT", "POST", "PATCH", "DELETE")] == [("DELETE", f"/v2/{REPO}/manifests/old")]


# -- sources in another repository or registry --------------------------------------------
def test_promotion_across_repositories_mounts_and_keeps_the_digest(plain_registry: RigRegistry,
                                                                   run_playbook) -> None:
    index = RawPusher.for_registry(plain_registry).push("build/app", make_multiarch("cross"), tag="1.0")
    task = tag_task(plain_registry, source=f"{plain_registry.host}/build/app:1.0", tags=["prod", "1.0"])

    mark = plain_registry.mark()
    checked = run_playbook(tasks=[task], check=True)
    assert checked.rc == 0, checked.explain()
    assert plain_registry.writes_since(mark) == []
    assert checked.task("promote")["digest"] == index.digest

    mark = plain_registry.mark()
    run = run_playbook(tasks=[task])
    assert run.rc == 0, run.explain()
    result = run.task("promote")
    assert result.changed and result["digest"] == index.digest
    assert result["copied"]["mounted"] == 4  # two platforms, a config and a layer each
    writes = plain_registry.writes_since(mark)
    # Mounted, not uploaded: no blob upload was completed with PUT or PATCH.
    assert not [w for w in writes if w.method in ("PUT", "PATCH") and "/blobs/uploads/" in w.path]
    assert len([w for w in writes if w.method == "POST" and "mount=" in w.path]) == 4
    # Tags come last, after the index and its children were pushed by digest.
    manifest_puts = [w.path for w in writes if w.method == "PUT" and "/manifests/" in w.path]
    assert manifest_puts[-2:] == [f"/v2/{REPO}/manifests/prod", f"/v2/{REPO}/manifests/1.0"]
    assert skopeo_digest(plain_registry, REPO, "prod") == index.digest
    assert skopeo_digest(plain_registry, REPO, "1.0") == index.digest

    mark = plain_registry.mark()
    again = run_playbook(tasks=[task])
    assert again.rc == 0 and not again.task("promote").changed
    assert plain_registry.writes_since(mark) == []


def test_promotion_across_registries_with_src_auth(plain_registry: RigRegistry, registry_factory,
                                                   run_playbook) -> None:
    build = registry_factory(users={"reader": "readpass"})
    index = RawPusher.for_registry(build).push("team/app", make_multiarch("remote"), tag="rc1")
    task = tag_task(plain_registry, source=f"{build.host}/team/app:rc1", tags=["prod"],
                    src_auth={"username": "reader", "password": "readpass"}, expected_digest="absent")

    marks = (plain_registry.mark(), build.mark())
    checked = run_playbook(tasks=[task], check=True)
    assert checked.rc == 0, checked.explain()
    assert checked.task("promote").changed and checked.task("promote")["copied"]["blobs"] == 4
    assert plain_registry.writes_since(marks[0]) == [] and build.writes_since(marks[1]) == []

    run = run_playbook(tasks=[task], diff=True)
    assert run.rc == 0, run.explain()
    result = run.task("promote")
    assert result["digest"] == index.digest
    assert result["copied"]["blobs"] == 4 and result["copied"]["mounted"] == 0
    assert result.diff["after"] == {"prod": index.digest}
    assert skopeo_digest(plain_registry, REPO, "prod") == index.digest
    assert "readpass" not in run.output

    marks = (plain_registry.mark(), build.mark())
    again = run_playbook(tasks=[task])
    assert again.rc == 0 and not again.task("promote").changed
    assert plain_registry.writes_since(marks[0]) == [] and build.writes_since(marks[1]) == []


def test_stale_guard_across_registries_copies_nothing(plain_registry: RigRegistry, staged: dict[str, str],
                                                      registry_factory, run_playbook) -> None:
    build = registry_factory()
    RawPusher.for_registry(build).push_image("team/app", make_image("elsewhere"), tag="rc1")
    mark = plain_registry.mark()
    run = run_playbook(tasks=[tag_task(plain_registry, source=f"{build.host}/team/app:rc1", tags=["prod"],
                                       expected_digest=staged["a"])])
    assert run.rc != 0
    assert staged["a"] in run.task("promote")["msg"] and staged["b"] in run.task("promote")["msg"]
    assert plain_registry.writes_since(mark) == []


def test_platform_subset_needs_allow_index_rewrite(plain_registry: RigRegistry, registry_factory,
                                                   run_playbook) -> None:
    build = registry_factory()
    index = RawPusher.for_registry(build).push("team/app", make_multiarch("subset"), tag="rc1")
    options = {"source": f"{build.host}/team/app:rc1", "tags": ["prod"], "platforms": ["linux/arm64"]}

    mark = plain_registry.mark()
    refused = run_playbook(tasks=[tag_task(plain_registry, **options)])
    assert refused.rc != 0 and "allow_index_rewrite" in refused.task("promote")["msg"]
    assert plain_registry.writes_since(mark) == []

    task = tag_task(plain_registry, **options, allow_index_rewrite=True)
    run = run_playbook(tasks=[task])
    assert run.rc == 0, run.explain()
    reduced = run.task("promote")["digest"]
    assert reduced != index.digest and digest_of(plain_registry, REPO, "prod") == reduced
    children = json.loads(RawPuller.for_registry(plain_registry).manifest(REPO, "prod")[0])["manifests"]
    assert [c["platform"]["architecture"] for c in children] == ["arm64"]

    mark = plain_registry.mark()
    again = run_playbook(tasks=[task])
    assert again.rc == 0 and not again.task("promote").changed
    assert plain_registry.writes_since(mark) == []
