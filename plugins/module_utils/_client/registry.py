# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The registry API: :class:`Registry` and :class:`Repository`, one method per endpoint.

Everything read is verified: manifests are hashed and compared with the digest
asked for (or the registry's ``Docker-Content-Digest``), blobs are hashed while
they stream and a mismatch raises :class:`DigestMismatchError` before the
consumer sees the last chunk. Everything written is byte-exact: a manifest is
pushed as the bytes given and the digest the registry reports must match.

Token scopes: reads ask for ``pull`` (``pull,push`` in a repository opened
``for_write``: the destination of a copy, so one token serves its reads and
writes, and Docker Hub / GHCR answer a read of a repository that does not
exist yet with 404, not the 401 a pull-only token draws), writes for ``pull,push``, deletes for
``delete`` (what Distribution checks for ``DELETE``), a cross-repository mount
adds ``pull`` on the source repository, the catalog ``registry:catalog:*``.

This module knows HTTP and the distribution spec, nothing of Ansible.
"""
from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

try:
    import urllib3
except ImportError:  # pragma: no cover - ansible-test sanity imports without requests
    urllib3 = None  # type: ignore[assignment]

from ansible_collections.ocireg.registry.plugins.module_utils._client.auth.scopes import (
    REGISTRY_CATALOG_SCOPE,
    scope_for,
)
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.core import (
    RateLimit,
    Transport,
    TransportOptions,
    backoff_delay,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model import (
    mediatypes as mt,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.digest import (
    Hasher,
    compute_digest,
    validate_digest,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    AuthenticationError,
    DigestMismatchError,
    InvalidInputError,
    NotFoundError,
    RegistryError,
    TransportError,
    UnsupportedError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (
    EMPTY_DESCRIPTOR,
    EMPTY_JSON,
    Descriptor,
    Manifest,
    parse_manifest,
    unique_empty_artifact,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.reference import (
    DOCKER_HUB,
    DOCKER_HUB_API_HOST,
    normalize_registry,
    validate_repository,
    validate_tag,
)

if TYPE_CHECKING:  # pragma: no cover - typing only
    from requests import Response, Session

    from ansible_collections.ocireg.registry.plugins.module_utils._client.auth.challenge import (
        Challenge,
    )
    from ansible_collections.ocireg.registry.plugins.module_utils._client.auth.token import (
        Authenticator,
    )
    from ansible_collections.ocireg.registry.plugins.module_utils._client.credentials import (
        Credentials,
    )
    from ansible_collections.ocireg.registry.plugins.module_utils._client.uploads import (
        BlobSource,
        BlobUpload,
    )

#: The Accept header for manifests: every kind we can read.
MANIFEST_ACCEPT = ", ".join(mt.MANIFEST_ACCEPT)
#: Annotation that makes each dummy manifest of :meth:`Repository.delete_tag` unique.
UNTAG_ANNOTATION = "io.ocireg.registry.untag"
UNTAG_ARTIFACT_TYPE = "application/vnd.ocireg.untag.v1"
TAG_DELETE_METHODS = ("auto", "tag_delete", "dummy_manifest")
_T = TypeVar("_T")
_LISTED_DIGEST = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_RANGE_START = re.compile(r"^\s*bytes\s+(\d+)-\d+/(?:\d+|\*)\s*$")


def is_digest(reference: str) -> bool:
    """True when a manifest reference is a digest rather than a tag (tags cannot hold ':')."""
    return ":" in reference


class _AuthenticatorOnChallenge:
    """The transport's authenticator until the registry first challenges: :class:`~.auth.token.Authenticator`
    (the token flows) is imported and made on the first 401, and answers everything from then on.

    Before any challenge the real one would answer the same: no header (nothing learnt yet), nothing
    to invalidate, no grants to read, no tokens issued. So an anonymous read of an open registry,
    the common read-only run, never loads the token code (start-up compiles every file it imports
    under Ansible).
    """

    def __init__(self, credentials: Credentials | None, session: Session, *, timeout: float | tuple[float, float],
                 max_token_bytes: int, plain_http_hosts: frozenset[str], clock: Callable[[], float]) -> None:
        self.credentials = credentials
        self._session = session
        self._settings: dict[str, Any] = {"timeout": timeout, "max_token_bytes": max_token_bytes,
                                          "plain_http_hosts": plain_http_hosts, "clock": clock}
        self._lock = threading.Lock()
        self._made: Authenticator | None = None

    def _authenticator(self) -> Authenticator:
        with self._lock:
            if self._made is None:
                # pylint: disable=import-outside-toplevel
                from ansible_collections.ocireg.registry.plugins.module_utils._client.auth.token import (
                    Authenticator,
                )
                self._made = Authenticator(self.credentials, self._session, **self._settings)
            return self._made

    def header_for(self, host: str, scopes: Sequence[str]) -> str | None:
        """The cached ``Authorization`` value (:meth:`.Authenticator.header_for`); None before any challenge."""
        made = self._made
        return None if made is None else made.header_for(host, scopes)

    def authorize(self, host: str, challenges: list[Challenge], scopes: Sequence[str]) -> str | None:
        """Answer a 401 (:meth:`~.auth.token.Authenticator.authorize`), making the authenticator first."""
        return self._authenticator().authorize(host, challenges, scopes)

    def grants(self, host: str, scopes: Sequence[str]) -> bool | None:
        """Whether the token handed out was granted ``scopes``; None before any challenge (no token)."""
        made = self._made
        return None if made is None else made.grants(host, scopes)

    def invalidate(self, host: str, scopes: Sequence[str]) -> None:
        """Forget a cached token (:meth:`~.auth.token.Authenticator.invalidate`); none before any challenge."""
        made = self._made
        if made is not None:
            made.invalidate(host, scopes)

    def issued_tokens(self) -> list[str]:
        """The bearer tokens obtained so far, for scrubbing output (none before any challenge)."""
        made = self._made
        return [] if made is None else made.issued_tokens()


class Registry:
    """One registry host: its transport (connections, auth, retries) and the registry-wide endpoints.

    ``host`` is a registry as users write it (``docker.io``, ``ghcr.io``,
    ``127.0.0.1:5000``); Docker Hub's API host is used for ``docker.io``.
    ``credentials`` come from :func:`~.credentials.resolve_credentials` (None = anonymous).
    """

    def __init__(self, host: str, options: TransportOptions | None = None, credentials: Credentials | None = None,
                 *, transport: Transport | None = None) -> None:
        self.host = normalize_registry(host)
        self.api_host = DOCKER_HUB_API_HOST if self.host == DOCKER_HUB else self.host
        self.options = options or TransportOptions()
        self.credentials = credentials
        self.transport = transport or Transport(self.api_host, self.options)
        if self.transport.authenticator is None:
            self.transport.authenticator = _AuthenticatorOnChallenge(
                credentials, self.transport.session, timeout=self.options.timeout,
                max_token_bytes=self.options.max_token_bytes,
                plain_http_hosts=frozenset({self.api_host}) if self.options.plain_http else frozenset(),
                clock=self.options.clock,
            )
        self._lock = threading.Lock()
        self._tag_delete: bool | None = None
        self._referrers_api: bool | None = None
        self._manifest_head: bool | None = None  # False once a manifest HEAD was answered 405
        self._announced: list[str] = []  # waits this client chose to make (the relink retry), said once each

    def __repr__(self) -> str:
        return f"Registry({self.host!r})"

    @property
    def supports_referrers_api(self) -> bool | None:
        """Whether the registry serves the OCI 1.1 referrers API: None until a referrers call found out."""
        return self._referrers_api

    @property
    def warnings(self) -> list[str]:
        """``Warning`` texts the registry sent, then the waits this client announced, deduplicated
        (modules show them as Ansible warnings)."""
        with self._lock:
            announced = list(self._announced)
        sent = self.transport.warnings
        return sent + [text for text in announced if text not in sent]

    def announce(self, text: str) -> None:
        """Add a line to :attr:`warnings` (once): a wait this client makes is never silent."""
        with self._lock:
            if text not in self._announced:
                self._announced.append(text)

    @property
    def rate_limit(self) -> RateLimit | None:
        """Docker Hub's last reported pull rate limit (:class:`~.transport.RateLimit`) or None."""
        return self.transport.rate_limit

    @property
    def supports_tag_delete(self) -> bool | None:
        """Whether ``DELETE /v2/<name>/manifests/<tag>`` works here: None until a delete_tag found out.

        It is learnt by :meth:`Repository.delete_tag` rather than probed
        separately, because the only probe is itself a DELETE (a write).
        """
        return self._tag_delete

    def close(self) -> None:
        """Close pooled connections."""
        self.transport.close()

    def ping(self) -> bool:
        """``GET /v2/``: True when the registry answers (after authenticating if it asks).

        False when it requires authentication and no credentials were given;
        rejected credentials raise :class:`AuthenticationError`. A host that
        answers 404 without a registry's API version header is not a registry
        (the transport raises :class:`NotARegistryError`); a 404 that carries it, :class:`NotFoundError`.
        """
        try:
            self.transport.request("GET", "/v2/", operation="ping")
        except AuthenticationError:
            if self.credentials is None:
                return False
            raise
        except NotFoundError as exc:
            raise NotFoundError(
                f"{self.host} answered 404 for /v2/: it is not a container registry (or not at this address); "
                "check the host name and port", status=exc.status) from None
        return True

    def catalog(self, page_size: int | None = None) -> Iterator[str]:
        """Every repository name of ``GET /v2/_catalog``, following pagination (page size <= 1000, the default)."""
        from ansible_collections.ocireg.registry.plugins.module_utils._client.pagination import (
            MAX_PAGE_SIZE,
            paginate,
        )

        return paginate(self.transport, "/v2/_catalog", "repositories",
                        size=MAX_PAGE_SIZE if page_size is None else page_size,
                        scopes=(REGISTRY_CATALOG_SCOPE,), operation="list repositories (catalog)")

    def repository(self, name: str, *, for_write: bool = False) -> Repository:
        """A handle on repository ``name`` (``team/app``; Docker Hub's ``library/`` is the caller's).

        ``for_write``: the repository will be written (a copy's destination); its
        reads then ask for the ``pull,push`` scope too.
        """
        return Repository(self, name, for_write=for_write)

    def _learn(self, attribute: str, value: bool) -> None:
        with self._lock:
            setattr(self, attribute, value)


class Repository:
    """One repository: manifests, tags, blobs, uploads, referrers."""

    def __init__(self, registry: Registry, name: str, *, for_write: bool = False) -> None:
        self.registry = registry
        self.name = validate_repository(name)
        self.transport = registry.transport
        self._push = (scope_for(self.name, ("pull", "push")),)
        # Reads of a repository about to be written ask for the write scope too (see the module docstring).
        self._pull = self._push if for_write else (scope_for(self.name, ("pull",)),)
        self._delete = (scope_for(self.name, ("delete",)),)
        self._lock = threading.Lock()
        self._mount_sessions: dict[str, BlobUpload] = {}
        self._has_empty_blob = False  # the untag placeholder's blob is known to be here

    def __repr__(self) -> str:
        return f"Repository({self.registry.host!r}, {self.name!r})"

    def _path(self, kind: str, reference: str = "") -> str:
        return f"/v2/{self.name}/{kind}/{reference}" if reference else f"/v2/{self.name}/{kind}/"

    def _display(self, reference: str) -> str:
        return f"{self.name}@{reference}" if is_digest(reference) else f"{self.name}:{reference}"

    # -- manifests ---------------------------------------------------------------------------
    def resolve(self, reference: str) -> Descriptor | None:
        """``HEAD`` a manifest: its descriptor, or None when the tag or digest does not exist.

        The registry's ``Docker-Content-Digest``, ``Content-Type`` and
        ``Content-Length`` are used when they are complete and consistent;
        otherwise the manifest is fetched and hashed. A registry that answers
        the HEAD with 405 is asked with GET, from then on without the HEAD.
        """
        _check_reference(reference)
        descriptor = None
        if self.registry._manifest_head is not False:
            try:
                response = self.transport.request(
                    "HEAD", self._path("manifests", reference), headers={"Accept": MANIFEST_ACCEPT},
                    scopes=self._pull, ok=(200, 404, 405), operation=f"resolve {self._display(reference)}")
            except NotFoundError:
                # Not a 404 but as good as one: a 401 that stands for a missing repository (see the transport).
                return None
            if response.status_code == 404:
                return None
            if response.status_code == 405:
                # Some registries do not route HEAD for manifests (distribution #1485, Nexus); containerd
                # retries such a HEAD with GET (containerd #6684). Learnt once: later resolves GET at once.
                self.registry._learn("_manifest_head", False)
            else:
                descriptor = _trusted_head(response, reference)
        if descriptor is not None:
            return descriptor
        try:
            return self.fetch_manifest(reference).descriptor()
        except NotFoundError:
            return None

    def fetch_manifest(self, reference: str) -> Manifest:
        """``GET`` a manifest (at most the manifest size cap), verified.

        By digest: the content must hash to it. By tag: it must match the
        registry's ``Docker-Content-Digest`` when that is sent.
        """
        _check_reference(reference)
        what = f"fetch manifest {self._display(reference)}"
        response = self.transport.request(
            "GET", self._path("manifests", reference), headers={"Accept": MANIFEST_ACCEPT}, scopes=self._pull,
            max_body=self.registry.options.max_manifest_bytes, operation=what)
        expected = reference if is_digest(reference) else _header_digest(response)
        try:
            return parse_manifest(response.content, response.headers.get("Content-Type"), digest=expected)
        except DigestMismatchError as exc:
            raise DigestMismatchError(
                f"{what} on {self.registry.host}: {exc.message}", status=exc.status, detail=exc.detail) from None

    def push_manifest(self, reference: str, raw: bytes, media_type: str, *, update_referrers: bool = True) -> str:
        """``PUT`` a manifest as these exact bytes under a tag or digest; return its digest.

        The digest the registry reports must equal ours. A manifest with a
        ``subject`` pushed to a registry that does not process subjects
        (no ``OCI-Subject`` answer) is added to the referrers fallback index.
        """
        _check_reference(reference)
        raw = bytes(raw)
        algorithm = reference.partition(":")[0] if is_digest(reference) else "sha256"
        digest = _manifest_digest(raw, media_type, algorithm)
        if is_digest(reference) and digest != reference:
            raise DigestMismatchError(
                f"refusing to push a manifest to {self._display(reference)}: its bytes hash to {digest}",
                detail={"expected": reference, "actual": digest})
        what = f"push manifest {self._display(reference)}"
        try:
            response = self._put_manifest(reference, raw, media_type, what)
        except UnsupportedError as err:
            if b'"subject"' not in raw or err.status != 405:
                raise
            # Older Amazon ECR (containers-roadmap #2783) refuses any manifest carrying a subject. The
            # subject is part of the bytes and the digest, so there is nothing to retry without it.
            raise UnsupportedError(
                f"{what} on {self.registry.host} failed: HTTP 405: the registry refuses manifests that carry a "
                "subject (OCI 1.1 referrers; older Amazon ECR does); push the artifact without subject (under a "
                "tag of its own), or to a registry that supports OCI 1.1", status=err.status, code=err.code,
                detail=err.detail) from None
        reported = _header_digest(response)
        if reported is not None and reported != digest and \
                _manifest_digest(raw, media_type, reported.partition(":")[0]) != reported:
            raise DigestMismatchError(
                f"{what} on {self.registry.host}: the registry stored it as {reported}, not {digest}; it changed "
                "the bytes, so the pushed manifest cannot be trusted", detail={"expected": digest, "actual": reported})
        if update_referrers and b'"subject"' in raw:
            manifest = parse_manifest(raw, media_type, digest=digest)
            if manifest.subject is not None and not self._subject_processed(response, manifest.subject.digest):
                from ansible_collections.ocireg.registry.plugins.module_utils._model import referrers as refs

                self.put_referrer_fallback(manifest.subject.digest, refs.referrer_descriptor(manifest))
        return digest

    def _put_manifest(self, reference: str, raw: bytes, media_type: str, what: str) -> Any:
        """The ``PUT``, sent again after a pause when the registry names a blob or child it just had.

        A manifest ``PUT`` that validates its references while Distribution rewrites one of their
        link files is refused (:mod:`.relink`). Callers push a manifest only after its blobs and
        children are present, so a refusal that outlasts a few pauses is real and is raised.
        """
        return self._relink_retry(lambda: self.transport.request(
            "PUT", self._path("manifests", reference), data=raw, headers={"Content-Type": media_type},
            scopes=self._push, ok=(201,), operation=what), what)

    def _relink_retry(self, send: Callable[[], _T], what: str) -> _T:
        """``send()`` through the one relink retry (:func:`.relink.retry_relink`); a wait goes to the warnings."""
        # pylint: disable=import-outside-toplevel
        from ansible_collections.ocireg.registry.plugins.module_utils._client.relink import retry_relink
        return retry_relink(send, what=f"{what} on {self.registry.host}", sleep=self.registry.options.sleep,
                            announce=self.registry.announce)

    def _subject_processed(self, response: Response, subject: str) -> bool:
        """Whether the registry indexed a pushed manifest's subject (so no fallback tag is needed).

        ``OCI-Subject`` alone is a claim: Docker Hub (and early ECR) send it
        without any referrers API (oras-go #1396). It is believed once the
        referrers API was seen answering an OCI index on this registry; the
        first time, ``GET /v2/<name>/referrers/<subject>`` is asked (the
        answer is remembered for the registry).
        """
        if not response.headers.get("OCI-Subject"):
            return False
        if self.registry._referrers_api is None:
            from ansible_collections.ocireg.registry.plugins.module_utils._client import referrer_index

            try:
                referrer_index.probe_api(self, subject)
            except RegistryError:
                # The push itself succeeded; an unreadable probe only means a fallback tag (harmless) is written.
                return False
        return self.registry._referrers_api is True

    def delete_manifest(self, digest: str, *, subject: str | None = None, missing_ok: bool = False,
                        relink_retry: bool = False) -> bool:
        """``DELETE`` a manifest by digest (every tag pointing at it goes with it); True when this request removed it.

        When the manifest had a ``subject`` (pass its digest) and the registry
        has no referrers API, it is also removed from the fallback index.

        ``missing_ok`` is the one rule for "already gone": a caller that means the manifest to be
        removed takes a 404 as removed (deleted out of band, by a concurrent run, or by the first
        attempt of a DELETE the transport retried after a 5xx) and gets False; without it a 404
        raises :class:`NotFoundError`.

        ``relink_retry`` sends the DELETE again while Distribution refuses it mid-rewrite
        (:mod:`.relink`): only for a digest no other tag can hold (a placeholder, a lease), where a
        second DELETE can remove nothing else. Pass ``missing_ok`` with it: the first attempt may
        have removed the manifest before it failed.
        """
        validate_digest(digest)
        what = f"delete manifest {self._display(digest)}"

        def send() -> Response:
            return self.transport.request("DELETE", self._path("manifests", digest), scopes=self._delete,
                                          ok=(202, 404) if missing_ok else (202,), operation=what)

        response = self._relink_retry(send, what) if relink_retry else send()
        removed = response.status_code == 202
        if subject is not None and not self.registry._referrers_api:
            self.remove_referrer_fallback(subject, digest)
        return removed

    # -- tags ----------------------------------------------------------------------------------
    def tags(self) -> list[str]:
        """Every tag (``GET /v2/<name>/tags/list`` with pagination). NotFoundError if the repository is unknown.

        Artifactory also lists manifest digests (``sha256:<hex>``) as if they
        were tags (ggcr #681, skopeo #2346); a tag cannot hold ':', so those
        entries are not tags and are left out.
        """
        from ansible_collections.ocireg.registry.plugins.module_utils._client.pagination import (
            paginate,
        )

        return [tag for tag in paginate(self.transport, self._path("tags", "list"), "tags", scopes=self._pull,
                                        operation=f"list tags of {self.name}")
                if not _LISTED_DIGEST.fullmatch(tag)]

    def delete_tag(self, tag: str, method: str = "auto", *, current: str | None = None) -> str:
        """Remove one tag without touching the digest it points at; return the method used.

        ``tag_delete``: ``DELETE /v2/<name>/manifests/<tag>`` (OCI 1.1; 202).
        ``dummy_manifest``: push a unique tiny manifest to the tag, then delete
        that manifest by digest. Other tags sharing the old digest keep it;
        nothing but the dummy is deleted. ``auto`` tries the first and falls
        back to the second when the registry refuses it (400/405/UNSUPPORTED),
        remembering the answer for the registry, so the refused ``DELETE`` is
        sent once per registry. Until the dummy is deleted (one round trip), a
        reader of the tag gets the dummy, an artifact, instead of the image.
        ``current``: the digest the caller has just read for the tag; the
        dummy-manifest way then does not read it again.
        """
        validate_tag(tag)
        if method not in TAG_DELETE_METHODS:
            raise InvalidInputError(f"tag delete method {method!r} is unknown: use one of {', '.join(TAG_DELETE_METHODS)}")
        if method == "tag_delete" or (method == "auto" and self.registry.supports_tag_delete is not False):
            if self._try_tag_delete(tag):
                return "tag_delete"
            if method == "tag_delete":
                raise UnsupportedError(
                    f"{self.registry.host} does not support deleting tag {self._display(tag)} by name (DELETE by "
                    "tag was refused); use the dummy_manifest method")
        if current is None:
            descriptor = self.resolve(tag)
            if descriptor is None:
                raise NotFoundError(f"tag {self._display(tag)} does not exist on {self.registry.host}")
            current = descriptor.digest
        self._untag_with_dummy(tag, current)
        return "dummy_manifest"

    def _try_tag_delete(self, tag: str) -> bool:
        response = self.transport.request(
            "DELETE", self._path("manifests", tag), scopes=self._delete, ok=(202, 400, 404, 405),
            operation=f"delete tag {self._display(tag)}")
        if response.status_code == 202:
            self.registry._learn("_tag_delete", True)
            return True
        if response.status_code == 404:
            # A registry that deletes tags says 404 for a missing tag; one that does
            # not may say 404 for every tag. Only the tag's existence tells them apart.
            if self.resolve(tag) is None:
                raise NotFoundError(f"tag {self._display(tag)} does not exist on {self.registry.host}", status=404)
        self.registry._learn("_tag_delete", False)
        return False

    def _untag_with_dummy(self, tag: str, original: str) -> None:
        # The empty blob every dummy refers to is looked for (and pushed) once per repository handle.
        if not self._has_empty_blob:
            if self.blob_exists(EMPTY_DESCRIPTOR.digest) is None:
                self.push_blob(EMPTY_DESCRIPTOR.digest, len(EMPTY_JSON), EMPTY_JSON)
            self._has_empty_blob = True
        # Unique content gives a digest no other tag can share, so deleting it is safe.
        raw = unique_empty_artifact(UNTAG_ARTIFACT_TYPE, {UNTAG_ANNOTATION: f"{tag} {uuid.uuid4()}"})
        digest = self.push_manifest(tag, raw, mt.OCI_MANIFEST, update_referrers=False)
        try:
            # A placeholder already gone took the tag with it; no other tag can hold its digest, so a
            # DELETE refused mid-rewrite is simply sent again.
            self.delete_manifest(digest, missing_ok=True, relink_retry=True)
        except UnsupportedError as err:
            # A registry that refuses deletes keeps the placeholder under the tag:
            # point the tag back at its image (same bytes, same digest) before failing.
            manifest = self.fetch_manifest(original)
            self.push_manifest(tag, manifest.raw, manifest.media_type, update_referrers=False)
            raise UnsupportedError(
                f"{err.message}; tag {self._display(tag)} still points at {original} (the placeholder manifest "
                f"{digest} pushed to remove it stays, untagged)", status=err.status, code=err.code) from None

    # -- blobs ---------------------------------------------------------------------------------
    def blob_exists(self, digest: str) -> int | None:
        """``HEAD`` a blob: its size, or None when the repository does not have it."""
        validate_digest(digest)
        response = self.transport.request("HEAD", self._path("blobs", digest), scopes=self._pull, ok=(200, 404),
                                          operation=f"check blob {self._display(digest)}")
        if response.status_code == 404:
            return None
        length = response.headers.get("Content-Length", "")
        if not length.isdigit():
            raise RegistryError(f"check blob {self._display(digest)} on {self.registry.host}: the registry answered "
                                "without a Content-Length; it does not follow the distribution spec")
        return int(length)

    @contextmanager
    def fetch_blob(self, digest: str, size: int | None = None) -> Iterator[Iterator[bytes]]:
        """``GET`` a blob as a context manager yielding verified 1 MiB chunks.

        A broken connection resumes with a ``Range`` request (up to the
        transport's retries). The last chunk is only released once the whole
        content matched ``digest`` (and ``size`` when given), else
        :class:`DigestMismatchError`: a consumer never sees all of a corrupt blob.
        """
        validate_digest(digest)
        reader = _BlobReader(self, digest, size)
        try:
            yield reader.chunks()
        finally:
            reader.close()

    def blob_chunks(self, digest: str, size: int | None = None, offset: int = 0) -> Iterator[bytes]:
        """The verified chunks of :meth:`fetch_blob` from byte ``offset``, as a plain generator.

        The whole blob is still read and verified (the digest covers every
        byte); the first ``offset`` bytes are just not handed out. Closing the
        generator ends the download.
        """
        from ansible_collections.ocireg.registry.plugins.module_utils._model.chunks import (
            skip_bytes,
        )

        with self.fetch_blob(digest, size) as chunks:
            yield from skip_bytes(chunks, offset)

    def push_blob(self, digest: str, size: int | None, chunks: BlobSource, *, chunked: bool = False,
                  chunk_size: int | None = None) -> None:
        """Upload a blob (see :mod:`.uploads`): monolithic when ``size`` is known, else chunked.

        ``chunks`` is the content as bytes, a one-shot iterable of chunks, or
        an opener ``(offset) -> chunks`` that lets a failed upload restart:
        to copy between repositories pass
        ``functools.partial(source.blob_chunks, digest, size)``.
        A session left open by a :meth:`mount_blob` the registry could not do
        is used instead of opening a new one.
        """
        # Uploads are imported by the runs that write (a read-only run never loads them).
        # pylint: disable=import-outside-toplevel
        from ansible_collections.ocireg.registry.plugins.module_utils._client.uploads import push_blob
        validate_digest(digest)
        with self._lock:
            session = self._mount_sessions.pop(digest, None)
        push_blob(self.transport, self.name, digest, size, chunks, self._push, upload=session,
                  chunk_size=chunk_size, chunked=chunked)

    def mount_blob(self, digest: str, from_repository: str) -> bool:
        """Cross-repository mount (``POST ?mount=&from=``): True when the registry mounted it.

        False when it could not (202: the upload session it opened is kept for
        the next :meth:`push_blob` of this digest) or refused (401, 403, any
        error): the caller then uploads normally.
        """
        validate_digest(digest)
        validate_repository(from_repository)
        scopes = self._push + (scope_for(from_repository, ("pull",)),)
        try:
            response = self.transport.request(
                "POST", self._path("blobs", "uploads") + "/", params={"mount": digest, "from": from_repository},
                headers={"Content-Length": "0"}, data=b"", scopes=scopes, ok=(201, 202),
                operation=f"mount blob {digest} from {from_repository} into {self.name}")
        except TransportError:
            raise
        except RegistryError:
            return False
        if response.status_code == 201:
            return True
        # pylint: disable=import-outside-toplevel
        from ansible_collections.ocireg.registry.plugins.module_utils._client.uploads import BlobUpload
        try:
            session = BlobUpload.from_response(self.transport, self.name, response, self._push)
        except RegistryError:
            return False
        with self._lock:
            previous = self._mount_sessions.pop(digest, None)
            self._mount_sessions[digest] = session
        if previous is not None:
            previous.cancel()
        return False

    def discard_uploads(self) -> None:
        """Cancel upload sessions opened by failed mounts that no push used."""
        with self._lock:
            sessions, self._mount_sessions = list(self._mount_sessions.values()), {}
        for session in sessions:
            session.cancel()

    def delete_blob(self, digest: str) -> None:
        """``DELETE`` a blob from this repository."""
        validate_digest(digest)
        self.transport.request("DELETE", self._path("blobs", digest), scopes=self._delete, ok=(202,),
                               operation=f"delete blob {self._display(digest)}")

    # -- referrers (the code: _client/referrer_index.py, loaded by the runs that read or write referrers) --------
    def referrers(self, digest: str, artifact_type: str | None = None) -> list[Descriptor]:
        """Manifests whose ``subject`` is ``digest``, optionally of one ``artifact_type``.

        The referrers API when the registry has it; on 404 the tag-schema
        fallback index (``sha256-<hex>``). Filtering is done here when the
        registry did not apply it.
        """
        from ansible_collections.ocireg.registry.plugins.module_utils._client import referrer_index

        return referrer_index.referrers(self, digest, artifact_type)

    def put_referrer_fallback(self, subject_digest: str, descriptor: Descriptor) -> bool:
        """Add ``descriptor`` to the fallback index of ``subject_digest``; True if the index changed."""
        from ansible_collections.ocireg.registry.plugins.module_utils._client import referrer_index

        return referrer_index.put_fallback(self, subject_digest, descriptor)

    def remove_referrer_fallback(self, subject_digest: str, referrer_digest: str) -> bool:
        """Remove ``referrer_digest`` from the fallback index of ``subject_digest``; True if it changed."""
        from ansible_collections.ocireg.registry.plugins.module_utils._client import referrer_index

        return referrer_index.remove_fallback(self, subject_digest, referrer_digest)


# -- helpers -----------------------------------------------------------------------------------


def _check_reference(reference: str) -> None:
    if is_digest(reference):
        validate_digest(reference)
    else:
        validate_tag(reference)


def _header_digest(response: Response) -> str | None:
    """``Docker-Content-Digest`` when it is a well-formed digest (a malformed one is ignored)."""
    value = (response.headers.get("Docker-Content-Digest") or "").strip()
    try:
        return validate_digest(value) if value else None
    except RegistryError:
        return None


def _manifest_digest(raw: bytes, media_type: str, algorithm: str) -> str:
    if mt.is_schema1(media_type):
        # Schema 1 digests cover the signed payload, not the whole bytes.
        return parse_manifest(raw, media_type).digest
    return compute_digest(raw, algorithm)


def _trusted_head(response: Response, reference: str) -> Descriptor | None:
    """The descriptor a manifest HEAD answer gives, or None when it is incomplete or inconsistent."""
    digest = _header_digest(response)
    media_type = mt.base_type(response.headers.get("Content-Type"))
    length = response.headers.get("Content-Length", "")
    if not (mt.is_manifest(media_type) and length.isdigit()):
        return None
    if is_digest(reference):
        if digest not in (None, reference):
            return None
        digest = reference
    if digest is None:
        return None
    return Descriptor(media_type, digest, int(length))


class _BlobReader:
    """Streams one blob with Range resume and verification (see :meth:`Repository.fetch_blob`)."""

    def __init__(self, repository: Repository, digest: str, size: int | None) -> None:
        self.repository = repository
        self.digest = digest
        self.size = size
        self.response: Any = None

    def _open(self, offset: int) -> int:
        """Send the GET from ``offset``; return how many leading bytes to skip (a server that ignored Range)."""
        headers = {"Accept-Encoding": "identity"}  # the bytes as stored: they are what the digest covers
        if offset:
            headers["Range"] = f"bytes={offset}-"
        self.response = self.repository.transport.request(
            "GET", self.repository._path("blobs", self.digest), headers=headers, scopes=self.repository._pull,
            stream=True, ok=(200, 206), operation=f"fetch blob {self.repository._display(self.digest)}")
        if offset and self.response.status_code == 206:
            match = _RANGE_START.match(self.response.headers.get("Content-Range", ""))
            if match and int(match.group(1)) == offset:
                return 0
            self.response.close()
            raise TransportError(f"fetch blob {self.digest}: the registry answered a resume from byte {offset} with "
                                 "a different range; retry the task")
        return offset

    def chunks(self) -> Iterator[bytes]:
        from ansible_collections.ocireg.registry.plugins.module_utils._model.chunks import (
            CHUNK,
            skip_bytes,
        )

        options = self.repository.transport.options
        hasher = Hasher(self.digest, expected_size=self.size)
        skip = self._open(0)
        attempt = 0
        held: bytes | None = None
        while True:
            try:
                # A server that ignored Range resends from byte 0: what we already hashed is dropped.
                for piece in skip_bytes(self.response.raw.stream(CHUNK, decode_content=False), skip):
                    if self.size is not None and hasher.size + len(piece) > self.size:
                        raise DigestMismatchError(
                            f"blob {self.digest} is larger than the {self.size} bytes announced: the registry "
                            "serves corrupt content", detail={"expected_size": self.size})
                    hasher.update(piece)
                    if held is not None:
                        yield held
                    held = piece
                break
            except _STREAM_ERRORS as exc:
                self.close()
                if attempt >= options.retries:
                    raise TransportError(
                        f"fetch blob {self.digest} from {self.repository.registry.host}: the connection broke after "
                        f"{hasher.size} bytes and {attempt} resumes ({type(exc).__name__}); check the network and "
                        "retry") from None
                options.sleep(backoff_delay(attempt, options))
                attempt += 1
                skip = self._open(hasher.size)
        self.close()
        try:
            hasher.verify()
        except DigestMismatchError as exc:
            raise DigestMismatchError(f"fetch blob from {self.repository.registry.host}: {exc.message}",
                                      detail=exc.detail) from None
        if held is not None:
            yield held

    def close(self) -> None:
        if self.response is not None:
            self.response.close()
            self.response = None


_STREAM_ERRORS: tuple[type[BaseException], ...] = (OSError,)
if urllib3 is not None:
    _STREAM_ERRORS = (OSError, urllib3.exceptions.HTTPError)
