"""Air-gapped transfer through real ansible-playbook runs: registry -> oci / oci-archive -> registry,
local -> local, referrers, resume, merge, corruption and check mode, against Distribution 2.8.

Content is seeded with the rig's raw pusher and checked with the rig's raw
puller (which verifies every digest) or skopeo; nothing here trusts our own
client to check our own output.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.rig import images
from tests.rig.images import RawPuller, RawPusher
from tests.rig.tools import require_tool

MODULE = "ocireg.registry.registry_copy"
REF_NAME = "org.opencontainers.image.ref.name"


def task(name: str, **args) -> dict:
    return {"name": name, MODULE: args, "register": "out", "ignore_errors": True}


def names(layout: Path) -> dict:
    index = json.loads((layout / "index.json").read_text())
    return {e["annotations"][REF_NAME]: e["digest"] for e in index["manifests"] if REF_NAME in e.get("annotations", {})}


def files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.fixture
def seeded(plain_registry):
    """src/single:1 (one image), src/multi:2 (3-platform index), src/signed:v1 (+ SBOM + signature)."""
    single = images.make_image("ag-single", layers=2, layer_size=150_000)
    multi = images.make_multiarch("ag-multi", ("linux/amd64", "linux/arm64/v8", "linux/s390x"), layer_size=60_000)
    signed = images.make_image("ag-signed", layers=1, layer_size=30_000)
    sbom = images.make_artifact(signed)
    signature = images.make_artifact(signed, artifact_type="application/vnd.dev.cosign.artifact.sig.v1+json",
                                     payload=b'{"critical": {}}')
    pusher = RawPusher.for_registry(plain_registry)
    pusher.push("src/single", single, tag="1")
    pusher.push("src/multi", multi, tag="2")
    pusher.push("src/signed", signed, tag="v1")
    pusher.push_referrers("src/signed", signed, [sbom, signature])
    return {"single": single, "multi": multi, "signed": signed, "sbom": sbom, "signature": signature}


def test_every_direction_round_trips_and_is_idempotent(plain_registry, registry_factory, seeded, run_playbook,
                                                       tmp_path):
    src, dest = plain_registry.host, registry_factory()
    work = tmp_path / "work"  # the playbook runner writes under tmp_path too
    layout, archive, copied, back = work / "layout", work / "bundle.tar", work / "copy.tar", work / "b"
    tasks = [
        task("export single", src=f"{src}/src/single:1", dest=f"oci:{layout}"),
        task("export index", src=f"{src}/src/multi:2", dest=f"oci-archive:{archive}"),
        task("export signed", src=f"{src}/src/signed:v1", dest=f"oci:{layout}", referrers=True),
        task("layout to archive", src=f"oci:{layout}:src/single:1", dest=f"oci-archive:{copied}:src/single:1"),
        task("archive to layout", src=f"oci-archive:{archive}:src/multi:2", dest=f"oci:{back}:src/multi:2"),
        task("import single", src=f"oci-archive:{copied}:src/single:1", dest=f"{dest.host}/in/single"),
        task("import index", src=f"oci:{back}:src/multi:2", dest=f"{dest.host}/in/multi"),
        task("import signed", src=f"oci:{layout}:src/signed:v1", dest=f"{dest.host}/in/signed", referrers=True),
    ]
    first = run_playbook(tasks=tasks, diff=True)
    for result in first.tasks:
        assert not result.failed and result.changed, first.explain()
    assert names(layout) == {"src/single:1": seeded["single"].digest, "src/signed:v1": seeded["signed"].digest}
    assert first.task("export single")["dest_tags"] == {"1": {"before": None, "after": seeded["single"].digest}}
    assert first.task("export signed")["copied"]["manifests"] == 3  # the image, its SBOM and signature
    puller = RawPuller.for_registry(dest)
    for repository, tag, key in (("in/single", "1", "single"), ("in/multi", "2", "multi"), ("in/signed", "v1", "signed")):
        assert puller.pull(repository, tag).digest == seeded[key].digest
    referrers = json.loads(puller.manifest("in/signed", images.referrers_tag(seeded["signed"]))[0])
    assert sorted(d["digest"] for d in referrers["manifests"]) == sorted(
        [seeded["sbom"].digest, seeded["signature"].digest])
    for key in ("sbom", "signature"):
        assert puller.manifest("in/signed", seeded[key].digest)[0] == seeded[key].data

    marks = plain_registry.mark(), dest.mark()
    stamps = {p: (work / p).stat().st_mtime_ns for p in files(work)}
    second = run_playbook(tasks=tasks)
    for result in second.tasks:
        assert not result.failed and not result.changed, second.explain()
    assert plain_registry.writes_since(marks[0]) == [] and dest.writes_since(marks[1]) == []
    assert {p: (work / p).stat().st_mtime_ns for p in files(work)} == stamps


def test_check_mode_writes_no_file(plain_registry, seeded, run_playbook, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    run = run_playbook(tasks=[
        task("layout", src=f"{plain_registry.host}/src/multi:2", dest=f"oci:{out / 'layout'}"),
        task("archive", src=f"{plain_registry.host}/src/single:1", dest=f"oci-archive:{out / 'b.tar'}"),
        task("docker", src=f"{plain_registry.host}/src/single:1", dest=f"docker-archive:{out / 'd.tar'}"),
    ], check=True)
    for result in run.tasks:
        assert not result.failed and result.changed, run.explain()
    assert run.task("layout")["copied"]["manifests"] == 4 and run.task("layout")["copied"]["blobs"] == 6
    assert list(out.iterdir()) == []


def test_corrupt_bytes_on_disk_fail_with_nothing_tagged(plain_registry, registry_factory, seeded, run_playbook,
                                                        tmp_path):
    layout = tmp_path / "layout"
    run = run_playbook(tasks=[task("export", src=f"{plain_registry.host}/src/multi:2", dest=f"oci:{layout}")])
    assert not run.task("export").failed, run.explain()
    layer = seeded["multi"].children[1].layers[0]
    path = layout / "blobs/sha256" / layer.digest.partition(":")[2]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    dest = registry_factory()
    mark = dest.mark()
    run = run_playbook(tasks=[task("import", src=f"oci:{layout}:src/multi:2", dest=f"{dest.host}/in/multi"),
                              task("to layout", src=f"oci:{layout}:src/multi:2", dest=f"oci:{tmp_path / 'o'}:x:1")])
    for name in ("import", "to layout"):
        result = run.task(name)
        assert result.failed and result["error"]["type"] == "DigestMismatchError", run.explain()
    assert not [r for r in dest.requests_since(mark) if r.method == "PUT" and "/manifests/" in r.path]
    assert not (tmp_path / "o" / "index.json").exists()


def test_interrupted_export_is_resumed(plain_registry, seeded, run_playbook, tmp_path):
    layout = tmp_path / "layout"
    export = task("export", src=f"{plain_registry.host}/src/multi:2", dest=f"oci:{layout}")
    assert not run_playbook(tasks=[export]).task("export").failed
    # What an interruption leaves: index.json not yet written, blobs missing, a partial file.
    (layout / "index.json").unlink()
    missing = [seeded["multi"].children[0].layers[0], seeded["multi"].children[2].layers[0]]
    for blob in missing:
        (layout / "blobs/sha256" / blob.digest.partition(":")[2]).unlink()
    (layout / "blobs/sha256" / ".0123.cafe.partial").write_bytes(b"half a layer")
    mark = plain_registry.mark()
    run = run_playbook(tasks=[export])
    result = run.task("export")
    assert not result.failed and result.changed, run.explain()
    assert result["copied"]["blobs"] == 2 and result["copied"]["bytes"] == sum(b.size for b in missing)
    fetched = [r for r in plain_registry.requests_since(mark) if r.method == "GET" and "/blobs/" in r.path]
    assert sorted(r.path.rsplit("/", 1)[1] for r in fetched) == sorted(b.digest for b in missing)
    assert names(layout) == {"src/multi:2": seeded["multi"].digest}
    again = run_playbook(tasks=[export]).task("export")
    assert not again.failed and not again.changed


def test_merged_layout_keeps_what_skopeo_wrote(plain_registry, seeded, run_playbook, tmp_path):
    layout = tmp_path / "shared"
    skopeo = require_tool("skopeo")
    subprocess.run([skopeo, "copy", "--src-tls-verify=false", f"docker://{plain_registry.host}/src/signed:v1",
                    f"oci:{layout}:theirs"], check=True, capture_output=True)
    theirs = names(layout)["theirs"]
    run = run_playbook(tasks=[task("export", src=f"{plain_registry.host}/src/single:1", dest=f"oci:{layout}")])
    assert not run.task("export").failed, run.explain()
    assert names(layout) == {"theirs": theirs, "src/single:1": seeded["single"].digest}
    for name in ("theirs", "src/single:1"):
        subprocess.run([skopeo, "inspect", f"oci:{layout}:{name}"], check=True, capture_output=True)


def test_bundle_of_repositories_restores_each_to_its_name(plain_registry, registry_factory, seeded, run_playbook,
                                                          tmp_path):
    bundle, dest = tmp_path / "bundle.tar", registry_factory()
    run = run_playbook(tasks=[
        task("mirror single", src=f"{plain_registry.host}/src/single", dest=f"oci-archive:{bundle}", tags=[".*"]),
        task("mirror multi", src=f"{plain_registry.host}/src/multi", dest=f"oci-archive:{bundle}", tags=[".*"]),
        task("restore", src=f"oci-archive:{bundle}", dest=f"{dest.host}/restored", tags=[".*"]),
    ])
    for result in run.tasks:
        assert not result.failed and result.changed, run.explain()
    assert sorted(run.task("restore")["tag_results"]) == ["src/multi:2", "src/single:1"]
    puller = RawPuller.for_registry(dest)
    assert puller.pull("restored/src/single", "1").digest == seeded["single"].digest
    assert puller.pull("restored/src/multi", "2").digest == seeded["multi"].digest


def test_docker_format_into_a_layout_warns_and_format_oci_converts(plain_registry, run_playbook, tmp_path):
    """The module's side of Docker-typed images in OCI layouts (skopeo itself is run in test_registry_copy_local_skopeo.py):
    a byte-exact export warns, naming the image and the readers that cannot take it; format: oci converts,
    lists old -> new digests and is idempotent; check mode converts nothing onto disk; mirror_spec refuses it."""
    content = images.make_multiarch("ag-docker", docker=True)
    RawPusher.for_registry(plain_registry).push("src/docker", content, tag="1")
    src = f"{plain_registry.host}/src/docker:1"
    kept, converted, checked = tmp_path / "kept.tar", tmp_path / "converted", tmp_path / "checked"
    convert = task("convert", src=src, dest=f"oci:{converted}", format="oci")
    run = run_playbook(tasks=[
        task("keep", src=src, dest=f"oci-archive:{kept}"),
        convert,
        {**task("check", src=src, dest=f"oci:{checked}", format="oci"), "check_mode": True},
        {**convert, "name": "again"},
        task("mirror_spec", mirror_spec=[{"src": f"{plain_registry.host}/src/docker", "dest": f"oci:{checked}"}],
             format="oci"),
    ])
    keep = run.task("keep")
    assert not keep.failed and keep["digest"] == content.digest and keep["converted"] == []
    (warning,) = keep["warnings"]
    assert "src/docker:1" in warning and "skopeo, podman" in warning and "format: oci" in warning
    done = run.task("convert")
    assert not done.failed and done.changed and not done.get("warnings"), done.result
    mapping = {item["from"]: item["to"] for item in done["converted"]}
    assert set(mapping) == {content.digest} | {c.digest for c in content.children}
    assert done["digest"] == mapping[content.digest] and names(converted) == {"src/docker:1": done["digest"]}
    check = run.task("check")
    assert not check.failed and check["converted"] == done["converted"] and not checked.exists()
    again = run.task("again")
    assert not again.failed and not again.changed and again["digest"] == done["digest"]
    refused = run.task("mirror_spec")
    assert refused.failed and "format: oci applies to a copy of src to dest" in refused["msg"]


def test_a_missing_or_mistyped_source_path_is_named(plain_registry, run_playbook, tmp_path):
    bundle = tmp_path / "bundel.tar"  # the typo of bundle.tar: no such file
    layout = tmp_path / "layout"
    layout.mkdir()
    run = run_playbook(tasks=[
        task("archive", src=f"oci-archive:{bundle}", dest=f"{plain_registry.host}/dst/app:1"),
        task("named", src=f"oci-archive:{bundle}:team/app:1", dest=f"{plain_registry.host}/dst/app:1"),
        task("mirror", src=f"oci-archive:{bundle}", dest=plain_registry.host, tags=[".*"]),
        task("layout", src=f"oci:{tmp_path / 'layuot'}", dest=f"{plain_registry.host}/dst/app:1"),
        task("docker", src=f"docker-archive:{bundle}", dest=f"{plain_registry.host}/dst/app:1"),
        task("kind", src=f"oci-archive:{layout}", dest=f"{plain_registry.host}/dst/app:1"),
    ])
    for name, path in (("archive", bundle), ("named", bundle), ("mirror", bundle), ("layout", tmp_path / "layuot"),
                       ("docker", bundle)):
        result = run.task(name)
        assert result.failed, run.explain()
        assert f"{path} does not exist" in result["msg"] and "check the path" in result["msg"], result["msg"]
        assert "credentials" not in result["msg"] and "holds" not in result["msg"], result["msg"]
    assert "is a directory, not an archive file" in run.task("kind")["msg"]
    assert "use oci:" in run.task("kind")["msg"] or "read with oci:" in run.task("kind")["msg"]
    assert not bundle.exists() and list(layout.iterdir()) == []
