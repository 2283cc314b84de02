"""The copy engine against real Distribution 2.8 registries.

Content is seeded with the rig's raw pusher (or skopeo), never with our own
client, and checked with skopeo and the rig's raw puller, which verify every
digest themselves. Request counts come from the registries' access logs.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
import requests

from ansible_collections.ocireg.registry.plugins.module_utils._glue.clients import ClientFactory
from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.image import (
    CopyOptions,
    copy_image,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.sync.run import (
    SyncOptions,
    mirror_tags,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    DigestMismatchError,
    InvalidInputError,
    NotFoundError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.reference import Reference
from tests.rig import images
from tests.rig.images import RawPuller, RawPusher

SCHEMA1 = {"compatibility": {"schema1": {"enabled": True}}}
FOREIGN_URLS = {"validation": {"manifests": {"urls": {"allow": ["^https?://"]}}}}


# --- helpers -----------------------------------------------------------------------------------


def repo(registry, name: str, factory: ClientFactory | None = None):
    """Our Repository for ``registry/name``, with the registry's credentials and TLS files."""
    if factory is None:
        factory = ClientFactory(client_options(registry))
    return factory.repository(Reference.parse(f"{registry.host}/{name}"))


def client_options(registry) -> dict:
    return {"username": registry.username, "password": registry.password, "ca_path": registry.ca_path,
            "plain_http": registry.scheme == "http", "retries": 1, "timeout": 30}


def skopeo_raw(registry, name: str, reference: str) -> bytes:
    """``skopeo inspect --raw``: the manifest bytes as a third-party tool reads them."""
    out = subprocess.run(["skopeo", "inspect", "--raw", *registry.skopeo_args(),
                          registry.docker_ref(name, reference)], capture_output=True, check=True)
    return out.stdout


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def skopeo_copy(src_registry, src: str, dest_registry, dest: str, *extra: str) -> None:
    subprocess.run(["skopeo", "copy", "--all", "--preserve-digests", *extra,
                    *src_registry.skopeo_args("src"), *dest_registry.skopeo_args("dest"),
                    f"docker://{src_registry.host}/{src}", f"docker://{dest_registry.host}/{dest}"],
                   capture_output=True, check=True)


def assert_complete_copy(registry, name: str, tag: str, content) -> None:
    """The destination tag holds the exact source bytes, and everything below it verifies."""
    raw = skopeo_raw(registry, name, tag)
    assert raw == content.data and sha256(raw) == content.digest
    pulled = RawPuller.for_registry(registry).pull(name, tag)  # verifies every digest and size
    assert pulled.digest == content.digest


def no_tags(registry, name: str) -> bool:
    """True when the repository has no tag (Distribution says NAME_UNKNOWN when it has none)."""
    response = requests.get(f"{registry.url}/v2/{name}/tags/list", timeout=10)
    return response.status_code == 404 or not response.json().get("tags")


def blob_writes(requests_logged) -> list:
    """Uploads that carry content (PUT/PATCH on upload sessions), as opposed to mounts."""
    return [r for r in requests_logged if r.method in ("PUT", "PATCH") and "/blobs/uploads/" in r.path]


def blob_file(registry, digest: str) -> Path:
    hexpart = digest.partition(":")[2]
    return registry.storage / "docker/registry/v2/blobs/sha256" / hexpart[:2] / hexpart / "data"


def corrupt(registry, digest: str) -> None:
    """Flip bytes of a stored blob in place (same size, so only the digest check can catch it)."""
    path = blob_file(registry, digest)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


CONTENT = {
    "docker-schema2": lambda: images.make_image("d2", docker=True, layers=2, layer_size=300_000),
    "oci-manifest": lambda: images.make_image("oci", layers=2, layer_size=300_000),
    "oci-index": lambda: images.make_multiarch("oidx", ("linux/amd64", "linux/arm64/v8", "linux/s390x")),
    "docker-manifest-list": lambda: images.make_multiarch("dlist", ("linux/amd64", "linux/arm/v7"), docker=True),
    "artifact-with-subject": lambda: images.make_artifact(images.make_image("subj")),
    "index-of-index": lambda: images.make_index([images.make_multiarch("inner"), images.make_image("solo")]),
}


