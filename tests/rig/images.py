"""Build and push test images without the project's client.

Everything here is independent of ``plugins/module_utils`` on purpose: a bug
in our client must not be able to hide inside the fixture that checks it.

Content (all deterministic: same arguments, same bytes, same digests):

* :func:`make_layer` - gzip tar layer from a seed (fixed mtime/uid, gzip mtime 0).
* :func:`make_config` - image config with chosen ``created``, labels, platform.
* :func:`make_image` - OCI or Docker schema2 manifest + its blobs (an
  :class:`Image`); also OCI artifacts with ``subject`` / ``artifactType``.
* :func:`make_index` / :func:`make_multiarch` - OCI index or Docker manifest list.
* :func:`make_artifact` - OCI 1.1 artifact (empty config) pointing at a subject.
* :func:`make_cosign_signature` + :func:`cosign_tag` - cosign-style
  ``sha256-<hex>.sig`` signature manifest.
* :func:`make_referrers_index` + :func:`referrers_tag` - the OCI referrers
  tag-schema fallback (``sha256-<hex>`` tag holding an index of referrers).
* :func:`write_oci_layout` - an OCI image layout dir for ``skopeo copy oci:DIR:TAG …``.

Transfer, with raw ``requests`` calls and a tiny explicit auth implementation
(Basic, and Bearer via the token realm with GET):

* :class:`RawPusher` - ``push_blob``, ``push_manifest``, ``push_image``,
  ``push`` (image or index, children first), ``delete_manifest``;
  returns :class:`PushedImage`.
* :class:`RawPuller` - ``manifest``, ``blob``, ``pull`` (recursive, every
  digest verified), ``tags``, ``head_manifest``; returns :class:`PulledImage`.

Both record what they sent in ``.sent`` (method, path, status) so tests can
compare with the registry's access log.
"""
from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import re
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import requests

# -- media types (spelled out here, not imported from the client) -------------------
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
COSIGN_SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
COSIGN_SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
MANIFEST_ACCEPT = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST)
EMPTY_JSON = b"{}"

DEFAULT_CREATED = "2024-01-01T00:00:00Z"
_TAR_MTIME = 1_700_000_000  # fixed so rebuilding a layer gives the same digest


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _dumps(obj: Any, indent: int | None) -> bytes:
    # Docker writes manifests with 3-space indentation; keeping non-canonical
    # bytes by default makes any re-serialisation by a client change the digest.
    if indent is None:
        return json.dumps(obj, separators=(",", ":")).encode()
    return json.dumps(obj, indent=indent).encode()


@dataclass(frozen=True)
class Blob:
    """Bytes with a media type; the unit a registry stores."""

    data: bytes
    media_type: str

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        """An OCI descriptor for this blob, with ``extra`` fields (e.g. annotations)."""
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


@dataclass(frozen=True)
class Layer(Blob):
    """A layer blob plus the digest of its uncompressed tar (the config's diff_id)."""

    diff_id: str = ""


@dataclass(frozen=True)
class ManifestBlob(Blob):
    """A blob that is a manifest: ``raw`` is its bytes, ``manifest`` the parsed JSON."""

    @property
    def raw(self) -> bytes:
        return self.data

    @property
    def manifest(self) -> dict[str, Any]:
        return json.loads(self.data)


@dataclass(frozen=True)
class Image(ManifestBlob):
    """One manifest (image or artifact) with the blobs it references.

    ``data`` is the raw manifest; ``platform`` (``os/arch[/variant]``) goes into
    index descriptors.
    """

    config: Blob | None = None
    layers: tuple[Blob, ...] = ()
    platform: str | None = None
    artifact_type: str | None = None

    def blobs(self) -> tuple[Blob, ...]:
        """Config then layers: what must be pushed before the manifest."""
        return ((self.config,) if self.config else ()) + self.layers

    def index_descriptor(self) -> dict[str, Any]:
        """The descriptor an index uses for this manifest (platform, artifactType)."""
        extra: dict[str, Any] = {}
        if self.platform:
            extra["platform"] = platform_dict(self.platform)
        if self.artifact_type:
            extra["artifactType"] = self.artifact_type
        return self.descriptor(**extra)


