"""The registry API (Registry / Repository) against real CNCF Distribution 2.8.

Every endpoint Distribution 2.8 implements is driven here in each rig flavour
(plain, basic, token, TLS, mutual TLS) through ``each_registry``. Content is
cross-checked with the rig's raw clients (tests/rig/images.py), which share no
code with the client: what we push they pull and verify, what they push we
read. What Distribution 2.8 lacks (referrers API, tag DELETE, 429, chunk
minimums, Link quirks...) is covered with fakes in
tests/unit/plugins/module_utils/_client/test_registry.py.
"""
from __future__ import annotations

import functools
import hashlib
import json
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._client.credentials import Credentials
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    AuthorizationError,
    DigestMismatchError,
    NotFoundError,
    TransportError,
    UnsupportedError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import Descriptor
from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import Registry, Repository
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.core import TransportOptions
from tests.rig.flavours import RigRegistry
from tests.rig.token_server import grant
from tests.rig.images import (
    Blob,
    RawPuller,
    RawPusher,
    make_artifact,
    make_image,
    make_multiarch,
    make_referrers_index,
    referrers_tag,
    sha256_digest,
)

EMPTY_CONFIG_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"


def client(reg: RigRegistry, *, username: str | None = None, password: str | None = None,
           **options: object) -> Registry:
    """Our client for a rig registry, with its TLS files and (by default) its user."""
    if username is None and reg.username:
        username, password = reg.username, reg.password
    credentials = Credentials(username, password) if username else None
    opts = TransportOptions(ca_path=reg.ca_path, client_cert=reg.client_cert, client_key=reg.client_key,
                            sleep=lambda _s: None, **options)
    return Registry(reg.host, opts, credentials)


def push_image(repo: Repository, image, tag: str) -> str:
    for blob in image.blobs():
        if repo.blob_exists(blob.digest) is None:
            repo.push_blob(blob.digest, blob.size, blob.data)
    return repo.push_manifest(tag, image.raw, image.media_type)


def read_blob(repo: Repository, digest: str, size: int | None = None) -> bytes:
    with repo.fetch_blob(digest, size) as chunks:
        return b"".join(chunks)


# -- every flavour -------------------------------------------------------------------------


def test_ping(each_registry: RigRegistry) -> None:
    registry = client(each_registry)
    assert registry.ping() is True
    assert registry.transport.base_url == each_registry.url


def test_ping_without_credentials_says_auth_required(basic_registry: RigRegistry) -> None:
    assert Registry(basic_registry.host, TransportOptions()).ping() is False


def test_push_with_client_then_pull_raw(each_registry: RigRegistry) -> None:
    image = make_image("ours", layers=2)
    repo = client(each_registry).repository("team/ours")
    digest = push_image(repo, image, "v1")
    assert digest == image.digest

    pulled = RawPuller.for_registry(each_registry).pull("team/ours", "v1")
    assert pulled.digest == image.digest
    assert pulled.manifest == image.raw  # byte-exact
    assert set(pulled.blobs) == {b.digest for b in image.blobs()}


def test_push_raw_then_read_with_client(each_registry: RigRegistry) -> None:
    index = make_multiarch("theirs")
    RawPusher.for_registry(each_registry).push("team/theirs", index, tag="multi")
    repo = client(each_registry).repository("team/theirs")

    descriptor = repo.resolve("multi")
    assert descriptor == Descriptor("application/vnd.oci.image.index.v1+json", index.digest, index.size)
    manifest = repo.fetch_manifest("multi")
    assert manifest.raw == index.raw and manifest.is_index
    assert [d.digest for d in manifest.manifests] == [c.digest for c in index.children]
    for child in index.children:
        fetched = repo.fetch_manifest(child.digest)
        assert fetched.raw == child.raw
        for blob in child.blobs():
            assert read_blob(repo, blob.digest, blob.size) == blob.data
            assert repo.blob_exists(blob.digest) == blob.size


