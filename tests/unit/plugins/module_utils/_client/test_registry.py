"""Registry / Repository against fake servers, for what Distribution 2.8 cannot show.

Why fakes (pytest-httpserver): Distribution 2.8 has no referrers API, no tag
DELETE (it answers 400), never sends ``OCI-Chunk-Min-Length``, answers every
PATCH with 202, always sends ``Docker-Content-Digest``, sorts and links its
pages one way only, cannot be made to serve corrupt bytes, break a download
halfway, refuse a mount with 401/403, or send ``Warning`` headers. Each test
below exercises one of those behaviours; everything Distribution 2.8 does
implement is tested against it in tests/integration/test_registry_api.py.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from ansible_collections.ocireg.registry.plugins.module_utils._client.credentials import Credentials
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    DigestMismatchError,
    ManifestError,
    NotFoundError,
    RegistryError,
    TooLargeError,
    TransportError,
    UnsupportedError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import Descriptor
from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import Registry, Repository
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.core import TransportOptions
from tests.unit.plugins.module_utils._client.transport.test_core import oci_error
from tests.unit.plugins.module_utils._client.transport.test_core import sequence as recorder

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
MiB = 1024 * 1024


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def manifest_bytes(**extra: object) -> bytes:
    doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": EMPTY_DIGEST, "size": 2},
           "layers": [], **extra}
    return json.dumps(doc, separators=(",", ":")).encode()


IMAGE = manifest_bytes()
IMAGE_DIGEST = sha256(IMAGE)
FALLBACK_TAG = "sha256-" + IMAGE_DIGEST.split(":")[1]  # the referrers tag-schema fallback of IMAGE


def index_bytes(*entries: dict) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list(entries)}).encode()


def entry(digest: str, artifact_type: str | None = None, **extra: object) -> dict:
    data = {"mediaType": OCI_MANIFEST, "digest": digest, "size": 100, **extra}
    if artifact_type:
        data["artifactType"] = artifact_type
    return data


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def registry(httpserver: HTTPServer, sleeps: list[float]) -> Registry:
    options = TransportOptions(plain_http=True, sleep=sleeps.append, jitter=lambda high: high)
    return Registry(f"{httpserver.host}:{httpserver.port}", options)


@pytest.fixture
def repo(registry: Registry) -> Repository:
    return registry.repository("team/app")


def manifest_response(raw: bytes, media_type: str = OCI_MANIFEST, digest: str | None = "auto",
                      **headers: str) -> Response:
    sent = {"Docker-Content-Digest": sha256(raw) if digest == "auto" else digest, **headers}
    return Response(raw, content_type=media_type, headers={k: v for k, v in sent.items() if v is not None})


# -- referrers API (OCI 1.1; Distribution 2.8 answers 404) ---------------------------------


def test_referrers_api_pages_and_server_side_filter(httpserver: HTTPServer, repo: Repository) -> None:
    sbom = "application/vnd.example.sbom"
    first = Response(index_bytes(entry(sha256(b"a"), sbom)), content_type=OCI_INDEX,
                     headers={"Link": f'</v2/team/app/referrers/{IMAGE_DIGEST}?artifactType={sbom}&page=2>; rel="next"',
                              "OCI-Filters-Applied": "artifactType"})
    second = Response(index_bytes(entry(sha256(b"b"), sbom, annotations={"k": "v"})), content_type=OCI_INDEX,
                      headers={"OCI-Filters-Applied": "artifactType"})
    api = recorder(first, second)
    httpserver.expect_request(f"/v2/team/app/referrers/{IMAGE_DIGEST}").respond_with_handler(api)

    found = repo.referrers(IMAGE_DIGEST, sbom)
    assert [(d.digest, d.artifact_type) for d in found] == [(sha256(b"a"), sbom), (sha256(b"b"), sbom)]
    assert found[1].annotations == {"k": "v"}
    assert api.calls[0].args["artifactType"] == sbom
    assert api.calls[1].args["page"] == "2"
    assert repo.registry._referrers_api is True
    assert all("/manifests/" not in req.path for req, _unused in httpserver.log)  # no fallback lookup


def test_referrers_api_without_filter_support_is_filtered_here(httpserver: HTTPServer, repo: Repository) -> None:
    body = index_bytes(entry(sha256(b"a"), "type/a"), entry(sha256(b"b"), "type/b"), entry(sha256(b"c")))
    httpserver.expect_request(f"/v2/team/app/referrers/{IMAGE_DIGEST}").respond_with_data(
        body, content_type=OCI_INDEX)
    assert [d.digest for d in repo.referrers(IMAGE_DIGEST, "type/b")] == [sha256(b"b")]
    assert len(repo.referrers(IMAGE_DIGEST)) == 3


def test_referrers_api_link_loop_is_an_error(httpserver: HTTPServer, repo: Repository) -> None:
    path = f"/v2/team/app/referrers/{IMAGE_DIGEST}"
    httpserver.expect_request(path).respond_with_data(
        index_bytes(), content_type=OCI_INDEX, headers={"Link": f'<{path}>; rel="next"'})
    with pytest.raises(TransportError) as caught:
        repo.referrers(IMAGE_DIGEST)
    assert "already read" in str(caught.value)


@pytest.mark.parametrize("answer", [
    Response("404 page not found", 404),
    # Artifactory (personality referrers_406).
    oci_error("UNSUPPORTED", status=406),
    # Artifact Registry (personality referrers_login_page): a login page with status 200.
    Response("<html><body>Sign in</body></html>", 200, content_type="text/html"),
    # JSON that is not a referrers index.
    Response('{"message": "not here"}', 200, content_type="application/json"),
], ids=["404", "406", "html-200", "json-not-index"])
def test_referrers_404_falls_back_to_the_tag_schema(httpserver: HTTPServer, repo: Repository,
                                                    answer: Response) -> None:
    api = recorder(answer)
    httpserver.expect_request(f"/v2/team/app/referrers/{IMAGE_DIGEST}").respond_with_handler(api)
    fallback = index_bytes(entry(sha256(b"sig"), "application/vnd.example.sig"),
                           entry(sha256(b"sbom"), "application/vnd.example.sbom"))
    httpserver.expect_request(f"/v2/team/app/manifests/{FALLBACK_TAG}").respond_with_response(
        manifest_response(fallback, OCI_INDEX))

    assert [d.digest for d in repo.referrers(IMAGE_DIGEST)] == [sha256(b"sig"), sha256(b"sbom")]
    assert [d.digest for d in repo.referrers(IMAGE_DIGEST, "application/vnd.example.sbom")] == [sha256(b"sbom")]
    assert len(api.calls) == 1  # the missing API is remembered for the registry
    assert repo.registry._referrers_api is False


def test_referrers_fallback_tag_that_is_not_an_index_means_none(httpserver: HTTPServer, repo: Repository) -> None:
    httpserver.expect_request(f"/v2/team/app/referrers/{IMAGE_DIGEST}").respond_with_data("", 404)
    httpserver.expect_request(f"/v2/team/app/manifests/{FALLBACK_TAG}").respond_with_response(manifest_response(IMAGE))
    assert repo.referrers(IMAGE_DIGEST) == []


def expect_fallback_index_put(httpserver: HTTPServer, current: Response):
    """IMAGE's fallback tag answers GET with ``current`` and accepts a PUT (201); returns the PUT's recorder."""
    httpserver.expect_request(f"/v2/team/app/manifests/{FALLBACK_TAG}", method="GET").respond_with_response(current)
    put_index = recorder(Response("", 201))
    httpserver.expect_request(f"/v2/team/app/manifests/{FALLBACK_TAG}", method="PUT").respond_with_handler(put_index)
    return put_index


def subject_manifest() -> bytes:
    return manifest_bytes(artifactType="application/vnd.example.sbom",
                          subject={"mediaType": OCI_MANIFEST, "digest": IMAGE_DIGEST, "size": len(IMAGE)},
                          annotations={"created": "now"})


def test_push_with_subject_where_the_registry_processes_it(httpserver: HTTPServer, repo: Repository) -> None:
    """OCI-Subject is believed once the referrers API answered an index: probed once per registry."""
    raw = subject_manifest()
    httpserver.expect_request(f"/v2/team/app/manifests/{sha256(raw)}", method="PUT").respond_with_data(
        "", 201, {"Docker-Content-Digest": sha256(raw), "OCI-Subject": IMAGE_DIGEST})
    httpserver.expect_request(f"/v2/team/app/referrers/{IMAGE_DIGEST}", method="GET").respond_with_data(
        index_bytes(), 200, {"Content-Type": OCI_INDEX})
    assert repo.push_manifest(sha256(raw), raw, OCI_MANIFEST) == sha256(raw)
    assert repo.push_manifest(sha256(raw), raw, OCI_MANIFEST) == sha256(raw)
    assert [r.method for r, _response in httpserver.log] == ["PUT", "GET", "PUT"]  # one probe, no fallback index
    assert repo.registry.supports_referrers_api is True


@pytest.mark.parametrize("probe", [
    oci_error("NAME_UNKNOWN", status=404),  # Docker Hub: OCI-Subject sent, but no referrers API
    Response("<html><body>Sign in</body></html>", 200, content_type="text/html"),  # Artifact Registry
])
def test_oci_subject_without_a_referrers_api_still_writes_the_fallback_tag(
        httpserver: HTTPServer, repo: Repository, probe: Response) -> None:
    raw = subject_manifest()
    httpserver.expect_request(f"/v2/team/app/manifests/{sha256(raw)}", method="PUT").respond_with_data(
        "", 201, {"Docker-Content-Digest": sha256(raw), "OCI-Subject": IMAGE_DIGEST})
    httpserver.expect_request(f"/v2/team/app/referrers/{IMAGE_DIGEST}", method="GET").respond_with_response(probe)
    put_index = expect_fallback_index_put(httpserver, oci_error("MANIFEST_UNKNOWN", status=404))
    repo.push_manifest(sha256(raw), raw, OCI_MANIFEST)
    (request,) = put_index.calls
    assert [d["digest"] for d in json.loads(request.get_data())["manifests"]] == [sha256(raw)]
    assert repo.registry.supports_referrers_api is False


def test_a_manifest_with_subject_refused_with_405_says_so(httpserver: HTTPServer, repo: Repository) -> None:
    """Older ECR refuses manifests with a subject (405); the message names that, not storage.delete."""
    raw = subject_manifest()
    httpserver.expect_request(f"/v2/team/app/manifests/{sha256(raw)}", method="PUT").respond_with_response(
        oci_error("UNSUPPORTED", status=405))
    with pytest.raises(UnsupportedError, match="refuses manifests that carry a subject") as info:
        repo.push_manifest(sha256(raw), raw, OCI_MANIFEST)
    assert "storage.delete" not in info.value.message


def test_push_with_subject_updates_the_fallback_index(httpserver: HTTPServer, repo: Repository) -> None:
    raw = subject_manifest()
    httpserver.expect_request(f"/v2/team/app/manifests/{sha256(raw)}", method="PUT").respond_with_data(
        "", 201, {"Docker-Content-Digest": sha256(raw)})
    put_index = expect_fallback_index_put(httpserver, oci_error("MANIFEST_UNKNOWN", status=404))

    repo.push_manifest(sha256(raw), raw, OCI_MANIFEST)
    (request,) = put_index.calls
    assert request.headers["Content-Type"] == OCI_INDEX
    index = json.loads(request.get_data())
    assert index["mediaType"] == OCI_INDEX and index["schemaVersion"] == 2
    assert index["manifests"] == [{"mediaType": OCI_MANIFEST, "digest": sha256(raw), "size": len(raw),
                                   "artifactType": "application/vnd.example.sbom",
                                   "annotations": {"created": "now"}}]


def test_fallback_index_keeps_unknown_fields_and_skips_duplicates(httpserver: HTTPServer, repo: Repository) -> None:
    existing = index_bytes(entry(sha256(b"old"), "x/y", **{"x-vendor": {"keep": True}}))
    put_index = expect_fallback_index_put(httpserver, manifest_response(existing, OCI_INDEX))

    new = Descriptor(OCI_MANIFEST, sha256(b"new"), 5, artifact_type="a/b")
    assert repo.put_referrer_fallback(IMAGE_DIGEST, new) is True
    manifests = json.loads(put_index.calls[0].get_data())["manifests"]
    assert manifests[0]["x-vendor"] == {"keep": True}
    assert [m["digest"] for m in manifests] == [sha256(b"old"), sha256(b"new")]
    assert repo.put_referrer_fallback(IMAGE_DIGEST, Descriptor(OCI_MANIFEST, sha256(b"old"), 100)) is False
    assert len(put_index.calls) == 1


def test_fallback_tag_holding_something_else_is_never_overwritten(httpserver: HTTPServer, repo: Repository) -> None:
    httpserver.expect_request(f"/v2/team/app/manifests/{FALLBACK_TAG}", method="GET").respond_with_response(
        manifest_response(manifest_bytes(annotations={"something": "else"})))
    with pytest.raises(ManifestError) as caught:
        repo.put_referrer_fallback(IMAGE_DIGEST, Descriptor(OCI_MANIFEST, sha256(b"x"), 1))
    assert "refusing to overwrite" in str(caught.value)
    assert [req.method for req, _unused in httpserver.log] == ["GET"]


# A registry that resolves a missing fallback tag to the subject itself (GitLab; oras-project/oras-go #1396):
# an index subject's children must not pass for its referrers, nor its bytes for a referrers index to extend.
SUBJECT_INDEX = index_bytes(entry(sha256(b"amd64"), None), entry(sha256(b"arm64"), None))
SUBJECT_INDEX_TAG = "sha256-" + sha256(SUBJECT_INDEX).split(":")[1]


def test_a_fallback_tag_answered_with_the_subject_index_lists_no_referrers(httpserver: HTTPServer,
                                                                           repo: Repository) -> None:
    httpserver.expect_request(f"/v2/team/app/referrers/{sha256(SUBJECT_INDEX)}").respond_with_data("", 404)
    httpserver.expect_request(f"/v2/team/app/manifests/{SUBJECT_INDEX_TAG}").respond_with_response(
        manifest_response(SUBJECT_INDEX, OCI_INDEX))
    assert repo.referrers(sha256(SUBJECT_INDEX)) == []
    assert [r.method for r, _response in httpserver.log] == ["GET", "GET"]  # no extra request to find out


@pytest.mark.parametrize("subject", [SUBJECT_INDEX, IMAGE], ids=["index", "image"])
def test_a_fallback_tag_answered_with_the_subject_gets_a_new_index(httpserver: HTTPServer, repo: Repository,
                                                                   subject: bytes) -> None:
    tag = "sha256-" + sha256(subject).split(":")[1]
    media_type = OCI_INDEX if subject is SUBJECT_INDEX else OCI_MANIFEST
    httpserver.expect_request(f"/v2/team/app/manifests/{tag}", method="GET").respond_with_response(
        manifest_response(subject, media_type))
    put_index = recorder(Response("", 201))
    httpserver.expect_request(f"/v2/team/app/manifests/{tag}", method="PUT").respond_with_handler(put_index)
    assert repo.put_referrer_fallback(sha256(subject), Descriptor(OCI_MANIFEST, sha256(b"sbom"), 5)) is True
    (request,) = put_index.calls
    assert [m["digest"] for m in json.loads(request.get_data())["manifests"]] == [sha256(b"sbom")]


# -- tag DELETE (OCI 1.1; Distribution 2.8 answers 400) ------------------------------------


def test_tag_delete_202_is_used_and_remembered(httpserver: HTTPServer, registry: Registry, repo: Repository) -> None:
    delete = recorder(Response("", 202))
    httpserver.expect_request("/v2/team/app/manifests/v1", method="DELETE").respond_with_handler(delete)
    httpserver.expect_request("/v2/team/app/manifests/v2", method="DELETE").respond_with_handler(delete)
    assert registry.supports_tag_delete is None
    assert repo.delete_tag("v1") == "tag_delete"
    assert registry.supports_tag_delete is True
    assert repo.delete_tag("v2", method="tag_delete") == "tag_delete"
    assert [req.method for req, _unused in httpserver.log] == ["DELETE", "DELETE"]  # no HEAD, no dummy push


def test_tag_delete_404_for_a_missing_tag(httpserver: HTTPServer, registry: Registry, repo: Repository) -> None:
    httpserver.expect_request("/v2/team/app/manifests/nope", method="DELETE").respond_with_response(
        oci_error("MANIFEST_UNKNOWN", status=404))
    httpserver.expect_request("/v2/team/app/manifests/nope", method="HEAD").respond_with_data("", 404)
    with pytest.raises(NotFoundError):
        repo.delete_tag("nope")
    assert registry.supports_tag_delete is None  # a 404 for a missing tag says nothing either way


def dummy_untag_server(httpserver: HTTPServer, tag: str, delete_status: int) -> dict[str, list[Request]]:
    seen: dict[str, list[Request]] = {"put": [], "delete": []}
    httpserver.expect_request(f"/v2/team/app/manifests/{tag}", method="DELETE").respond_with_response(
        oci_error("UNSUPPORTED", status=delete_status))
    httpserver.expect_request(f"/v2/team/app/manifests/{tag}", method="HEAD").respond_with_data(
        IMAGE, content_type=OCI_MANIFEST, headers={"Docker-Content-Digest": IMAGE_DIGEST})
    httpserver.expect_request(f"/v2/team/app/blobs/{EMPTY_DIGEST}", method="HEAD").respond_with_data(b"{}")

    def put(request: Request) -> Response:
        seen["put"].append(request)
        return Response("", 201, {"Docker-Content-Digest": sha256(request.get_data())})

    def delete(request: Request) -> Response:
        seen["delete"].append(request)
        return Response("", 202)

    httpserver.expect_request(f"/v2/team/app/manifests/{tag}", method="PUT").respond_with_handler(put)
    httpserver.expect_request(re.compile(r"^/v2/team/app/manifests/sha256:[0-9a-f]{64}$"),
                              method="DELETE").respond_with_handler(delete)
    return seen


@pytest.mark.parametrize("status", [400, 405])
def test_refused_tag_delete_falls_back_to_a_unique_dummy_manifest(httpserver: HTTPServer, registry: Registry,
                                                                  repo: Repository, status: int) -> None:
    seen = dummy_untag_server(httpserver, "v1", status)
    assert repo.delete_tag("v1") == "dummy_manifest"
    assert registry.supports_tag_delete is False
    (put,) = seen["put"]
    dummy = json.loads(put.get_data())
    assert dummy["mediaType"] == OCI_MANIFEST and dummy["config"]["digest"] == EMPTY_DIGEST
    assert "io.ocireg.registry.untag" in dummy["annotations"]
    (delete,) = seen["delete"]
    assert delete.path.endswith(sha256(put.get_data()))  # the dummy, never the tag's real digest
    assert IMAGE_DIGEST not in delete.path

    # A second untag of the same tag pushes different bytes (never a digest someone else uses).
    repo.delete_tag("v1")
    assert seen["put"][1].get_data() != put.get_data()


# -- uploads -----------------------------------------------------------------------------------


class FakeUploads:
    """A spec-shaped upload endpoint for ``team/app`` with knobs for the quirks Distribution lacks.

    POST opens a session; each PATCH must use the newest Location (stale ones
    get 404 BLOB_UPLOAD_INVALID, as Distribution does) and start where the
    data ends (else 416); GET reports the offset; PUT ?digest= commits.
    ``fail`` maps a method to the responses its next requests get instead.
    """

    def __init__(self, server: HTTPServer, *, min_chunk: int | None = None, patch_status: int = 202,
                 absolute: bool = False, status_gone: bool = False, stall_at: int | None = None) -> None:
        self.server = server
        self.stall_at = stall_at  # ECR: past this many bytes, PATCH answers 202 but its Range stops advancing
        self.min_chunk = min_chunk
        self.patch_statuses = [patch_status] if isinstance(patch_status, int) else list(patch_status)
        self.absolute = absolute
        self.status_gone = status_gone
        self.sessions: dict[str, bytearray] = {}
        self.state: dict[str, int] = {}
        self.blobs: dict[str, bytes] = {}
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.locations: list[str] = []
        self.fail: dict[str, list[Response]] = {}
        self.store_before_failing = False
        server.expect_request(re.compile(r"^/v2/team/app/blobs/uploads/.*")).respond_with_handler(self.handle)

    def location(self, upload: str) -> str:
        self.state[upload] += 1
        path = f"/v2/team/app/blobs/uploads/{upload}?state={self.state[upload]}"
        url = f"http://{self.server.host}:{self.server.port}{path}" if self.absolute else path
        self.locations.append(url)
        return url

    def handle(self, request: Request) -> Response:
        body = request.get_data()
        self.requests.append((request.method, request.full_path, dict(request.headers), body))
        upload = request.path.rsplit("/", 1)[-1]
        if request.method == "POST":
            upload = f"u{len(self.sessions) + 1}"
            self.sessions[upload], self.state[upload] = bytearray(), 0
            headers = {"Location": self.location(upload), "Range": "0-0"}
            if self.min_chunk:
                headers["OCI-Chunk-Min-Length"] = str(self.min_chunk)
            return Response("", 202, headers)
        if upload not in self.sessions:
            return oci_error("BLOB_UPLOAD_UNKNOWN", status=404)
        data = self.sessions[upload]
        if self.fail.get(request.method):
            if self.store_before_failing and request.method == "PATCH":
                data.extend(body)
                self.state[upload] += 1
            return self.fail[request.method].pop(0)
        if request.method == "GET":
            if self.status_gone:
                return oci_error("BLOB_UPLOAD_UNKNOWN", status=404)
            return Response("", 204, {"Location": self.location(upload), "Range": f"0-{max(len(data) - 1, 0)}"})
        if request.method == "DELETE":
            del self.sessions[upload]
            return Response("", 204)
        if request.method == "PATCH" and request.args.get("state") != str(self.state[upload]):
            return oci_error("BLOB_UPLOAD_INVALID", status=404)
        if request.method == "PATCH":
            start = int(request.headers["Content-Range"].split("-")[0])
            if start != len(data):
                return Response("", 416)
            data.extend(body)
            status = self.patch_statuses[(len([r for r in self.requests if r[0] == "PATCH"]) - 1)
                                         % len(self.patch_statuses)]
            # ECR (stall_at): the chunk is stored, but Range stays at the first chunk's end (containers-roadmap #2831).
            acknowledged = len(data) - 1 if self.stall_at is None else min(len(data), self.stall_at) - 1
            return Response("", status, {"Location": self.location(upload), "Range": f"0-{acknowledged}"})
        # PUT closes the session
        data.extend(body)
        digest = request.args["digest"]
        if sha256(bytes(data)) != digest:
            return oci_error("DIGEST_INVALID", status=400)
        self.blobs[digest] = bytes(data)
        del self.sessions[upload]
        return Response("", 201, {"Location": f"/v2/team/app/blobs/{digest}", "Docker-Content-Digest": digest})

    def methods(self) -> list[str]:
        return [method for method, *_unused in self.requests]


DATA = bytes(range(256)) * 4 + b"tail"  # 1028 bytes
DATA_DIGEST = sha256(DATA)


def test_chunks_honour_oci_chunk_min_length(httpserver: HTTPServer, repo: Repository) -> None:
    uploads = FakeUploads(httpserver, min_chunk=300)
    repo.push_blob(DATA_DIGEST, len(DATA), DATA, chunked=True, chunk_size=100)
    patches = [(h["Content-Range"], len(b)) for m, _unused, h, b in uploads.requests if m == "PATCH"]
    assert patches == [("0-299", 300), ("300-599", 300), ("600-899", 300), ("900-1027", 128)]
    assert uploads.blobs == {DATA_DIGEST: DATA}


def test_our_chunk_size_wins_when_larger(httpserver: HTTPServer, repo: Repository) -> None:
    uploads = FakeUploads(httpserver, min_chunk=100)
    repo.push_blob(DATA_DIGEST, None, iter([DATA[:10], DATA[10:]]), chunk_size=600)
    assert [len(b) for m, _unused, _unused, b in uploads.requests if m == "PATCH"] == [600, 428]
    assert uploads.blobs == {DATA_DIGEST: DATA}


@pytest.mark.parametrize("absolute", [False, True], ids=["relative", "absolute"])
def test_patch_answers_201_204_and_the_newest_location_is_followed(httpserver: HTTPServer, repo: Repository,
                                                                   absolute: bool) -> None:
    uploads = FakeUploads(httpserver, patch_status=(201, 204, 202), absolute=absolute)
    repo.push_blob(DATA_DIGEST, len(DATA), DATA, chunked=True, chunk_size=300)
    sent_to = [path for method, path, *_unused in uploads.requests if method in ("PATCH", "PUT")]
    issued = [loc.split(f"{httpserver.port}")[-1] for loc in uploads.locations]
    # Every request after the POST goes to the Location of the answer just before it.
    assert [p.split("&digest=")[0] for p in sent_to] == issued[:len(sent_to)]
    assert uploads.blobs == {DATA_DIGEST: DATA}


def test_a_range_that_stops_advancing_is_finished_with_one_monolithic_put(
        httpserver: HTTPServer, repo: Repository, sleeps: list[float]) -> None:
    # ECR (containers-roadmap #2831; the ecr personality's range_stalls quirk): the second PATCH is stored but
    # its Range stays at the first chunk's end. Re-sending it would draw 416 and never finish; the upload starts
    # again as one PUT, which needs no Range at all.
    uploads = FakeUploads(httpserver, stall_at=300)
    repo.push_blob(DATA_DIGEST, len(DATA), DATA, chunked=True, chunk_size=300)
    assert uploads.blobs == {DATA_DIGEST: DATA}
    stalled = [h["Content-Range"] for m, _p, h, _b in uploads.requests if m == "PATCH"]
    assert stalled == ["0-299", "300-599"], stalled
    last = uploads.requests[-1]
    assert last[0] == "PUT" and last[3] == DATA  # the whole blob in the closing PUT of a fresh session


def test_a_stalled_range_without_a_known_size_says_so(httpserver: HTTPServer, repo: Repository,
                                                      sleeps: list[float]) -> None:
    FakeUploads(httpserver, stall_at=300)
    with pytest.raises(TransportError) as caught:
        repo.push_blob(DATA_DIGEST, None, iter([DATA]), chunk_size=300)
    assert "stopped advancing" in caught.value.message


def test_failed_patch_resumes_from_the_upload_status(httpserver: HTTPServer, repo: Repository,
                                                     sleeps: list[float]) -> None:
    """The registry stored the chunk but the answer was lost: resume sends nothing twice."""
    uploads = FakeUploads(httpserver)
    uploads.fail["PATCH"] = [Response("", 500)]
    uploads.store_before_failing = True
    repo.push_blob(DATA_DIGEST, len(DATA), DATA, chunked=True, chunk_size=500)
    assert uploads.methods() == ["POST", "PATCH", "GET", "PATCH", "PATCH", "PUT"]
    patches = [h["Content-Range"] for m, _unused, h, _unused in uploads.requests if m == "PATCH"]
    assert patches == ["0-499", "500-999", "1000-1027"]
    assert uploads.blobs == {DATA_DIGEST: DATA}
    assert sleeps == [0.5]


def test_failed_patch_with_nothing_stored_resends_the_chunk(httpserver: HTTPServer, repo: Repository) -> None:
    uploads = FakeUploads(httpserver)
    uploads.fail["PATCH"] = [Response("", 503)]
    repo.push_blob(DATA_DIGEST, len(DATA), DATA, chunked=True, chunk_size=2000)
    # GET said 0-0 (nothing usable), so the session restarts from scratch.
    assert uploads.methods() == ["POST", "PATCH", "GET", "DELETE", "POST", "PATCH", "PUT"]
    assert uploads.blobs == {DATA_DIGEST: DATA}


def test_lost_session_restarts_with_a_new_one(httpserver: HTTPServer, repo: Repository) -> None:
    uploads = FakeUploads(httpserver, status_gone=True)
    uploads.fail["PATCH"] = [Response("", 500)]
    uploads.store_before_failing = True
    opened: list[int] = []

    def opener(offset: int) -> Iterator[bytes]:
        opened.append(offset)
        return iter([DATA[offset:]])

    repo.push_blob(DATA_DIGEST, None, opener, chunk_size=500)
    assert opened == [0, 0]
    assert uploads.methods().count("POST") == 2
    assert "DELETE" in uploads.methods()  # the lost session was cancelled
    assert uploads.blobs == {DATA_DIGEST: DATA}


def test_failed_monolithic_put_restarts_bytes(httpserver: HTTPServer, repo: Repository,
                                              sleeps: list[float]) -> None:
    uploads = FakeUploads(httpserver)
    uploads.fail["PUT"] = [Response("", 502)]
    repo.push_blob(DATA_DIGEST, len(DATA), DATA)
    assert uploads.methods() == ["POST", "PUT", "DELETE", "POST", "PUT"]
    assert uploads.blobs == {DATA_DIGEST: DATA}
    assert sleeps == [0.5]


def test_failed_monolithic_put_of_a_one_shot_stream_is_reported(httpserver: HTTPServer, repo: Repository) -> None:
    uploads = FakeUploads(httpserver)
    uploads.fail["PUT"] = [Response("", 503)]
    with pytest.raises(TransportError) as caught:
        repo.push_blob(DATA_DIGEST, len(DATA), iter([DATA]))
    assert "cannot be re-read" in str(caught.value)
    assert uploads.methods() == ["POST", "PUT", "DELETE"]
    assert uploads.blobs == {}


def test_source_shorter_than_announced_aborts_the_upload(httpserver: HTTPServer, repo: Repository) -> None:
    uploads = FakeUploads(httpserver)
    with pytest.raises(DigestMismatchError) as caught:
        repo.push_blob(DATA_DIGEST, len(DATA), iter([DATA[:100]]))
    assert "truncated" in str(caught.value)
    assert uploads.blobs == {}
    assert uploads.methods()[-1] == "DELETE"


def test_chunked_upload_of_wrong_content_is_not_committed(httpserver: HTTPServer, repo: Repository) -> None:
    uploads = FakeUploads(httpserver)
    with pytest.raises(DigestMismatchError):
        repo.push_blob(DATA_DIGEST, None, iter([b"other content"]), chunk_size=4)
    assert "PUT" not in uploads.methods()
    assert uploads.methods()[-1] == "DELETE"


# -- mounts ------------------------------------------------------------------------------------


@pytest.mark.parametrize("answer", [
    Response("", 401, {"WWW-Authenticate": 'Basic realm="fake"'}),
    Response(json.dumps({"errors": [{"code": "DENIED"}]}), 403),
    Response("", 404),
], ids=["401", "403", "404"])
def test_refused_mount_is_false(httpserver: HTTPServer, repo: Repository, answer: Response) -> None:
    httpserver.expect_request("/v2/team/app/blobs/uploads/", method="POST").respond_with_response(answer)
    assert repo.mount_blob(DATA_DIGEST, "other/repo") is False


def test_mount_202_session_is_reused_by_the_push(httpserver: HTTPServer, repo: Repository) -> None:
    uploads = FakeUploads(httpserver)
    assert repo.mount_blob(DATA_DIGEST, "other/repo") is False
    (post,) = uploads.requests
    assert "mount=" in post[1] and "from=other%2Frepo" in post[1]
    repo.push_blob(DATA_DIGEST, len(DATA), DATA)
    assert uploads.methods() == ["POST", "PUT"]
    assert uploads.blobs == {DATA_DIGEST: DATA}


def test_unused_mount_sessions_are_cancelled(httpserver: HTTPServer, repo: Repository) -> None:
    uploads = FakeUploads(httpserver)
    repo.mount_blob(DATA_DIGEST, "other/repo")
    repo.discard_uploads()
    assert uploads.methods() == ["POST", "DELETE"]


# -- manifests -----------------------------------------------------------------------------------


def test_resolve_without_digest_header_fetches_and_hashes(httpserver: HTTPServer, repo: Repository) -> None:
    httpserver.expect_request("/v2/team/app/manifests/v1", method="HEAD").respond_with_data(
        IMAGE, content_type=OCI_MANIFEST)
    httpserver.expect_request("/v2/team/app/manifests/v1", method="GET").respond_with_response(
        manifest_response(IMAGE, digest=None))
    assert repo.resolve("v1") == Descriptor(OCI_MANIFEST, IMAGE_DIGEST, len(IMAGE))


def test_resolve_with_a_generic_content_type_fetches(httpserver: HTTPServer, repo: Repository) -> None:
    httpserver.expect_request("/v2/team/app/manifests/v1", method="HEAD").respond_with_data(
        "x", content_type="application/json", headers={"Docker-Content-Digest": sha256(b"x")})
    httpserver.expect_request("/v2/team/app/manifests/v1", method="GET").respond_with_response(
        manifest_response(IMAGE))
    assert repo.resolve("v1").digest == IMAGE_DIGEST


def test_a_manifest_head_answered_405_is_asked_with_get_once_learnt(httpserver: HTTPServer, repo: Repository) -> None:
    # Registries that do not route HEAD for manifests (distribution #1485, Nexus; the nexus personality).
    head = recorder(Response(b"", 405))
    httpserver.expect_request("/v2/team/app/manifests/v1", method="HEAD").respond_with_handler(head)
    httpserver.expect_request("/v2/team/app/manifests/v1", method="GET").respond_with_response(
        manifest_response(IMAGE))
    httpserver.expect_request("/v2/team/app/manifests/missing", method="GET").respond_with_response(
        oci_error("MANIFEST_UNKNOWN", status=404))
    assert repo.resolve("v1") == Descriptor(OCI_MANIFEST, IMAGE_DIGEST, len(IMAGE))
    assert repo.registry._manifest_head is False
    # Learnt: later resolves (a missing tag too) go straight to GET, no second HEAD.
    assert repo.resolve("v1").digest == IMAGE_DIGEST
    assert repo.resolve("missing") is None
    assert len(head.calls) == 1


def test_resolve_sends_the_full_accept_list(httpserver: HTTPServer, repo: Repository) -> None:
    # werkzeug derives Content-Length from the body it then leaves out of a HEAD answer
    head = recorder(Response(b"0123456789", 200, {"Content-Type": OCI_INDEX, "Docker-Content-Digest": IMAGE_DIGEST}))
    httpserver.expect_request("/v2/team/app/manifests/v1", method="HEAD").respond_with_handler(head)
    assert repo.resolve("v1") == Descriptor(OCI_INDEX, IMAGE_DIGEST, 10)
    accept = head.calls[0].headers["Accept"]
    for media_type in (OCI_MANIFEST, OCI_INDEX, "application/vnd.docker.distribution.manifest.v2+json",
                       "application/vnd.docker.distribution.manifest.list.v2+json",
                       "application/vnd.docker.distribution.manifest.v1+prettyjws"):
        assert media_type in accept


def test_fetch_by_digest_rejects_wrong_bytes(httpserver: HTTPServer, repo: Repository) -> None:
    other = manifest_bytes(annotations={"evil": "yes"})
    httpserver.expect_request(f"/v2/team/app/manifests/{IMAGE_DIGEST}").respond_with_response(
        manifest_response(other, digest=IMAGE_DIGEST))
    with pytest.raises(DigestMismatchError) as caught:
        repo.fetch_manifest(IMAGE_DIGEST)
    assert IMAGE_DIGEST in str(caught.value) and httpserver.host in str(caught.value)


def test_fetch_by_tag_compares_with_the_digest_header(httpserver: HTTPServer, repo: Repository) -> None:
    httpserver.expect_request("/v2/team/app/manifests/v1").respond_with_response(
        manifest_response(IMAGE, digest=sha256(b"something else")))
    with pytest.raises(DigestMismatchError):
        repo.fetch_manifest("v1")


def test_fetch_by_tag_without_digest_header_hashes(httpserver: HTTPServer, repo: Repository) -> None:
    httpserver.expect_request("/v2/team/app/manifests/v1").respond_with_response(
        manifest_response(IMAGE, digest=None))
    manifest = repo.fetch_manifest("v1")
    assert manifest.digest == IMAGE_DIGEST and manifest.raw == IMAGE


def test_oversized_manifest_is_refused(httpserver: HTTPServer, repo: Repository) -> None:
    httpserver.expect_request("/v2/team/app/manifests/big").respond_with_data(
        b" " * (4 * MiB + 1), content_type=OCI_MANIFEST)
    with pytest.raises(TooLargeError):
        repo.fetch_manifest("big")


def test_push_manifest_checks_the_digest_the_registry_reports(httpserver: HTTPServer, repo: Repository) -> None:
    httpserver.expect_request("/v2/team/app/manifests/v1", method="PUT").respond_with_data(
        "", 201, {"Docker-Content-Digest": sha256(b"rewritten")})
    with pytest.raises(DigestMismatchError) as caught:
        repo.push_manifest("v1", IMAGE, OCI_MANIFEST)
    assert "changed the bytes" in str(caught.value)


def test_push_manifest_sends_exact_bytes_and_type(httpserver: HTTPServer, repo: Repository) -> None:
    raw = b'{\n  "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",' \
          b' "config": {"mediaType": "a/b", "digest": "' + EMPTY_DIGEST.encode() + b'", "size": 2},' \
          b' "layers": []}\n'
    put = recorder(Response("", 201))  # no Docker-Content-Digest: nothing to compare
    httpserver.expect_request("/v2/team/app/manifests/v1", method="PUT").respond_with_handler(put)
    assert repo.push_manifest("v1", raw, OCI_MANIFEST) == sha256(raw)
    assert put.calls[0].get_data() == raw
    assert put.calls[0].headers["Content-Type"] == OCI_MANIFEST


def test_manifest_fetch_waits_out_429(httpserver: HTTPServer, repo: Repository, sleeps: list[float]) -> None:
    httpserver.expect_request("/v2/team/app/manifests/v1").respond_with_handler(recorder(
        oci_error("TOOMANYREQUESTS", status=429, headers={"Retry-After": "3"}), manifest_response(IMAGE)))
    assert repo.fetch_manifest("v1").digest == IMAGE_DIGEST
    assert sleeps == [3.0]


def test_warnings_reach_the_registry(httpserver: HTTPServer, registry: Registry, repo: Repository) -> None:
    response = manifest_response(IMAGE)
    response.headers.add("Warning", '299 - "This image is deprecated and will be removed soon."')
    httpserver.expect_request("/v2/team/app/manifests/v1").respond_with_response(response)
    repo.fetch_manifest("v1")
    repo.fetch_manifest("v1")
    assert registry.warnings == ["This image is deprecated and will be removed soon."]


# -- blobs -----------------------------------------------------------------------------------


BLOB = hashlib.sha256(b"blob").digest() * (100 * 1024)  # 3.2 MiB: several 1 MiB chunks
BLOB_DIGEST = sha256(BLOB)


def test_corrupt_blob_raises_before_the_consumer_has_it_all(httpserver: HTTPServer, repo: Repository) -> None:
    corrupt = BLOB[:-1] + b"!"
    httpserver.expect_request(f"/v2/team/app/blobs/{BLOB_DIGEST}").respond_with_data(corrupt)
    received = 0
    with pytest.raises(DigestMismatchError) as caught:
        with repo.fetch_blob(BLOB_DIGEST, len(BLOB)) as chunks:
            for chunk in chunks:
                received += len(chunk)
    assert received < len(BLOB)  # the last chunk was held back
    assert BLOB_DIGEST in str(caught.value)


def test_blob_larger_than_announced_is_refused(httpserver: HTTPServer, repo: Repository) -> None:
    httpserver.expect_request(f"/v2/team/app/blobs/{BLOB_DIGEST}").respond_with_data(BLOB)
    with pytest.raises(DigestMismatchError):
        with repo.fetch_blob(BLOB_DIGEST, 1000) as chunks:
            list(chunks)


def broken_then_resumed(honour_range: bool):
    """First answer: full Content-Length, half the bytes, then the connection drops."""
    calls: list[Request] = []
    half = len(BLOB) // 2

    def handler(request: Request) -> Response:
        calls.append(request)
        if len(calls) == 1:
            def body() -> Iterator[bytes]:
                yield BLOB[:half]
                raise ConnectionError("dropped")  # werkzeug closes the socket mid-body

            return Response(body(), headers={"Content-Length": str(len(BLOB))}, direct_passthrough=True)
        if honour_range:
            start = int(request.headers["Range"].split("=")[1].rstrip("-"))
            return Response(BLOB[start:], 206, {"Content-Range": f"bytes {start}-{len(BLOB) - 1}/{len(BLOB)}"})
        return Response(BLOB)

    handler.calls = calls  # type: ignore[attr-defined]
    return handler


@pytest.mark.parametrize("honour_range", [True, False], ids=["206", "range-ignored"])
def test_broken_download_resumes_with_range(httpserver: HTTPServer, repo: Repository, sleeps: list[float],
                                            honour_range: bool) -> None:
    handler = broken_then_resumed(honour_range)
    httpserver.expect_request(f"/v2/team/app/blobs/{BLOB_DIGEST}").respond_with_handler(handler)
    with repo.fetch_blob(BLOB_DIGEST, len(BLOB)) as chunks:
        data = b"".join(chunks)
    assert data == BLOB
    assert len(handler.calls) == 2
    assert "Range" not in handler.calls[0].headers
    resumed_at = int(handler.calls[1].headers["Range"].split("=")[1].rstrip("-"))
    assert 0 < resumed_at <= len(BLOB) // 2
    assert handler.calls[1].headers["Accept-Encoding"] == "identity"
    assert len(sleeps) == 1


def test_download_that_keeps_breaking_gives_up(httpserver: HTTPServer, registry: Registry, repo: Repository) -> None:
    def always_broken(_request: Request) -> Response:
        def body() -> Iterator[bytes]:
            yield b"x"
            raise ConnectionError("dropped")

        return Response(body(), headers={"Content-Length": str(len(BLOB))}, direct_passthrough=True)

    httpserver.expect_request(f"/v2/team/app/blobs/{BLOB_DIGEST}").respond_with_handler(always_broken)
    with pytest.raises(TransportError) as caught:
        with repo.fetch_blob(BLOB_DIGEST) as chunks:
            list(chunks)
    assert "connection broke" in str(caught.value)
    assert len(httpserver.log) == registry.options.retries + 1


def test_blob_redirected_to_storage_without_credentials(httpserver: HTTPServer, sleeps: list[float]) -> None:
    """Basic credentials go to the registry only, never to the storage host it redirects to.

    A fake: Distribution's filesystem storage never redirects a blob (only its cloud storage drivers do).
    """
    storage_calls: list[Request] = []

    def registry_side(request: Request) -> Response:
        if "Authorization" not in request.headers:
            return Response("", 401, {"WWW-Authenticate": 'Basic realm="fake"'})
        return Response("", 307, {"Location": f"http://127.0.0.1:{httpserver.port}/storage/blob?sig=1"})

    def storage_side(request: Request) -> Response:
        storage_calls.append(request)
        return Response(BLOB)

    httpserver.expect_request(f"/v2/team/app/blobs/{BLOB_DIGEST}").respond_with_handler(registry_side)
    httpserver.expect_request("/storage/blob").respond_with_handler(storage_side)
    options = TransportOptions(plain_http=True, sleep=sleeps.append)
    repo = Registry(f"localhost:{httpserver.port}", options, Credentials("alice", "pw")).repository("team/app")
    with repo.fetch_blob(BLOB_DIGEST, len(BLOB)) as chunks:
        assert b"".join(chunks) == BLOB
    assert "Authorization" not in storage_calls[0].headers


# -- tag and catalog pagination --------------------------------------------------------------


def pages(*bodies: tuple[list[str] | None, str | None], key: str = "tags"):
    """A list endpoint answering with each (items, Link header) in turn."""
    calls: list[Request] = []

    def handler(request: Request) -> Response:
        calls.append(request)
        items, link = bodies[min(len(calls), len(bodies)) - 1]
        headers = {"Link": link} if link else {}
        return Response(json.dumps({"name": "team/app", key: items}), headers=headers,
                        content_type="application/json")

    handler.calls = calls  # type: ignore[attr-defined]
    return handler


def test_tags_follow_relative_links_without_brackets(httpserver: HTTPServer, repo: Repository) -> None:
    handler = pages((["a", "b"], '/v2/team/app/tags/list?n=2&last=b; rel="next"'), (["c"], None))
    httpserver.expect_request("/v2/team/app/tags/list").respond_with_handler(handler)
    assert repo.tags() == ["a", "b", "c"]
    assert handler.calls[1].args["last"] == "b"


def test_tags_follow_absolute_links(httpserver: HTTPServer, repo: Repository) -> None:
    base = f"http://{httpserver.host}:{httpserver.port}"
    handler = pages((["a"], f'<{base}/v2/team/app/tags/list?n=1&last=a>; rel="next"'),
                    (["b"], f'<{base}/v2/team/app/tags/list?n=1&last=a>; rel="prev"'))
    httpserver.expect_request("/v2/team/app/tags/list").respond_with_handler(handler)
    assert repo.tags() == ["a", "b"]
    assert handler.calls[0].args["n"] == "1000"


def test_tags_link_loop_stops_with_an_error(httpserver: HTTPServer, repo: Repository) -> None:
    handler = pages((["a"], '</v2/team/app/tags/list?n=1&last=a>; rel="next"'))
    httpserver.expect_request("/v2/team/app/tags/list").respond_with_handler(handler)
    with pytest.raises(TransportError) as caught:
        repo.tags()
    assert "already read" in str(caught.value)
    assert len(handler.calls) == 2


def test_pages_without_link_continue_with_last(httpserver: HTTPServer, registry: Registry) -> None:
    handler = pages((["a/1", "a/2"], None), (["a/3", "a/4"], None), (["a/5"], None), key="repositories")
    httpserver.expect_request("/v2/_catalog").respond_with_handler(handler)
    assert list(registry.catalog(page_size=2)) == ["a/1", "a/2", "a/3", "a/4", "a/5"]
    assert [c.args.get("last") for c in handler.calls] == [None, "a/2", "a/4"]
    assert {c.args["n"] for c in handler.calls} == {"2"}


def test_registry_ignoring_last_is_not_looped(httpserver: HTTPServer, registry: Registry) -> None:
    handler = pages((["a/1", "a/2"], None), key="repositories")
    httpserver.expect_request("/v2/_catalog").respond_with_handler(handler)
    assert list(registry.catalog(page_size=2)) == ["a/1", "a/2"]
    assert len(handler.calls) == 2


def test_repeated_last_is_a_loop(httpserver: HTTPServer, registry: Registry) -> None:
    handler = pages((["a/1", "a/2"], None), (["a/3", "a/2"], None), key="repositories")
    httpserver.expect_request("/v2/_catalog").respond_with_handler(handler)
    with pytest.raises(TransportError) as caught:
        list(registry.catalog(page_size=2))
    assert "twice" in str(caught.value)


def test_null_tags_and_page_size_cap(httpserver: HTTPServer, registry: Registry, repo: Repository) -> None:
    handler = pages((None, None))
    httpserver.expect_request("/v2/team/app/tags/list").respond_with_handler(handler)
    assert repo.tags() == []
    catalog = pages(([], None), key="repositories")
    httpserver.expect_request("/v2/_catalog").respond_with_handler(catalog)
    assert list(registry.catalog(page_size=50_000)) == []
    assert catalog.calls[0].args["n"] == "1000"


@pytest.mark.parametrize("refusal", [
    Response("<html>Request Entity Too Large</html>", 413, content_type="text/html"),  # Quay above n=100
    oci_error("PAGINATION_NUMBER_INVALID", status=400),  # ECR, Distribution 3.1 above their cap
], ids=["quay-413", "pagination-number-invalid"])
def test_a_refused_page_size_is_asked_again_smaller(httpserver: HTTPServer, repo: Repository,
                                                    refusal: Response) -> None:
    calls: list[Request] = []

    def handler(request: Request) -> Response:
        calls.append(request)
        n = request.args.get("n")
        if n is not None and int(n) > 100:
            return refusal
        return Response(json.dumps({"name": "team/app", "tags": ["a", "b"]}), content_type="application/json")

    httpserver.expect_request("/v2/team/app/tags/list").respond_with_handler(handler)
    assert repo.tags() == ["a", "b"]
    assert [c.args.get("n") for c in calls] == ["1000", "100"]


def test_a_page_size_refused_at_100_too_is_asked_without_n(httpserver: HTTPServer, repo: Repository) -> None:
    calls: list[Request] = []

    def handler(request: Request) -> Response:
        calls.append(request)
        if "n" in request.args:
            return oci_error("PAGINATION_NUMBER_INVALID", status=400)
        return Response(json.dumps({"name": "team/app", "tags": ["a"]}), content_type="application/json")

    httpserver.expect_request("/v2/team/app/tags/list").respond_with_handler(handler)
    assert repo.tags() == ["a"]
    assert [c.args.get("n") for c in calls] == ["1000", "100", None]


def test_digests_listed_as_tags_are_left_out(httpserver: HTTPServer, repo: Repository) -> None:
    """Artifactory (personality digests_listed_as_tags) lists manifest digests among the tags."""
    listed = ["1.0", IMAGE_DIGEST, "latest", "sha512:" + "ab" * 64]
    httpserver.expect_request("/v2/team/app/tags/list").respond_with_json({"name": "team/app", "tags": listed})
    assert repo.tags() == ["1.0", "latest"]


def test_other_refusals_of_a_tag_list_are_not_retried(httpserver: HTTPServer, repo: Repository) -> None:
    httpserver.expect_request("/v2/team/app/tags/list").respond_with_response(oci_error("NAME_INVALID", status=400))
    with pytest.raises(RegistryError):
        repo.tags()
    assert len(httpserver.log) == 1


def test_docker_hub_uses_its_api_host() -> None:
    registry = Registry("index.docker.io")
    assert registry.host == "docker.io"
    assert registry.transport.base_url == "https://registry-1.docker.io"