@dataclass(frozen=True)
class Index(ManifestBlob):
    """An OCI index or Docker manifest list and the manifests it lists."""

    children: tuple[Union["Image", "Index"], ...] = ()
    artifact_type: str | None = None

    def index_descriptor(self) -> dict[str, Any]:
        extra = {"artifactType": self.artifact_type} if self.artifact_type else {}
        return self.descriptor(**extra)


Content = Union[Image, Index]


def platform_dict(platform: str) -> dict[str, str]:
    """``linux/arm64/v8`` -> ``{"os": "linux", "architecture": "arm64", "variant": "v8"}``."""
    parts = platform.split("/")
    if len(parts) not in (2, 3):
        raise ValueError(f"platform {platform!r} is not os/arch[/variant]")
    result = {"os": parts[0], "architecture": parts[1]}
    if len(parts) == 3:
        result["variant"] = parts[2]
    return result


# -- content builders ---------------------------------------------------------------
def make_layer(seed: str | int = "layer", size: int = 1024, *, files: dict[str, bytes] | None = None,
               compress: bool = True, docker: bool = False) -> Layer:
    """A deterministic tar layer (gzip unless ``compress=False``).

    Without ``files`` it holds one file ``seed-<seed>.bin`` of ``size``
    pseudo-random bytes derived from ``seed`` (random so gzip cannot shrink
    it away: the blob is roughly ``size`` bytes).
    """
    if files is None:
        files = {f"seed-{seed}.bin": hashlib.shake_256(f"ocireg-rig:{seed}".encode()).digest(size)}
    tar_buf = io.BytesIO()
    with tarfile.open(fileobj=tar_buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mtime = _TAR_MTIME
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(files[name]))
    tar_bytes = tar_buf.getvalue()
    if not compress:
        return Layer(tar_bytes, OCI_LAYER_TAR, diff_id=sha256_digest(tar_bytes))
    gz_buf = io.BytesIO()
    with gzip.GzipFile(filename="", fileobj=gz_buf, mode="wb", mtime=0, compresslevel=6) as gz:
        gz.write(tar_bytes)
    return Layer(gz_buf.getvalue(), DOCKER_LAYER_GZIP if docker else OCI_LAYER_GZIP,
                 diff_id=sha256_digest(tar_bytes))


def make_config(layers: Sequence[Layer] = (), *, created: str | None = DEFAULT_CREATED,
                labels: dict[str, str] | None = None, platform: str = "linux/amd64",
                env: Sequence[str] | None = None, cmd: Sequence[str] | None = None,
                docker: bool = False, indent: int | None = None) -> Blob:
    """An image config for ``layers`` (their diff_ids, one history entry each)."""
    plat = platform_dict(platform)
    container_config: dict[str, Any] = {}
    if env is not None:
        container_config["Env"] = list(env)
    if cmd is not None:
        container_config["Cmd"] = list(cmd)
    if labels:
        container_config["Labels"] = dict(labels)
    config: dict[str, Any] = {"architecture": plat["architecture"], "os": plat["os"]}
    if "variant" in plat:
        config["variant"] = plat["variant"]
    if created is not None:
        config["created"] = created
    config["config"] = container_config
    config["rootfs"] = {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]}
    history = [{"created_by": f"ocireg rig layer {i}"} for i in range(len(layers))]
    if created is not None:
        for entry in history:
            entry["created"] = created
    config["history"] = history
    return Blob(_dumps(config, indent), DOCKER_CONFIG if docker else OCI_CONFIG)


