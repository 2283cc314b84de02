"""registry_copy through real ansible-playbook runs against real Distribution registries.

Images are seeded with the rig's raw pusher and checked with the rig's raw
puller (which verifies every digest); request counts come from the access logs.
"""
from __future__ import annotations

import shutil

import pytest
import requests

from tests.rig.images import RawPuller, RawPusher, make_image, make_layer, make_multiarch

MODULE = "ocireg.registry.registry_copy"


def copy_task(name: str, **args) -> dict:
    return {"name": name, MODULE: args, "register": "out", "ignore_errors": True}


@pytest.mark.oldest_core
def test_check_then_copy_then_no_change(plain_registry, registry_factory, run_playbook):
    content = make_multiarch("mod", ("linux/amd64", "linux/arm64"), layer_size=200_000)
    RawPusher.for_registry(plain_registry).push("src/app", content, tag="1.0")
    dest_registry = registry_factory()
    task = copy_task("copy", src=f"{plain_registry.host}/src/app:1.0", dest=f"{dest_registry.host}/dst/app")

    marks = plain_registry.mark(), dest_registry.mark()
    checked = run_playbook(tasks=[task], check=True, diff=True)
    result = checked.task("copy")
    assert not result.failed, checked.explain()
    assert plain_registry.writes_since(marks[0]) == [] and dest_registry.writes_since(marks[1]) == []
    assert result.changed and result["digest"] == content.digest
    assert result["copied"]["manifests"] == 3 and result["copied"]["blobs"] == 4
    assert result.diff == {"before": {"1.0": "absent"}, "after": {"1.0": content.digest}}

    done = run_playbook(tasks=[task], diff=True)
    result = done.task("copy")
    assert not result.failed and result.changed, done.explain()
    assert result["dest"] == f"{dest_registry.host}/dst/app"
    assert result["dest_tags"] == {"1.0": {"before": None, "after": content.digest}}
    assert result["copied"] == checked.task("copy")["copied"]
    assert RawPuller.for_registry(dest_registry).pull("dst/app", "1.0").digest == content.digest

    marks = plain_registry.mark(), dest_registry.mark()
    again = run_playbook(tasks=[task], diff=True)
    result = again.task("copy")
    assert not result.failed and not result.changed, again.explain()
    assert result["copied"] == {"manifests": 0, "blobs": 0, "bytes": 0}
    # A truthy top-level 'skipped' would make Ansible report the task as skipped.
    assert result.status == "ok" and "skipped" not in result.result, again.explain()
    assert result["already_present"]["manifests"] == 1
    assert len(plain_registry.requests_since(marks[0])) == 1
    assert len(dest_registry.requests_since(marks[1])) == 1


@pytest.mark.oldest_core
def test_bad_reference_is_a_clear_error(plain_registry, run_playbook):
    mark = plain_registry.mark()
    run = run_playbook(tasks=[
        copy_task("bad src", src=f"{plain_registry.host}/Bad:Ref!", dest=f"{plain_registry.host}/dst/app"),
        copy_task("dest digest", src=f"{plain_registry.host}/src/app:1",
                  dest=f"{plain_registry.host}/dst/app@sha256:" + "a" * 64),
        copy_task("mirror with tag", src=f"{plain_registry.host}/src/app:1", dest=f"{plain_registry.host}/dst/app",
                  tags=[".*"]),
        copy_task("bad concurrency", src=f"{plain_registry.host}/src/app:1", dest=f"{plain_registry.host}/d/a",
                  concurrency=0),
        copy_task("bad platform", src=f"{plain_registry.host}/src/app:1", dest=f"{plain_registry.host}/d/a",
                  platforms=["amd64"]),
    ])
    assert run.task("bad src").failed and "not a valid image reference" in run.task("bad src")["msg"]
    assert "names a digest" in run.task("dest digest")["msg"]
    assert "without tag or digest" in run.task("mirror with tag")["msg"]
    assert "concurrency must be an integer from 1 to 16" in run.task("bad concurrency")["msg"]
    assert "os/arch" in run.task("bad platform")["msg"]
    assert plain_registry.requests_since(mark) == []