def seed(registry, name: str, content, tag: str = "v1"):
    pusher = RawPusher.for_registry(registry)
    if isinstance(content, images.Image) and content.manifest.get("subject"):
        # The subject must be there too, or the artifact is an orphan (Distribution 2.8 accepts that, but
        # a copy test should not rely on it).
        subject = images.make_image("subj")
        pusher.push(name, subject, tag=None)
    return pusher.push(name, content, tag=tag)


# --- every manifest type -----------------------------------------------------------------------


@pytest.mark.skopeo
@pytest.mark.parametrize("kind", list(CONTENT))
def test_copy_across_registries_is_byte_exact(plain_registry, registry_factory, kind):
    content = CONTENT[kind]()
    seed(plain_registry, "src/app", content)
    dest_registry = registry_factory()
    result = copy_image(repo(plain_registry, "src/app"), "v1", repo(dest_registry, "dst/app"), ["v1", "stable"],
                        CopyOptions())
    assert result.digest == content.digest and result.changed
    assert result.media_type == content.media_type
    assert result.dest_before == {"v1": None, "stable": None}
    assert_complete_copy(dest_registry, "dst/app", "v1", content)
    assert_complete_copy(dest_registry, "dst/app", "stable", content)
    manifests = list(images.iter_content(content))
    blobs = {b.digest: b.size for m in manifests if isinstance(m, images.Image) for b in m.blobs()}
    assert result.copied == {"manifests": len(manifests), "blobs": len(blobs), "bytes": sum(blobs.values())}
    assert result.mounted == [] and result.already_present["blobs"] == 0


@pytest.mark.parametrize("kind", ["docker-schema2", "oci-index", "docker-manifest-list", "artifact-with-subject"])
def test_copy_across_repositories_mounts_every_blob(plain_registry, kind):
    content = CONTENT[kind]()
    seed(plain_registry, "src/app", content)
    mark = plain_registry.mark()
    result = copy_image(repo(plain_registry, "src/app"), "v1", repo(plain_registry, "other/app"), ["v1"],
                        CopyOptions())
    logged = plain_registry.requests_since(mark)
    blobs = {b.digest for m in images.iter_content(content) if isinstance(m, images.Image) for b in m.blobs()}
    assert sorted(result.mounted) == sorted(blobs)
    assert result.copied["blobs"] == 0 and result.copied["bytes"] == 0
    assert blob_writes(logged) == []  # zero blob bytes moved
    mounts = [r for r in logged if r.method == "POST" and "mount=" in r.path]
    assert len(mounts) == len(blobs) and all(r.status == 201 for r in mounts)
    assert_complete_copy(plain_registry, "other/app", "v1", content)


@pytest.mark.skopeo
def test_schema1_copied_as_is(registry_factory):
    """Schema 1 can only be made by a converter: skopeo --format v2s1 signs one (registry needs schema1 on)."""
    src = registry_factory(extra=SCHEMA1)
    dest = registry_factory(extra=SCHEMA1)
    RawPusher.for_registry(src).push("base/app", images.make_image("s1", docker=True, layers=2), tag="v1")
    subprocess.run(["skopeo", "copy", "--format", "v2s1", *src.skopeo_args("src"), *src.skopeo_args("dest"),
                    src.docker_ref("base/app", "v1"), src.docker_ref("old/app", "v1")], check=True,
                   capture_output=True)
    head = requests.head(f"{src.url}/v2/old/app/manifests/v1", timeout=10,
                         headers={"Accept": "application/vnd.docker.distribution.manifest.v1+prettyjws"})
    assert head.headers["Content-Type"] == "application/vnd.docker.distribution.manifest.v1+prettyjws"
    source_digest = head.headers["Docker-Content-Digest"]
    result = copy_image(repo(src, "old/app"), "v1", repo(dest, "copy/app"), ["v1"], CopyOptions())
    assert result.digest == source_digest
    assert result.media_type == "application/vnd.docker.distribution.manifest.v1+prettyjws"
    # Distribution re-signs schema 1 on every GET (ECDSA is randomised), so the signatures differ between
    # any two reads; the digest covers the signed payload, which must be identical.

    def payload(raw: bytes) -> dict:
        return {k: v for k, v in json.loads(raw).items() if k != "signatures"}

    assert payload(skopeo_raw(dest, "copy/app", "v1")) == payload(skopeo_raw(src, "old/app", "v1"))
    dest_head = requests.head(f"{dest.url}/v2/copy/app/manifests/v1", timeout=10,
                              headers={"Accept": "application/vnd.docker.distribution.manifest.v1+prettyjws"})
    assert dest_head.headers["Docker-Content-Digest"] == source_digest
    assert result.copied["blobs"] == 2 and result.copied["bytes"] > 0  # sizes counted while streaming


