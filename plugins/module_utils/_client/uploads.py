# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Blob uploads: sessions, monolithic and chunked pushes, resume and restart.

An upload is a session the registry opens with ``POST /v2/<name>/blobs/uploads/``
and names by its ``Location``. The content then goes either in one streamed
``PUT <location>?digest=`` with a ``Content-Length`` (monolithic, used when the
size is known), or as ``PATCH`` chunks with ``Content-Range`` followed by a
closing ``PUT`` (chunked, used when the size is unknown or when asked). Every
answer may move the session: the newest ``Location`` is always the one used
(Distribution encodes the upload state in it and refuses stale ones).

Failures are not replayed blindly:

* a chunk is kept in memory until the registry acknowledges it, so a failed
  ``PATCH`` is resumed from the offset an upload-status ``GET`` reports;
* when the session cannot be resumed (or a monolithic ``PUT`` failed), the
  session is cancelled and the upload restarts with a new one, which needs the
  content again: pass ``bytes`` or an *opener* ``(offset) -> chunks`` (e.g.
  ``functools.partial(src.blob_chunks, digest, size)``); a plain iterator can
  only be read once and then the failure is reported. Restarts ask the opener
  for offset 0: a resume within a chunk uses the chunk kept in memory.

A digest mismatch is never retried: the content is wrong, not the network.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Union
from urllib.parse import urljoin, urlsplit, urlunsplit

from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.core import (
    Transport,
    backoff_delay,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.digest import (
    Hasher,
    compute_digest,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    DigestMismatchError,
    RegistryError,
    TransportError,
)

if TYPE_CHECKING:  # pragma: no cover - typing only
    from requests import Response

#: Content for :func:`push_blob`: the bytes, a one-shot iterable of chunks, or
#: an opener that returns the chunks from a byte offset each time it is called.
BlobSource = Union[bytes, bytearray, memoryview, Iterable[bytes], Callable[[int], Iterable[bytes]]]

# Codes with which a registry says it no longer knows an upload session.
_SESSION_GONE = frozenset({"BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID"})
_RANGE = re.compile(r"^\s*(?:bytes[ =])?(\d+)-(\d+)\s*$")
_SLICE = 1024 * 1024  # how bytes sources are cut for streaming


def session_url(answered: str, location: str) -> str:
    """The absolute URL of an upload ``Location`` sent in the answer from ``answered``.

    A registry behind a TLS-terminating proxy builds its Locations from the plain
    request it saw, so it names ``http://`` for the host the client reached over
    https (distribution #123). Followed as sent, the next request would speak
    plain HTTP to a TLS port and leave the credentials behind (containerd and
    go-containerregistry follow the scheme as sent). On the same host, with the
    same port or none, the session is kept on https: a move to TLS is never a
    downgrade, and nothing else can answer there.
    """
    url = urljoin(answered, location)
    came, goes = urlsplit(answered), urlsplit(url)
    if (came.scheme == "https" and goes.scheme == "http" and goes.hostname == came.hostname
            and goes.port in (None, came.port)):
        return urlunsplit(("https", came.netloc, goes.path, goes.query, goes.fragment))
    return url


class UploadSessionLost(TransportError):
    """The registry no longer knows the upload session (or its offset is unusable): restart."""


class UploadStalled(TransportError):
    """PATCH answers keep acknowledging the same offset (ECR): chunks cannot finish this upload."""


class BlobUpload:
    """One upload session: where to send the next request and how much the registry holds."""

    def __init__(self, transport: Transport, repository: str, location: str, scopes: Collection[str],
                 *, min_chunk: int | None = None, offset: int = 0) -> None:
        self.transport = transport
        self.repository = repository
        self.location = location
        self.scopes = tuple(scopes)
        self.min_chunk = min_chunk
        self.offset = offset

    @classmethod
    def from_response(cls, transport: Transport, repository: str, response: Response,
                      scopes: Collection[str]) -> BlobUpload:
        """The session a ``202 Accepted`` (POST, or a mount the registry could not do) opened."""
        location = response.headers.get("Location")
        if not location:
            raise RegistryError(
                f"start upload to {repository} on {transport.host}: the registry accepted the upload without a "
                "Location header; it does not follow the distribution spec", status=response.status_code)
        minimum = response.headers.get("OCI-Chunk-Min-Length", "")
        return cls(transport, repository, session_url(response.url, location), scopes,
                   min_chunk=int(minimum) if minimum.strip().isdigit() else None)

    @classmethod
    def start(cls, transport: Transport, repository: str, scopes: Collection[str]) -> BlobUpload:
        """Open a new session with ``POST /v2/<name>/blobs/uploads/``."""
        response = transport.request(
            "POST", f"/v2/{repository}/blobs/uploads/", scopes=scopes, headers={"Content-Length": "0"},
            data=b"", ok=(202,), operation=f"start blob upload to {repository}")
        return cls.from_response(transport, repository, response, scopes)

    def _follow(self, response: Response) -> None:
        location = response.headers.get("Location")
        if location:
            self.location = session_url(response.url, location)

    def _send(self, method: str, operation: str, **kwargs: Any) -> Response:
        """One request on the session; a session the registry forgot becomes :class:`UploadSessionLost`."""
        try:
            return self.transport.request(method, self.location, scopes=self.scopes, retry=False,
                                          operation=operation, **kwargs)
        except RegistryError as exc:
            if isinstance(exc, DigestMismatchError) or not (exc.code in _SESSION_GONE or exc.status == 416):
                raise
            raise UploadSessionLost(str(exc), status=exc.status, code=exc.code) from None

    def put(self, digest: str, body: Any = b"", length: int = 0) -> None:
        """Close the session with ``PUT <location>?digest=``, optionally carrying the content."""
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(length)}
        self._send("PUT", f"finish blob upload {digest} to {self.repository}", params={"digest": digest},
                   data=body, headers=headers, ok=(201, 204))

    def patch(self, chunk: bytes) -> None:
        """Send one chunk at the current offset; advance by what the registry acknowledges."""
        start = self.offset
        end = start + len(chunk) - 1
        headers = {"Content-Type": "application/octet-stream", "Content-Range": f"{start}-{end}",
                   "Content-Length": str(len(chunk))}
        response = self._send("PATCH", f"upload chunk {start}-{end} to {self.repository}", data=chunk,
                              headers=headers, ok=(201, 202, 204))
        self._follow(response)
        acknowledged = _range_end(response.headers.get("Range"))
        # Registries that omit Range (or say 0-0 for a one-byte first chunk) took the whole chunk.
        if acknowledged is None or (acknowledged == 0 and start == 0):
            self.offset = end + 1
        else:
            self.offset = acknowledged + 1

    def refresh(self) -> None:
        """Ask the registry where the session stands (``GET <location>`` -> ``204`` + ``Range``)."""
        try:
            response = self._send("GET", f"upload status for {self.repository}", ok=(204,))
        except RegistryError as exc:
            raise UploadSessionLost(f"the upload session on {self.transport.host} is gone: {exc}") from None
        self._follow(response)
        acknowledged = _range_end(response.headers.get("Range"))
        if acknowledged is None or acknowledged == 0:
            # "0-0" means zero or one byte; starting over is cheaper than guessing.
            raise UploadSessionLost(f"the upload session on {self.transport.host} reports no usable offset")
        self.offset = acknowledged + 1

    def cancel(self) -> None:
        """Release the session (``DELETE <location>``); failures are ignored as the spec says."""
        try:
            self._send("DELETE", f"cancel blob upload to {self.repository}", ok=(200, 202, 204, 404))
        except RegistryError:
            pass