def test_missing_source_fails_cleanly(plain_registry, run_playbook):
    run = run_playbook(tasks=[copy_task("missing", src=f"{plain_registry.host}/src/none:1",
                                        dest=f"{plain_registry.host}/dst/app")])
    result = run.task("missing")
    assert result.failed and "does not exist" in result["msg"]
    assert result["error"]["type"] == "NotFoundError"
    assert "Traceback" not in run.output


def test_platform_subset_needs_rewrite_opt_in(plain_registry, registry_factory, run_playbook):
    content = make_multiarch("modp", ("linux/amd64", "linux/arm64"))
    RawPusher.for_registry(plain_registry).push("src/app", content, tag="1.0")
    dest_registry = registry_factory()
    common = {"src": f"{plain_registry.host}/src/app:1.0", "dest": f"{dest_registry.host}/dst/app",
              "platforms": ["linux/arm64"]}
    run = run_playbook(tasks=[copy_task("refused", **common),
                              copy_task("rewritten", **common, allow_index_rewrite=True)])
    assert run.task("refused").failed and "allow_index_rewrite" in run.task("refused")["msg"]
    rewritten = run.task("rewritten")
    assert not rewritten.failed and rewritten.changed, run.explain()
    assert rewritten["digest"] != content.digest
    assert any(content.digest in note for note in rewritten["notes"])
    pulled = RawPuller.for_registry(dest_registry).pull("dst/app", "1.0")
    assert [child.digest for child in pulled.children] == [content.children[1].digest]


def test_per_side_credentials_and_no_leak(basic_registry, token_registry, run_playbook):
    content = make_image("sides", layers=2)
    RawPusher.for_registry(basic_registry).push("team/app", content, tag="1.0")
    run = run_playbook(tasks=[copy_task(
        "sides", src=f"{basic_registry.host}/team/app:1.0", dest=f"{token_registry.host}/team/app:release",
        src_auth={"username": basic_registry.username, "password": basic_registry.password},
        dest_auth={"username": token_registry.username, "password": token_registry.password},
    )], verbosity=3)
    result = run.task("sides")
    assert not result.failed and result.changed, run.explain()
    assert RawPuller.for_registry(token_registry).pull("team/app", "release").digest == content.digest
    for secret in (basic_registry.password, token_registry.password):
        assert secret not in run.output.replace('"password": "********"', "")


def test_mirror_with_keep_going(plain_registry, registry_factory, run_playbook):
    pusher = RawPusher.for_registry(plain_registry)
    contents = {tag: make_image(f"mm-{tag}", layers=[make_layer(f"mm-{tag}", 30_000)]) for tag in ("1.0", "1.1", "2.0")}
    for tag, content in contents.items():
        pusher.push("src/app", content, tag=tag)
    # Corrupt 1.0's layer in the source storage: that tag must fail, the others must not.
    digest = contents["1.0"].layers[0].digest.partition(":")[2]
    path = plain_registry.storage / "docker/registry/v2/blobs/sha256" / digest[:2] / digest / "data"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    dest_registry = registry_factory()
    run = run_playbook(tasks=[copy_task("mirror", src=f"{plain_registry.host}/src/app",
                                        dest=f"{dest_registry.host}/dst/app", tags=[r"1\..*", "2.0"],
                                        keep_going=True)], diff=True)
    result = run.task("mirror")
    assert result.failed and "1 of 3 tags failed to mirror: 1.0" in result["msg"]
    assert sorted(result["tag_results"]) == ["1.1", "2.0"]
    assert result["tag_results"]["2.0"]["already_present"]["blobs"] == 0  # same keys as a single copy
    assert "skipped" not in result["tag_results"]["2.0"]
    assert result.diff == {"before": {"1.1": "absent", "2.0": "absent"},
                           "after": {"1.1": contents["1.1"].digest, "2.0": contents["2.0"].digest}}
    assert result["failed_tags"]["1.0"]["type"] == "DigestMismatchError"
    assert sorted(RawPuller.for_registry(dest_registry).tags("dst/app")) == ["1.1", "2.0"]