# --- idempotence, check mode -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["oci-manifest", "oci-index"])
def test_second_run_is_unchanged_with_two_requests(plain_registry, registry_factory, kind):
    content = CONTENT[kind]()
    seed(plain_registry, "src/app", content)
    dest_registry = registry_factory()
    src, dest = repo(plain_registry, "src/app"), repo(dest_registry, "dst/app")
    assert copy_image(src, "v1", dest, ["v1"], CopyOptions()).changed
    src_mark, dest_mark = plain_registry.mark(), dest_registry.mark()
    again = copy_image(src, "v1", dest, ["v1"], CopyOptions())
    assert not again.changed and again.digest == content.digest
    assert again.copied == {"manifests": 0, "blobs": 0, "bytes": 0} and again.mounted == []
    assert [(r.method, r.path) for r in plain_registry.requests_since(src_mark)] == \
        [("HEAD", "/v2/src/app/manifests/v1")]
    assert [(r.method, r.path) for r in dest_registry.requests_since(dest_mark)] == \
        [("HEAD", "/v2/dst/app/manifests/v1")]


def test_second_run_by_digest_without_tag_is_two_requests(plain_registry, registry_factory):
    content = images.make_image("bydigest")
    seed(plain_registry, "src/app", content)
    dest_registry = registry_factory()
    src, dest = repo(plain_registry, "src/app"), repo(dest_registry, "dst/app")
    first = copy_image(src, content.digest, dest, [], CopyOptions())
    assert first.changed and first.copied["manifests"] == 1
    assert no_tags(dest_registry, "dst/app")
    marks = plain_registry.mark(), dest_registry.mark()
    assert not copy_image(src, content.digest, dest, [], CopyOptions()).changed
    assert len(plain_registry.requests_since(marks[0])) + len(dest_registry.requests_since(marks[1])) == 2


def test_only_a_moved_tag_is_rewritten(plain_registry, registry_factory):
    content = images.make_image("moved")
    seed(plain_registry, "src/app", content)
    dest_registry = registry_factory()
    src, dest = repo(plain_registry, "src/app"), repo(dest_registry, "dst/app")
    copy_image(src, "v1", dest, ["v1"], CopyOptions())
    mark = dest_registry.mark()
    result = copy_image(src, "v1", dest, ["v1", "latest"], CopyOptions())
    assert result.changed and result.dest_before == {"v1": content.digest, "latest": None}
    assert [(r.method, r.path) for r in dest_registry.writes_since(mark)] == \
        [("PUT", "/v2/dst/app/manifests/latest")]
    assert result.copied == {"manifests": 0, "blobs": 0, "bytes": 0}


def test_check_mode_writes_nothing_and_predicts_the_copy(plain_registry, registry_factory):
    content = images.make_multiarch("chk", ("linux/amd64", "linux/arm64"), layers=2, layer_size=200_000)
    seed(plain_registry, "src/app", content)
    dest_registry = registry_factory()
    src, dest = repo(plain_registry, "src/app"), repo(dest_registry, "dst/app")
    marks = plain_registry.mark(), dest_registry.mark()
    predicted = copy_image(src, "v1", dest, ["v1"], CopyOptions(check_mode=True))
    assert plain_registry.writes_since(marks[0]) == [] and dest_registry.writes_since(marks[1]) == []
    assert {r.method for r in plain_registry.requests_since(marks[0]) + dest_registry.requests_since(marks[1])} \
        <= {"GET", "HEAD"}
    assert predicted.changed and predicted.dest_before == {"v1": None}
    assert predicted.dest_after == {"v1": content.digest}
    assert "check mode: nothing was written" in predicted.notes
    done = copy_image(src, "v1", dest, ["v1"], CopyOptions())
    assert predicted.copied == done.copied


def test_check_mode_predicts_mounts(plain_registry):
    content = images.make_image("chkmount", layers=2)
    seed(plain_registry, "src/app", content)
    mark = plain_registry.mark()
    predicted = copy_image(repo(plain_registry, "src/app"), "v1", repo(plain_registry, "other/app"), ["v1"],
                           CopyOptions(check_mode=True))
    assert plain_registry.writes_since(mark) == []
    assert sorted(predicted.mounted) == sorted(b.digest for b in content.blobs())
    assert predicted.copied["blobs"] == 0


