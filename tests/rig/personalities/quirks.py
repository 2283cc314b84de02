"""The quirk library: each function builds one recorded registry behaviour as a :class:`Quirk`.

Every quirk names where it was recorded (``source``): an upstream tracker entry,
source file or vendor document. Where a tracker records a behaviour for a *family* of registries,
the personality table (``registries.py``) decides which personality carries it.
Rewrites are deliberately small: they change only the answer the quirk is
about, so a failing test points at one behaviour.
"""
from __future__ import annotations

import base64
import dataclasses
import json
import re
from typing import Any

import jwt

from tests.rig.fault_proxy import ProxyRequest, Reply
from tests.rig.images import Content, Image, Index
from tests.rig.personalities.stack import (
    PersonalityStack,
    Quirk,
    api_parts,
    html,
    oci_error,
    query,
    with_path,
    with_query,
)

CONTAINERD_AUTHORIZER = ("containerd remotes/docker/authorizer.go (fetchToken: POST first, GET on 400/401/404/405); "
                         "containerd #12822, #5288")
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def _body_json(reply: Reply) -> Any:
    try:
        return json.loads(reply.body if isinstance(reply.body, bytes) else b"".join(reply.body))
    except ValueError:
        return None


def _json_reply(reply: Reply, data: Any) -> Reply:
    body = json.dumps(data).encode()
    headers = [(k, v) for k, v in reply.headers if k.lower() != "content-length"]
    return Reply(reply.status, headers, body, len(body))


def _granted(request: ProxyRequest, name: str) -> set[str]:
    """Actions the request's bearer token grants on repository ``name`` (unverified: the registry verifies)."""
    auth = request.headers.get("Authorization", "")
    if not auth.lower().startswith("bearer "):
        return set()
    try:
        claims = jwt.decode(auth.split(" ", 1)[1], options={"verify_signature": False})
    except jwt.PyJWTError:
        return set()
    return {a for entry in claims.get("access", []) if entry.get("type") == "repository" and entry.get("name") == name
            for a in entry.get("actions", [])}


# -- token service ---------------------------------------------------------------------------
def oauth_post_refused(status: int, *, html_page: bool = False, registry: str) -> Quirk:
    """The token endpoint refuses the OAuth2 POST; only the GET flow works."""
    def before(stack: PersonalityStack, request: ProxyRequest) -> Reply | None:
        if request.method != "POST":
            return None
        if html_page:
            return html(status, "<html><body><h1>404 Not Found</h1></body></html>")
        body = json.dumps({"error": "unsupported", "error_description": "POST is not supported here"}).encode()
        return Reply(status, [("Content-Type", "application/json")], body, len(body))

    return Quirk(f"oauth_post_{status}{'_html' if html_page else ''}",
                 f"{registry}: OAuth2 POST to the token endpoint answered {status}"
                 f"{' with an HTML page' if html_page else ''}; clients must fall back to GET",
                 CONTAINERD_AUTHORIZER, side="token", before=before)


def token_field_only(field: str, *, registry: str) -> Quirk:
    """The token answer carries only ``token`` or only ``access_token``."""
    drop = "access_token" if field == "token" else "token"

    def after(stack: PersonalityStack, request: ProxyRequest, reply: Reply) -> Reply:
        data = _body_json(reply)
        if reply.status != 200 or not isinstance(data, dict) or field not in data and drop not in data:
            return reply
        value = data.get(field) or data.get(drop)
        data.pop(drop, None)
        data[field] = value
        return _json_reply(reply, data)

    return Quirk(f"token_field_{field}_only", f"{registry}: the token answer has only `{field}`",
                 "distribution-spec token.md (`token` and `access_token` are aliases); " + CONTAINERD_AUTHORIZER,
                 side="token", after=after)


def no_expires_in(*, registry: str) -> Quirk:
    """The token answer has no ``expires_in`` (clients must assume 60 s)."""
    def after(stack: PersonalityStack, request: ProxyRequest, reply: Reply) -> Reply:
        data = _body_json(reply)
        if reply.status != 200 or not isinstance(data, dict):
            return reply
        data.pop("expires_in", None)
        data.pop("issued_at", None)
        return _json_reply(reply, data)

    return Quirk("no_expires_in", f"{registry}: token answers carry no `expires_in`", CONTAINERD_AUTHORIZER,
                 side="token", after=after)


