"""Air-gapped transfer, interop with skopeo: skopeo reads what we write, we read what skopeo writes.

For each local format (oci:, oci-archive:, docker-archive:) both directions run
against real Distribution 2.8 registries; content is seeded with the rig's raw
pusher and compared by digest (docker-archive by config digest and diff_ids:
that format has no manifest, so the manifest digest changes by nature).
"""
from __future__ import annotations

import json
import subprocess

import pytest
from ansible_collections.ocireg.registry.plugins.module_utils._glue.clients import (
    ClientFactory,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.image import (
    CopyOptions,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.transfer import (
    run_transfer,
)

from tests.rig import images
from tests.rig.images import RawPuller, RawPusher
from tests.rig.tools import require_tool


def opener(*registries):
    factories = {r.host: ClientFactory({"plain_http": True, "retries": 1, "timeout": 30}) for r in registries}

    def open_repository(reference, _side):
        return factories[reference.registry].repository(reference)
    return open_repository


def transfer(src: str, dest: str, *registries, **options):
    tags = options.pop("tags", None)
    return run_transfer(src, dest, CopyOptions(**options), opener(*registries), tag_patterns=tags)


def skopeo(*args: str) -> str:
    done = subprocess.run([require_tool("skopeo"), *args], check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def config_of(registry, repository: str, tag: str) -> tuple[str, list[str]]:
    """Config digest and diff_ids of an image in a registry (read with the rig's puller)."""
    puller = RawPuller.for_registry(registry)
    manifest = json.loads(puller.manifest(repository, tag)[0])
    config = json.loads(puller.blob(repository, manifest["config"]["digest"]))
    return manifest["config"]["digest"], config["rootfs"]["diff_ids"]


@pytest.mark.parametrize("transport", ["oci", "oci-archive"])
@pytest.mark.parametrize("kind", ["image", "index"])
def test_skopeo_reads_what_we_write(plain_registry, registry_factory, tmp_path, transport, kind):
    content = (images.make_image("ours", layers=2, layer_size=120_000) if kind == "image"
               else images.make_multiarch("ours", ("linux/amd64", "linux/arm64/v8", "linux/s390x")))
    RawPusher.for_registry(plain_registry).push("src/app", content, tag="1.0")
    where = tmp_path / ("bundle" if transport == "oci" else "bundle.tar")
    done = transfer(f"{plain_registry.host}/src/app:1.0", f"{transport}:{where}", plain_registry)
    assert done.copy.digest == content.digest
    # skopeo names an entry by the part after the path, here our full name team/app:tag spelling.
    local = f"{transport}:{where}:src/app:1.0"
    assert json.loads(skopeo("inspect", "--raw", local)) == content.manifest
    dest_registry = registry_factory()
    skopeo("copy", "--all", "--preserve-digests", "--dest-tls-verify=false", local,
           f"docker://{dest_registry.host}/back/app:1.0")
    assert RawPuller.for_registry(dest_registry).pull("back/app", "1.0").digest == content.digest


@pytest.mark.parametrize("transport", ["oci", "oci-archive"])
def test_we_read_what_skopeo_writes(plain_registry, registry_factory, tmp_path, transport):
    content = images.make_multiarch("theirs", ("linux/amd64", "linux/arm64/v8"), layer_size=80_000)
    RawPusher.for_registry(plain_registry).push("src/app", content, tag="2.0")
    where = tmp_path / ("skopeo" if transport == "oci" else "skopeo.tar")
    skopeo("copy", "--all", "--preserve-digests", "--src-tls-verify=false",
           f"docker://{plain_registry.host}/src/app:2.0", f"{transport}:{where}:2.0")
    dest_registry = registry_factory()
    done = transfer(f"{transport}:{where}:2.0", f"{dest_registry.host}/imported/app", dest_registry)
    assert done.copy.digest == content.digest and done.copy.dest_after == {"2.0": content.digest}
    assert RawPuller.for_registry(dest_registry).pull("imported/app", "2.0").digest == content.digest
    again = transfer(f"{transport}:{where}:2.0", f"{dest_registry.host}/imported/app", dest_registry)
    assert not again.copy.changed


def test_skopeo_reads_our_docker_archive(plain_registry, registry_factory, tmp_path):
    content = images.make_image("dock", docker=True, layers=2, layer_size=100_000)
    RawPusher.for_registry(plain_registry).push("src/app", content, tag="1")
    archive = tmp_path / "saved.tar"
    done = transfer(f"{plain_registry.host}/src/app:1", f"docker-archive:{archive}:team/app:1", plain_registry)
    assert any("change" in note for note in done.copy.notes)
    dest_registry = registry_factory()
    skopeo("copy", "--dest-tls-verify=false", f"docker-archive:{archive}:team/app:1",
           f"docker://{dest_registry.host}/back/app:1")
    config, diff_ids = config_of(dest_registry, "back/app", "1")
    assert config == content.config.digest
    assert diff_ids == [layer.diff_id for layer in content.layers]


def test_we_read_skopeos_docker_archive(plain_registry, registry_factory, tmp_path):
    content = images.make_image("sdock", docker=True, layers=3, layer_size=60_000)
    RawPusher.for_registry(plain_registry).push("src/app", content, tag="1")
    archive = tmp_path / "skopeo-saved.tar"
    skopeo("copy", "--src-tls-verify=false", f"docker://{plain_registry.host}/src/app:1",
           f"docker-archive:{archive}:example/app:1")
    dest_registry = registry_factory()
    done = transfer(f"docker-archive:{archive}:example/app:1", f"{dest_registry.host}/imported/app",
                    dest_registry)
    assert done.copy.dest_after == {"1": done.copy.digest}
    config, diff_ids = config_of(dest_registry, "imported/app", "1")
    assert config == content.config.digest
    assert diff_ids == [layer.diff_id for layer in content.layers]
    pulled = RawPuller.for_registry(dest_registry).pull("imported/app", "1")  # every blob verifies
    assert pulled.digest == done.copy.digest


# -- Docker-typed images in OCI layouts --------------------------------------------------------------
# containers/image (skopeo 1.9.3 here, 1.18 on Debian 13 alike) looks an index.json entry up by name only among
# OCI media types. A byte-exact export of a Docker manifest list is unreadable to it, and we must say so;
# format: oci (to_oci) converts, as skopeo's own --format oci does.


def skopeo_fails(*args: str) -> str:
    done = subprocess.run(["skopeo", *args], check=False, capture_output=True, text=True)
    assert done.returncode != 0, done.stdout
    return done.stderr


@pytest.mark.parametrize("transport", ["oci", "oci-archive"])
def test_a_docker_index_kept_byte_exact_is_reported_unreadable_to_skopeo(plain_registry, registry_factory, tmp_path,
                                                                         transport):
    content = images.make_multiarch("dockerlist", docker=True)
    RawPusher.for_registry(plain_registry).push("src/app", content, tag="1.0")
    where = tmp_path / ("bundle" if transport == "oci" else "bundle.tar")
    done = transfer(f"{plain_registry.host}/src/app:1.0", f"{transport}:{where}", plain_registry)
    (warning,) = done.warnings
    assert "src/app:1.0" in warning and "skopeo, podman" in warning and "format: oci" in warning
    assert warning in done.copy.notes
    assert done.copy.digest == content.digest and done.copy.converted == []
    # What the warning says is true: skopeo cannot read the entry.
    dest_registry = registry_factory()
    error = skopeo_fails("copy", "--all", "--preserve-digests", "--dest-tls-verify=false",
                         f"{transport}:{where}:src/app:1.0", f"docker://{dest_registry.host}/back/app:1.0")
    # skopeo 1.9 (Debian 12) finds no entry of an OCI type by that name; 1.18 (Debian 13) finds it and
    # refuses its Docker media type. Either way it cannot read what we wrote.
    assert ("no descriptor found for reference" in error
            or "unsupported manifest MIME types" in error and "manifest.list.v2+json" in error), error


@pytest.mark.parametrize("transport", ["oci", "oci-archive"])
def test_a_docker_index_converted_to_oci_is_read_and_copied_back_by_skopeo(plain_registry, registry_factory,
                                                                           tmp_path, transport):
    content = images.make_multiarch("dockerlist", docker=True)
    RawPusher.for_registry(plain_registry).push("src/app", content, tag="1.0")
    where = tmp_path / ("bundle" if transport == "oci" else "bundle.tar")
    done = transfer(f"{plain_registry.host}/src/app:1.0", f"{transport}:{where}", plain_registry, to_oci=True)
    assert done.warnings == []
    converted = {item["from"]: item for item in done.copy.converted}
    assert set(converted) == {content.digest} | {child.digest for child in content.children}
    assert converted[content.digest]["to"] == done.copy.digest != content.digest
    assert done.copy.media_type == "application/vnd.oci.image.index.v1+json"
    local = f"{transport}:{where}:src/app:1.0"
    index = json.loads(skopeo("inspect", "--raw", local))
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert [m["digest"] for m in index["manifests"]] == [converted[c.digest]["to"] for c in content.children]
    dest_registry = registry_factory()
    skopeo("copy", "--all", "--preserve-digests", "--dest-tls-verify=false", local,
           f"docker://{dest_registry.host}/back/app:1.0")
    assert RawPuller.for_registry(dest_registry).pull("back/app", "1.0").digest == done.copy.digest
    # Blobs keep their bytes: the configs and layers are the source's.
    for child in content.children:
        manifest = json.loads(RawPuller.for_registry(dest_registry).manifest(
            "back/app", converted[child.digest]["to"])[0])
        assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
        assert manifest["config"] == {**child.config.descriptor(),
                                      "mediaType": "application/vnd.oci.image.config.v1+json"}
        assert [layer["digest"] for layer in manifest["layers"]] == [layer.digest for layer in child.layers]
    # Deterministic and idempotent: a second run converts to the same digests and writes nothing.
    again = transfer(f"{plain_registry.host}/src/app:1.0", f"{transport}:{where}", plain_registry, to_oci=True)
    assert again.copy.digest == done.copy.digest and not again.copy.changed and not again.changed


def test_converting_drops_referrers_of_converted_manifests_and_says_so(plain_registry, tmp_path):
    content = images.make_multiarch("dockersigned", docker=True)
    sbom = images.make_artifact(content)
    pusher = RawPusher.for_registry(plain_registry)
    pusher.push("src/app", content, tag="1.0")
    pusher.push("src/app", sbom, tag=None)
    pusher.push_referrers("src/app", content, [sbom])
    where = tmp_path / "bundle"
    done = transfer(f"{plain_registry.host}/src/app:1.0", f"oci:{where}", plain_registry, to_oci=True,
                    referrers=True)
    assert any(sbom.digest in note and "left out" in note for note in done.copy.notes), done.copy.notes
    entries = json.loads((where / "index.json").read_text())["manifests"]
    assert sbom.digest not in [entry["digest"] for entry in entries]
    assert not (where / "blobs" / "sha256" / sbom.digest.split(":")[1]).exists()


def test_format_oci_request_floor_between_registries(plain_registry, registry_factory):
    """format: oci reads every source manifest (the conversion needs their bytes) and asks the destination once
    per converted manifest: a first copy of a 2-platform Docker list, and a no-op second run, counted."""
    content = images.make_multiarch("floor", docker=True)
    RawPusher.for_registry(plain_registry).push("src/app", content, tag="1.0")
    dest_registry = registry_factory()
    src, dest = f"{plain_registry.host}/src/app:1.0", f"{dest_registry.host}/oci/app:1.0"
    first = transfer(src, dest, plain_registry, dest_registry, to_oci=True)
    assert first.copy.changed and len(first.copy.converted) == 3
    assert RawPuller.for_registry(dest_registry).pull("oci/app", "1.0").digest == first.copy.digest
    src_mark, dest_mark = plain_registry.mark(), dest_registry.mark()
    again = transfer(src, dest, plain_registry, dest_registry, to_oci=True)
    assert not again.copy.changed and again.copy.digest == first.copy.digest
    src_requests = [(r.method, r.path.rsplit("/", 2)[-2]) for r in plain_registry.requests_since(src_mark)]
    dest_requests = [(r.method, r.path.rsplit("/", 2)[-2]) for r in dest_registry.requests_since(dest_mark)]
    # Source: resolve the tag, then the index and its two children by digest.
    assert sorted(src_requests) == [("GET", "manifests")] * 3 + [("HEAD", "manifests")], src_requests
    # Destination: the tag (which already names the converted index), then each converted child (present: no
    # blob is asked about, nothing is written).
    assert sorted(dest_requests) == [("HEAD", "manifests")] * 3, dest_requests


def test_a_mirror_into_a_layout_warns_for_its_docker_typed_tags_only(plain_registry, tmp_path):
    pusher = RawPusher.for_registry(plain_registry)
    pusher.push("src/app", images.make_multiarch("mirror-docker", docker=True), tag="docker")
    pusher.push("src/app", images.make_image("mirror-oci"), tag="oci")
    where = tmp_path / "bundle.tar"
    done = transfer(f"{plain_registry.host}/src/app", f"oci-archive:{where}", plain_registry, tags=[".*"])
    (warning,) = done.warnings
    assert "src/app:docker" in warning and "src/app:oci" not in warning
    converted = transfer(f"{plain_registry.host}/src/app", f"oci-archive:{tmp_path / 'oci.tar'}", plain_registry,
                         tags=[".*"], to_oci=True)
    assert converted.warnings == [] and not converted.mirror.failed
    local = f"oci-archive:{tmp_path / 'oci.tar'}:src/app:docker"
    assert json.loads(skopeo("inspect", "--raw", local))["mediaType"] == "application/vnd.oci.image.index.v1+json"
