# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The copy engine: byte-exact, streamed, parallel copy of an image graph (mirrors run it per tag,
see :mod:`..sync.run`).

:func:`copy_image` runs in this order, and every step before the last writes
only what nothing points at yet:

1. ``HEAD`` the source reference and each destination tag. When every tag
   already holds the source digest the copy stops there (2 requests for one
   tag): a registry accepts a manifest only once its blobs and child manifests
   are stored, so a tag at the destination stands for its complete graph
   (Distribution checks this, and the distribution spec lets every registry do
   so; graph.py relies on the same fact for present children).
2. ``GET`` the source manifest by digest (verified) and walk the graph
   (:func:`~.graph.build_graph`): child manifests, blobs, referrers when
   asked; a manifest the destination has (``HEAD``) is not walked further.
3. Blobs, ``concurrency`` at a time: skip the ones the destination has
   (``HEAD``), mount the others from the source repository when both are on
   the same registry, otherwise stream the source ``GET`` straight into the
   destination upload. Each blob is hashed while it streams and its last chunk
   is held back until the digest matched, so a corrupt blob is never
   committed; the first failure cancels the rest.
4. Manifests, children and referrers first, by digest; the tags last. A failed
   blob or manifest therefore leaves no tag behind (no dangling tags).

In check mode steps 1-3 run with ``HEAD`` / ``GET`` only: the result says what
would be copied, mounted and skipped, and nothing is written.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
    NotFoundError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (
    Descriptor,
    Platform,
    parse_platforms,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.reference import (
    validate_tag,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.coordination.written import (
    Written,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying import (  # blobs in flight: the default
    DEFAULT_CONCURRENCY,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.graph import (
    CopyGraph,
    build_graph,
    select_children,
    tag_targets,
)

if TYPE_CHECKING:  # a protocol for the type checker only
    from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.convert import (
        Conversion,
    )
    from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.store import (
        ImageStore,
    )

#: Each stream holds a pooled connection per side; the transport pools 16.
MAX_CONCURRENCY = 16


@dataclass(frozen=True)
class CopyOptions:
    """How to copy. ``platforms`` None copies the whole index byte-exact."""

    platforms: tuple[str, ...] | None = None
    allow_index_rewrite: bool = False
    referrers: bool = False
    concurrency: int = DEFAULT_CONCURRENCY
    check_mode: bool = False
    #: The verification gate (``verify``): called with the source repository and the source digest
    #: before anything is written; raises :class:`VerificationError` or returns what was verified.
    verify: Callable[[Any, str], dict] | None = None
    #: Convert Docker-typed manifests to OCI media types (the module's ``format: oci``, skopeo's
    #: ``--format oci``); digests of converted manifests change (see :mod:`.convert`).
    to_oci: bool = False
    #: After writing tags into a registry, list its tags once and honour a prune lease
    #: (_ops/coordination): the opt-in ``prune_lease`` option. A mirror turns it off per tag and
    #: honours once for all its tags.
    honour_leases: bool = False
    #: Shared by the copies of one mirror that run at once (see :class:`BlobsInFlight`).
    in_flight: BlobsInFlight | None = None


class BlobsInFlight:
    """The blobs that copies running at once are writing, per destination.

    Tags of one repository share layers; copied one at a time, the second finds a shared layer
    present. Copied at once, each would stream it again. Here the first copy to want a blob at a
    destination writes it; the others wait for that write, then find the blob present (and, if
    that write failed, write it themselves).

    It also keeps every blob written through it, as the write ends (:meth:`written`), and every
    manifest pushed (:meth:`manifests_written`): a copy that fails after writing a shared layer, or
    an index's children, wrote them all the same, and a mirror counts them as copied.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._writing: dict[tuple[int, str], threading.Event] = {}
        self._written: dict[int, dict[str, tuple[str, int]]] = {}
        self._manifests: dict[int, set[str]] = {}

    @staticmethod
    def _key(dest: Any, digest: str) -> tuple[int, str]:
        # The views of one layout share its blobs: the store is the destination there.
        return id(getattr(dest, "store", None) or dest), digest

    def claim(self, dest: Any, digest: str) -> threading.Event | None:
        """None when the caller is to write the blob (then :meth:`release` it); else the event to wait on."""
        key = self._key(dest, digest)
        with self._lock:
            event = self._writing.get(key)
            if event is not None:
                return event
            self._writing[key] = threading.Event()
            return None

    def release(self, dest: Any, digest: str, done: tuple[str, int] | None = None) -> None:
        """The write of ``digest`` to ``dest`` ended: wake the waiters. ``done`` is how it was written,
        ``("copied" | "mounted", size)``, or None when it failed."""
        key = self._key(dest, digest)
        with self._lock:
            event = self._writing.pop(key, None)
            if done is not None:
                self._written.setdefault(id(dest), {})[digest] = done
        if event is not None:
            event.set()

    def written(self, dest: Any) -> dict[str, tuple[str, int]]:
        """Digest -> ``(action, size)`` of every blob written through ``dest`` (this store object) so far."""
        with self._lock:
            return dict(self._written.get(id(dest), {}))

    def manifest_pushed(self, dest: Any, digest: str) -> None:
        """A copy pushed the manifest ``digest`` to ``dest`` (by digest or under a tag)."""
        with self._lock:
            self._manifests.setdefault(id(dest), set()).add(digest)

    def manifests_written(self, dest: Any) -> set[str]:
        """The digests of every manifest pushed to ``dest`` (this store object) so far."""
        with self._lock:
            return set(self._manifests.get(id(dest), set()))


@dataclass
class Digests:
    """Manifests and blobs by digest, a blob with its size: what one copy moved, or found in place.

    Kept as digests rather than counters so that a mirror, whose tags share manifests and layers,
    can count each of them once per destination (see :mod:`..sync.counts`).
    """

    manifests: set[str] = field(default_factory=set)
    blobs: dict[str, int] = field(default_factory=dict)

    def counts(self) -> Mapping[str, int]:
        """``{manifests, blobs, bytes}``: how many of each, and the bytes of the blobs (read-only)."""
        return MappingProxyType({"manifests": len(self.manifests), "blobs": len(self.blobs),
                                 "bytes": sum(self.blobs.values())})


@dataclass
class CopyResult:
    """What one copy did (or, in check mode, would do)."""

    digest: str
    media_type: str
    changed: bool
    dest_before: dict[str, str | None]
    #: Manifests pushed and blobs streamed (in check mode: that would be); :attr:`copied` counts them.
    copied_digests: Digests = field(default_factory=Digests)
    mounted: list[str] = field(default_factory=list)
    #: What the destination already held; :attr:`already_present` counts them.
    present_digests: Digests = field(default_factory=Digests)
    notes: list[str] = field(default_factory=list)
    duration: float = 0.0
    #: What the verification gate checked (None without ``verify``).
    verified: dict | None = None
    #: cosign tag-scheme artifacts handled with ``referrers`` (see :mod:`.attached`).
    attached: list[dict] = field(default_factory=list)
    #: Tags a concurrent prune removed after this copy wrote them, written again (see _ops/coordination).
    restored_after_prune: list[str] = field(default_factory=list)
    #: With ``to_oci``: [{"from": old digest, "to": new digest, "media_type": new type}].
    converted: list[dict] = field(default_factory=list)
    #: Tags written, with the bytes to write them again (for the prune lease check; not in results).
    written: list[Written] = field(default_factory=list, repr=False)
    #: What the prune lease check says (a wait, a restore): also in ``notes``; modules warn with it.
    lease_warnings: list[str] = field(default_factory=list)

    @property
    def copied(self) -> Mapping[str, int]:
        """``{manifests, blobs, bytes}`` transferred (read-only: record digests in :attr:`copied_digests`)."""
        return self.copied_digests.counts()

    @property
    def already_present(self) -> Mapping[str, int]:
        """``{manifests, blobs, bytes}`` the destination already had (one present manifest stands for its tree)."""
        return self.present_digests.counts()

    @property
    def dest_after(self) -> dict[str, str | None]:
        """Tag -> digest once the copy is done (what it would be, in check mode)."""
        return {tag: self.digest for tag in self.dest_before}

    def to_dict(self) -> dict:
        """Plain data for module results."""
        return {
            "digest": self.digest,
            "media_type": self.media_type,
            "changed": self.changed,
            "dest_before": dict(self.dest_before),
            "dest_after": self.dest_after,
            "copied": dict(self.copied),
            "mounted": list(self.mounted),
            "already_present": dict(self.already_present),
            "notes": list(self.notes),
            "duration": round(self.duration, 3),
            "verified": self.verified,
            "attached": [dict(item) for item in self.attached],
            "restored_after_prune": list(self.restored_after_prune),
            "converted": [dict(item) for item in self.converted],
        }


def _check_options(dest_tags: Sequence[str], options: CopyOptions) -> tuple[Platform, ...] | None:
    for tag in dest_tags:
        validate_tag(tag)
    concurrency = options.concurrency
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or not 1 <= concurrency <= MAX_CONCURRENCY:
        raise InvalidInputError(f"concurrency must be an integer from 1 to {MAX_CONCURRENCY}, got {concurrency!r}")
    return parse_platforms(options.platforms)


def store_name(store: Any) -> str:
    """How users spell a store: ``host/repository``, or a layout's ``oci:PATH (repository)``."""
    return _where(store)


def _where(repository: Any, reference: str = "") -> str:
    if getattr(repository, "local", False):
        return repository.where(reference)
    host = repository.registry.host
    if not reference:
        return f"{host}/{repository.name}"
    separator = "@" if ":" in reference else ":"
    return f"{host}/{repository.name}{separator}{reference}"


#: How many names a "does not exist" message lists before it only counts the rest.
LISTED_NAMES = 5


def _missing_source(src: Any, src_ref: str) -> NotFoundError:
    """The error for a source that is not there: a local store lists what it does hold."""
    where = _where(src, src_ref)
    if not getattr(src, "local", False):
        return NotFoundError(f"the source image {where} does not exist: check the reference "
                             "(and the credentials, registries answer 404 for what you may not see)")
    names = src.names()
    more = len(names) - LISTED_NAMES
    held = ", ".join(names[:LISTED_NAMES]) + (f" and {more} more" if more > 0 else "")
    return NotFoundError(f"the source image {where} does not exist: {src.store.describe()} holds "
                         + (f"{len(names)} named image{'s' if len(names) != 1 else ''}: {held}" if names
                            else "no named image"), status=404)


def copy_image(src: ImageStore, src_ref: str, dest: ImageStore, dest_tags: Sequence[str],
               options: CopyOptions, *, source: Descriptor | None = None,
               dest_before: Mapping[str, str | None] | None = None) -> CopyResult:
    """Copy the image ``src_ref`` (tag or digest) of ``src`` to ``dest`` under ``dest_tags``.

    ``src`` and ``dest`` are :class:`~.store.ImageStore` objects (registry repositories or layouts). With no
    ``dest_tags`` the manifest is pushed by digest only. Raises a
    :class:`RegistryError` subclass on failure; a failure never leaves a tag
    written that points at an incomplete graph.

    ``source`` (what ``src_ref`` resolves to) and ``dest_before`` (each destination tag's digest, None
    where absent) are what a caller has just read itself (a mirror's ``no_clobber`` check): they are
    not read again.
    """
    started = time.monotonic()
    dest_tags = list(dict.fromkeys(dest_tags))
    platforms = _check_options(dest_tags, options)
    source = source or src.resolve(src_ref)
    if source is None:
        raise _missing_source(src, src_ref)
    # The gate reads the source only, before the destination is even looked at: a failure writes nothing.
    verified = options.verify(src, source.digest) if options.verify is not None else None
    known_before = dest_before or {}
    dest_before = {tag: known_before[tag] if tag in known_before else _digest_of(dest.resolve(tag))
                   for tag in dest_tags}
    if platforms is None and not options.referrers and not options.to_oci:
        # The fast path: one HEAD per side, see the module docstring for why it is enough.
        if tag_targets(dest_before, source.digest):
            return _unchanged(source, dest_before, f"every destination tag already points at {source.digest}",
                              started, verified)
        if not dest_tags and dest.resolve(source.digest) is not None:
            return _unchanged(source, dest_before, f"the destination already holds {source.digest}", started,
                              verified)

    root = src.fetch_manifest(source.digest)
    if (platforms is not None and root.is_index and dest_tags and not options.allow_index_rewrite
            and select_children(root, platforms).reduced):
        raise InvalidInputError(
            f"the platforms {', '.join(str(p) for p in platforms)} are only part of the index "
            f"{_where(src, source.digest)}, and tagging {', '.join(dest_tags)} would need a reduced index with a "
            "new digest: set allow_index_rewrite to write one, copy all platforms, or copy by digest without a "
            "destination tag to transfer just those platforms' images")

    known = {digest for digest in dest_before.values() if digest}

    def present(digest: str) -> bool:
        return digest in known or _holds(dest, digest)

    graph = build_graph(
        root,
        lambda descriptor: src.fetch_manifest(descriptor.digest),
        platforms=platforms,
        allow_index_rewrite=options.allow_index_rewrite,
        referrers=src.referrers if options.referrers else None,
        # A conversion needs every manifest's bytes: what the destination holds is asked after it.
        present=(lambda _descriptor: False) if options.to_oci else (lambda descriptor: present(descriptor.digest)),
    )
    conversion = None
    if options.to_oci:
        # Loaded here: only format: oci converts (start-up compiles less).
        from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.convert import (
            convert_to_oci,
        )

        graph, conversion = convert_to_oci(graph)
        for node in graph.nodes.values():
            node.present = present(node.digest)
        # As the walk does without a conversion: a manifest the destination holds stands for its blobs.
        graph.blobs = {blob.digest: blob for node in graph.nodes.values() if not node.present for blob in node.blobs}
    result = CopyResult(graph.root.digest if graph.root else root.digest,
                        graph.root.media_type if graph.root else root.media_type,
                        False, dest_before, notes=list(graph.notes), verified=verified)
    if conversion is not None:
        _note_conversion(conversion, options.referrers, result)
    result.present_digests.manifests.update(node.digest for node in graph.present_manifests)
    try:
        _transfer_blobs(src, dest, graph.blobs.values(), options, result)
        if options.referrers:
            # Loaded here: only a copy with its referrers copies attached artifacts (start-up compiles less).
            from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.attached import (
                copy_attached,
            )

            # Before the tags: when the image's tag appears, its signatures are already there.
            # Cosign's tags name a digest: those of converted manifests name one the copy does not write.
            unconverted = [d for d in graph.nodes if conversion is None or d not in conversion.mapping.values()]
            copy_attached(src, dest, unconverted, options.check_mode, result,
                          lambda blobs: _transfer_blobs(src, dest, blobs, options, result))
        _push_manifests(dest, graph, dest_tags, options, result)
    finally:
        if not options.check_mode:
            dest.discard_uploads()
    if options.check_mode:
        result.notes.append("check mode: nothing was written")
    elif options.honour_leases:
        check_leases(dest, result.written, result.restored_after_prune, result.lease_warnings)
        result.notes.extend(result.lease_warnings)
    result.duration = time.monotonic() - started
    return result


def _note_conversion(conversion: Conversion, referrers: bool, result: CopyResult) -> None:
    """Say what ``format: oci`` changed: digests old -> new, and the referrers it could not keep."""
    result.converted = list(conversion.converted)
    if conversion.converted:
        result.notes.append(
            f"converted {len(conversion.converted)} Docker-typed manifest(s) to OCI media types (format: oci): "
            + ", ".join(f"{item['from']} -> {item['to']}" for item in conversion.converted)
            + "; blobs keep their digests")
    if conversion.dropped_referrers:
        result.notes.append(
            f"left out {len(conversion.dropped_referrers)} referrer(s) of converted manifests "
            f"({', '.join(conversion.dropped_referrers)}): they name the old digest as their subject and their "
            "signatures cover it; copy without format: oci to keep them")
    if referrers and conversion.converted:
        result.notes.append("cosign tag-scheme artifacts (sha256-<hex>.sig, .att, .sbom) of converted manifests "
                            "name the old digests and were not looked for")


def check_leases(dest: Any, written: Sequence[Written], restored: list[str], notes: list[str]) -> None:
    """Once a writer's tags are in a registry repository, honour a prune's lease there (_ops/coordination)."""
    if written and not getattr(dest, "local", False):
        # Loaded here: only the opt-in prune_lease checks for leases (start-up compiles less).
        from ansible_collections.ocireg.registry.plugins.module_utils._ops.coordination.lease import (
            honour_leases,
        )

        report = honour_leases(dest, written)
        restored.extend(report.restored)
        notes.extend(report.warnings)


def _holds(dest: Any, digest: str) -> bool:
    """Whether ``dest`` holds the manifest ``digest`` with everything below it.

    A registry accepts a manifest only once its blobs are stored, so a ``HEAD``
    says it; a local layout holds whatever files were written, so it is asked
    to check the whole subtree (an interrupted write can leave a manifest blob
    whose layers are missing).
    """
    if getattr(dest, "local", False):
        return bool(dest.complete(digest))
    return dest.resolve(digest) is not None


def _unchanged(source: Descriptor, dest_before: dict[str, str | None], note: str, started: float,
               verified: dict | None) -> CopyResult:
    return CopyResult(source.digest, source.media_type, False, dest_before, notes=[note],
                      present_digests=Digests({source.digest}), duration=time.monotonic() - started,
                      verified=verified)


def _digest_of(descriptor: Descriptor | None) -> str | None:
    return descriptor.digest if descriptor is not None else None


def _push_manifests(dest: Any, graph: CopyGraph, dest_tags: Sequence[str], options: CopyOptions,
                    result: CopyResult) -> None:
    """Children and referrers by digest, then the root under each tag that needs it (tags last)."""
    for node in graph.push_order():
        if node is graph.root and dest_tags:
            continue
        if not options.check_mode:
            dest.push_manifest(node.digest, node.raw, node.media_type)
            if options.in_flight is not None:
                options.in_flight.manifest_pushed(dest, node.digest)
        result.copied_digests.manifests.add(node.digest)
        result.changed = True
    root = graph.root
    if root is None:
        return
    stale = [tag for tag in dest_tags if result.dest_before.get(tag) != root.digest]
    if stale and not root.present:
        result.copied_digests.manifests.add(root.digest)
    children = tuple((n.digest, n.raw, n.media_type) for n in graph.nodes.values() if n is not root and n.raw)
    for tag in stale:
        if not options.check_mode:
            dest.push_manifest(tag, root.raw, root.media_type)
            if options.in_flight is not None and not root.present:  # as copied_digests counts it
                options.in_flight.manifest_pushed(dest, root.digest)
            result.written.append(Written(tag, root.digest, root.raw, root.media_type, children))
        result.changed = True


# --- blobs ---------------------------------------------------------------------------------------


class _Cancelled(Exception):
    """Raised inside a blob stream once another blob failed: stop sending, nothing is committed."""


@dataclass
class _BlobOutcome:
    digest: str
    action: str  # "skipped", "mounted", "copied"
    size: int


def _transfer_blobs(src: Any, dest: Any, wanted: Iterable[Descriptor], options: CopyOptions,
                    result: CopyResult) -> None:
    """Make every blob in ``wanted`` present at ``dest``; the first failure cancels the others and is raised."""
    blobs = sorted(wanted, key=lambda d: d.size or 0, reverse=True)  # biggest first: shorter tail
    if not blobs:
        return
    mountable = (not getattr(src, "local", False) and not getattr(dest, "local", False)
                 and src.registry.host == dest.registry.host and src.name != dest.name)
    stop = threading.Event()
    workers = min(options.concurrency, len(blobs))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ocireg-copy") as pool:
        futures: list[Future] = [
            pool.submit(_ensure_blob, src, dest, blob, mountable, options, stop) for blob in blobs]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        failed = [f for f in done if f.exception() is not None]
        if failed:
            stop.set()
            for future in pending:
                future.cancel()
            wait(pending)
            errors = [error for f in futures if f.done() and not f.cancelled() and (error := f.exception()) is not None]
            # The first real error explains the failure; the others were cancelled because of it.
            raise next((e for e in errors if not isinstance(e, _Cancelled)), errors[0])
    for future in futures:
        outcome: _BlobOutcome = future.result()
        if outcome.action == "skipped":
            result.present_digests.blobs[outcome.digest] = outcome.size
        elif outcome.action == "mounted":
            result.mounted.append(outcome.digest)
        else:
            result.copied_digests.blobs[outcome.digest] = outcome.size
    if result.mounted or result.copied_digests.blobs:
        result.changed = True


def _ensure_blob(src: Any, dest: Any, blob: Descriptor, mountable: bool, options: CopyOptions,
                 stop: threading.Event) -> _BlobOutcome:
    if stop.is_set():
        raise _Cancelled()
    size = dest.blob_exists(blob.digest)
    if size is not None:
        return _BlobOutcome(blob.digest, "skipped", size)
    if options.check_mode:
        if mountable:
            return _BlobOutcome(blob.digest, "mounted", blob.size or 0)
        # Schema 1 layers carry no size: ask the source, still read-only.
        return _BlobOutcome(blob.digest, "copied", blob.size if blob.size is not None else
                            (src.blob_exists(blob.digest) or 0))
    in_flight = options.in_flight
    while in_flight is not None and (writing := in_flight.claim(dest, blob.digest)) is not None:
        writing.wait()  # another copy of this mirror is writing it: its bytes need not travel twice
        size = dest.blob_exists(blob.digest)
        if size is not None:
            return _BlobOutcome(blob.digest, "skipped", size)
    outcome = None
    try:
        if mountable and dest.mount_blob(blob.digest, src.name):
            outcome = _BlobOutcome(blob.digest, "mounted", blob.size or 0)
        else:
            counter = [0]
            dest.push_blob(blob.digest, blob.size, _opener(src, blob, counter, stop))
            outcome = _BlobOutcome(blob.digest, "copied", counter[0])
        return outcome
    finally:
        if in_flight is not None:
            in_flight.release(dest, blob.digest, None if outcome is None else (outcome.action, outcome.size))


def _opener(src: Any, blob: Descriptor, counter: list[int], stop: threading.Event) -> Callable[[int], Iterator[bytes]]:
    """Restartable content for ``push_blob``: each call streams the source blob again from the start."""
    def open_stream(offset: int) -> Iterator[bytes]:
        counter[0] = 0
        with src.fetch_blob(blob.digest, blob.size) as chunks:
            for chunk in chunks:
                if stop.is_set():
                    raise _Cancelled()
                if offset:
                    # A resumed upload wants the bytes after ``offset``; the source stream starts at 0.
                    cut = min(offset, len(chunk))
                    chunk, offset = chunk[cut:], offset - cut
                    if not chunk:
                        continue
                counter[0] += len(chunk)
                yield chunk
    return open_stream