# -- names and auth ----------------------------------------------------------------------------
def missing_repo_401(*, registry: str) -> Quirk:
    """A repository that does not exist answers 401 to a reader, even with a valid pull token."""
    def after(stack: PersonalityStack, request: ProxyRequest, reply: Reply) -> Reply:
        parts = api_parts(request)
        if reply.status != 404 or parts is None or request.method not in ("GET", "HEAD"):
            return reply
        name, kind, _rest = parts
        if kind not in ("manifests", "tags") or "push" in _granted(request, name):
            return reply
        probe = stack.forward(ProxyRequest("GET", f"/v2/{name}/tags/list", {
            k: v for k, v in request.headers.items() if k.lower() in ("authorization", "host")}, b""))
        data = _body_json(probe)
        codes = {e.get("code") for e in (data or {}).get("errors", [])} if isinstance(data, dict) else set()
        if probe.status != 404 or "NAME_UNKNOWN" not in codes:
            return reply
        challenge = (f'Bearer realm="http://{stack.token.host}/token",service="{stack.token_server.service}",'
                     f'scope="repository:{name}:pull",error="insufficient_scope"')
        return oci_error(401, "UNAUTHORIZED", "authentication required",
                         [("WWW-Authenticate", challenge)])

    return Quirk("missing_repo_401", f"{registry}: a missing repository answers 401 (not 404) to a pull token",
                 "jupyterhub/binderhub #1664; tunnel-client #75", after=after)


def library_prefix() -> Quirk:
    """One-component names live under ``library/`` (``alpine`` is ``library/alpine``)."""
    def before(stack: PersonalityStack, request: ProxyRequest) -> ProxyRequest | None:
        match = re.match(r"^/v2/([^/]+)/(manifests|blobs|tags|referrers)(/.*)?$", request.route)
        if not match or match[1] == "library":
            return None
        rest = request.path[len(f"/v2/{match[1]}"):]
        return with_path(request, f"/v2/library/{match[1]}{rest}")

    return Quirk("library_prefix", "Docker Hub: one-component names are served (and challenged) as `library/<name>`",
                 "distribution/distribution #4354 (scope normalisation of official images)", before=before)


# -- blobs and storage -------------------------------------------------------------------------
def blob_redirect(*, registry: str, storage: str) -> Quirk:
    """Blob GETs answer 307 to a signed storage URL (after the registry checked access)."""
    def after(stack: PersonalityStack, request: ProxyRequest, reply: Reply) -> Reply:
        parts = api_parts(request)
        if request.method != "GET" or parts is None or parts[1] != "blobs" or reply.status not in (200, 206):
            return reply
        if not parts[2].startswith("sha256:"):
            return reply
        return Reply(307, [("Location", stack.signed_url(parts[2])), ("Docker-Content-Digest", parts[2])], b"", 0)

    return Quirk("blob_redirect", f"{registry}: blob GETs redirect (307) to {storage} with a signed URL",
                 "chainguard-dev/melange #2552; containerd #2364", after=after)


def signed_url_rejects_authorization(*, storage: str) -> Quirk:
    """The storage host refuses a signed URL that also carries ``Authorization`` (S3: one auth mechanism only)."""
    def before(stack: PersonalityStack, request: ProxyRequest) -> Reply | None:
        if "Authorization" not in request.headers and "authorization" not in {k.lower() for k in request.headers}:
            return None
        body = (b"<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed; only the "
                b"X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header "
                b"should be specified</Message></Error>")
        return Reply(400, [("Content-Type", "application/xml")], body, len(body))

    return Quirk("signed_url_rejects_authorization",
                 f"{storage}: a signed URL request that also sends `Authorization` answers 400",
                 "chainguard-dev/melange #2552", side="storage", before=before)


def cdn_ignores_range(*, storage: str) -> Quirk:
    """The CDN answers ``Range`` requests with the whole blob (200)."""
    def before(stack: PersonalityStack, request: ProxyRequest) -> ProxyRequest | None:
        if "Range" not in request.headers:
            return None
        headers = {k: v for k, v in request.headers.items() if k != "Range"}
        return ProxyRequest(request.method, request.path, headers, request.body)

    return Quirk("cdn_ignores_range", f"{storage}: `Range` is ignored; the answer is 200 with the whole blob",
                 "containerd/containerd #2364", side="storage", before=before)