def _range_end(value: str | None) -> int | None:
    match = _RANGE.match(value or "")
    return int(match.group(2)) if match else None


class _Source:
    """Uniform access to the three kinds of :data:`BlobSource`."""

    def __init__(self, source: BlobSource) -> None:
        self.data: bytes | None = None
        self.opener: Callable[[int], Iterable[bytes]] | None = None
        self.iterable: Iterable[bytes] | None = None
        if isinstance(source, (bytes, bytearray, memoryview)):
            self.data = bytes(source)
        elif callable(source):
            self.opener = source
        else:
            self.iterable = source
        self.used = False

    @property
    def restartable(self) -> bool:
        return self.data is not None or self.opener is not None

    def open(self) -> Iterator[bytes]:
        """The content from its first byte."""
        if self.data is not None:
            return (self.data[i:i + _SLICE] for i in range(0, len(self.data), _SLICE))
        if self.opener is not None:
            return iter(self.opener(0))
        if self.used:
            raise TransportError("the blob content was already read and cannot be read again")
        self.used = True
        return iter(self.iterable or ())


class _SizedBody:
    """A streamed request body with a known length (so requests sends Content-Length, not chunked).

    It stops the request if the source yields more or fewer bytes than
    announced, rather than let the registry wait or truncate. It does not hash:
    a copy's source stream is already verified as it is read (fetch_blob), and
    the registry checks the digest of what it receives before committing it.
    """

    def __init__(self, chunks: Iterator[bytes], size: int, digest: str) -> None:
        self.chunks = chunks
        self.size = size
        self.digest = digest
        self.sent = 0

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            if not chunk:
                continue
            if self.sent + len(chunk) > self.size:
                raise DigestMismatchError(
                    f"blob {self.digest} is larger than the {self.size} bytes announced: the source "
                    "is corrupt or changed; nothing was committed", detail={"expected_size": self.size})
            self.sent += len(chunk)
            yield chunk
        if self.sent != self.size:
            raise DigestMismatchError(
                f"blob {self.digest} ended after {self.sent} of {self.size} bytes: the source is "
                "truncated; nothing was committed",
                detail={"expected_size": self.size, "actual_size": self.sent})