def test_tags_and_catalog(each_registry: RigRegistry) -> None:
    registry = client(each_registry)
    image = make_image("tags")
    for name in ("team/a", "team/b", "team/c"):
        push_image(registry.repository(name), image, "base")
    repo = registry.repository("team/a")
    for tag in ("v2", "v1", "latest", "v10"):
        repo.push_manifest(tag, image.raw, image.media_type)
    assert sorted(repo.tags()) == ["base", "latest", "v1", "v10", "v2"]  # 2.8 does not sort

    mark = each_registry.mark()
    assert list(registry.catalog(page_size=2)) == ["team/a", "team/b", "team/c"]
    pages = [r for r in each_registry.requests_since(mark) if r.path.startswith("/v2/_catalog") and r.status == 200]
    assert len(pages) == 2  # Distribution paginates the catalog with Link: both pages were followed
    assert "n=2" in pages[0].path and "last=team%2Fb" in pages[1].path


def test_missing_things(each_registry: RigRegistry) -> None:
    registry = client(each_registry)
    repo = registry.repository("team/nothing")
    assert repo.resolve("latest") is None
    with pytest.raises(NotFoundError) as caught:
        repo.fetch_manifest("latest")
    assert caught.value.code in ("MANIFEST_UNKNOWN", "NAME_UNKNOWN")
    with pytest.raises(NotFoundError):
        repo.tags()
    assert repo.blob_exists(EMPTY_CONFIG_DIGEST) is None
    with pytest.raises(NotFoundError):
        read_blob(repo, EMPTY_CONFIG_DIGEST)


def test_delete_manifest_and_blob(each_registry: RigRegistry) -> None:
    repo = client(each_registry).repository("team/del")
    image = make_image("del")
    digest = push_image(repo, image, "gone")
    repo.delete_manifest(digest)
    assert repo.resolve("gone") is None
    assert repo.resolve(digest) is None
    layer = image.layers[0]
    repo.delete_blob(layer.digest)
    assert repo.blob_exists(layer.digest) is None
    with pytest.raises(NotFoundError):
        repo.delete_blob(layer.digest)


def test_mount_then_reuse_of_the_session_the_registry_opened(each_registry: RigRegistry) -> None:
    registry = client(each_registry)
    image = make_image("mount")
    push_image(registry.repository("team/src"), image, "v1")
    dest = registry.repository("team/dest")
    layer = image.layers[0]

    mark = each_registry.mark()
    assert dest.mount_blob(layer.digest, "team/src") is True
    assert dest.blob_exists(layer.digest) == layer.size
    assert [(r.method, r.status) for r in each_registry.writes_since(mark) if r.status < 400] == [("POST", 201)]

    # A blob the source does not have: 202 opens an upload session, which push_blob uses.
    payload = b"not in the source repository"
    digest = sha256_digest(payload)
    assert dest.mount_blob(digest, "team/src") is False
    mark = each_registry.mark()
    dest.push_blob(digest, len(payload), payload)
    assert [r.method for r in each_registry.writes_since(mark) if r.status < 400] == ["PUT"]
    assert read_blob(dest, digest) == payload


def test_chunked_upload(each_registry: RigRegistry) -> None:
    repo = client(each_registry).repository("team/chunks")
    data = bytes(range(256)) * 10  # 2560 bytes
    digest = sha256_digest(data)
    mark = each_registry.mark()
    repo.push_blob(digest, len(data), data, chunked=True, chunk_size=1000)
    writes = [(r.method, r.status) for r in each_registry.writes_since(mark) if r.status < 400]
    assert writes == [("POST", 202), ("PATCH", 202), ("PATCH", 202), ("PATCH", 202), ("PUT", 201)]
    assert RawPuller.for_registry(each_registry).blob("team/chunks", digest) == data