# -- deletes -------------------------------------------------------------------------------------
def delete_unsupported(*, registry: str) -> Quirk:
    """Every DELETE of a manifest answers 405 ``UNSUPPORTED``."""
    def before(stack: PersonalityStack, request: ProxyRequest) -> Reply | None:
        parts = api_parts(request)
        if request.method == "DELETE" and parts is not None and parts[1] in ("manifests", "blobs"):
            return oci_error(405, "UNSUPPORTED", "The operation is unsupported.")
        return None

    return Quirk("delete_unsupported", f"{registry}: DELETE of manifests and blobs answers 405 UNSUPPORTED",
                 "docker/hub-feedback #1759; containers/skopeo #1880", before=before)


def tag_delete_unsupported(*, registry: str) -> Quirk:
    """DELETE by tag answers ``UNSUPPORTED``; by digest works."""
    def before(stack: PersonalityStack, request: ProxyRequest) -> Reply | None:
        parts = api_parts(request)
        if request.method == "DELETE" and parts is not None and parts[1] == "manifests" and ":" not in parts[2]:
            return oci_error(405, "UNSUPPORTED", "The operation is unsupported.")
        return None

    return Quirk("tag_delete_unsupported", f"{registry}: DELETE /manifests/<tag> answers 405 UNSUPPORTED",
                 "goharbor/harbor #19690 (and #11971, where it was made so)", before=before)


def not_found_unknown(*, registry: str) -> Quirk:
    """Not-found answers carry the code ``UNKNOWN`` instead of ``MANIFEST_UNKNOWN`` / ``NAME_UNKNOWN``."""
    def after(stack: PersonalityStack, request: ProxyRequest, reply: Reply) -> Reply:
        data = _body_json(reply)
        if reply.status != 404 or not isinstance(data, dict) or "errors" not in data:
            return reply
        for error in data["errors"]:
            error["code"] = "UNKNOWN"
        return _json_reply(reply, data)

    return Quirk("not_found_unknown", f"{registry}: 404 answers are coded UNKNOWN", "goharbor/harbor #19690",
                 after=after)


def tag_delete_endpoint_404(*, registry: str) -> Quirk:
    """DELETE /manifests/<tag> is not routed (a plain-text 404 from the router), the tag exists."""
    def before(stack: PersonalityStack, request: ProxyRequest) -> Reply | None:
        parts = api_parts(request)
        if request.method == "DELETE" and parts is not None and parts[1] == "manifests" and ":" not in parts[2]:
            body = b"404 page not found\n"
            return Reply(404, [("Content-Type", "text/plain; charset=utf-8")], body, len(body))
        return None

    return Quirk("tag_delete_endpoint_404",
                 f"{registry}: DELETE /manifests/<tag> answers an endpoint-level 404 (only the legacy "
                 "/tags/reference/<tag> endpoint deletes tags)", "werf/werf #7866", before=before)


# -- tag lists -------------------------------------------------------------------------------------
def _tag_list(request: ProxyRequest) -> bool:
    parts = api_parts(request)
    return request.method == "GET" and parts is not None and parts[1] == "tags" and parts[2] == "list"


def page_size_limit(limit: int, status: int, code: str, *, registry: str, source: str) -> Quirk:
    """A page size ``n`` above ``limit`` is refused with ``status``."""
    def before(stack: PersonalityStack, request: ProxyRequest) -> Reply | None:
        if not _tag_list(request):
            return None
        n = query(request).get("n", [""])[0]
        if n.isdigit() and int(n) > limit:
            if status == 413:
                return Reply(413, [("Content-Type", "text/html")], b"<html>Request Entity Too Large</html>", 37)
            return oci_error(status, code, f"n must be at most {limit}")
        return None

    return Quirk(f"page_size_over_{limit}_{status}", f"{registry}: tags/list with n > {limit} answers {status}",
                 source, before=before)


def page_cap(size: int, *, registry: str, real: int) -> Quirk:
    """The registry pages at ``size`` whatever ``n`` asked (the rig uses a tiny size so few tags span pages)."""
    def before(stack: PersonalityStack, request: ProxyRequest) -> ProxyRequest | None:
        if not _tag_list(request):
            return None
        params = query(request)
        asked = params.get("n", [""])[0]
        params["n"] = [str(min(size, int(asked)) if asked.isdigit() else size)]
        return with_query(request, params)

    return Quirk("page_cap", f"{registry}: tag lists come in pages of {real} (rig: {size}) with a Link to the next",
                 "distribution-spec (pagination); quay/quay #2884", before=before)


