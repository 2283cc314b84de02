# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The graph a copy has to move, and the order to move it in (no I/O).

:func:`build_graph` walks from a root manifest down to child manifests and
blobs, and sideways to referrers, with the fetching done by callables the
engine passes in. That keeps every decision here (platform selection, index
rewriting, what a present manifest lets us skip, push order) testable without a
registry, and the engine in ``image.py`` down to the I/O.

Two facts about registries the walk relies on:

* A registry only accepts a manifest whose blobs and child manifests it
  already holds (Distribution answers ``MANIFEST_BLOB_UNKNOWN`` otherwise, and
  the distribution spec lets any registry do the same). So a manifest present
  at the destination stands for its whole subtree: it is not walked again.
* Referrers are not part of that subtree (the subject does not name them), so
  when referrers are copied, present manifests are still walked to find the
  referrers of their descendants, but nothing below them is transferred.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ansible_collections.ocireg.registry.plugins.module_utils._model.digest import (
    compute_digest,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
    ManifestError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (
    Descriptor,
    Manifest,
    Platform,
    parse_manifest,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.mediatypes import (
    is_non_distributable,
)

# buildx stores provenance / SBOM attestations as index children with this
# annotation and an "unknown/unknown" platform; they belong to the image whose
# digest the second annotation names.
ATTESTATION_TYPE_ANNOTATION = "vnd.docker.reference.type"
ATTESTATION_TYPE = "attestation-manifest"
ATTESTATION_DIGEST_ANNOTATION = "vnd.docker.reference.digest"

ROLE_ROOT = "root"
ROLE_CHILD = "child"
ROLE_REFERRER = "referrer"

FetchManifest = Callable[[Descriptor], Manifest]
ListReferrers = Callable[[str], Sequence[Descriptor]]
IsPresent = Callable[[Descriptor], bool]


@dataclass(frozen=True)
class PlatformSelection:
    """Which children of an index a platform filter keeps."""

    kept: tuple[Descriptor, ...]
    dropped: tuple[Descriptor, ...]

    @property
    def reduced(self) -> bool:
        """True when some children are left out."""
        return bool(self.dropped)


def _attestation_subject(descriptor: Descriptor) -> str | None:
    if descriptor.annotations.get(ATTESTATION_TYPE_ANNOTATION) == ATTESTATION_TYPE:
        return descriptor.annotations.get(ATTESTATION_DIGEST_ANNOTATION)
    return None


def select_children(index: Manifest, platforms: Sequence[Platform]) -> PlatformSelection:
    """The children of ``index`` that run on one of ``platforms``.

    Children without a platform are dropped, except buildx attestation
    manifests of a kept image (they describe it). Raises
    :class:`InvalidInputError` when nothing matches, listing what the index has.
    """
    chosen = {
        child.digest for child in index.manifests
        if child.platform is not None and any(child.platform.matches(p) for p in platforms)
    }
    if not chosen:
        available = sorted({str(c.platform) for c in index.manifests if c.platform is not None
                            and (c.platform.os, c.platform.architecture) != ("unknown", "unknown")})
        raise InvalidInputError(
            f"the index {index.digest} has none of the platforms {', '.join(str(p) for p in platforms)}; "
            f"it has: {', '.join(available) or 'no platform entries'}. Fix the platforms option.",
            detail={"available": available})
    for child in index.manifests:
        if _attestation_subject(child) in chosen:
            chosen.add(child.digest)
    kept = tuple(c for c in index.manifests if c.digest in chosen)
    dropped = tuple(c for c in index.manifests if c.digest not in chosen)
    return PlatformSelection(kept, dropped)


def rewrite_index(index: Manifest, kept: Sequence[Descriptor]) -> Manifest:
    """A new index holding only ``kept`` children, every other field unchanged.

    The result is serialised compactly (key order kept), so its digest is new
    and deterministic: the same source and platforms give the same digest.
    """
    doc = json.loads(index.raw)
    keep = {d.digest for d in kept}
    doc["manifests"] = [entry for entry in doc["manifests"] if entry.get("digest") in keep]
    raw = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return parse_manifest(raw, index.media_type)


@dataclass
class ManifestNode:
    """One manifest of the graph: its bytes and what must exist before it is pushed."""

    digest: str
    media_type: str
    raw: bytes
    role: str
    children: tuple[str, ...] = ()
    blobs: tuple[Descriptor, ...] = ()
    subject: str | None = None
    present: bool = False  # already at the destination: never pushed

    @property
    def size(self) -> int:
        """Length of the raw bytes."""
        return len(self.raw)


@dataclass
class CopyGraph:
    """Everything a copy moves: manifests in push order, unique blobs, what is left out and why."""

    source_digest: str
    root: ManifestNode | None
    nodes: dict[str, ManifestNode] = field(default_factory=dict)
    blobs: dict[str, Descriptor] = field(default_factory=dict)
    foreign: dict[str, Descriptor] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    rewritten: bool = False
    reduced: bool = False

    def push_order(self) -> list[ManifestNode]:
        """Manifests to push, children and referrers first, the root last (it gets the tags)."""
        order = [n for n in self.nodes.values() if not n.present and n is not self.root]
        if self.root is not None and not self.root.present:
            order.append(self.root)
        return order

    @property
    def present_manifests(self) -> list[ManifestNode]:
        """Manifests the destination already holds."""
        return [n for n in self.nodes.values() if n.present]


class _Walker:
    def __init__(self, graph: CopyGraph, fetch: FetchManifest, referrers: ListReferrers | None,
                 present: IsPresent | None) -> None:
        self.graph = graph
        self.fetch = fetch
        self.referrers = referrers
        self.present = present or (lambda _descriptor: False)

    def visit(self, manifest: Manifest, role: str, *, present: bool | None = None,
              with_referrers: bool = True) -> ManifestNode:
        graph = self.graph
        if manifest.digest in graph.nodes:
            return graph.nodes[manifest.digest]
        if present is None:
            present = self.present(manifest.descriptor())
        kids = manifest.manifests
        blobs: list[Descriptor] = []
        for blob in manifest.blobs():
            if is_non_distributable(blob.media_type) and blob.urls:
                graph.foreign.setdefault(blob.digest, blob)
            else:
                blobs.append(blob)
        node = ManifestNode(manifest.digest, manifest.media_type, manifest.raw, role,
                            children=tuple(k.digest for k in kids), blobs=tuple(blobs),
                            subject=manifest.subject.digest if manifest.subject else None, present=present)
        # Children before parents: the node is registered after its subtree.
        if not present or self.referrers is not None:
            for kid in kids:
                if kid.digest in graph.nodes:
                    continue
                kid_present = True if present else self.present(kid)
                if kid_present and self.referrers is None:
                    graph.nodes[kid.digest] = ManifestNode(kid.digest, kid.media_type, b"", ROLE_CHILD, present=True)
                    continue
                self.visit(self._fetch(kid), ROLE_CHILD, present=kid_present)
        if not present:
            for blob in blobs:
                graph.blobs.setdefault(blob.digest, blob)
        graph.nodes[manifest.digest] = node
        if self.referrers is not None and with_referrers:
            self.visit_referrers(manifest.digest)
        return node

    def visit_referrers(self, subject: str) -> None:
        # Loaded here: only a copy with referrers walks them (start-up compiles less).
        from ansible_collections.ocireg.registry.plugins.module_utils._model.referrers import (
            entries_refusal,
        )

        if self.referrers is None:
            raise RuntimeError("visit_referrers needs a referrers source (internal error)")
        listed = [self._fetch(d) for d in self.referrers(subject) if d.digest not in self.graph.nodes]
        judged = {m.digest: m.subject.digest if m.subject is not None else None for m in listed}
        refusal = entries_refusal(subject, judged)
        if refusal is not None:
            # Read through a registry that answered the fallback tag with something else (GitLab answers it
            # with the subject): these manifests are no referrers of it, so they do not travel as such.
            self.graph.notes.append(f"the manifests listed as referrers of {subject} ({', '.join(judged)}) were "
                                    f"not copied as its referrers: {refusal}")
            return
        for manifest in listed:
            if manifest.digest not in self.graph.nodes:
                self.visit(manifest, ROLE_REFERRER)

    def _fetch(self, descriptor: Descriptor) -> Manifest:
        manifest = self.fetch(descriptor)
        if manifest.digest != descriptor.digest:
            raise ManifestError(
                f"asked for manifest {descriptor.digest} and got {manifest.digest}: the source registry is broken")
        return manifest


def build_graph(
    root: Manifest,
    fetch: FetchManifest,
    *,
    platforms: Sequence[Platform] | None = None,
    allow_index_rewrite: bool = False,
    referrers: ListReferrers | None = None,
    present: IsPresent | None = None,
) -> CopyGraph:
    """Walk everything a copy of ``root`` must move.

    ``fetch(descriptor)`` returns a child or referrer manifest (verified by
    digest); ``referrers(digest)`` lists a manifest's referrers (``None``: do
    not copy referrers); ``present(descriptor)`` says whether the destination
    already holds a manifest. ``platforms`` (``None`` = all) filters the
    children of a root index: without ``allow_index_rewrite`` only those
    children are copied and the graph has no root to tag (``reduced``); with
    it, the root is a new index listing them (``rewritten``, new digest).
    """
    graph = CopyGraph(source_digest=root.digest, root=None)
    walker = _Walker(graph, fetch, referrers, present)
    if platforms is None or not root.is_index:
        if platforms is not None:
            graph.notes.append(
                f"{root.digest} is a single-platform {root.media_type}, not an index: the platforms filter "
                "does not apply and it was copied whole")
        graph.root = walker.visit(root, ROLE_ROOT)
        _note_foreign(graph)
        return graph

    selection = select_children(root, platforms)
    wanted = ", ".join(str(p) for p in platforms)
    if not selection.reduced:
        graph.root = walker.visit(root, ROLE_ROOT)
        _note_foreign(graph)
        return graph
    if allow_index_rewrite:
        new_root = rewrite_index(root, selection.kept)
        graph.rewritten = True
        graph.notes.append(
            f"wrote a new index with {len(selection.kept)} of {len(root.manifests)} entries for {wanted}: its "
            f"digest is {new_root.digest}, not the source's {root.digest}")
        # The source has no referrers for a digest it never held: do not ask.
        graph.root = walker.visit(new_root, ROLE_ROOT, with_referrers=False)
        if referrers is not None:
            graph.notes.append(
                f"referrers of the source index {root.digest} were not copied: their subject is not at the "
                "destination (the rewritten index has another digest)")
    else:
        graph.reduced = True
        graph.notes.append(
            f"copied {len(selection.kept)} of {len(root.manifests)} index entries for {wanted} by digest; the "
            f"index {root.digest} itself was not written (allow_index_rewrite is off)")
        for kid in selection.kept:
            if kid.digest not in graph.nodes:
                walker.visit(walker._fetch(kid), ROLE_CHILD)  # pylint: disable=protected-access
    _note_foreign(graph)
    return graph


def _note_foreign(graph: CopyGraph) -> None:
    if graph.foreign:
        total = sum(d.size or 0 for d in graph.foreign.values())
        graph.notes.append(
            f"left out {len(graph.foreign)} non-distributable layer(s) ({total} bytes) that clients fetch from "
            f"their URLs, as skopeo does: {', '.join(sorted(graph.foreign))}")


def tag_targets(dest_before: Mapping[str, str | None], digest: str) -> bool:
    """True when every destination tag already points at ``digest`` (the idempotent fast path)."""
    return bool(dest_before) and all(value == digest for value in dest_before.values())


@dataclass(frozen=True)
class MergedAttachment:
    """A cosign tag-scheme manifest holding the destination's layers and then the source's new ones."""

    raw: bytes
    media_type: str
    #: The layers the source adds (their blobs must be at the destination before ``raw`` is pushed).
    new_layers: tuple[Descriptor, ...]
    #: A rewritten image config (``rootfs.diff_ids`` extended) to push, or None when the config is kept.
    config: bytes | None = None


def merge_attached(dest: Manifest, src: Manifest, dest_config: bytes | None = None,
                   src_config: bytes | None = None) -> MergedAttachment | None:
    """The union of two cosign ``.sig`` / ``.att`` / ``.sbom`` manifests of one subject; None when ``dest`` has all.

    cosign stores one layer per signature (or attestation) and appends to the manifest, so two
    registries can hold different sets for the same image. The merged manifest keeps the
    destination's layers first, in order, then the source's layers it lacks, each as the source
    has it; every other field is the destination's. Layers are the same when digest *and*
    annotations match: cosign signs the same payload blob for every signer of an image and keeps
    the signature in the layer annotation (its own de-duplication compares payload and signature). Its
    digest is new by nature. cosign's config lists the layers as ``rootfs.diff_ids``; when the
    destination's config does, the new layers' diff_ids (the source config's, else the layer
    digest, which is the same for cosign's uncompressed payloads) are appended to it.
    Raises :class:`ManifestError` when either is not an image manifest (nothing to merge).
    """
    if dest.is_index or src.is_index or dest.is_schema1 or src.is_schema1:
        raise ManifestError(f"cannot merge {src.digest} into {dest.digest}: cosign attachments are image manifests")
    doc = json.loads(dest.raw)
    src_doc = json.loads(src.raw)
    have = {_layer_key(entry) for entry in doc.get("layers", [])}
    added: list[dict] = []
    for entry in src_doc.get("layers", []):
        if _layer_key(entry) not in have:
            have.add(_layer_key(entry))
            added.append(entry)
    if not added:
        return None
    doc["layers"] = [*doc.get("layers", []), *added]
    config = _merged_config(dest_config, src_config, src_doc.get("layers", []), added)
    if config is not None:
        doc["config"] = {**doc["config"], "digest": compute_digest(config), "size": len(config)}
    raw = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    new_layers = tuple(Descriptor.from_dict(entry) for entry in added)
    return MergedAttachment(raw, dest.media_type, new_layers, config)


def _layer_key(entry: dict) -> str:
    # Two signers of one image sign the same payload (same blob digest): the signature is in the
    # annotations, so a layer is the same signature only when digest and annotations both match.
    return json.dumps([entry.get("digest"), entry.get("annotations") or {}], sort_keys=True)


def _merged_config(dest_config: bytes | None, src_config: bytes | None, src_layers: Sequence[dict],
                   added: Sequence[dict]) -> bytes | None:
    try:
        doc = json.loads(dest_config) if dest_config else None
    except ValueError:
        return None
    rootfs = doc.get("rootfs") if isinstance(doc, dict) else None
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(doc, dict) or not isinstance(rootfs, dict) or not isinstance(diff_ids, list):
        return None  # an empty or foreign config: nothing lists the layers, keep it
    try:
        src_ids = json.loads(src_config)["rootfs"]["diff_ids"] if src_config else []
    except (ValueError, KeyError, TypeError):
        src_ids = []
    by_layer = {entry.get("digest"): src_ids[position] for position, entry in enumerate(src_layers)
                if isinstance(src_ids, list) and position < len(src_ids)}
    # Layers may repeat a digest (one payload, several signers): the source's diff_id is the same for each.
    rootfs["diff_ids"] = [*diff_ids, *(by_layer.get(entry.get("digest"), entry.get("digest")) for entry in added)]
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