def make_image(seed: str | int = "image", *, docker: bool = False, layers: int | Sequence[Layer] = 1,
               layer_size: int = 1024, created: str | None = DEFAULT_CREATED,
               labels: dict[str, str] | None = None, platform: str = "linux/amd64",
               annotations: dict[str, str] | None = None, subject: Content | None = None,
               artifact_type: str | None = None, config: Blob | None = None,
               indent: int | None = 3) -> Image:
    """An image manifest (OCI, or Docker schema2 with ``docker=True``) and its blobs.

    ``layers`` is a count (layers ``<seed>-0``, ``<seed>-1``… of ``layer_size``
    bytes) or ready :class:`Layer` objects. ``subject`` / ``artifact_type`` /
    ``annotations`` are OCI-only fields.
    """
    if docker and (subject is not None or artifact_type or annotations):
        raise ValueError("subject, artifactType and annotations exist only in OCI manifests")
    if isinstance(layers, int):
        layer_list: list[Layer] = [make_layer(f"{seed}-{i}", layer_size, docker=docker) for i in range(layers)]
    else:
        layer_list = list(layers)
    if config is None:
        config = make_config(layer_list, created=created, labels=labels, platform=platform, docker=docker)
    manifest: dict[str, Any] = {"schemaVersion": 2,
                                "mediaType": DOCKER_MANIFEST if docker else OCI_MANIFEST}
    if artifact_type:
        manifest["artifactType"] = artifact_type
    manifest["config"] = config.descriptor()
    manifest["layers"] = [layer.descriptor() for layer in layer_list]
    if subject is not None:
        manifest["subject"] = subject.descriptor()
    if annotations:
        manifest["annotations"] = dict(annotations)
    return Image(_dumps(manifest, indent), manifest["mediaType"], config=config, layers=tuple(layer_list),
                 platform=platform, artifact_type=artifact_type)


def make_index(children: Sequence[Content], *, docker: bool = False, annotations: dict[str, str] | None = None,
               subject: Content | None = None, artifact_type: str | None = None,
               indent: int | None = 3) -> Index:
    """An OCI index (or Docker manifest list) listing ``children`` with their platforms."""
    if docker and (subject is not None or artifact_type or annotations):
        raise ValueError("subject, artifactType and annotations exist only in OCI indexes")
    index: dict[str, Any] = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST_LIST if docker else OCI_INDEX}
    if artifact_type:
        index["artifactType"] = artifact_type
    index["manifests"] = [child.index_descriptor() for child in children]
    if subject is not None:
        index["subject"] = subject.descriptor()
    if annotations:
        index["annotations"] = dict(annotations)
    return Index(_dumps(index, indent), index["mediaType"], children=tuple(children), artifact_type=artifact_type)


def make_multiarch(seed: str | int = "multi", platforms: Sequence[str] = ("linux/amd64", "linux/arm64/v8"), *,
                   docker: bool = False, **image_kwargs: Any) -> Index:
    """An index with one single-layer image per platform (distinct layers per platform)."""
    children = [make_image(f"{seed}-{p.replace('/', '-')}", docker=docker, platform=p, **image_kwargs)
                for p in platforms]
    return make_index(children, docker=docker)


def make_artifact(subject: Content, *, artifact_type: str = "application/vnd.ocireg.test.sbom.v1+json",
                  payload: bytes = b'{"sbom": "test"}', payload_media_type: str = "application/json",
                  annotations: dict[str, str] | None = None) -> Image:
    """An OCI 1.1 artifact manifest: empty config, one payload blob, ``subject`` set."""
    return make_image(config=Blob(EMPTY_JSON, OCI_EMPTY), layers=[Layer(payload, payload_media_type)],
                      subject=subject, artifact_type=artifact_type, annotations=annotations, platform="linux/amd64")


def make_cosign_signature(subject: Content, *, identity: str = "registry.example/repo",
                          signature: bytes | None = None) -> Image:
    """A cosign-style signature manifest for ``subject`` (tag it with :func:`cosign_tag`).

    The layer is the "simple signing" payload and the signature sits in the
    layer's annotation, as cosign writes it. The signature bytes are not a
    real signature: tests only need the shape.
    """
    payload = json.dumps({
        "critical": {"identity": {"docker-reference": identity},
                     "image": {"docker-manifest-digest": subject.digest},
                     "type": "cosign container image signature"},
        "optional": None,
    }, separators=(",", ":")).encode()
    sig = base64.b64encode(signature or hashlib.sha256(payload).digest()).decode()
    layer = Layer(payload, COSIGN_SIMPLESIGNING, diff_id=sha256_digest(payload))
    config = Blob(json.dumps({
        "architecture": "", "created": "0001-01-01T00:00:00Z", "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "", "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]}, "config": {},
    }, separators=(",", ":")).encode(), OCI_CONFIG)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config.descriptor(),
                "layers": [layer.descriptor(annotations={COSIGN_SIGNATURE_ANNOTATION: sig})]}
    return Image(_dumps(manifest, None), OCI_MANIFEST, config=config, layers=(layer,), platform=None)