def opaque_next_page(*, registry: str) -> Quirk:
    """The next-page Link carries an opaque ``next_page`` token instead of ``last``."""
    def before(stack: PersonalityStack, request: ProxyRequest) -> ProxyRequest | Reply | None:
        if not _tag_list(request):
            return None
        params = query(request)
        if "last" in params:
            return oci_error(400, "PAGINATION_NUMBER_INVALID", "unknown parameter last")
        if "next_page" in params:
            try:
                params["last"] = [base64.urlsafe_b64decode(params.pop("next_page")[0]).decode()]
            except ValueError:
                return oci_error(400, "UNKNOWN", "bad next_page")
            return with_query(request, params)
        return None

    def after(stack: PersonalityStack, request: ProxyRequest, reply: Reply) -> Reply:
        link = reply.header("Link")
        match = re.search(r"last=([^&>]+)", link or "")
        if not match:
            return reply
        token = base64.urlsafe_b64encode(match[1].encode()).decode()
        n = re.search(r"n=(\d+)", link or "")
        return reply.with_header(
            "Link", f'</v2/{api_parts(request)[0]}/tags/list?next_page={token}&n={n[1] if n else 50}>; rel="next"')  # type: ignore[index]

    return Quirk("opaque_next_page", f"{registry}: the next-page Link carries an opaque `next_page` token (no `last`)",
                 "quay/quay #2884", before=before, after=after)


def digests_listed_as_tags(*, registry: str) -> Quirk:
    """Tag lists also hold every manifest digest of the repository (``sha256:<hex>``)."""
    def after(stack: PersonalityStack, request: ProxyRequest, reply: Reply) -> Reply:
        data = _body_json(reply)
        if not _tag_list(request) or reply.status != 200 or not isinstance(data, dict) or "last" in query(request):
            return reply
        name = api_parts(request)[0]  # type: ignore[index]
        revisions = stack.registry.storage / "docker/registry/v2/repositories" / name / "_manifests/revisions/sha256"
        digests = sorted(f"sha256:{p.name}" for p in revisions.iterdir()) if revisions.is_dir() else []
        data["tags"] = [*(data.get("tags") or []), *digests]
        return _json_reply(reply, data)

    return Quirk("digests_listed_as_tags", f"{registry}: tags/list also lists manifest digests as if they were tags",
                 "google/go-containerregistry #681; containers/skopeo #2346", after=after)


def null_tags(*, registry: str) -> Quirk:
    """An empty tag list is ``"tags": null``."""
    def after(stack: PersonalityStack, request: ProxyRequest, reply: Reply) -> Reply:
        data = _body_json(reply)
        if _tag_list(request) and isinstance(data, dict) and not data.get("tags"):
            data["tags"] = None
            return _json_reply(reply, data)
        return reply

    return Quirk("null_tags", f"{registry}: an empty tag list is `\"tags\": null`", "sonatype/nexus-public #117",
                 after=after)


def link_bad_prefix(prefix: str, *, registry: str) -> Quirk:
    """The next-page Link carries the internal ``/repository/<repo>`` prefix, which 400s on the connector port."""
    def before(stack: PersonalityStack, request: ProxyRequest) -> Reply | None:
        if request.route.startswith(prefix):
            return oci_error(400, "UNKNOWN", "invalid path")
        return None

    def after(stack: PersonalityStack, request: ProxyRequest, reply: Reply) -> Reply:
        link = reply.header("Link")
        if not link or "/v2/" not in link:
            return reply
        return reply.with_header("Link", link.replace("</v2/", f"<{prefix}/v2/", 1))

    return Quirk("link_bad_prefix", f"{registry}: the next-page Link starts with `{prefix}`, a path that answers 400",
                 "sonatype/nexus-public #117 (and #1011)", before=before, after=after)


# -- manifests ---------------------------------------------------------------------------------------
def index_needs_accept(*, registry: str) -> Quirk:
    """An index is 404 unless ``Accept`` names the OCI index type."""
    def after(stack: PersonalityStack, request: ProxyRequest, reply: Reply) -> Reply:
        parts = api_parts(request)
        if parts is None or parts[1] != "manifests" or request.method not in ("GET", "HEAD") or reply.status != 200:
            return reply
        if (reply.header("Content-Type") or "").split(";")[0] != OCI_INDEX:
            return reply
        if OCI_INDEX in request.headers.get("Accept", ""):
            return reply
        return oci_error(404, "MANIFEST_UNKNOWN", "manifest unknown")

    return Quirk("index_needs_accept", f"{registry}: an OCI index answers 404 unless Accept names its media type",
                 "Azure/acr-cli #132", after=after)