def test_upload_of_unknown_size_streams_chunks(each_registry: RigRegistry) -> None:
    repo = client(each_registry).repository("team/stream")
    pieces = [b"a" * 700, b"b" * 700, b"c" * 5]
    data = b"".join(pieces)
    digest = sha256_digest(data)
    mark = each_registry.mark()
    repo.push_blob(digest, None, iter(pieces), chunk_size=1024)
    writes = [(r.method, r.status) for r in each_registry.writes_since(mark) if r.status < 400]
    # Streamed in chunk_size pieces: 1405 bytes are 1024 + 381, two PATCHes (the three pieces as they came
    # would be three; one body would be none), then the closing PUT with the digest.
    assert writes == [("POST", 202), ("PATCH", 202), ("PATCH", 202), ("PUT", 201)]
    assert read_blob(repo, digest, len(data)) == data


def test_monolithic_upload_streams_an_iterable(each_registry: RigRegistry) -> None:
    repo = client(each_registry).repository("team/mono")
    data = hashlib.sha256(b"seed").digest() * 100_000  # 3.2 MB, several fetch chunks
    digest = sha256_digest(data)
    mark = each_registry.mark()
    repo.push_blob(digest, len(data), (data[i:i + 65536] for i in range(0, len(data), 65536)))
    assert [r.method for r in each_registry.writes_since(mark) if r.status < 400] == ["POST", "PUT"]
    with repo.fetch_blob(digest, len(data)) as chunks:
        sizes = [len(c) for c in chunks]
    assert sum(sizes) == len(data) and max(sizes) <= 1024 * 1024


def test_wrong_digest_is_rejected_and_nothing_stored(each_registry: RigRegistry) -> None:
    repo = client(each_registry).repository("team/corrupt")
    claimed = sha256_digest(b"the real content")
    mark = each_registry.mark()
    with pytest.raises(DigestMismatchError):
        repo.push_blob(claimed, 7, iter([b"corrupt"]))
    writes = [(r.method, r.status) for r in each_registry.writes_since(mark)]
    assert ("PUT", 400) in writes  # the registry refused it (DIGEST_INVALID)
    assert writes[-1][0] == "DELETE"  # and the session was cancelled
    assert repo.blob_exists(claimed) is None

    mark = each_registry.mark()
    with pytest.raises(DigestMismatchError):
        repo.push_blob(claimed, 7, b"corrupt")  # bytes are checked before any request
    assert each_registry.writes_since(mark) == []


def test_push_manifest_by_digest_and_docker_schema2(each_registry: RigRegistry) -> None:
    repo = client(each_registry).repository("team/docker")
    image = make_image("docker", docker=True)
    for blob in image.blobs():
        repo.push_blob(blob.digest, blob.size, blob.data)
    assert repo.push_manifest(image.digest, image.raw, image.media_type) == image.digest
    raw, media_type, digest = RawPuller.for_registry(each_registry).manifest("team/docker", image.digest)
    assert (raw, media_type, digest) == (image.raw, image.media_type, image.digest)
    with pytest.raises(DigestMismatchError):
        repo.push_manifest(image.digest, image.raw + b" ", image.media_type)


def test_delete_tag_keeps_the_digest_other_tags_share(each_registry: RigRegistry) -> None:
    registry = client(each_registry)
    repo = registry.repository("team/untag")
    image = make_image("untag")
    digest = push_image(repo, image, "old")
    repo.push_manifest("keep", image.raw, image.media_type)

    mark = each_registry.mark()
    assert repo.delete_tag("old") == "dummy_manifest"  # Distribution 2.8 has no tag DELETE
    assert registry.supports_tag_delete is False
    assert repo.tags() == ["keep"]
    assert repo.resolve("keep").digest == digest
    assert repo.fetch_manifest(digest).raw == image.raw
    deletes = [r for r in each_registry.writes_since(mark) if r.method == "DELETE" and r.status != 401]
    assert [r.status for r in deletes] == [400, 202]  # the probe, then only the dummy manifest
    assert digest not in deletes[1].path

    # Learnt once: the next untag goes straight to the dummy manifest.
    repo.push_manifest("again", image.raw, image.media_type)
    mark = each_registry.mark()
    assert repo.delete_tag("again") == "dummy_manifest"
    assert [r.status for r in each_registry.writes_since(mark) if r.method == "DELETE" and r.status != 401] == [202]
    assert repo.tags() == ["keep"]