def _tag_for(digest: str) -> str:
    return digest.replace(":", "-", 1)


def cosign_tag(subject: Content | str, suffix: str = "sig") -> str:
    """``sha256-<hex>.sig`` (or ``.att`` / ``.sbom``) for a subject or its digest."""
    digest = subject if isinstance(subject, str) else subject.digest
    return f"{_tag_for(digest)}.{suffix}"


def referrers_tag(subject: Content | str) -> str:
    """``sha256-<hex>``: the OCI referrers tag-schema fallback tag for a subject."""
    return _tag_for(subject if isinstance(subject, str) else subject.digest)


def make_referrers_index(referrers: Sequence[Image]) -> Index:
    """The index the referrers tag schema stores: one descriptor per referrer
    with its ``artifactType`` (config media type when unset) and annotations."""
    manifests = []
    for ref in referrers:
        doc = ref.manifest
        extra: dict[str, Any] = {"artifactType": doc.get("artifactType") or doc["config"]["mediaType"]}
        if doc.get("annotations"):
            extra["annotations"] = doc["annotations"]
        manifests.append(ref.descriptor(**extra))
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
    return Index(_dumps(index, None), OCI_INDEX, children=tuple(referrers))


def iter_content(content: Content) -> Iterable[Content]:
    """Every manifest in ``content``, children before parents (push order)."""
    if isinstance(content, Index):
        for child in content.children:
            yield from iter_content(child)
    yield content


def write_oci_layout(directory: str | Path, content: Content, tag: str = "latest",
                     more: Sequence[tuple[Content, str]] = ()) -> Path:
    """Write an OCI image layout holding ``content`` as ``tag`` (plus ``more``).

    Use it with ``skopeo copy oci:DIR:TAG docker://…`` to seed a registry
    through a third-party tool.
    """
    root = Path(directory)
    blobs_dir = root / "blobs" / "sha256"
    blobs_dir.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    index_entries = []
    for item, item_tag in [(content, tag), *more]:
        for manifest in iter_content(item):
            blobs = manifest.blobs() if isinstance(manifest, Image) else ()
            for blob in (*blobs, manifest):
                (blobs_dir / blob.digest.partition(":")[2]).write_bytes(blob.data)
        index_entries.append(item.descriptor(annotations={REF_NAME_ANNOTATION: item_tag}))
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                                 "manifests": index_entries}))
    return root


# -- raw HTTP ------------------------------------------------------------------------
class RigHTTPError(AssertionError):
    """A registry answered the rig with an unexpected status (a test setup failure)."""

    def __init__(self, response: requests.Response, what: str) -> None:
        self.response = response
        self.status_code = response.status_code
        super().__init__(f"{what}: HTTP {response.status_code} from {response.request.method} "
                         f"{response.url}: {response.text[:500]}")


class DigestMismatch(AssertionError):
    """Content from the registry does not hash to the digest it should have."""


@dataclass(frozen=True)
class SentRequest:
    """A request a raw client made (to the registry or the token realm)."""

    method: str
    url: str
    path: str
    status: int


_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


def _parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, rest = (header.strip().split(" ", 1) + [""])[:2]
    return scheme.lower(), dict(_CHALLENGE_PARAM.findall(rest))


