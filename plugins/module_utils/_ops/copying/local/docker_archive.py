# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""docker-archive: the ``docker save`` / ``docker load`` tar, read and written as a layout store.

The format has no manifests: ``manifest.json`` lists, per image, a config
file, its ``RepoTags`` and its layers as *uncompressed* tars. So digests
change by nature, in both directions:

* reading, each image is shown as a Docker schema 2 manifest built from the
  config and the uncompressed layers (layer digests are the config's
  ``rootfs.diff_ids``), a manifest that has not existed before: its digest is
  new, and copying it to a registry pushes uncompressed layers;
* writing, gzip layers are decompressed while they are written (the
  compressed bytes are still hashed against the layer digest, and the
  uncompressed ones against the config's ``diff_ids``), and only the image
  config keeps its digest.

Only single-platform images fit in one entry; an index must be narrowed to
one platform (``platforms`` with the child's digest as source) first.

Like :mod:`.archive`, reading indexes the tar's members and streams from
offsets; writing stages in ``<archive>.ocireg-partial/`` and
:meth:`DockerArchive.finish` writes the tar (temp file + rename).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import shutil
import tarfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from ansible_collections.ocireg.registry.plugins.module_utils._model.digest import (
    compute_digest,
    validate_digest,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    DigestMismatchError,
    InvalidInputError,
    ManifestError,
    NotFoundError,
    TooLargeError,
    UnsupportedError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (
    parse_manifest,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.mediatypes import (
    DOCKER_CONFIG,
    DOCKER_MANIFEST_V2,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.transport_ref import (
    REF_NAME,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.local.archive import (
    STAGING_SUFFIX,
    Member,
    TarIndex,
    add_stream,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.local.layout import (
    MANIFEST_CAP,
    PARTIAL_SUFFIX,
    LocalStore,
    encode_json,
    replacing_file,
    verified_chunks,
)

DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"
MANIFEST_FILE = "manifest.json"
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class DockerArchive(LocalStore):
    """A docker save tar as a layout store (the interface of :class:`~.layout.LayoutDir`)."""

    transport = "docker-archive"
    #: Only images fit in manifest.json: cosign's .sig/.att/.sbom manifests are left out (see copying.attached).
    holds_artifacts = False

    def __init__(self, path: str) -> None:
        self.path = Path(path).expanduser()
        self.staging = Path(str(self.path) + STAGING_SUFFIX)
        self.notes: list[str] = []
        self._tar: TarIndex | None = None
        self._read: dict[str, Any] | None = None
        # Written in this run: compressed digest -> (uncompressed file, diff id); name -> manifest bytes.
        self._layers: dict[str, tuple[Path, str]] = {}
        self._plain: dict[str, Path] = {}
        self._images: dict[str, bytes] = {}

    # -- reading -------------------------------------------------------------------------------
    def _members(self) -> dict[str, Member]:
        if self._tar is None:
            self._tar = TarIndex.read(self.path, self.describe()) if self.path.is_file() else TarIndex({})
        return self._tar.members

    def _member_bytes(self, name: str, cap: int = MANIFEST_CAP) -> bytes:
        member = self._members().get(name)
        if member is None:
            raise ManifestError(f"{self.describe()} has no {name}: it is not a docker save archive")
        if member.size > cap:
            raise TooLargeError(f"{self.describe()}: {name} is larger than {cap} bytes")
        with open(self.path, "rb") as handle:
            handle.seek(member.offset)
            return handle.read(member.size)

    def _synthesize(self) -> dict[str, Any]:
        """Build a schema 2 manifest per image of ``manifest.json``; blobs map to members (or to memory)."""
        if self._read is not None:
            return self._read
        entries: list[dict[str, Any]] = []
        blobs: dict[str, tuple[str, Any]] = {}  # digest -> ("member", Member) | ("bytes", data)
        if self.path.is_file():
            try:
                images = json.loads(self._member_bytes(MANIFEST_FILE))
            except ValueError as exc:
                raise ManifestError(f"{self.describe()}: manifest.json is not JSON ({exc})") from None
            if not isinstance(images, list):
                raise ManifestError(f"{self.describe()}: manifest.json is not a list of images")
            for number, image in enumerate(images):
                entries.extend(self._image_entries(number, image, blobs))
        self._read = {"index": {"schemaVersion": 2, "manifests": entries}, "blobs": blobs}
        return self._read

    def _image_entries(self, number: int, image: Any, blobs: dict[str, tuple[str, Any]]) -> list[dict[str, Any]]:
        where = f"{self.describe()}: image {number} of manifest.json"
        if not isinstance(image, dict) or not isinstance(image.get("Config"), str) \
                or not isinstance(image.get("Layers"), list):
            raise ManifestError(f"{where} lacks Config or Layers")
        config_raw = self._member_bytes(_normal(image["Config"]))
        config_digest = compute_digest(config_raw)
        try:
            diff_ids = json.loads(config_raw)["rootfs"]["diff_ids"]
        except (ValueError, KeyError, TypeError):
            raise ManifestError(f"{where}: its config has no rootfs.diff_ids") from None
        if not isinstance(diff_ids, list) or len(diff_ids) != len(image["Layers"]):
            raise ManifestError(f"{where}: {len(image['Layers'])} layers but the config lists "
                                f"{len(diff_ids) if isinstance(diff_ids, list) else 'no'} diff_ids")
        blobs[config_digest] = ("bytes", config_raw)
        layers = []
        for name, diff_id in zip(image["Layers"], diff_ids):
            member = self._members().get(_normal(str(name)))
            if member is None:
                raise ManifestError(f"{where}: layer {name} is not in the archive")
            validate_digest(diff_id)
            blobs[diff_id] = ("member", member)
            layers.append({"mediaType": DOCKER_LAYER_TAR, "size": member.size, "digest": diff_id})
        manifest = encode_json({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST_V2,
                                "config": {"mediaType": DOCKER_CONFIG, "size": len(config_raw),
                                           "digest": config_digest},
                                "layers": layers})
        digest = compute_digest(manifest)
        blobs[digest] = ("bytes", manifest)
        entry = {"mediaType": DOCKER_MANIFEST_V2, "digest": digest, "size": len(manifest)}
        tags = [t for t in image.get("RepoTags") or [] if isinstance(t, str)]
        if not tags:
            return [entry]
        return [{**entry, "annotations": {REF_NAME: familiar(tag)}} for tag in tags]

    def exists(self) -> bool:
        """True when the archive file is there."""
        return self.path.is_file()

    def read_index(self) -> dict[str, Any]:
        """The images of the archive (and those written in this run) as ``index.json`` entries."""
        index = self._synthesize()["index"]
        if not self._images:
            return index
        named = {name: {"mediaType": DOCKER_MANIFEST_V2, "digest": compute_digest(raw), "size": len(raw),
                        "annotations": {REF_NAME: name}} for name, raw in self._images.items()}
        kept = [e for e in index["manifests"] if (e.get("annotations") or {}).get(REF_NAME) not in named]
        return {"schemaVersion": 2, "manifests": kept + list(named.values())}

    def blob_size(self, digest: str) -> int | None:
        """A blob's length: a layer tar, a config, a synthesized manifest, or one written in this run."""
        if digest in self._layers or digest in self._plain:
            return (self._plain[digest] if digest in self._plain else self._layers[digest][0]).stat().st_size
        for raw in self._images.values():
            if compute_digest(raw) == digest:
                return len(raw)
        found = self._synthesize()["blobs"].get(digest)
        if found is None:
            return None
        return found[1].size if found[0] == "member" else len(found[1])

    @contextmanager
    def open_blob(self, digest: str) -> Iterator[tuple[IO[bytes], int]]:
        """The blob's bytes as a file and its length (members are read from their offset)."""
        if digest in self._plain:
            with open(self._plain[digest], "rb") as handle:
                yield handle, os.fstat(handle.fileno()).st_size
            return
        for raw in self._images.values():
            if compute_digest(raw) == digest:
                yield io.BytesIO(raw), len(raw)
                return
        found = self._synthesize()["blobs"].get(digest)
        if found is None:
            raise NotFoundError(f"{self.describe()} has no blob {digest}", status=404)
        if found[0] == "bytes":
            yield io.BytesIO(found[1]), len(found[1])
            return
        with open(self.path, "rb") as handle:
            handle.seek(found[1].offset)
            yield handle, found[1].size

    # -- writing -------------------------------------------------------------------------------
    def write_blob(self, digest: str, size: int | None, chunks: Iterable[bytes]) -> int:
        """Stage a blob; a gzip layer is decompressed on the way, both forms hashed."""
        self.staging.mkdir(parents=True, exist_ok=True)
        name = validate_digest(digest).partition(":")[2]
        temp = self.staging / f".{name}.{secrets.token_hex(6)}{PARTIAL_SUFFIX}"
        inflater: Any = None
        plain = hashlib.sha256()
        written = 0
        try:
            with open(temp, "xb") as handle:
                for chunk in verified_chunks(chunks, digest, size, f"write {self.describe()}"):
                    if written == 0 and chunk[:2] == _GZIP_MAGIC:
                        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    elif written == 0 and chunk[:4] == _ZSTD_MAGIC:
                        raise UnsupportedError(f"blob {digest} is a zstd layer: a docker archive holds "
                                               "uncompressed layers and zstd is not decompressed here")
                    written += len(chunk)
                    data = inflater.decompress(chunk) if inflater is not None else chunk
                    plain.update(data)
                    handle.write(data)
                if inflater is not None:
                    tail = inflater.flush()
                    plain.update(tail)
                    handle.write(tail)
            final = self.staging / (name + (".tar" if inflater is not None else ""))
            os.replace(temp, final)
        finally:
            if temp.exists():
                temp.unlink()
        if inflater is not None:
            self._layers[digest] = (final, f"sha256:{plain.hexdigest()}")
        else:
            self._plain[digest] = final
        return written

    def update_index(self, named: dict[str, dict[str, Any]], unnamed: list[dict[str, Any]]) -> bool:
        """Record an image under a name; referrers (unnamed) have no place in a docker archive."""
        if unnamed:
            self.notes.append("a docker archive cannot hold referrers (signatures, SBOMs): "
                              f"{len(unnamed)} left out; use oci: or oci-archive: to keep them")
        for name, entry in named.items():
            if ":" not in name:
                raise InvalidInputError(
                    f"{self.describe()}: a docker archive names images repository:tag (docker load needs it), "
                    f"not the bare tag {name!r}: write {self.describe()}:REPOSITORY:{name}")
            with self.open_blob(entry["digest"]) as (handle, _length):
                raw = handle.read(MANIFEST_CAP + 1)
            manifest = parse_manifest(raw, entry.get("mediaType"), digest=entry["digest"])
            if manifest.is_index or manifest.config is None:
                raise InvalidInputError(
                    f"{self.describe()}: {entry['digest']} is {'an index' if manifest.is_index else 'not an image'}; "
                    "a docker archive holds single-platform images: copy one platform's manifest (its digest as "
                    "src) instead")
            self._images[name] = raw
        return bool(named)

    def finish(self) -> bool:
        """Write the archive: old images (minus re-tagged names) plus this run's, ``manifest.json`` last."""
        if not self._images:
            if self.staging.is_dir():
                shutil.rmtree(self.staging)
            return False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        old = json.loads(self._member_bytes(MANIFEST_FILE)) if self.path.is_file() else []
        names = set(self._images)
        entries = []
        for image in old:
            tags = [t for t in image.get("RepoTags") or [] if familiar(t) not in names]
            entries.append({**image, "RepoTags": tags})
        with replacing_file(self.path) as raw, tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            written: set[str] = set()
            if self.path.is_file():
                with open(self.path, "rb") as handle:
                    for name, member in self._members().items():
                        if name not in (MANIFEST_FILE, "repositories"):
                            handle.seek(member.offset)
                            add_stream(tar, name, member.size, handle)
                            written.add(name)
            for name, manifest_raw in self._images.items():
                entries.append(self._add_image(tar, name, manifest_raw, written))
            manifest_json = encode_json(entries)
            add_stream(tar, MANIFEST_FILE, len(manifest_json), io.BytesIO(manifest_json))
            tar.close()
        shutil.rmtree(self.staging, ignore_errors=True)
        self.notes.append("docker-archive stores uncompressed layers and no manifest: the image's manifest digest "
                          "(and its layer digests) change; only the config digest is kept")
        self._tar, self._read, self._images = None, None, {}
        return True

    def _add_image(self, tar: tarfile.TarFile, name: str, raw: bytes, written: set[str]) -> dict[str, Any]:
        manifest = parse_manifest(raw)
        config = manifest.config
        if config is None:
            raise InvalidInputError(f"{name}: not an image manifest")
        with self.open_blob(config.digest) as (handle, _length):
            config_raw = handle.read(MANIFEST_CAP + 1)
        diff_ids = json.loads(config_raw).get("rootfs", {}).get("diff_ids", [])
        layers = []
        for position, layer in enumerate(manifest.layers):
            if layer.digest in self._layers:
                path, diff_id = self._layers[layer.digest]
            elif layer.digest in self._plain:
                path, diff_id = self._plain[layer.digest], layer.digest
            else:
                raise NotFoundError(f"layer {layer.digest} of {name} was not written in this run")
            expected = diff_ids[position] if position < len(diff_ids) else None
            if expected != diff_id:
                raise DigestMismatchError(
                    f"layer {layer.digest} of {name} uncompresses to {diff_id}, but the config's diff_ids list "
                    f"{expected}: the image is inconsistent; nothing was written")
            member = f"{diff_id.partition(':')[2]}/layer.tar"
            if member not in written:
                with open(path, "rb") as handle:
                    add_stream(tar, member, os.fstat(handle.fileno()).st_size, handle)
                written.add(member)
            layers.append(member)
        config_member = f"{config.digest.partition(':')[2]}.json"
        if config_member not in written:
            add_stream(tar, config_member, len(config_raw), io.BytesIO(config_raw))
            written.add(config_member)
        return {"Config": config_member, "RepoTags": [name], "Layers": layers}


def _normal(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.lstrip("/")


def familiar(tag: str) -> str:
    """A ``RepoTags`` value without its registry host, the name a layout entry gets.

    skopeo writes ``docker.io/team/app:1`` and docker ``team/app:1`` or
    ``localhost:5000/app:1``; the host is dropped by docker's rule (a first
    component with ``.`` or ``:``, or ``localhost``), and so is Docker Hub's
    ``library/``, so ``docker-archive:PATH:team/app:1`` finds all of them.
    """
    first, slash, rest = tag.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        tag = rest
        if first in ("docker.io", "index.docker.io") and tag.startswith("library/"):
            tag = tag[len("library/"):]
    return tag