def test_delete_tag_errors(each_registry: RigRegistry) -> None:
    repo = client(each_registry).repository("team/untag2")
    image = make_image("untag2")
    push_image(repo, image, "v1")
    with pytest.raises(NotFoundError):
        repo.delete_tag("absent")
    with pytest.raises(UnsupportedError):
        repo.delete_tag("v1", method="tag_delete")
    assert repo.tags() == ["v1"]


def test_referrers_fallback_written_and_read(each_registry: RigRegistry) -> None:
    registry = client(each_registry)
    repo = registry.repository("team/refs")
    image = make_image("refs")
    push_image(repo, image, "v1")
    sbom = make_artifact(image, annotations={"org.example.kind": "sbom"})
    sig = make_artifact(image, artifact_type="application/vnd.example.sig", payload=b"sig")
    for artifact in (sbom, sig):
        for blob in artifact.blobs():
            if repo.blob_exists(blob.digest) is None:
                repo.push_blob(blob.digest, blob.size, blob.data)
        repo.push_manifest(artifact.digest, artifact.raw, artifact.media_type)

    found = repo.referrers(image.digest)
    assert [(d.digest, d.artifact_type) for d in found] == [
        (sbom.digest, "application/vnd.ocireg.test.sbom.v1+json"),
        (sig.digest, "application/vnd.example.sig"),
    ]
    assert found[0].annotations == {"org.example.kind": "sbom"}
    assert [d.digest for d in repo.referrers(image.digest, "application/vnd.example.sig")] == [sig.digest]

    # The fallback tag holds what a raw client expects from the tag schema.
    raw, media_type, _unused = RawPuller.for_registry(each_registry).manifest("team/refs", referrers_tag(image))
    assert media_type == "application/vnd.oci.image.index.v1+json"
    assert json.loads(raw)["manifests"] == json.loads(make_referrers_index([sbom, sig]).raw)["manifests"]

    repo.delete_manifest(sbom.digest, subject=image.digest)
    assert [d.digest for d in repo.referrers(image.digest)] == [sig.digest]
    assert repo.remove_referrer_fallback(image.digest, sbom.digest) is False  # already gone


def test_referrers_written_by_a_raw_client_are_read(each_registry: RigRegistry) -> None:
    pusher = RawPusher.for_registry(each_registry)
    image = make_image("rawrefs")
    pusher.push("team/rawrefs", image, tag="v1")
    artifact = make_artifact(image)
    pusher.push_referrers("team/rawrefs", image, [artifact])
    repo = client(each_registry).repository("team/rawrefs")
    assert [d.digest for d in repo.referrers(image.digest)] == [artifact.digest]
    assert repo.referrers(artifact.digest) == []


def test_one_client_shared_by_many_threads(each_registry: RigRegistry) -> None:
    """The copy engine pushes and pulls from a thread pool through one Registry (one pooled session)."""
    repo = client(each_registry).repository("team/threads")
    blobs = [hashlib.sha256(str(i).encode()).digest() * (1000 + i) for i in range(24)]

    def roundtrip(data: bytes) -> bool:
        digest = sha256_digest(data)
        repo.push_blob(digest, len(data), data)
        return read_blob(repo, digest, len(data)) == data

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(pool.map(roundtrip, blobs))


# -- flavour specifics -------------------------------------------------------------------


