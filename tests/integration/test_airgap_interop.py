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