def test_a_blob_missing_from_the_source_is_told_as_such(registry_factory, run_playbook, tmp_path):
    # A manifest whose layer the repository lacks (a partial push, a storage fault). Distribution
    # refuses to store such a manifest, so the image is pushed whole and the repository's link to the
    # layer is removed from storage (no blob descriptor cache, so the registry sees it gone). The tag
    # resolves, so the advice must not be to check the repository name and the tag.
    storage = tmp_path / "storage"
    source = registry_factory(extra={"storage": {"filesystem": {"rootdirectory": str(storage)},
                                                 "maintenance": {"uploadpurging": {"enabled": False}}}})
    content = make_image("lost-blob", layers=[make_layer("lost-blob", 20_000)])
    RawPusher.for_registry(source).push("src/app", content, tag="1.0")
    layer = content.layers[0].digest
    shutil.rmtree(storage / "docker/registry/v2/repositories/src/app/_layers/sha256" / layer.partition(":")[2])
    dest_registry = registry_factory()
    task = copy_task("copy", src=f"{source.host}/src/app:1.0", dest=f"{dest_registry.host}/dst/app")
    # Check mode reads manifests only (sizes come from them), so it does not see the missing blob.
    checked = run_playbook(tasks=[task], check=True).task("copy")
    assert not checked.failed and checked.changed, checked.result
    assert checked["copied"]["blobs"] == 2, checked.result  # the config and the missing layer
    result = run_playbook(tasks=[task]).task("copy")
    assert result.failed, result.result
    msg = result["msg"]
    assert f"fetch blob src/app@{layer}" in msg and "BLOB_UNKNOWN" in msg, msg
    assert ("the source repository is missing a blob that its manifest names (a corrupted or partially pushed "
            "image); push the image to it again, or check the source registry's storage") in msg, msg
    assert "check the repository name" not in msg, msg
    # No tag for an incomplete image (the repository has none, so Distribution does not know its name).
    assert requests.get(f"{dest_registry.url}/v2/dst/app/tags/list", timeout=10).status_code == 404


def test_a_tags_mirror_that_cannot_list_its_source_fails_with_the_mirror_result_keys(
        plain_registry, registry_factory, run_playbook):
    RawPusher.for_registry(plain_registry).push("src/app", make_image("keys"), tag="1.0")
    dest_registry = registry_factory()
    typo = f"{plain_registry.host}/src/ap"
    run = run_playbook(tasks=[
        copy_task("tags", src=typo, dest=f"{dest_registry.host}/dst/app", tags=[".*"]),
        copy_task("select", src=typo, dest=f"{dest_registry.host}/dst/app", select={}),
    ])
    by_tags, by_select = run.task("tags"), run.task("select")
    assert by_tags.failed and by_select.failed
    assert "src/ap" in by_tags["msg"] and "404" in by_tags["msg"], by_tags["msg"]
    # The same result keys whichever spelling failed ("error" too: the tags spelling tells its cause there).
    assert set(by_select.result) - set(by_tags.result) == set(), set(by_select.result) - set(by_tags.result)
    for result in (by_tags, by_select):
        assert result["summary"]["failed_repositories"] == 1 and result["summary"]["failed"] == 0
        assert result["tag_results"] == {} and result["failed_tags"] == {} and result["not_attempted"] == []
        assert result["copied"] == {"manifests": 0, "blobs": 0, "bytes": 0}
        (repository,) = result["repositories"]
        assert "404" in repository["error"]["message"] and repository["line"].endswith(repository["error"]["message"])
    assert by_tags["error"]["status"] == 404