def test_partial_destination_skips_what_is_there(plain_registry, registry_factory):
    shared = images.make_layer("shared-base", 150_000)
    old = images.make_image("old", layers=[shared])
    new = images.make_image("new", layers=[shared, images.make_layer("new-top", 1000)])
    seed(plain_registry, "src/app", new)
    dest_registry = registry_factory()
    RawPusher.for_registry(dest_registry).push("dst/app", old, tag="old")
    result = copy_image(repo(plain_registry, "src/app"), "v1", repo(dest_registry, "dst/app"), ["v1"],
                        CopyOptions())
    assert result.already_present["blobs"] == 1 and result.already_present["bytes"] == shared.size
    assert result.copied["blobs"] == 2  # the new config and the new layer
    assert_complete_copy(dest_registry, "dst/app", "v1", new)


# --- failures ----------------------------------------------------------------------------------


def test_corrupt_source_blob_aborts_without_a_tag(plain_registry, registry_factory):
    content = images.make_image("corrupt", layers=3, layer_size=2_500_000)
    seed(plain_registry, "src/app", content)
    corrupt(plain_registry, content.layers[1].digest)
    dest_registry = registry_factory()
    mark = dest_registry.mark()
    with pytest.raises(DigestMismatchError, match=content.layers[1].digest):
        copy_image(repo(plain_registry, "src/app"), "v1", repo(dest_registry, "dst/app"), ["v1"],
                   CopyOptions(concurrency=2))
    writes = dest_registry.writes_since(mark)
    assert not [r for r in writes if "/manifests/" in r.path]  # no manifest, no tag
    assert no_tags(dest_registry, "dst/app")
    # The corrupt blob was not committed either.
    assert requests.head(f"{dest_registry.url}/v2/dst/app/blobs/{content.layers[1].digest}",
                         timeout=10).status_code == 404


def test_corrupt_blob_in_one_platform_leaves_no_index_tag(plain_registry, registry_factory):
    content = images.make_multiarch("cidx", ("linux/amd64", "linux/arm64"), layer_size=500_000)
    seed(plain_registry, "src/app", content)
    corrupt(plain_registry, content.children[1].layers[0].digest)
    dest_registry = registry_factory()
    mark = dest_registry.mark()
    with pytest.raises(DigestMismatchError):
        copy_image(repo(plain_registry, "src/app"), "v1", repo(dest_registry, "dst/app"), ["v1"], CopyOptions())
    assert not [r for r in dest_registry.writes_since(mark) if "/manifests/" in r.path]
    assert no_tags(dest_registry, "dst/app")


def test_missing_source_is_a_clear_error(plain_registry, registry_factory):
    with pytest.raises(NotFoundError, match=r"source image .*/src/none:v1 does not exist"):
        copy_image(repo(plain_registry, "src/none"), "v1", repo(registry_factory(), "dst/app"), ["v1"],
                   CopyOptions())


@pytest.mark.parametrize("concurrency", [0, 17, True])
def test_bad_concurrency_is_refused_before_any_request(plain_registry, concurrency):
    mark = plain_registry.mark()
    with pytest.raises(InvalidInputError, match="concurrency"):
        copy_image(repo(plain_registry, "a/b"), "v1", repo(plain_registry, "c/d"), ["v1"],
                   CopyOptions(concurrency=concurrency))
    assert plain_registry.requests_since(mark) == []


# --- platforms ---------------------------------------------------------------------------------


def test_platform_subset_needs_opt_in_to_tag(plain_registry, registry_factory):
    content = images.make_multiarch("plat", ("linux/amd64", "linux/arm64", "linux/s390x"))
    seed(plain_registry, "src/app", content)
    dest_registry = registry_factory()
    mark = dest_registry.mark()
    with pytest.raises(InvalidInputError, match="allow_index_rewrite"):
        copy_image(repo(plain_registry, "src/app"), "v1", repo(dest_registry, "dst/app"), ["v1"],
                   CopyOptions(platforms=("linux/arm64",)))
    assert dest_registry.writes_since(mark) == []


