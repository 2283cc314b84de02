"""registry_manifest_info through real ansible-playbook runs against real Distribution registries.

Every image is seeded with the rig's raw HTTP pusher (tests/rig/images.py),
never with our client, and every expected value is computed from the bytes
the rig built: a wrong answer from our client cannot agree with itself here.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from tests.rig.images import (
    DOCKER_CONFIG,
    OCI_CONFIG,
    Blob,
    RawPusher,
    make_artifact,
    make_image,
    make_layer,
    make_multiarch,
    make_referrers_index,
    referrers_tag,
)

ALL_INCLUDES = ["config", "layers", "referrers", "tags", "raw"]
MODULE = "ocireg.registry.registry_manifest_info"
SBOM_TYPE = "application/vnd.ocireg.test.sbom.v1+json"


def full_config(layers: list, *, docker: bool, platform: tuple[str, str] = ("linux", "amd64")) -> Blob:
    """An image config that sets every field the module reports (make_config leaves some out)."""
    doc = {
        "architecture": platform[1],
        "os": platform[0],
        "created": "2025-03-04T05:06:07Z",
        "config": {
            "User": "1000:1000",
            "Env": ["PATH=/usr/bin", "APP_MODE=prod"],
            "Entrypoint": ["/app/run"],
            "Cmd": ["--serve"],
            "WorkingDir": "/srv/app",
            "ExposedPorts": {"8080/tcp": {}, "53/udp": {}},
            "Labels": {"org.opencontainers.image.version": "1.2.3", "team": "core"},
        },
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [{"created_by": "step 1"}, {"created_by": "step 2", "empty_layer": True},
                    {"created_by": "step 3"}],
    }
    return Blob(json.dumps(doc, indent=2).encode(), DOCKER_CONFIG if docker else OCI_CONFIG)


@dataclass
class Seeded:
    """What was pushed to the shared registry, with the rig's own objects for expectations."""

    host: str
    docker_image: Any
    oci_image: Any
    oci_index: Any
    docker_list: Any
    artifact: Any


@pytest.fixture(scope="module")
def seeded(plain_registry_module) -> Seeded:
    """One registry holding a Docker schema2 image, an OCI image (with an SBOM referring to it
    through the tag-schema fallback), an OCI index and a Docker manifest list."""
    reg = plain_registry_module
    pusher = RawPusher.for_registry(reg)

    docker_layers = [make_layer("d0", 700, docker=True), make_layer("d1", 900, docker=True)]
    docker_image = make_image(docker=True, layers=docker_layers,
                              config=full_config(docker_layers, docker=True))
    pusher.push("docker/app", docker_image, tag="v1")
    pusher.push_manifest("docker/app", "v2", docker_image.data, docker_image.media_type)

    oci_layers = [make_layer("o0", 1500)]
    oci_image = make_image(layers=oci_layers, config=full_config(oci_layers, docker=False),
                           annotations={"org.opencontainers.image.source": "https://example.test/app.git"})
    pusher.push("oci/app", oci_image, tag="v1")
    artifact = make_artifact(oci_image, artifact_type=SBOM_TYPE, annotations={"kind": "sbom"})
    pusher.push("oci/app", artifact, tag="sbom")
    # Distribution 2.8 has no referrers API: clients find referrers through this tag.
    pusher.push("oci/app", make_referrers_index([artifact]), tag=referrers_tag(oci_image))

    oci_index = make_multiarch("oi", ("linux/amd64", "linux/arm64/v8"), labels={"flavour": "oci"})
    pusher.push("oci/multi", oci_index, tag="v1")
    docker_list = make_multiarch("dl", ("linux/amd64", "linux/arm/v7"), docker=True)
    pusher.push("docker/multi", docker_list, tag="v1")
    return Seeded(reg.host, docker_image, oci_image, oci_index, docker_list, artifact)


def info_task(name: str, reference: str, **options: Any) -> dict[str, Any]:
    return {"name": name, MODULE: {"reference": reference, **options}, "register": name.replace(" ", "_")}


