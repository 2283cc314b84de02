# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""OCI image layout directories (image-spec ``image-layout.md``) as copy sources and destinations.

On disk: ``oci-layout`` (``{"imageLayoutVersion": "1.0.0"}``), ``blobs/<alg>/<hex>``
(every manifest, config and layer, byte for byte) and ``index.json`` (the
entry points, each named by ``org.opencontainers.image.ref.name``).

How writes stay safe:

* a blob is written to ``blobs/<alg>/.<hex>.<random>.partial``, hashed while it
  is written, and renamed to its digest only once the digest matched; so a
  blob file under its digest name is always complete and right, and an
  interrupted export leaves only ``.partial`` files, which are ignored and
  removed by the next write of the same blob;
* ``index.json`` is rewritten (temp file + rename, atomic on POSIX) only when
  a tag is pushed, which the copy engine does last, after every blob and child
  manifest is in place; it is re-read and merged each time, so entries that
  other tools (or other repositories of the bundle) wrote are kept;
* nothing is created before the first write, so check mode (which never
  writes) leaves no file behind.

Every blob read from a layout is hashed while it streams and its last chunk is
held back until the digest matched, like a registry read.
"""
from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from ansible_collections.ocireg.registry.plugins.module_utils._model.chunks import (
    CHUNK,
    skip_bytes,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.digest import (
    Hasher,
    compute_digest,
    validate_digest,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    DigestMismatchError,
    InvalidInputError,
    ManifestError,
    NotFoundError,
    TooLargeError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (
    Descriptor,
    Manifest,
    parse_manifest,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.mediatypes import (
    INDEX_TYPES,
    OCI_INDEX,
    is_non_distributable,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.reference import (
    validate_tag,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.transport_ref import (
    REF_NAME,
    LocalRef,
    join_name,
    split_name,
)

#: Manifests are read whole to be parsed; registries cap them at 4 MiB, so do we.
MANIFEST_CAP = 4 * 1024 * 1024
LAYOUT_FILE = "oci-layout"
INDEX_FILE = "index.json"
LAYOUT_VERSION = {"imageLayoutVersion": "1.0.0"}
PARTIAL_SUFFIX = ".partial"

BlobSource = Any  # bytes, an iterable of chunks, or an opener ``(offset) -> chunks``


def verified_chunks(chunks: Iterable[bytes], digest: str, size: int | None, where: str) -> Iterator[bytes]:
    """``chunks`` hashed as they pass; the last one is released only once ``digest`` (and ``size``) matched.

    A consumer that commits on the last chunk (an upload, a rename) therefore
    never commits corrupt content.
    """
    hasher = Hasher(digest, expected_size=size)
    held: bytes | None = None
    for chunk in chunks:
        if not chunk:
            continue
        if size is not None and hasher.size + len(chunk) > size:
            raise DigestMismatchError(f"{where}: blob {digest} is larger than the {size} bytes its descriptor "
                                      "announces: the file is corrupt", detail={"expected_size": size})
        hasher.update(chunk)
        if held is not None:
            yield held
        held = chunk
    try:
        hasher.verify()
    except DigestMismatchError as exc:
        raise DigestMismatchError(f"{where}: {exc.message}", detail=exc.detail) from None
    if held is not None:
        yield held


def read_file_chunks(handle: IO[bytes], length: int | None = None) -> Iterator[bytes]:
    """Read ``handle`` (from its current position) in :data:`CHUNK` pieces, at most ``length`` bytes."""
    left = length
    while left is None or left > 0:
        piece = handle.read(CHUNK if left is None else min(CHUNK, left))
        if not piece:
            return
        if left is not None:
            left -= len(piece)
        yield piece


def chunks_from(source: BlobSource) -> Iterable[bytes]:
    """The content of a ``push_blob`` source, from the start."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return [bytes(source)]
    if callable(source):
        return source(0)
    return source


def blob_relpath(digest: str) -> str:
    """``blobs/sha256/<hex>`` for a validated digest (hex only: it cannot leave the layout)."""
    algorithm, encoded = validate_digest(digest).split(":", 1)
    return f"blobs/{algorithm}/{encoded}"