def head_without_digest(*, registry: str) -> Quirk:
    """Manifest HEAD answers lack ``Docker-Content-Digest`` and say ``application/octet-stream``."""
    def after(stack: PersonalityStack, request: ProxyRequest, reply: Reply) -> Reply:
        parts = api_parts(request)
        if request.method != "HEAD" or parts is None or parts[1] != "manifests" or reply.status != 200:
            return reply
        headers = [(k, v) for k, v in reply.headers if k.lower() not in ("docker-content-digest", "content-type")]
        return Reply(200, [*headers, ("Content-Type", "application/octet-stream")], b"", None)

    return Quirk("head_without_digest",
                 f"{registry}: manifest HEAD has no Docker-Content-Digest and Content-Type application/octet-stream",
                 "containerd/containerd #3533", after=after)


def _without_media_type(content: Content) -> Content:
    """``content`` rebuilt without the top-level ``mediaType`` of every manifest (children first)."""
    doc = json.loads(content.data)
    doc.pop("mediaType", None)
    if isinstance(content, Index):
        children = tuple(_without_media_type(child) for child in content.children)
        doc["manifests"] = [child.index_descriptor() for child in children]
        return dataclasses.replace(content, data=json.dumps(doc, indent=3).encode(), children=children)
    assert isinstance(content, Image)
    return dataclasses.replace(content, data=json.dumps(doc, indent=3).encode())


def manifest_without_media_type(*, registry: str) -> Quirk:
    """Manifests are held (and served) without the top-level ``mediaType``; only Content-Type and shape say what they are.

    A registry serves the bytes it was given, so this is a property of the seeded content, not a rewrite
    of an answer (the digest would change). Distribution then serves these manifests with the
    Content-Type it infers from their shape, as ECR does with the type given at push.
    """
    return Quirk("manifest_without_media_type",
                 f"{registry}: manifests (Helm charts, oras pushes) are served without a top-level `mediaType`; "
                 "the type comes only from Content-Type or the manifest's shape",
                 "aws/aws-sdk #193 (ECR BatchGetImage manifest without mediaType); gitpod-io/gitpod #3397 (ECR); "
                 "containers/image #584; gardener/cc-utils #1238 (clients reading the body's mediaType break)",
                 seed=_without_media_type)


def manifest_head_405(*, registry: str) -> Quirk:
    """``HEAD /v2/<name>/manifests/<ref>`` answers 405; only GET serves manifests."""
    def before(stack: PersonalityStack, request: ProxyRequest) -> Reply | None:
        parts = api_parts(request)
        if request.method == "HEAD" and parts is not None and parts[1] == "manifests":
            return Reply(405, [("Allow", "GET, PUT, DELETE"), ("Content-Length", "0")], b"", None)
        return None

    return Quirk("manifest_head_405", f"{registry}: a manifest HEAD answers 405 Method Not Allowed; GET works",
                 "distribution/distribution #1485 (HEAD manifest answered 405); merll/docker-registry-util #3 "
                 "(HEAD not working in Nexus); containerd #6684 (containerd retries a HEAD with GET on 405 only)",
                 before=before)


def subject_refused(*, registry: str) -> Quirk:
    """A manifest PUT with a ``subject`` field answers 405."""
    def before(stack: PersonalityStack, request: ProxyRequest) -> Reply | None:
        parts = api_parts(request)
        if request.method != "PUT" or parts is None or parts[1] != "manifests":
            return None
        try:
            manifest = json.loads(request.body)
        except ValueError:
            return None
        if isinstance(manifest, dict) and "subject" in manifest:
            return oci_error(405, "UNSUPPORTED", "manifests with a subject are not supported")
        return None

    return Quirk("subject_refused", f"{registry}: a manifest with `subject` is refused (405)",
                 "aws/containers-roadmap #2783", before=before)


# -- uploads -----------------------------------------------------------------------------------------
def _upload_session(request: ProxyRequest) -> bool:
    parts = api_parts(request)
    return parts is not None and parts[1] == "blobs" and parts[2].startswith("uploads/") and parts[2] != "uploads/"