def ok(run, name: str) -> dict[str, Any]:
    task = run.task(name)
    assert task.status == "ok", f"{name}: {task.result}\n{run.explain()}"
    assert task.changed is False
    return task.result


def descriptor(blob) -> dict[str, Any]:
    return {"digest": blob.digest, "media_type": blob.media_type, "size": blob.size}


def expected_config(config_blob: Blob) -> dict[str, Any]:
    return {
        "digest": config_blob.digest, "architecture": "amd64", "os": "linux", "variant": None,
        "created": "2025-03-04T05:06:07Z",
        "labels": {"org.opencontainers.image.version": "1.2.3", "team": "core"},
        "env": ["PATH=/usr/bin", "APP_MODE=prod"], "entrypoint": ["/app/run"], "cmd": ["--serve"],
        "user": "1000:1000", "working_dir": "/srv/app", "exposed_ports": ["53/udp", "8080/tcp"],
        "history_length": 3,
    }


def test_docker_schema2_image_every_field(seeded, run_playbook):
    ref = f"{seeded.host}/docker/app:v1"
    run = run_playbook(tasks=[info_task("docker image", ref, include=ALL_INCLUDES)])
    assert run.rc == 0, run.explain()
    res = ok(run, "docker image")
    img = seeded.docker_image
    assert res["reference"] == ref
    assert res["exists"] is True
    assert res["digest"] == img.digest
    assert res["media_type"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert res["size"] == img.size
    assert res["schema_version"] == 2
    assert res["manifests"] == []
    assert res["platforms"] == ["linux/amd64"]  # from the config, which include asked for
    assert res["annotations"] == {}
    assert res["artifact_type"] is None
    assert res["subject"] is None
    assert res["index_digest"] is None
    assert res["config"] == expected_config(img.config)
    assert res["layers"] == [descriptor(layer) for layer in img.layers]
    assert res["total_size"] == sum(layer.size for layer in img.layers)
    assert res["referrers"] == []
    assert res["tags"] == ["v1", "v2"]
    assert res["raw"] == img.data.decode()  # exact bytes: 3-space indentation kept


def test_oci_image_with_annotations_and_referrers(seeded, run_playbook):
    ref = f"{seeded.host}/oci/app:v1"
    run = run_playbook(tasks=[info_task("oci image", ref, include=ALL_INCLUDES)])
    assert run.rc == 0, run.explain()
    res = ok(run, "oci image")
    img = seeded.oci_image
    assert res["exists"] is True and res["digest"] == img.digest and res["size"] == img.size
    assert res["media_type"] == "application/vnd.oci.image.manifest.v1+json"
    assert res["schema_version"] == 2
    assert res["annotations"] == {"org.opencontainers.image.source": "https://example.test/app.git"}
    assert res["config"] == expected_config(img.config)
    assert res["layers"] == [descriptor(img.layers[0])]
    assert res["total_size"] == img.layers[0].size
    assert res["referrers"] == [{**descriptor(seeded.artifact), "artifact_type": SBOM_TYPE,
                                 "annotations": {"kind": "sbom"}}]
    assert res["tags"] == sorted(["v1", "sbom", referrers_tag(img)])
    assert json.loads(res["raw"]) == img.manifest and res["raw"] == img.data.decode()


def test_oci_index_children_and_platform_selection(seeded, run_playbook):
    ref = f"{seeded.host}/oci/multi:v1"
    run = run_playbook(tasks=[
        info_task("index", ref, include=["layers", "config", "raw"]),
        info_task("arm64", ref, platform="linux/arm64", include=["config", "layers"]),
    ])
    assert run.rc == 0, run.explain()
    index = seeded.oci_index
    res = ok(run, "index")
    assert res["digest"] == index.digest and res["media_type"] == "application/vnd.oci.image.index.v1+json"
    assert res["size"] == index.size and res["schema_version"] == 2
    assert res["manifests"] == [
        {**descriptor(child), "platform": child.platform, "annotations": {}, "artifact_type": None}
        for child in index.children
    ]
    assert res["platforms"] == ["linux/amd64", "linux/arm64/v8"]
    assert res["index_digest"] is None
    assert res["config"] is None  # an index has no config: pick a platform
    assert res["layers"] == [] and res["total_size"] == 0
    assert res["raw"] == index.data.decode()

    arm = next(c for c in index.children if c.platform == "linux/arm64/v8")
    res = ok(run, "arm64")  # linux/arm64 matches linux/arm64/v8
    assert res["digest"] == arm.digest and res["index_digest"] == index.digest
    assert res["media_type"] == "application/vnd.oci.image.manifest.v1+json"
    assert res["platforms"] == ["linux/arm64/v8"] and res["manifests"] == []
    assert res["config"]["architecture"] == "arm64" and res["config"]["variant"] == "v8"
    assert res["config"]["labels"] == {"flavour": "oci"} and res["config"]["digest"] == arm.config.digest
    assert res["layers"] == [descriptor(arm.layers[0])]


def test_docker_manifest_list(seeded, run_playbook):
    ref = f"{seeded.host}/docker/multi:v1"
    run = run_playbook(tasks=[
        info_task("list", ref),
        info_task("armv7", ref, platform="linux/arm/v7", include=["config", "layers", "raw"]),
    ])
    assert run.rc == 0, run.explain()
    mlist = seeded.docker_list
    res = ok(run, "list")
    assert res["media_type"] == "application/vnd.docker.distribution.manifest.list.v2+json"
    assert res["digest"] == mlist.digest and res["size"] == mlist.size
    assert [c["platform"] for c in res["manifests"]] == ["linux/amd64", "linux/arm/v7"]
    assert [c["digest"] for c in res["manifests"]] == [c.digest for c in mlist.children]
    assert res["platforms"] == ["linux/amd64", "linux/arm/v7"]
    assert "config" not in res and "layers" not in res  # not asked for
    arm = mlist.children[1]
    res = ok(run, "armv7")
    assert res["digest"] == arm.digest and res["index_digest"] == mlist.digest
    assert res["media_type"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert res["config"]["os"] == "linux" and res["config"]["variant"] == "v7"
    assert res["layers"] == [descriptor(layer) for layer in arm.layers]
    assert res["raw"] == arm.data.decode()


def test_artifact_with_subject(seeded, run_playbook):
    art = seeded.artifact
    ref = f"{seeded.host}/oci/app@{art.digest}"
    run = run_playbook(tasks=[info_task("artifact", ref, include=["config", "layers", "referrers"])])
    assert run.rc == 0, run.explain()
    res = ok(run, "artifact")
    assert res["reference"] == ref and res["exists"] is True and res["digest"] == art.digest
    assert res["artifact_type"] == SBOM_TYPE
    assert res["annotations"] == {"kind": "sbom"}
    assert res["subject"] == descriptor(seeded.oci_image)
    assert res["config"] is None  # the empty config of an artifact is no image config
    assert res["platforms"] == []
    assert res["layers"] == [descriptor(art.layers[0])]
    assert res["referrers"] == []


def test_missing_tag_digest_and_repository_are_not_failures(seeded, run_playbook):
    absent_digest = "sha256:" + "ab" * 32
    run = run_playbook(tasks=[
        info_task("missing tag", f"{seeded.host}/docker/app:nope", include=ALL_INCLUDES),
        info_task("missing digest", f"{seeded.host}/docker/app@{absent_digest}"),
        info_task("missing repo", f"{seeded.host}/no/such/repo:v1", include=["tags"]),
    ])
    assert run.rc == 0, run.explain()
    res = ok(run, "missing tag")
    assert res["exists"] is False and res["digest"] is None and res["media_type"] is None
    assert res["manifests"] == [] and res["platforms"] == [] and res["config"] is None
    assert res["layers"] == [] and res["referrers"] == [] and res["raw"] is None
    assert res["tags"] == ["v1", "v2"]  # the repository exists: its tags help spot the typo
    res = ok(run, "missing digest")
    assert res["exists"] is False and res["reference"] == f"{seeded.host}/docker/app@{absent_digest}"
    res = ok(run, "missing repo")
    assert res["exists"] is False and res["tags"] == []


def test_unknown_platform_fails_and_lists_what_there_is(seeded, run_playbook):
    run = run_playbook(tasks=[info_task("s390x", f"{seeded.host}/oci/multi:v1", platform="linux/s390x")])
    assert run.rc != 0
    task = run.task("s390x")
    assert task.failed
    assert "linux/s390x" in task["msg"] and "linux/amd64, linux/arm64/v8" in task["msg"]


def test_references_are_described_in_order(seeded, run_playbook):
    refs = [f"{seeded.host}/oci/multi:v1", f"{seeded.host}/docker/app:nope", f"{seeded.host}/docker/app:v2",
            f"{seeded.host}/oci/app:v1"]
    run = run_playbook(tasks=[{"name": "many", MODULE: {"references": refs, "max_concurrency": 2,
                                                        "include": ["tags"]}}])
    assert run.rc == 0, run.explain()
    res = ok(run, "many")
    assert "digest" not in res
    assert [r["reference"] for r in res["results"]] == refs
    assert [r["exists"] for r in res["results"]] == [True, False, True, True]
    assert [r["digest"] for r in res["results"]] == [seeded.oci_index.digest, None, seeded.docker_image.digest,
                                                     seeded.oci_image.digest]
    assert res["results"][2]["tags"] == ["v1", "v2"]


@pytest.mark.oldest_core
def test_check_mode_reads_the_same_and_writes_nothing(seeded, plain_registry_module, run_playbook):
    mark = plain_registry_module.mark()
    run = run_playbook(tasks=[info_task("checked", f"{seeded.host}/docker/app:v1")], check=True)
    assert run.rc == 0, run.explain()
    assert ok(run, "checked")["digest"] == seeded.docker_image.digest
    assert plain_registry_module.writes_since(mark) == []


def test_bad_options_fail_before_any_request(seeded, plain_registry_module, run_playbook):
    mark = plain_registry_module.mark()
    run = run_playbook(tasks=[
        {"name": "bad ref", MODULE: {"reference": f"{seeded.host}/Bad:Ref!"}, "ignore_errors": True},
        {"name": "bad platform", MODULE: {"reference": f"{seeded.host}/oci/multi:v1", "platform": "linux"},
         "ignore_errors": True},
        {"name": "both", MODULE: {"reference": f"{seeded.host}/a:1", "references": [f"{seeded.host}/b:1"]},
         "ignore_errors": True},
        {"name": "bad concurrency", MODULE: {"references": [f"{seeded.host}/a:1"], "max_concurrency": 0},
         "ignore_errors": True},
    ])
    assert run.task("bad ref").failed and "not a valid image reference" in run.task("bad ref")["msg"]
    assert run.task("bad platform").failed and "linux" in run.task("bad platform")["msg"]
    assert run.task("both").failed and "mutually exclusive" in run.task("both")["msg"]
    assert run.task("bad concurrency").failed and "max_concurrency" in run.task("bad concurrency")["msg"]
    assert plain_registry_module.requests_since(mark) == []


def _seed_small(reg) -> Any:
    image = make_image("auth-img", layers=1, labels={"auth": "yes"})
    RawPusher.for_registry(reg).push("team/app", image, tag="v1")
    return image


def test_basic_auth(basic_registry, run_playbook):
    image = _seed_small(basic_registry)
    ref = f"{basic_registry.host}/team/app:v1"
    run = run_playbook(tasks=[
        info_task("good", ref, username="alice", password="secret", include=["config", "tags"]),
        {**info_task("bad password", ref, username="alice", password="wrong-pass-123"), "ignore_errors": True},
        {**info_task("anonymous", ref), "ignore_errors": True},
    ])
    res = ok(run, "good")
    assert res["digest"] == image.digest and res["config"]["labels"] == {"auth": "yes"}
    assert res["tags"] == ["v1"]
    # Wrong or missing credentials fail: they must never read as "image does not exist".
    bad = run.task("bad password")
    assert bad.failed and "exists" not in bad.result
    assert "alice" in bad["msg"] or "credential" in bad["msg"].lower() or "auth" in bad["msg"].lower()
    assert run.task("anonymous").failed
    assert "wrong-pass-123" not in run.output


def test_token_auth_with_module_defaults(token_registry, run_playbook):
    image = _seed_small(token_registry)
    play = {
        "hosts": "localhost", "gather_facts": False,
        "module_defaults": {"group/ocireg.registry.registry": {"username": "alice", "password": "secret"}},
        "tasks": [info_task("token", f"{token_registry.host}/team/app:v1", include=["referrers", "layers"]),
                  info_task("token missing", f"{token_registry.host}/team/app:v9")],
    }
    run = run_playbook(play)
    assert run.rc == 0, run.explain()
    res = ok(run, "token")
    assert res["digest"] == image.digest and res["referrers"] == []
    assert res["layers"] == [descriptor(image.layers[0])]
    assert ok(run, "token missing")["exists"] is False
    assert "secret" not in run.stdout


def test_config_over_the_cap_fails_without_downloading_it(plain_registry, run_playbook):
    layers = [make_layer("big-config", 100)]
    huge = json.dumps({"architecture": "amd64", "os": "linux",
                       "config": {"Labels": {"padding": "x" * (4 * 1024 * 1024)}},
                       "rootfs": {"type": "layers", "diff_ids": [layers[0].diff_id]}}).encode()
    image = make_image(layers=layers, config=Blob(huge, OCI_CONFIG))
    RawPusher.for_registry(plain_registry).push("big/config", image, tag="v1")
    ref = f"{plain_registry.host}/big/config:v1"
    mark = plain_registry.mark()
    run = run_playbook(tasks=[
        {**info_task("big", ref, include=["config"]), "ignore_errors": True},
        info_task("no config asked", ref, include=["layers"]),
    ])
    task = run.task("big")
    assert task.failed and "4 MiB" in task["msg"] and "leave 'config' out of include" in task["msg"]
    assert ok(run, "no config asked")["digest"] == image.digest
    # The descriptor's size is enough to refuse: the blob is never requested.
    assert not [r for r in plain_registry.requests_since(mark) if image.config.digest in r.path]


def test_tls_registry_with_its_ca(tls_registry, run_playbook):
    image = make_image("tls-img")
    RawPusher.for_registry(tls_registry).push("secure/app", image, tag="v1")
    ref = f"{tls_registry.host}/secure/app:v1"
    run = run_playbook(tasks=[
        info_task("with ca", ref, ca_path=tls_registry.ca_path),
        {**info_task("without ca", ref), "ignore_errors": True},
    ])
    assert ok(run, "with ca")["digest"] == image.digest
    without = run.task("without ca")
    assert without.failed and "exists" not in without.result and "ca_path" in without["msg"]


def test_resolve_digests_of_many_tags(plain_registry):
    """The W5 path (bench/): every tag of a repository resolved on a bounded pool, one HEAD each."""
    from ansible_collections.ocireg.registry.plugins.module_utils._glue.clients import ClientFactory
    from ansible_collections.ocireg.registry.plugins.module_utils._ops.facts.describe import list_tags, resolve_digests
    from ansible_collections.ocireg.registry.plugins.module_utils._model.reference import Reference

    image = make_image("many-tags")
    pusher = RawPusher.for_registry(plain_registry)
    pusher.push("many/app", image, tag="t0")
    for i in range(1, 40):
        pusher.push_manifest("many/app", f"t{i}", image.data, image.media_type)
    repo = ClientFactory({}).repository(Reference.parse(f"{plain_registry.host}/many/app"))
    tags = list_tags(repo, order="none")
    assert len(tags) == 40
    mark = plain_registry.mark()
    digests = resolve_digests(repo, [*tags, "gone"], max_concurrency=4)
    assert digests == {**{tag: image.digest for tag in tags}, "gone": None}
    sent = plain_registry.requests_since(mark)
    assert sorted(r.path for r in sent) == sorted(f"/v2/many/app/manifests/{t}" for t in [*tags, "gone"])
    assert {r.method for r in sent} == {"HEAD"}