def test_platform_subset_by_digest_copies_only_those_images(plain_registry, registry_factory):
    content = images.make_multiarch("platd", ("linux/amd64", "linux/arm64", "linux/s390x"))
    seed(plain_registry, "src/app", content)
    dest_registry = registry_factory()
    result = copy_image(repo(plain_registry, "src/app"), content.digest, repo(dest_registry, "dst/app"), [],
                        CopyOptions(platforms=("linux/arm64",)))
    puller = RawPuller.for_registry(dest_registry)
    arm = content.children[1]
    assert puller.pull("dst/app", arm.digest).digest == arm.digest
    assert puller.head_manifest("dst/app", content.children[0].digest).status_code == 404
    assert puller.head_manifest("dst/app", content.digest).status_code == 404
    assert result.copied["manifests"] == 1
    assert any("allow_index_rewrite is off" in note for note in result.notes)


def test_platform_subset_with_rewrite(plain_registry, registry_factory):
    content = images.make_multiarch("platr", ("linux/amd64", "linux/arm64", "linux/s390x"), docker=True)
    seed(plain_registry, "src/app", content)
    dest_registry = registry_factory()
    src, dest = repo(plain_registry, "src/app"), repo(dest_registry, "dst/app")
    options = CopyOptions(platforms=("linux/amd64", "linux/s390x"), allow_index_rewrite=True)
    result = copy_image(src, "v1", dest, ["v1"], options)
    raw = skopeo_raw(dest_registry, "dst/app", "v1")
    assert result.digest == sha256(raw) != content.digest
    listed = [m["digest"] for m in json.loads(raw)["manifests"]]
    assert listed == [content.children[0].digest, content.children[2].digest]
    RawPuller.for_registry(dest_registry).pull("dst/app", "v1")  # everything below verifies
    assert any(content.digest in note for note in result.notes)
    marks = plain_registry.mark(), dest_registry.mark()
    again = copy_image(src, "v1", dest, ["v1"], options)
    assert not again.changed and again.digest == result.digest
    # HEAD + GET of the source index (the new digest is only known then), HEAD of the tag.
    assert [r.method for r in plain_registry.requests_since(marks[0])] == ["HEAD", "GET"]
    assert [r.method for r in dest_registry.requests_since(marks[1])] == ["HEAD"]


# --- referrers ---------------------------------------------------------------------------------


def _seed_with_referrers(registry):
    """An image, an SBOM for it and a signature of the SBOM, listed with the tag-schema fallback."""
    image = images.make_image("withrefs", layers=1)
    sbom = images.make_artifact(image)
    signature = images.make_artifact(sbom, artifact_type="application/vnd.ocireg.test.sig", payload=b"sig")
    pusher = RawPusher.for_registry(registry)
    pusher.push("src/app", image, tag="v1")
    pusher.push_referrers("src/app", image, [sbom])
    pusher.push_referrers("src/app", sbom, [signature])
    return image, sbom, signature


def test_referrers_copied_recursively_with_the_fallback_tags(plain_registry, registry_factory):
    image, sbom, signature = _seed_with_referrers(plain_registry)
    dest_registry = registry_factory()
    src, dest = repo(plain_registry, "src/app"), repo(dest_registry, "dst/app")
    result = copy_image(src, "v1", dest, ["v1"], CopyOptions(referrers=True))
    assert result.copied["manifests"] == 3
    puller = RawPuller.for_registry(dest_registry)
    for subject, referrer in ((image, sbom), (sbom, signature)):
        assert puller.pull("dst/app", referrer.digest).manifest == referrer.data
        raw, media_type = puller.manifest("dst/app", images.referrers_tag(subject))[:2]
        assert media_type == images.OCI_INDEX
        assert [m["digest"] for m in json.loads(raw)["manifests"]] == [referrer.digest]
    # Nothing new on the second run, and nothing written.
    mark = dest_registry.mark()
    again = copy_image(src, "v1", dest, ["v1"], CopyOptions(referrers=True))
    assert not again.changed and dest_registry.writes_since(mark) == []


def test_referrers_not_copied_unless_asked(plain_registry, registry_factory):
    image, sbom = _seed_with_referrers(plain_registry)[:2]
    dest_registry = registry_factory()
    copy_image(repo(plain_registry, "src/app"), "v1", repo(dest_registry, "dst/app"), ["v1"], CopyOptions())
    puller = RawPuller.for_registry(dest_registry)
    assert puller.head_manifest("dst/app", sbom.digest).status_code == 404
    assert puller.head_manifest("dst/app", images.referrers_tag(image)).status_code == 404