def patch_status(status: int, *, registry: str, source: str) -> Quirk:
    """PATCH answers ``status`` instead of 202."""
    def after(stack: PersonalityStack, request: ProxyRequest, reply: Reply) -> Reply:
        if request.method == "PATCH" and _upload_session(request) and reply.status == 202:
            return Reply(status, reply.headers, b"" if status == 204 else reply.body,
                         0 if status == 204 else reply.length)
        return reply

    return Quirk(f"patch_{status}", f"{registry}: an upload PATCH answers {status} instead of 202", source, after=after)


def location_relative(*, registry: str) -> Quirk:
    """Upload ``Location`` headers are relative paths."""
    def after(stack: PersonalityStack, request: ProxyRequest, reply: Reply) -> Reply:
        location = reply.header("Location")
        if not location or "/blobs/uploads/" not in location:
            return reply
        return reply.with_header("Location", re.sub(r"^https?://[^/]+", "", location))

    return Quirk("location_relative", f"{registry}: upload Location headers are relative paths",
                 "aws/containers-roadmap #2831; ocx #237; dotnet/sdk-container-builds #258", after=after)


def _note_upload(stack: PersonalityStack, request: ProxyRequest) -> None:
    """Record an upload body (method, bytes, Content-Range) so the suite can show what the quirk judged."""
    if request.method in ("PATCH", "PUT") and _upload_session(request):
        seen = stack.state.setdefault("uploads", [])
        entry = (request.method, len(request.body), request.headers.get("Content-Range", ""))
        if entry not in seen or request.method == "PATCH":
            seen.append(entry)


def location_http_behind_tls(*, registry: str) -> Quirk:
    """Upload Locations name ``http://`` although the client came over https (the personality serves TLS).

    The registry sits behind a TLS-terminating proxy that does not tell it the original scheme
    (no ``X-Forwarded-Proto``), so it builds absolute Locations from the plain request it saw.
    """
    def after(stack: PersonalityStack, request: ProxyRequest, reply: Reply) -> Reply:
        location = reply.header("Location")
        if not location or "/blobs/uploads/" not in location:
            return reply
        stack.state["http_locations"] = stack.state.get("http_locations", 0) + 1
        return reply.with_header("Location", "http://" + stack.host + re.sub(r"^https?://[^/]+", "", location))

    return Quirk("location_http_behind_tls",
                 f"{registry} behind a TLS-terminating proxy: upload Locations say `http://` for the https host",
                 "distribution/distribution #123 (and #125: X-Forwarded-Proto); containerd pusher.go and "
                 "go-containerregistry remote/write.go follow the Location's scheme as sent", after=after)


def range_stalls(*, registry: str) -> Quirk:
    """PATCH chunks are stored, but every answer's ``Range`` stays at the first chunk's end."""
    def before(stack: PersonalityStack, request: ProxyRequest) -> None:
        _note_upload(stack, request)

    def after(stack: PersonalityStack, request: ProxyRequest, reply: Reply) -> Reply:
        if request.method != "PATCH" or not _upload_session(request) or reply.status not in (201, 202, 204):
            return reply
        session = request.route.rsplit("/", 1)[-1]
        first = stack.state.setdefault("first_range", {}).setdefault(session, reply.header("Range"))
        if first is None or first == reply.header("Range"):
            return reply
        stack.state["stalled"] = stack.state.get("stalled", 0) + 1
        return reply.with_header("Range", first)

    return Quirk("range_stalls",
                 f"{registry}: after the first upload chunk, PATCH answers keep the first chunk's `Range` (the data "
                 "is stored); re-sending draws 416. Clients should PUT the blob whole",
                 "aws/containers-roadmap #2831; crashappsec/chalk #682", before=before, after=after)


def content_range_star_refused(*, registry: str) -> Quirk:
    """A PATCH with ``Content-Range: bytes 0-N/*`` answers 400."""
    def before(stack: PersonalityStack, request: ProxyRequest) -> Reply | None:
        _note_upload(stack, request)
        if request.method == "PATCH" and request.headers.get("Content-Range", "").endswith("/*"):
            stack.state["refused"] = stack.state.get("refused", 0) + 1
            return oci_error(400, "BLOB_UPLOAD_INVALID", "invalid content range")
        return None

    return Quirk("content_range_star_refused", f"{registry}: PATCH with `Content-Range: bytes 0-N/*` answers 400",
                 "dotnet/sdk-container-builds #258", before=before)