def parse_index(raw: bytes, where: str) -> dict[str, Any]:
    """An ``index.json`` document, checked to be an object with a ``manifests`` list."""
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise ManifestError(f"{where}: index.json is not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("manifests", []), list):
        raise ManifestError(f"{where}: index.json is not an image index (no 'manifests' list)")
    doc.setdefault("schemaVersion", 2)
    doc.setdefault("manifests", [])
    return doc


def merge_index(doc: dict[str, Any], named: dict[str, dict[str, Any]], unnamed: list[dict[str, Any]]) -> dict[str, Any]:
    """``doc`` with ``named`` entries replacing those of the same ref.name and ``unnamed`` ones added once.

    Every other entry (and every other key) is kept as it was: a layout is
    shared, and what other tools wrote there is theirs.
    """
    entries = [e for e in doc.get("manifests", [])
               if not (isinstance(e, dict) and (e.get("annotations") or {}).get(REF_NAME) in named)]
    for name, entry in named.items():
        entries.append({**entry, "annotations": {**(entry.get("annotations") or {}), REF_NAME: name}})
    have = {e.get("digest") for e in entries if isinstance(e, dict)}
    for entry in unnamed:
        if entry.get("digest") not in have:
            entries.append(entry)
            have.add(entry.get("digest"))
    merged = dict(doc)
    merged["schemaVersion"] = doc.get("schemaVersion", 2)
    if "mediaType" not in merged:
        merged["mediaType"] = OCI_INDEX
    merged["manifests"] = entries
    return merged


def encode_json(doc: Any) -> bytes:
    """Compact JSON, as other layout writers produce it."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@contextmanager
def replacing_file(path: Path) -> Iterator[IO[bytes]]:
    """A new file that takes ``path``'s place only when the ``with`` block ends without an error.

    It is written as ``.<name>.<random>.partial`` in the same directory (so
    readers never see half of it, and other writers never share it), synced to
    disk and renamed over ``path`` (atomic on POSIX); on an error the temp file
    is removed and ``path`` is left as it was.
    """
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}{PARTIAL_SUFFIX}")
    try:
        with open(temp, "xb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        if temp.exists():
            temp.unlink()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through :func:`replacing_file`."""
    with replacing_file(path) as handle:
        handle.write(data)


class LocalStore:
    """What every local store (layout directory, oci-archive, docker-archive) is: a transport and a path."""

    transport: str
    path: Path

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    def describe(self) -> str:
        """How users spell it (``oci:PATH``), as :class:`LocalRef` writes it."""
        return str(LocalRef(self.transport, str(self.path)))


class LayoutDir(LocalStore):
    """An OCI image layout directory: blobs and ``index.json``; see the module docstring for the write rules."""

    transport = "oci"

    def __init__(self, path: str) -> None:
        self.path = Path(path).expanduser()
        self.wrote = False  # anything written through this object
        self._ready = False
        self._lock = threading.Lock()  # blobs are written from several threads; the first prepares the directory

    # -- reading -------------------------------------------------------------------------------
    def exists(self) -> bool:
        """True when the directory holds a layout."""
        return (self.path / LAYOUT_FILE).is_file() or (self.path / INDEX_FILE).is_file()

    def read_index(self) -> dict[str, Any]:
        """The ``index.json`` document; an empty index when the layout does not exist yet."""
        index = self.path / INDEX_FILE
        if not index.is_file():
            return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
        if index.stat().st_size > MANIFEST_CAP:
            raise TooLargeError(f"{self.describe()}: index.json is larger than {MANIFEST_CAP} bytes")
        return parse_index(index.read_bytes(), self.describe())

    def blob_size(self, digest: str) -> int | None:
        """The size of the blob file, None when absent."""
        target = self.path / blob_relpath(digest)
        try:
            return target.stat().st_size if target.is_file() else None
        except OSError:
            return None

    @contextmanager
    def open_blob(self, digest: str) -> Iterator[tuple[IO[bytes], int]]:
        """The raw blob file (unverified) and its length; :class:`NotFoundError` when absent."""
        try:
            handle = open(self.path / blob_relpath(digest), "rb")
        except FileNotFoundError:
            raise NotFoundError(f"{self.describe()} has no blob {digest}", status=404) from None
        with handle:
            yield handle, os.fstat(handle.fileno()).st_size

    # -- writing -------------------------------------------------------------------------------
    def _prepare(self) -> None:
        with self._lock:
            if not self._ready:
                self._create()
                self._ready = True

    def _create(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise InvalidInputError(f"{self.describe()}: {self.path} exists and is not a directory")
        if self.path.is_dir() and not self.exists() and any(self.path.iterdir()):
            raise InvalidInputError(
                f"{self.describe()}: {self.path} is a non-empty directory without an oci-layout file; refusing "
                "to write an OCI layout into it: give an empty or new directory, or an existing layout")
        self.path.mkdir(parents=True, exist_ok=True)
        layout = self.path / LAYOUT_FILE
        if not layout.exists():
            write_atomic(layout, encode_json(LAYOUT_VERSION))

    def write_blob(self, digest: str, size: int | None, chunks: Iterable[bytes]) -> int:
        """Store a blob: hashed while written to a ``.partial`` file, renamed once it matched; returns its length."""
        self._prepare()
        final = self.path / blob_relpath(digest)
        final.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        with replacing_file(final) as handle:
            for chunk in verified_chunks(chunks, digest, size, f"write {self.describe()}"):
                handle.write(chunk)
                written += len(chunk)
        self.wrote = True
        return written

    def update_index(self, named: dict[str, dict[str, Any]], unnamed: list[dict[str, Any]]) -> bool:
        """Merge entries into ``index.json`` (written atomically, only when it changes); True if it changed."""
        current = self.read_index()
        merged = merge_index(current, named, unnamed)
        if merged == current and (self.path / INDEX_FILE).is_file():
            return False
        self._prepare()
        write_atomic(self.path / INDEX_FILE, encode_json(merged))
        self.wrote = True
        return True

    def finish(self) -> bool:
        """Nothing to seal for a directory (every write is already in place); True if anything was written."""
        return self.wrote


#: ``index.json`` is read, merged and replaced: a mirror writes tags from several threads, so one
#: update at a time (they are small; blobs, the long part, are written outside it).
_INDEX_LOCK = threading.Lock()


class LayoutView:
    """One repository of a layout store, with the methods the copy engine calls on a ``Repository``.

    ``repository`` None is the layout's bare names (``1.0``, as skopeo writes
    with ``oci:dir:1.0``); otherwise tags are stored as ``repository:tag``.
    """

    local = True

    def __init__(self, store: Any, repository: str | None) -> None:
        self.store = store
        self.name = repository or ""
        self.repository = repository
        self._subjects: dict[str, str | None] = {}
        self._complete: set[str] = set()

    def __repr__(self) -> str:
        return f"LayoutView({self.store!r}, {self.repository!r})"

    def where(self, reference: str = "") -> str:
        """How a reference inside this view is spelled for users."""
        if not reference:
            return self.store.describe() + (f" ({self.repository})" if self.repository else "")
        if ":" in reference and reference.partition(":")[0] in ("sha256", "sha512"):
            return f"{self.store.describe()}@{reference}"
        return f"{self.store.describe()}:{join_name(self.repository, reference)}"

    # -- names ---------------------------------------------------------------------------------
    def _entries(self) -> list[dict[str, Any]]:
        return [e for e in self.store.read_index().get("manifests", []) if isinstance(e, dict)]

    def tags(self) -> list[str]:
        """The tags of this repository in the layout (names that are not ``repository:tag`` of it are left out)."""
        found = []
        for entry in self._entries():
            name = (entry.get("annotations") or {}).get(REF_NAME)
            if not isinstance(name, str):
                continue
            try:
                repository, tag = split_name(name)
            except InvalidInputError:
                continue
            if repository == self.repository:
                found.append(tag)
        return sorted(set(found))

    def names(self) -> list[str]:
        """Every name in the layout or archive (``team/app:1.0`` or a bare ``1.0``), whatever its repository."""
        found = ((e.get("annotations") or {}).get(REF_NAME) for e in self._entries())
        return sorted({name for name in found if isinstance(name, str)})

    def _named(self, tag: str) -> Descriptor | None:
        wanted = join_name(self.repository, validate_tag(tag))
        matches = [e for e in self._entries() if (e.get("annotations") or {}).get(REF_NAME) == wanted]
        if not matches:
            return None
        if len({m.get("digest") for m in matches}) > 1:
            raise ManifestError(f"{self.where(tag)}: index.json names {len(matches)} different manifests "
                                f"{wanted!r}; remove the duplicates")
        return Descriptor.from_dict(matches[0])

    # -- manifests -----------------------------------------------------------------------------
    def resolve(self, reference: str) -> Descriptor | None:
        """The descriptor of a tag (from ``index.json``) or a digest (from its blob); None when absent."""
        if _is_digest(reference):
            if self.store.blob_size(reference) is None:
                return None
            return self.fetch_manifest(reference).descriptor()
        return self._named(reference)

    def fetch_manifest(self, reference: str) -> Manifest:
        """A manifest by tag or digest, read whole (capped) and verified against its digest."""
        if _is_digest(reference):
            digest, media_type = reference, None
        else:
            descriptor = self._named(reference)
            if descriptor is None:
                raise NotFoundError(f"{self.where(reference)} does not exist", status=404)
            digest, media_type = descriptor.digest, descriptor.media_type
        raw = self._read_small(digest, f"manifest {self.where(digest)}")
        try:
            return parse_manifest(raw, media_type, digest=digest)
        except DigestMismatchError as exc:
            raise DigestMismatchError(f"read manifest {self.where(digest)}: {exc.message}", detail=exc.detail) from None

    def _read_small(self, digest: str, what: str) -> bytes:
        with self.store.open_blob(digest) as (handle, length):
            if length > MANIFEST_CAP:
                raise TooLargeError(f"{what} is {length} bytes, more than the {MANIFEST_CAP} a manifest may be")
            return b"".join(verified_chunks(read_file_chunks(handle, length), digest, length, f"read {what}"))

    def push_manifest(self, reference: str, raw: bytes, media_type: str, *, update_referrers: bool = True) -> str:
        """Store a manifest's exact bytes; name it in ``index.json`` when ``reference`` is a tag.

        A manifest with a ``subject`` pushed by digest gets an unnamed
        ``index.json`` entry, so the referrers of an image can be found in
        the layout (as oras and regctl do).
        """
        raw = bytes(raw)
        algorithm = reference.partition(":")[0] if _is_digest(reference) else "sha256"
        digest = compute_digest(raw, algorithm)
        if _is_digest(reference) and digest != reference:
            raise DigestMismatchError(f"refusing to store a manifest as {reference}: its bytes hash to {digest}")
        if self.store.blob_size(digest) is None:
            self.store.write_blob(digest, len(raw), [raw])
        entry = {"mediaType": media_type, "digest": digest, "size": len(raw)}
        if not _is_digest(reference):
            with _INDEX_LOCK:
                self.store.update_index({join_name(self.repository, validate_tag(reference)): entry}, [])
        elif update_referrers and b'"subject"' in raw:
            manifest = parse_manifest(raw, media_type, digest=digest)
            if manifest.subject is not None:
                if manifest.effective_artifact_type:
                    entry["artifactType"] = manifest.effective_artifact_type
                with _INDEX_LOCK:
                    self.store.update_index({}, [entry])
        return digest

    def complete(self, digest: str) -> bool:
        """True when the manifest ``digest`` and everything it references (recursively) are stored."""
        if digest in self._complete:
            return True
        if self.store.blob_size(digest) is None:
            return False
        try:
            manifest = self.fetch_manifest(digest)
        except (NotFoundError, ManifestError, TooLargeError):
            return False
        if any(self.store.blob_size(blob.digest) is None for blob in manifest.blobs()
               if not (is_non_distributable(blob.media_type) and blob.urls)):
            return False
        if not all(self.complete(child.digest) for child in manifest.manifests):
            return False
        self._complete.add(digest)
        return True

    # -- blobs ---------------------------------------------------------------------------------
    def blob_exists(self, digest: str) -> int | None:
        """The blob's size, None when absent."""
        return self.store.blob_size(digest)

    @contextmanager
    def fetch_blob(self, digest: str, size: int | None = None) -> Iterator[Iterator[bytes]]:
        """The blob as verified 1 MiB chunks (the last one held back until the digest matched)."""
        with self.store.open_blob(digest) as (handle, length):
            yield verified_chunks(read_file_chunks(handle, length), digest, size,
                                  f"read blob {digest} from {self.store.describe()}")

    def blob_chunks(self, digest: str, size: int | None = None, offset: int = 0) -> Iterator[bytes]:
        """:meth:`fetch_blob` as a generator starting at byte ``offset`` (everything is still verified)."""
        with self.fetch_blob(digest, size) as chunks:
            yield from skip_bytes(chunks, offset)

    def push_blob(self, digest: str, size: int | None, chunks: BlobSource, **_ignored: Any) -> None:
        """Store a blob, verified while written (see :meth:`LayoutDir.write_blob`)."""
        self.store.write_blob(digest, size, chunks_from(chunks))

    def mount_blob(self, digest: str, from_repository: str) -> bool:  # pylint: disable=unused-argument
        """A layout has no mounts: every repository of it shares the blobs already."""
        return False

    def discard_uploads(self) -> None:
        """Nothing is left open between calls."""

    # -- referrers -----------------------------------------------------------------------------
    def referrers(self, digest: str, artifact_type: str | None = None) -> list[Descriptor]:
        """The ``index.json`` entries whose manifest has ``subject`` ``digest`` (read once each, verified)."""
        found = []
        for entry in self._entries():
            candidate = entry.get("digest")
            if not isinstance(candidate, str) or entry.get("mediaType") in INDEX_TYPES and "artifactType" not in entry:
                continue
            if candidate not in self._subjects:
                self._subjects[candidate] = self._subject_of(candidate)
            if self._subjects[candidate] != digest:
                continue
            descriptor = Descriptor.from_dict({k: v for k, v in entry.items() if k != "annotations"})
            if artifact_type is None or descriptor.artifact_type == artifact_type:
                found.append(descriptor)
        return found

    def _subject_of(self, digest: str) -> str | None:
        try:
            manifest = self.fetch_manifest(digest)
        except (NotFoundError, ManifestError, TooLargeError):
            return None
        return manifest.subject.digest if manifest.subject else None


def _is_digest(reference: str) -> bool:
    return ":" in reference and reference.partition(":")[0] in ("sha256", "sha512")


Opener = Callable[[int], Iterable[bytes]]