class RawClient:
    """Raw ``requests`` calls to one registry, with minimal Basic / Bearer auth.

    On a 401 it answers the challenge once: Basic sends the credentials (and
    keeps sending them); Bearer GETs the realm with the challenge's service and
    scope (Basic credentials if any) and caches the token per scope.
    """

    def __init__(self, base_url: str, *, username: str | None = None, password: str | None = None,
                 verify: bool | str = True, cert: tuple[str, str] | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self.session = requests.Session()
        # Passed on every request, not set on the session: requests lets
        # REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override Session.verify.
        self._tls: dict[str, Any] = {"verify": verify, "cert": cert}
        self.sent: list[SentRequest] = []
        self._basic = False
        self._tokens: dict[str, str] = {}

    @classmethod
    def for_registry(cls, registry: Any, *, username: str | None = None, password: str | None = None,
                     anonymous: bool = False) -> "RawClient":
        """A client for a rig registry, with its TLS files and (unless ``anonymous``) its default user."""
        kwargs = registry.requests_kwargs() if hasattr(registry, "requests_kwargs") else {}
        if not anonymous and username is None and getattr(registry, "auth", None):
            username, password = registry.auth
        return cls(registry.url, username=username, password=password, **kwargs)

    def _auth_header(self, scope: str) -> dict[str, str]:
        if scope in self._tokens:
            return {"Authorization": f"Bearer {self._tokens[scope]}"}
        return {}

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        response = self.session.request(method, url, timeout=30, **self._tls, **kwargs)
        self.sent.append(SentRequest(method, url, requests.utils.urlparse(url).path, response.status_code))
        return response

    def request(self, method: str, path: str, *, repository: str, actions: str = "pull",
                headers: dict[str, str] | None = None, **kwargs: Any) -> requests.Response:
        """Send ``method path`` (path or absolute URL), answering one auth challenge."""
        url = path if path.startswith(("http://", "https://")) else f"{self.base_url}{path}"
        scope = f"repository:{repository}:{actions}"
        auth = (self.username, self.password) if self._basic and self.username else None
        response = self._send(method, url, headers={**(headers or {}), **self._auth_header(scope)}, auth=auth,
                              **kwargs)
        if response.status_code != 401 or "WWW-Authenticate" not in response.headers:
            return response
        scheme, params = _parse_challenge(response.headers["WWW-Authenticate"])
        if scheme == "basic" and self.username:
            self._basic = True
            return self._send(method, url, headers=headers, auth=(self.username, self.password), **kwargs)
        if scheme == "bearer" and "realm" in params:
            token = self._fetch_token(params, scope)
            if token is not None:
                self._tokens[scope] = token
                return self._send(method, url, headers={**(headers or {}), "Authorization": f"Bearer {token}"},
                                  **kwargs)
        return response

    def _fetch_token(self, params: dict[str, str], scope: str) -> str | None:
        query = {"service": params.get("service", ""), "scope": params.get("scope") or scope}
        auth = (self.username, self.password) if self.username else None
        response = self._send("GET", params["realm"], params=query, auth=auth)
        if response.status_code != 200:
            return None
        body = response.json()
        return body.get("token") or body.get("access_token")

    def registry_requests(self) -> list[SentRequest]:
        """What this client sent to the registry itself (token realm requests left out)."""
        return [r for r in self.sent if r.url.startswith(self.base_url)]


@dataclass
class PushedImage:
    """What :class:`RawPusher` pushed: a manifest (image, artifact or index)."""

    repository: str
    reference: str  # the tag, or the digest when pushed by digest
    digest: str
    manifest: bytes  # raw bytes, as pushed
    media_type: str
    config_digest: str | None
    layer_digests: list[str]
    content: Content
    children: list["PushedImage"] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.manifest)