def chunk_limit_416(limit: int, *, registry: str) -> Quirk:
    """PATCH bodies above ``limit`` bytes answer 416."""
    def before(stack: PersonalityStack, request: ProxyRequest) -> Reply | None:
        _note_upload(stack, request)
        if request.method == "PATCH" and len(request.body) > limit:
            stack.state["refused"] = stack.state.get("refused", 0) + 1
            return oci_error(416, "SIZE_INVALID", f"chunks over {limit} bytes are not accepted")
        return None

    return Quirk("chunk_limit_416", f"{registry}: an upload chunk over {limit // (1024 * 1024)} MiB answers 416",
                 "ocx #237", before=before)


# -- mounts --------------------------------------------------------------------------------------------
def _mount(request: ProxyRequest) -> dict[str, list[str]] | None:
    parts = api_parts(request)
    if request.method != "POST" or parts is None or parts[1] != "blobs" or parts[2] != "uploads/":
        return None
    params = query(request)
    return params if "mount" in params else None


def mount_starts_upload(*, registry: str) -> Quirk:
    """A mount request answers 202 with an upload session (the blob is not mounted)."""
    def before(stack: PersonalityStack, request: ProxyRequest) -> ProxyRequest | None:
        params = _mount(request)
        if params is None:
            return None
        params.pop("mount", None)
        params.pop("from", None)
        return with_query(request, params)

    return Quirk("mount_202", f"{registry}: a cross-repository mount answers 202 (a new upload) instead of 201",
                 "google/go-containerregistry #1679", before=before)


def mount_without_from_400(*, registry: str) -> Quirk:
    """A mount without ``from`` answers 400."""
    def before(stack: PersonalityStack, request: ProxyRequest) -> Reply | None:
        params = _mount(request)
        if params is not None and not params.get("from"):
            return oci_error(400, "BLOB_UPLOAD_INVALID", "mount without from")
        return None

    return Quirk("mount_without_from_400", f"{registry}: a mount without `from` answers 400",
                 "google/go-containerregistry #1679", before=before)


def mount_missing_source_401(*, registry: str) -> Quirk:
    """A mount from a repository (project) that does not exist answers 401."""
    def before(stack: PersonalityStack, request: ProxyRequest) -> Reply | None:
        params = _mount(request)
        if params is None or not params.get("from"):
            return None
        probe = stack.forward(ProxyRequest("GET", f"/v2/{params['from'][0]}/tags/list", {
            k: v for k, v in request.headers.items() if k.lower() in ("authorization", "host")}, b""))
        if probe.status == 404:
            return oci_error(401, "UNAUTHORIZED", "project not found")
        return None

    return Quirk("mount_missing_source_401", f"{registry}: a mount from a missing project answers 401",
                 "goharbor/harbor #17097", before=before)


def mount_name_invalid(*, registry: str) -> Quirk:
    """Every cross-repository mount answers 400 ``NAME_INVALID`` (invalid repository name)."""
    def before(stack: PersonalityStack, request: ProxyRequest) -> Reply | None:
        if _mount(request) is not None:
            return oci_error(400, "NAME_INVALID", "invalid repository name")
        return None

    return Quirk("mount_name_invalid", f"{registry}: a cross-repository mount answers 400 NAME_INVALID",
                 "google/go-containerregistry #1679", before=before)


# -- referrers -----------------------------------------------------------------------------------------
def oci_subject_without_api(*, registry: str) -> Quirk:
    """A manifest PUT with ``subject`` gets an ``OCI-Subject`` header although there is no referrers API."""
    def after(stack: PersonalityStack, request: ProxyRequest, reply: Reply) -> Reply:
        parts = api_parts(request)
        if request.method != "PUT" or parts is None or parts[1] != "manifests" or reply.status != 201:
            return reply
        try:
            manifest = json.loads(request.body)
        except ValueError:
            return reply
        subject = manifest.get("subject", {}).get("digest") if isinstance(manifest, dict) else None
        return reply.with_header("OCI-Subject", subject) if subject else reply

    return Quirk("oci_subject_without_api", f"{registry}: `OCI-Subject` is sent on a PUT, but /referrers is 404",
                 "oras-project/oras-go #1396", after=after)