def push_blob(
    transport: Transport,
    repository: str,
    digest: str,
    size: int | None,
    source: BlobSource,
    scopes: Collection[str],
    *,
    upload: BlobUpload | None = None,
    chunk_size: int | None = None,
    chunked: bool = False,
) -> None:
    """Upload a blob; see the module docstring for how failures are handled.

    ``upload`` reuses a session the registry already opened (the ``202`` of a
    mount it could not do). ``chunked`` forces PATCH chunks even when ``size``
    is known. Chunks are at least ``chunk_size`` (default: the transport's
    option, 5 MiB) or the registry's ``OCI-Chunk-Min-Length``, whichever is larger.
    """
    content = _Source(source)
    if content.data is not None:
        actual = compute_digest(content.data, digest.partition(":")[0])
        if actual != digest or (size is not None and size != len(content.data)):
            raise DigestMismatchError(
                f"refusing to push {len(content.data)} bytes as {digest} ({size} bytes): they hash to {actual}",
                detail={"expected": digest, "actual": actual})
        size = len(content.data)
    options = transport.options
    attempt = 0
    while True:
        session = upload
        upload = None
        try:
            if session is None:
                session = BlobUpload.start(transport, repository, scopes)
            if chunked or size is None:
                _push_chunks(session, digest, content, max(chunk_size or options.chunk_size, session.min_chunk or 0))
            elif size == 0:
                # An empty streamed body would make requests send chunked encoding; send b"" instead.
                for _chunk in _SizedBody(content.open(), 0, digest):
                    pass
                session.put(digest, b"", 0)
            else:
                session.put(digest, _SizedBody(content.open(), size, digest), size)
            return
        except DigestMismatchError:
            if session is not None:
                session.cancel()
            raise
        except TransportError as exc:
            if session is not None:
                session.cancel()
            if isinstance(exc, UploadStalled) and size is not None:
                # The registry's Range stopped advancing: a monolithic PUT needs no Range (ECR).
                chunked = False
            if attempt >= options.retries or not content.restartable:
                hint = "" if content.restartable else " (its content was streamed and cannot be re-read)"
                raise TransportError(
                    f"uploading blob {digest} to {repository} on {transport.host} failed{hint}: {exc}; retry the "
                    "task, and check the network and the registry's logs if it persists",
                    status=exc.status, code=exc.code) from None
            options.sleep(backoff_delay(attempt, options))
            attempt += 1
        except BaseException:
            if session is not None:
                session.cancel()
            raise


def _push_chunks(session: BlobUpload, digest: str, content: _Source, chunk_size: int) -> None:
    hasher = Hasher(digest)
    buffer = bytearray()
    for piece in content.open():
        buffer += piece
        while len(buffer) >= chunk_size:
            chunk = bytes(buffer[:chunk_size])
            del buffer[:chunk_size]
            hasher.update(chunk)
            _send_chunk(session, chunk)
    if buffer:
        hasher.update(buffer)
        _send_chunk(session, bytes(buffer))
    # Verify before the closing PUT: nothing is committed under a wrong digest.
    hasher.verify()
    session.put(digest)


def _send_chunk(session: BlobUpload, chunk: bytes) -> None:
    """PATCH one chunk, resuming from the registry's offset after a failure."""
    options = session.transport.options
    start = session.offset
    end = start + len(chunk)
    attempt = 0
    while session.offset < end:
        before = session.offset
        try:
            session.patch(chunk[session.offset - start:])
            if session.offset <= before:
                # Accepted, yet the Range did not move. ECR stores the chunk and reports a stale Range
                # (containers-roadmap #2831): sending it again draws 416, and sending on would never end.
                raise UploadStalled(
                    f"the upload to {session.repository} on {session.transport.host} stopped advancing: the "
                    f"registry accepted the chunk at offset {before} but still acknowledges only {session.offset} "
                    "bytes")
        except UploadStalled:
            raise
        except TransportError:
            if attempt >= options.retries:
                raise
            options.sleep(backoff_delay(attempt, options))
            attempt += 1
            session.refresh()  # raises UploadSessionLost -> the caller restarts
            if not start <= session.offset <= end:
                raise UploadSessionLost(
                    f"the upload session on {session.transport.host} reports offset {session.offset}, outside the "
                    f"chunk {start}-{end - 1} being sent") from None