class RawPusher(RawClient):
    """Push blobs and manifests with monolithic uploads (POST then PUT ?digest=)."""

    def blob_exists(self, repository: str, digest: str) -> bool:
        """HEAD the blob."""
        response = self.request("HEAD", f"/v2/{repository}/blobs/{digest}", repository=repository)
        return response.status_code == 200

    def push_blob(self, repository: str, blob: Blob) -> str:
        """Upload ``blob`` in one PUT after opening an upload session; returns its digest."""
        start = self.request("POST", f"/v2/{repository}/blobs/uploads/", repository=repository,
                             actions="pull,push")
        if start.status_code != 202:
            raise RigHTTPError(start, f"starting a blob upload to {repository}")
        location = start.headers["Location"]
        if not location.startswith(("http://", "https://")):
            location = f"{self.base_url}{location}"
        sep = "&" if "?" in location else "?"
        done = self.request("PUT", f"{location}{sep}digest={blob.digest}", repository=repository,
                            actions="pull,push", data=blob.data,
                            headers={"Content-Type": "application/octet-stream"})
        if done.status_code != 201:
            raise RigHTTPError(done, f"finishing the upload of {blob.digest} to {repository}")
        return blob.digest

    def push_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> str:
        """PUT a manifest under a tag or digest; checks the digest the registry reports."""
        response = self.request("PUT", f"/v2/{repository}/manifests/{reference}", repository=repository,
                                actions="pull,push", data=data, headers={"Content-Type": media_type})
        if response.status_code != 201:
            raise RigHTTPError(response, f"pushing manifest {reference} to {repository}")
        expected = sha256_digest(data)
        reported = response.headers.get("Docker-Content-Digest")
        if reported != expected:
            raise DigestMismatch(f"registry reports {reported} for a manifest whose sha256 is {expected}")
        return expected

    def push_image(self, repository: str, image: Image | None = None, *, tag: str | None = "latest",
                   **make_image_kwargs: Any) -> PushedImage:
        """Push an :class:`Image` (built with ``make_image(**kwargs)`` when not given)."""
        if image is None:
            image = make_image(**make_image_kwargs)
        elif make_image_kwargs:
            raise TypeError("pass either an image or make_image keyword arguments, not both")
        return self.push(repository, image, tag=tag)

    def push(self, repository: str, content: Content, *, tag: str | None = "latest") -> PushedImage:
        """Push an image or index (children and blobs first); ``tag=None`` pushes by digest."""
        children: list[PushedImage] = []
        if isinstance(content, Index):
            children = [self.push(repository, child, tag=None) for child in content.children]
        else:
            for blob in content.blobs():
                self.push_blob(repository, blob)
        reference = tag or content.digest
        digest = self.push_manifest(repository, reference, content.data, content.media_type)
        config = content.config.digest if isinstance(content, Image) and content.config else None
        layers = [b.digest for b in content.layers] if isinstance(content, Image) else []
        return PushedImage(repository, reference, digest, content.data, content.media_type, config, layers,
                           content, children)

    def push_tags(self, repository: str, tags: Sequence[str], *, created: dict[str, str] | None = None,
                  default_created: str = DEFAULT_CREATED) -> dict[str, PushedImage]:
        """Push one distinct image per tag (seeded ``repository:tag``), its config ``created`` taken from
        ``created`` where it names the tag, else ``default_created``: the seeding of a sync or
        retention test, where tags must differ in content and age."""
        created = created or {}
        return {tag: self.push(repository, make_image(f"{repository}:{tag}",
                                                      created=created.get(tag, default_created)), tag=tag)
                for tag in tags}

    def push_cosign_signature(self, repository: str, subject: Content) -> PushedImage:
        """Push a shape-only cosign signature of ``subject`` (:func:`make_cosign_signature`) under its
        ``sha256-<hex>.sig`` tag, the attachment retention must keep or delete with its subject."""
        return self.push(repository, make_cosign_signature(subject), tag=cosign_tag(subject))

    def push_referrers(self, repository: str, subject: Content | str, referrers: Sequence[Image]) -> PushedImage:
        """Push ``referrers`` by digest and the fallback index listing them under ``subject``'s
        ``sha256-<hex>`` tag, as a client must where there is no referrers API (Distribution 2.8).

        ``subject`` is where the index is filed, which a hostile test may point elsewhere than the
        referrers' own subject. Returns the index as pushed; its ``children`` are the referrers.
        """
        return self.push(repository, make_referrers_index(referrers), tag=referrers_tag(subject))

    def delete_manifest(self, repository: str, digest: str) -> None:
        """DELETE a manifest by digest (the fixture registries allow deletes)."""
        response = self.request("DELETE", f"/v2/{repository}/manifests/{digest}", repository=repository,
                                actions="delete")
        if response.status_code != 202:
            raise RigHTTPError(response, f"deleting {digest} from {repository}")


@dataclass
class PulledImage:
    """A manifest pulled and verified by :class:`RawPuller`, with everything below it."""

    repository: str
    reference: str
    digest: str
    manifest: bytes
    media_type: str
    blobs: dict[str, bytes] = field(default_factory=dict)  # config and layers, by digest
    children: list["PulledImage"] = field(default_factory=list)

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.manifest)


