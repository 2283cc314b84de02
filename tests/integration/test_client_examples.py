"""The client, one runnable example per verb: the cheapest way in for a newcomer.

Modelled on oras-go's ``example_test.go``: each ``example_*`` function below is what you would
write to use the client (``_client/registry.py``) on its own, with no Ansible in sight, and ends
with the ``# Output:`` it prints. The tests at the bottom run every example against a real
Distribution 2.8 registry from the rig and compare what it printed with that block, so an example
that stops being true fails here. Read them in order: push, resolve, fetch a manifest, fetch a
blob, tag, list tags, copy.

Everything an example pushes is built from fixed bytes here, so the digests printed are the same
on every run.
"""
from __future__ import annotations

import inspect
import io
import json
import tarfile
from collections.abc import Callable

import pytest
from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import Registry
from ansible_collections.ocireg.registry.plugins.module_utils._model.digest import compute_digest
from ansible_collections.ocireg.registry.plugins.module_utils._model.mediatypes import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.image import (
    CopyOptions,
    copy_image,
)

from tests.rig.flavours import RigRegistry


def _layer() -> bytes:
    """One uncompressed tar layer holding ``hello.txt``, byte-for-byte the same on every run."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        data = b"hello, registry\n"
        info = tarfile.TarInfo("hello.txt")
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


LAYER = _layer()
CONFIG = json.dumps({"architecture": "amd64", "os": "linux",
                     "rootfs": {"type": "layers", "diff_ids": [compute_digest(LAYER)]}},
                    separators=(",", ":")).encode()


def example_push(host: str) -> None:
    # A Registry talks plain HTTP to a loopback host and TLS to any other; credentials are optional.
    registry = Registry(host)
    repo = registry.repository("demo/hello", for_write=True)
    # Blobs first (the config and each layer), each named by its digest; the manifest last.
    for blob in (CONFIG, LAYER):
        repo.push_blob(compute_digest(blob), len(blob), blob)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": compute_digest(CONFIG), "size": len(CONFIG)},
        "layers": [{"mediaType": OCI_LAYER, "digest": compute_digest(LAYER), "size": len(LAYER)}],
    }, separators=(",", ":")).encode()
    # push_manifest sends these exact bytes and checks the digest the registry answers with.
    print(repo.push_manifest("v1", manifest, OCI_MANIFEST))
    # Output:
    # sha256:8c67187d0b7fac3cf53dbf718c02d567e41210bc00a4e3e08c343ed51cd9da3b


def example_resolve(host: str) -> None:
    # resolve answers what a tag points at (a descriptor), or None when the tag does not exist.
    repo = Registry(host).repository("demo/hello")
    descriptor = repo.resolve("v1")
    print(descriptor.digest)
    print(descriptor.media_type, descriptor.size)
    print(repo.resolve("no-such-tag"))
    # Output:
    # sha256:8c67187d0b7fac3cf53dbf718c02d567e41210bc00a4e3e08c343ed51cd9da3b
    # application/vnd.oci.image.manifest.v1+json 398
    # None


def example_fetch_manifest(host: str) -> None:
    # fetch_manifest reads a manifest by tag or digest, checks its bytes against its digest and
    # parses it; .raw keeps the exact bytes (push those, never a re-serialisation).
    manifest = Registry(host).repository("demo/hello").fetch_manifest("v1")
    print(manifest.media_type)
    print("config", manifest.config.digest, manifest.config.size)
    for layer in manifest.layers:
        print("layer", layer.digest, layer.size)
    # Output:
    # application/vnd.oci.image.manifest.v1+json
    # config sha256:3ec82c9b866016758dbdf2aa18de443a30dd3bfb571bbf0bd390e26699a34ac8 151
    # layer sha256:80bf3305936fffaa80e39fd23ee43b0d2f81bba41548eb6ebc6d0a42c7ed79a3 10240


def example_fetch_blob(host: str) -> None:
    # fetch_blob streams a blob in chunks and raises before the last chunk if the bytes do not hash
    # to the digest asked for, so nothing unverified is ever used.
    repo = Registry(host).repository("demo/hello")
    layer = repo.fetch_manifest("v1").layers[0]
    with repo.fetch_blob(layer.digest, layer.size) as chunks:
        data = b"".join(chunks)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar:
            print(member.name, tar.extractfile(member).read())
    # Output:
    # hello.txt b'hello, registry\n'


def example_tag(host: str) -> None:
    # Tagging is pushing a manifest's exact bytes under another tag: no blob moves.
    # (The tag list comes in the registry's order, which Distribution does not promise: sorted here.)
    repo = Registry(host).repository("demo/hello", for_write=True)
    manifest = repo.fetch_manifest("v1")
    print(repo.push_manifest("stable", manifest.raw, manifest.media_type) == manifest.digest)
    print(sorted(repo.tags()))
    # Output:
    # True
    # ['stable', 'v1']


def example_list_tags(host: str) -> None:
    # tags() follows the registry's pages (Link headers) and returns every tag of the repository.
    registry = Registry(host)
    print(registry.repository("demo/hello").tags())
    print(list(registry.catalog()))
    # Output:
    # ['v1']
    # ['demo/hello']


def example_copy(host: str) -> None:
    # copy_image (an operation, _ops/copying) copies an image's whole graph between any two image
    # stores, here two repositories of one registry: blobs first, verified, the tag last.
    registry = Registry(host)
    src = registry.repository("demo/hello")
    dest = registry.repository("mirror/hello", for_write=True)
    result = copy_image(src, "v1", dest, ["v1"], CopyOptions())
    print(result.digest == src.resolve("v1").digest, result.changed)
    print(dest.tags())
    # A second copy finds everything in place and writes nothing.
    print(copy_image(src, "v1", dest, ["v1"], CopyOptions()).changed)
    # Output:
    # True True
    # ['v1']
    # False


EXAMPLES: list[Callable[[str], None]] = [example_push, example_resolve, example_fetch_manifest, example_fetch_blob,
                                         example_tag, example_list_tags, example_copy]


def expected_output(example: Callable[[str], None]) -> list[str]:
    """The lines of the example's ``# Output:`` block, as the example must print them."""
    lines = inspect.getsource(example).splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "# Output:")
    return [line.strip()[2:] for line in lines[start + 1:] if line.strip().startswith("#")]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda f: f.__name__)
def test_each_example_prints_its_output(example: Callable[[str], None], plain_registry: RigRegistry,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    # Every example but the push starts from the repository the push example leaves behind.
    if example is not example_push:
        example_push(plain_registry.host)
        capsys.readouterr()
    example(plain_registry.host)
    assert capsys.readouterr().out.splitlines() == expected_output(example)


def test_every_example_is_run_and_has_an_output_block() -> None:
    found = [f for name, f in globals().items() if name.startswith("example_") and callable(f)]
    assert sorted(f.__name__ for f in found) == sorted(f.__name__ for f in EXAMPLES)
    assert all(expected_output(f) for f in EXAMPLES)