def test_token_scopes_for_reads_writes_and_deletes(token_registry: RigRegistry) -> None:
    """Distribution checks ``delete`` for DELETE; pulls need ``pull``, pushes ``pull,push``."""
    registry = client(token_registry)
    repo = registry.repository("team/scopes")
    image = make_image("scopes")
    mark = token_registry.token_server.mark()
    digest = push_image(repo, image, "v1")
    repo.delete_manifest(digest)
    asked = {scope for r in token_registry.token_server.requests_since(mark) for scope in r.scopes}
    assert "repository:team/scopes:pull,push" in asked
    assert "repository:team/scopes:delete" in asked
    assert all("*" not in scope for scope in asked)


def test_pull_only_user_cannot_push(token_registry: RigRegistry) -> None:
    image = make_image("denied")
    RawPusher.for_registry(token_registry).push("team/denied", image, tag="v1")
    bob = client(token_registry, username="bob", password="bobpass").repository("team/denied")
    assert bob.fetch_manifest("v1").digest == image.digest
    with pytest.raises(AuthorizationError) as caught:
        bob.push_manifest("v2", image.raw, image.media_type)
    assert "bobpass" not in str(caught.value)


def test_mount_from_a_repository_the_user_cannot_read_falls_back(token_registry: RigRegistry) -> None:
    """bob may push bob/* but not read private/src: the mount is refused, a normal upload works."""
    token_registry.token_server.acl.append(grant("bob", "bob/*", "pull", "push"))
    image = make_image("private")
    push_image(client(token_registry).repository("private/src"), image, "v1")
    layer = image.layers[0]
    dest = client(token_registry, username="bob", password="bobpass").repository("bob/mine")
    assert dest.mount_blob(layer.digest, "private/src") is False
    dest.push_blob(layer.digest, layer.size, layer.data)
    assert dest.blob_exists(layer.digest) == layer.size


# -- broken connections to a real registry ----------------------------------------------------


class CuttingProxy:
    """A TCP proxy in front of a registry that drops one connection after N bytes in one direction.

    It is transparent (TLS passes through), so the registry behind it is real
    Distribution 2.8 with its real Range and upload-session behaviour; only
    the network fault is injected.
    """

    def __init__(self, upstream_port: int, *, cut_down_after: int | None = None,
                 cut_up_after: int | None = None) -> None:
        self.upstream_port = upstream_port
        self.cut_down_after = cut_down_after
        self.cut_up_after = cut_up_after
        self.cuts = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _unused = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            self._open += [client, upstream]
            for source, sink, limit in ((client, upstream, self.cut_up_after),
                                        (upstream, client, self.cut_down_after)):
                threading.Thread(target=self._pump, args=(source, sink, limit, (client, upstream)),
                                 daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, limit: int | None,
              pair: tuple[socket.socket, socket.socket]) -> None:
        moved = 0
        try:
            while data := source.recv(65536):
                moved += len(data)
                if limit is not None and moved > limit:
                    with self._lock:
                        cut, self.cuts = self.cuts == 0, self.cuts + (self.cuts == 0)
                    if cut:
                        for sock in pair:
                            sock.shutdown(socket.SHUT_RDWR)
                            sock.close()
                        return
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in pair:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._listener.close()
        for sock in self._open:
            sock.close()


def proxied_client(reg: RigRegistry, proxy: CuttingProxy) -> Registry:
    """Our client talking to ``reg`` through ``proxy`` (same credentials and TLS files)."""
    credentials = Credentials(reg.username, reg.password) if reg.username else None
    opts = TransportOptions(ca_path=reg.ca_path, client_cert=reg.client_cert, client_key=reg.client_key,
                            sleep=lambda _s: None)
    return Registry(f"127.0.0.1:{proxy.port}", opts, credentials)


BIG = hashlib.sha256(b"big").digest() * (96 * 1024)  # 3 MiB
BIG_DIGEST = sha256_digest(BIG)