class RawPuller(RawClient):
    """GET manifests and blobs and verify their sha256 digests."""

    def head_manifest(self, repository: str, reference: str,
                      accept: Sequence[str] = MANIFEST_ACCEPT) -> requests.Response:
        """HEAD a manifest (status and headers only)."""
        return self.request("HEAD", f"/v2/{repository}/manifests/{reference}", repository=repository,
                            headers={"Accept": ", ".join(accept)})

    def digest_of(self, repository: str, reference: str) -> str | None:
        """The digest a tag (or digest) resolves to, from a HEAD; None when the registry answers 404."""
        response = self.head_manifest(repository, reference)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise RigHTTPError(response, f"resolving {repository}:{reference}")
        return response.headers["Docker-Content-Digest"]

    def manifest(self, repository: str, reference: str,
                 accept: Sequence[str] = MANIFEST_ACCEPT) -> tuple[bytes, str, str]:
        """``(raw, media_type, digest)`` of a manifest; the digest is checked against
        the body, the ``Docker-Content-Digest`` header and ``reference`` when it is one."""
        response = self.request("GET", f"/v2/{repository}/manifests/{reference}", repository=repository,
                                headers={"Accept": ", ".join(accept)})
        if response.status_code != 200:
            raise RigHTTPError(response, f"getting manifest {reference} from {repository}")
        raw = response.content
        digest = sha256_digest(raw)
        header = response.headers.get("Docker-Content-Digest")
        if header and header != digest:
            raise DigestMismatch(f"{repository}:{reference}: header says {header}, body hashes to {digest}")
        if reference.startswith("sha256:") and reference != digest:
            raise DigestMismatch(f"{repository}@{reference}: body hashes to {digest}")
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        return raw, media_type, digest

    def blob(self, repository: str, digest: str) -> bytes:
        """GET a blob and verify it hashes to ``digest``."""
        response = self.request("GET", f"/v2/{repository}/blobs/{digest}", repository=repository)
        if response.status_code != 200:
            raise RigHTTPError(response, f"getting blob {digest} from {repository}")
        actual = sha256_digest(response.content)
        if actual != digest:
            raise DigestMismatch(f"blob {digest} from {repository} hashes to {actual}")
        return response.content

    def pull(self, repository: str, reference: str = "latest") -> PulledImage:
        """Pull a manifest and, recursively, every manifest and blob it references."""
        raw, media_type, digest = self.manifest(repository, reference)
        return self._pull_below(repository, reference, raw, media_type, digest)

    def pull_if_present(self, repository: str, reference: str = "latest") -> PulledImage | None:
        """:meth:`pull`, or None when the registry answers the manifest GET with 404 (deleted, untagged,
        never there). Anything else (401, 500, a missing blob, content that does not match its digest)
        raises: absence is the one answer a "was it deleted?" check may read as absence."""
        try:
            raw, media_type, digest = self.manifest(repository, reference)
        except RigHTTPError as error:
            if error.status_code == 404:
                return None
            raise
        return self._pull_below(repository, reference, raw, media_type, digest)

    def _pull_below(self, repository: str, reference: str, raw: bytes, media_type: str,
                    digest: str) -> PulledImage:
        doc = json.loads(raw)
        pulled = PulledImage(repository, reference, digest, raw, media_type)
        if "manifests" in doc:
            pulled.children = [self.pull(repository, child["digest"]) for child in doc["manifests"]]
        else:
            for desc in [doc["config"], *doc.get("layers", [])]:
                data = self.blob(repository, desc["digest"])
                if len(data) != desc["size"]:
                    raise DigestMismatch(f"blob {desc['digest']} is {len(data)} bytes, descriptor says {desc['size']}")
                pulled.blobs[desc["digest"]] = data
        return pulled

    def tags(self, repository: str) -> list[str]:
        """The repository's tags (one page, Distribution returns all by default)."""
        response = self.request("GET", f"/v2/{repository}/tags/list", repository=repository)
        if response.status_code != 200:
            raise RigHTTPError(response, f"listing tags of {repository}")
        return response.json().get("tags") or []

    def existing_tags(self, repository: str) -> list[str]:
        """The repository's tags, sorted; ``[]`` where the registry does not know the repository (404),
        as a destination a sync has not written to yet."""
        try:
            return sorted(self.tags(repository))
        except RigHTTPError as error:
            if error.status_code == 404:
                return []
            raise