def test_new_referrer_of_an_existing_image_is_copied(plain_registry, registry_factory):
    image, sbom, signature = _seed_with_referrers(plain_registry)
    dest_registry = registry_factory()
    src, dest = repo(plain_registry, "src/app"), repo(dest_registry, "dst/app")
    copy_image(src, "v1", dest, ["v1"], CopyOptions())  # image only
    result = copy_image(src, "v1", dest, ["v1"], CopyOptions(referrers=True))
    assert result.changed and result.copied["manifests"] == 2 and result.already_present["manifests"] == 1
    raw = RawPuller.for_registry(dest_registry).manifest("dst/app", images.referrers_tag(image))[0]
    assert [m["digest"] for m in json.loads(raw)["manifests"]] == [sbom.digest]


# --- non-distributable layers ------------------------------------------------------------------


def test_foreign_layers_left_out_with_a_note(registry_factory):
    """Distribution only accepts foreign URLs it is configured to allow, hence the custom registries."""
    src_registry, dest_registry = registry_factory(extra=FOREIGN_URLS), registry_factory(extra=FOREIGN_URLS)
    base = images.make_image("win", docker=True)
    foreign = {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
               "digest": "sha256:" + "f" * 64, "size": 12345, "urls": ["https://example.invalid/base.tgz"]}
    doc = base.manifest
    doc["layers"].insert(0, foreign)
    content = images.Image(json.dumps(doc, indent=3).encode(), images.DOCKER_MANIFEST, config=base.config,
                           layers=base.layers)
    RawPusher.for_registry(src_registry).push("src/win", content, tag="v1")
    result = copy_image(repo(src_registry, "src/win"), "v1", repo(dest_registry, "dst/win"), ["v1"],
                        CopyOptions())
    assert skopeo_raw(dest_registry, "dst/win", "v1") == content.data
    assert any("non-distributable" in note and foreign["digest"] in note for note in result.notes)
    assert result.copied["blobs"] == 2  # config and the ordinary layer
    assert requests.head(f"{dest_registry.url}/v2/dst/win/blobs/{foreign['digest']}", timeout=10).status_code == 404


# --- auth --------------------------------------------------------------------------------------


def test_copy_from_basic_to_token_registry(basic_registry, token_registry):
    content = images.make_multiarch("auth", ("linux/amd64", "linux/arm64"))
    seed(basic_registry, "team/app", content)
    result = copy_image(repo(basic_registry, "team/app"), "v1", repo(token_registry, "team/copy"), ["v1"],
                        CopyOptions())
    assert result.digest == content.digest
    assert_complete_copy(token_registry, "team/copy", "v1", content)


def test_mount_within_a_token_registry(token_registry):
    content = images.make_image("tokmount", layers=2)
    seed(token_registry, "team/app", content)
    mark = token_registry.mark()
    result = copy_image(repo(token_registry, "team/app"), "v1", repo(token_registry, "team/other"), ["v1"],
                        CopyOptions())
    assert sorted(result.mounted) == sorted(b.digest for b in content.blobs())
    assert blob_writes(token_registry.requests_since(mark)) == []


def test_mount_refused_falls_back_to_upload(token_server, token_registry):
    """Source read as alice, destination written as bob, who may not read the source: the mount is refused."""
    from tests.rig.token_server import grant

    content = images.make_image("refused", layers=1)
    seed(token_registry, "private/app", content)
    token_server.acl.append(grant("bob", "bob/*", "pull", "push"))
    bob = ClientFactory({**client_options(token_registry), "username": "bob", "password": "bobpass"})
    mark = token_registry.mark()
    result = copy_image(repo(token_registry, "private/app"), "v1", repo(token_registry, "bob/app", bob), ["v1"],
                        CopyOptions())
    assert result.mounted == [] and result.copied["blobs"] == 2
    logged = token_registry.requests_since(mark)
    assert any(r.method == "POST" and "mount=" in r.path for r in logged)  # it was tried
    assert_complete_copy(token_registry, "bob/app", "v1", content)


# --- skopeo interop ----------------------------------------------------------------------------