def test_download_resumes_with_range_after_a_dropped_connection(each_registry: RigRegistry) -> None:
    RawPusher.for_registry(each_registry).push_blob("team/big", Blob(BIG, "application/octet-stream"))
    proxy = CuttingProxy(each_registry.port, cut_down_after=1024 * 1024)
    try:
        repo = proxied_client(each_registry, proxy).repository("team/big")
        mark = each_registry.mark()
        with repo.fetch_blob(BIG_DIGEST, len(BIG)) as chunks:
            assert b"".join(chunks) == BIG
    finally:
        proxy.close()
    assert proxy.cuts == 1
    gets = [r.status for r in each_registry.requests_since(mark) if r.method == "GET" and "/blobs/" in r.path]
    assert 206 in gets  # Distribution answered the resume with a partial response


def test_upload_restarts_after_a_dropped_connection(each_registry: RigRegistry) -> None:
    proxy = CuttingProxy(each_registry.port, cut_up_after=1536 * 1024)
    try:
        repo = proxied_client(each_registry, proxy).repository("team/big")
        repo.push_blob(BIG_DIGEST, len(BIG), BIG, chunked=True, chunk_size=1024 * 1024)
    finally:
        proxy.close()
    assert proxy.cuts == 1
    assert RawPuller.for_registry(each_registry).blob("team/big", BIG_DIGEST) == BIG


def test_one_shot_upload_cut_is_reported_not_corrupted(each_registry: RigRegistry) -> None:
    proxy = CuttingProxy(each_registry.port, cut_up_after=1536 * 1024)
    try:
        repo = proxied_client(each_registry, proxy).repository("team/big")
        with pytest.raises(TransportError) as caught:
            repo.push_blob(BIG_DIGEST, len(BIG), iter([BIG[i:i + 65536] for i in range(0, len(BIG), 65536)]))
    finally:
        proxy.close()
    assert "cannot be re-read" in str(caught.value)
    assert client(each_registry).repository("team/big").blob_exists(BIG_DIGEST) is None


def test_copy_with_a_reopenable_source_survives_a_dropped_upload(each_registry: RigRegistry) -> None:
    """A monolithic PUT streamed from another repository is cut; the upload restarts and re-reads the source."""
    RawPusher.for_registry(each_registry).push_blob("team/source", Blob(BIG, "application/octet-stream"))
    source = client(each_registry).repository("team/source")
    proxy = CuttingProxy(each_registry.port, cut_up_after=1536 * 1024)
    try:
        dest = proxied_client(each_registry, proxy).repository("team/copy")
        dest.push_blob(BIG_DIGEST, len(BIG), functools.partial(source.blob_chunks, BIG_DIGEST, len(BIG)))
    finally:
        proxy.close()
    assert proxy.cuts == 1
    assert RawPuller.for_registry(each_registry).blob("team/copy", BIG_DIGEST) == BIG
    assert b"".join(source.blob_chunks(BIG_DIGEST, len(BIG), 1_500_000)) == BIG[1_500_000:]


def test_head_requests_reuse_one_pooled_connection(plain_registry: RigRegistry) -> None:
    """resolve / blob_exists answer from HEADs; an unread streamed HEAD response would keep its
    connection out of the pool and every HEAD would open a new one (seen before the fix: 60 for 60)."""
    image = make_image("pool")
    RawPusher.for_registry(plain_registry).push("pool/app", image, tag="t")
    registry = Registry(plain_registry.host)
    repo = registry.repository("pool/app")
    for _round in range(30):
        assert repo.resolve("t").digest == image.digest
        assert repo.blob_exists(image.config.digest) == image.config.size
    adapter = registry.transport.session.get_adapter(plain_registry.url)
    pools = [p for key, p in adapter.poolmanager.pools._container.items() if key.key_scheme == "http"]
    assert sum(p.num_requests for p in pools) >= 60
    assert sum(p.num_connections for p in pools) == 1