def referrers_login_page(*, registry: str) -> Quirk:
    """``/referrers`` answers 200 with an HTML login page."""
    def before(stack: PersonalityStack, request: ProxyRequest) -> Reply | None:
        parts = api_parts(request)
        if parts is not None and parts[1] == "referrers":
            return html(200)
        return None

    return Quirk("referrers_login_page", f"{registry}: /referrers answers 200 with an HTML login page",
                 "oras-project/oras-go #1396", before=before)


def referrers_406(*, registry: str) -> Quirk:
    """``/referrers`` answers 406 Not Acceptable."""
    def before(stack: PersonalityStack, request: ProxyRequest) -> Reply | None:
        parts = api_parts(request)
        if parts is not None and parts[1] == "referrers":
            return oci_error(406, "UNSUPPORTED", "not acceptable")
        return None

    return Quirk("referrers_406", f"{registry}: /referrers answers 406", "oras-project/oras-go #633", before=before)


def fallback_tag_is_subject(*, registry: str) -> Quirk:
    """A missing ``sha256-<hex>`` tag resolves to the manifest ``sha256:<hex>`` itself.

    Whatever the manifest is: for an image subject the client reads an image
    manifest where it expects an index; for an index subject it reads an index
    whose entries are the subject's children (the case that passes for a
    referrers list; ``tests/integration/test_referrers_fallback.py``).
    """
    def before(stack: PersonalityStack, request: ProxyRequest) -> ProxyRequest | None:
        parts = api_parts(request)
        if parts is None or parts[1] != "manifests" or request.method not in ("GET", "HEAD"):
            return None
        match = re.fullmatch(r"sha256-([0-9a-f]{64})", parts[2])
        if not match:
            return None
        probe = stack.forward(ProxyRequest("HEAD", request.path, dict(request.headers), b""))
        if probe.status != 404:
            return None
        return with_path(request, f"/v2/{parts[0]}/manifests/sha256:{match[1]}")

    return Quirk("fallback_tag_is_subject",
                 (f"{registry}: a missing referrers fallback tag `sha256-<hex>` resolves to the subject manifest; "
                  "for an index subject its children pass for referrers unless the client checks"),
                 "oras-project/oras-go #1396 (fixed in #1403)", before=before)


# -- catalog and rate limits -----------------------------------------------------------------------------
def catalog_refused(status: int, *, registry: str) -> Quirk:
    """``/v2/_catalog`` is refused (or admin-only)."""
    def before(stack: PersonalityStack, request: ProxyRequest) -> Reply | None:
        if request.route == "/v2/_catalog":
            code = {401: "UNAUTHORIZED", 403: "DENIED", 404: "NOT_FOUND"}.get(status, "UNSUPPORTED")
            return oci_error(status, code, "catalog listing is not available")
        return None

    return Quirk(f"catalog_{status}", f"{registry}: /v2/_catalog answers {status}",
                 ("goharbor/harbor #6784, #21291 (the catalog is for system admins only); "
                  "Docker Hub and ACR refuse it to ordinary tokens likewise"), before=before)


def rate_limited_once(code: str, *, registry: str, source: str) -> Quirk:
    """The first manifest GET is answered 429 with ``Retry-After: 1`` (once, to keep the suite fast)."""
    def before(stack: PersonalityStack, request: ProxyRequest) -> Reply | None:
        parts = api_parts(request)
        if request.method != "GET" or parts is None or parts[1] != "manifests" or stack.state.get("limited"):
            return None
        stack.state["limited"] = True
        return oci_error(429, code, "rate limit exceeded", [("Retry-After", "1")])

    return Quirk(f"rate_limit_{code.lower()}", f"{registry}: 429 {code} with Retry-After", source, before=before)


def ratelimit_headers(*, registry: str) -> Quirk:
    """``RateLimit-*`` headers on manifest answers, one of them empty."""
    def after(stack: PersonalityStack, request: ProxyRequest, reply: Reply) -> Reply:
        parts = api_parts(request)
        if parts is None or parts[1] != "manifests":
            return reply
        return Reply(reply.status, [*reply.headers, ("RateLimit-Limit", "100;w=21600"), ("RateLimit-Remaining", ""),
                                    ("Docker-RateLimit-Source", "127.0.0.1")], reply.body, reply.length)

    return Quirk("ratelimit_headers", f"{registry}: RateLimit-Limit / RateLimit-Remaining headers, some empty",
                 "docker/docs #11707; regclient/regclient #711", after=after)