@pytest.mark.skopeo
def test_skopeo_copies_then_we_copy(plain_registry, registry_factory):
    content = images.make_multiarch("sk1", ("linux/amd64", "linux/arm64"), layer_size=100_000)
    seed(plain_registry, "src/app", content)
    middle, last = registry_factory(), registry_factory()
    skopeo_copy(plain_registry, "src/app:v1", middle, "mid/app:v1")
    result = copy_image(repo(middle, "mid/app"), "v1", repo(last, "end/app"), ["v1"], CopyOptions())
    assert result.digest == content.digest
    assert_complete_copy(last, "end/app", "v1", content)


@pytest.mark.skopeo
def test_we_copy_then_skopeo_copies(plain_registry, registry_factory):
    content = images.make_multiarch("sk2", ("linux/amd64", "linux/arm64"), docker=True, layer_size=100_000)
    seed(plain_registry, "src/app", content)
    middle, last = registry_factory(), registry_factory()
    copy_image(repo(plain_registry, "src/app"), "v1", repo(middle, "mid/app"), ["v1"], CopyOptions())
    skopeo_copy(middle, "mid/app:v1", last, "end/app:v1")
    assert_complete_copy(last, "end/app", "v1", content)


# --- mirrors -----------------------------------------------------------------------------------


def test_mirror_copies_matching_tags_and_is_idempotent(plain_registry, registry_factory):
    pusher = RawPusher.for_registry(plain_registry)
    shared = images.make_layer("mirror-base", 100_000)
    contents = {tag: images.make_image(f"m-{tag}", layers=[shared, images.make_layer(f"m-{tag}", 500)])
                for tag in ("1.0", "1.1", "2.0", "dev")}
    for tag, content in contents.items():
        pusher.push("src/app", content, tag=tag)
    dest_registry = registry_factory()
    src, dest = repo(plain_registry, "src/app"), repo(dest_registry, "dst/app")
    # One tag at a time: the shared layer is then uploaded once, by the first tag.
    summary = mirror_tags(src, dest, [r"1\..*", "dev"], SyncOptions(concurrency=1, keep_going=False))
    assert summary.changed and sorted(summary.tags) == ["1.0", "1.1", "dev"]
    assert summary.failed == {} and summary.not_attempted == []
    assert sorted(RawPuller.for_registry(dest_registry).tags("dst/app")) == ["1.0", "1.1", "dev"]
    for tag in ("1.0", "1.1", "dev"):
        assert_complete_copy(dest_registry, "dst/app", tag, contents[tag])
    # The shared layer is uploaded once, by the first tag; the later tags find it, and it counts once,
    # as copied (it was not there before the mirror): 3 configs, 3 own layers and the shared one.
    assert summary.copied["blobs"] == 7 and summary.already_present == {"manifests": 0, "blobs": 0, "bytes": 0}
    marks = plain_registry.mark(), dest_registry.mark()
    again = mirror_tags(src, dest, [r"1\..*", "dev"], SyncOptions(keep_going=False))
    assert not again.changed
    # One tags/list, then one HEAD per image on each side.
    assert len(plain_registry.requests_since(marks[0])) == 1 + 3
    assert len(dest_registry.requests_since(marks[1])) == 3


@pytest.mark.parametrize("keep_going", [True, False])
def test_mirror_failure_per_tag(plain_registry, registry_factory, keep_going):
    pusher = RawPusher.for_registry(plain_registry)
    contents = {tag: images.make_image(f"f-{tag}", layer_size=50_000) for tag in ("a", "b", "c")}
    for tag, content in contents.items():
        pusher.push("src/app", content, tag=tag)
    corrupt(plain_registry, contents["b"].layers[0].digest)
    dest_registry = registry_factory()
    # One tag at a time, so that "stops at the first failure" leaves exactly the later tags untried
    # (with more workers, tags already in flight finish).
    summary = mirror_tags(repo(plain_registry, "src/app"), repo(dest_registry, "dst/app"), [".*"],
                          SyncOptions(concurrency=1, keep_going=keep_going))
    assert list(summary.failed) == ["b"]
    assert summary.failed["b"]["type"] == "DigestMismatchError"
    tags = sorted(RawPuller.for_registry(dest_registry).tags("dst/app"))
    if keep_going:
        assert tags == ["a", "c"] and summary.not_attempted == []
    else:
        assert tags == ["a"] and summary.not_attempted == ["c"]
