# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Push, pull and attach artifacts; single blobs to and from files.

Every operation first works out what is there and what should be (digests), so check mode
and idempotence fall out: nothing is uploaded that the registry has, nothing is written to a
file that already holds the same digest. Files are written to a temporary name in the same
directory and renamed only once their content matched the digest (verified while streaming).
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._model import (
    mediatypes as mt,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.chunks import (
    CHUNK,
    skip_bytes,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.digest import (
    compute_digest,
    validate_digest,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
    NotFoundError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (
    EMPTY_DESCRIPTOR,
    EMPTY_JSON,
    Descriptor,
    parse_manifest,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.referrers import (
    referrer_descriptor,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.safe_paths import (
    UnsafePathError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.artifact.pack import (
    measure,
    tar_gzip_chunks,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.artifact.layers import (
    Target,
    artifact_manifest,
    directory_layer,
    file_layer,
    file_targets,
    newest_referrer,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.unpack.apply import (
    Tree,
    apply_layer,
    remove_tree,
    replace_json,
    swap_in,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.unpack.entries import (
    Counters,
    Limits,
)

#: Records which digest each unpacked directory of a pull came from (files are checked by hashing). It
#: lives beside ``dest`` (``.<dest name>.ocireg-artifact.json``), as the unpack state does: a user who asked
#: for the artifact's files in ``dest`` gets only those there. 1.0.0 kept it inside ``dest`` under this
#: name; a pull still reads that one and removes it once the marker beside has been written.
PULL_MARKER = ".ocireg-artifact.json"
Opener = Callable[[int], Iterable[bytes]]


@dataclass(frozen=True)
class FileSpec:
    """One local file or directory to push."""

    path: str
    title: str | None = None
    media_type: str | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)


def file_digest(path: str) -> tuple[str, int]:
    """``(sha256 digest, size)`` of a local file, read in chunks."""
    hasher = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(CHUNK)
            if not chunk:
                break
            hasher.update(chunk)
            size += len(chunk)
    return "sha256:" + hasher.hexdigest(), size


def _file_opener(path: str) -> Opener:
    def open_at(offset: int) -> Iterator[bytes]:
        with open(path, "rb") as handle:
            handle.seek(offset)
            while True:
                chunk = handle.read(CHUNK)
                if not chunk:
                    return
                yield chunk
    return open_at


def _directory_opener(path: str, title: str) -> Opener:
    def open_at(offset: int) -> Iterator[bytes]:
        return skip_bytes(tar_gzip_chunks(path, os.path.basename(title)), offset)
    return open_at


def prepare_layers(files: list[FileSpec]) -> list[tuple[Descriptor, Opener]]:
    """Each file's layer descriptor and an opener for its content (directories packed, twice if pushed)."""
    layers = []
    for spec in files:
        path = os.path.abspath(spec.path)
        if not os.path.exists(path):
            raise InvalidInputError(f"file {spec.path} does not exist")
        title = spec.title or os.path.basename(path.rstrip(os.sep))
        if os.path.isdir(path):
            if spec.media_type and spec.media_type != mt.OCI_LAYER_GZIP:
                raise InvalidInputError(f"{spec.path} is a directory: it is packed as {mt.OCI_LAYER_GZIP}, so "
                                        "media_type cannot be set for it")
            digest, size, tar_digest = measure(path, os.path.basename(title))
            layers.append((directory_layer(title, digest, size, tar_digest, spec.annotations),
                           _directory_opener(path, title)))
        else:
            digest, size = file_digest(path)
            layers.append((file_layer(title, digest, size, spec.media_type, spec.annotations), _file_opener(path)))
    return layers


def push_artifact(repository: Any, tag: str | None, files: list[FileSpec], *, artifact_type: str | None = None,
                  config: FileSpec | None = None, annotations: Mapping[str, str] | None = None,
                  subject: str | None = None, check_mode: bool = False) -> dict[str, Any]:
    """Push ``files`` as one artifact under ``tag`` (or only by digest, as a referrer of ``subject``)."""
    prepared = prepare_layers(files)
    blobs = list(prepared)
    config_descriptor = None
    if config is not None:
        digest, size = file_digest(config.path)
        config_descriptor = Descriptor(config.media_type or "application/vnd.oci.image.config.v1+json", digest, size)
        blobs.append((config_descriptor, _file_opener(config.path)))
    else:
        # The empty config ``{}`` is a blob like any other: the registry checks it exists.
        blobs.append((EMPTY_DESCRIPTOR, lambda offset: [EMPTY_JSON[offset:]]))
    subject_descriptor = None
    if subject is not None:
        subject_descriptor = repository.resolve(subject)
        if subject_descriptor is None:
            raise NotFoundError(f"subject {repository.name}{'@' if ':' in subject else ':'}{subject} does not exist; "
                                "push the image first")
    raw = artifact_manifest([d for d, _o in prepared], artifact_type=artifact_type, config=config_descriptor,
                            annotations=annotations, subject=subject_descriptor)
    digest = compute_digest(raw)
    before = repository.resolve(tag) if tag else None
    exists = repository.resolve(digest) is not None if before is None or before.digest != digest else True
    listed = True
    if subject_descriptor is not None:
        listed = digest in [d.digest for d in repository.referrers(subject_descriptor.digest)]
    tag_ok = tag is None or (before is not None and before.digest == digest)
    changed = not (exists and tag_ok and listed)
    result: dict[str, Any] = {
        "changed": changed, "digest": digest, "tag": tag, "before": before.digest if before else None,
        "subject": subject_descriptor.digest if subject_descriptor else None,
        "layers": [d.to_dict() for d, _o in prepared], "pushed_blobs": [],
    }
    if check_mode or not changed:
        return result
    for descriptor, opener in blobs:
        if repository.blob_exists(descriptor.digest) is None:
            repository.push_blob(descriptor.digest, descriptor.size, opener)
            result["pushed_blobs"].append(descriptor.digest)
    if not (exists and tag_ok):
        # Pushed by tag, or by digest for a referrer; the client maintains the fallback referrers
        # index on registries without the referrers API (Distribution 2.8).
        repository.push_manifest(tag or digest, raw, mt.OCI_MANIFEST)
    elif not listed and subject_descriptor is not None:
        repository.put_referrer_fallback(subject_descriptor.digest,
                                         referrer_descriptor(parse_manifest(raw, mt.OCI_MANIFEST, digest)))
    return result


def find_artifact(repository: Any, reference: str | None, subject: str | None, artifact_type: str | None) -> str:
    """The digest or tag to pull: ``reference``, or the newest referrer of ``subject`` of ``artifact_type``."""
    if subject is None:
        if reference is None:
            raise InvalidInputError("give a tag or digest to pull, or subject with artifact_type")
        return reference
    if not artifact_type:
        raise InvalidInputError("pulling by subject needs artifact_type, to choose among the subject's referrers")
    descriptor = repository.resolve(subject)
    if descriptor is None:
        raise NotFoundError(f"subject {subject} does not exist in {repository.name}")
    found = repository.referrers(descriptor.digest, artifact_type)
    return newest_referrer(found, f"{repository.name}@{descriptor.digest}", artifact_type).digest


def _inside(dest: str, parts: tuple[str, ...], create: bool) -> str | None:
    """The parent directory of ``parts`` under ``dest``, refusing a symlinked or non-directory component."""
    current = dest
    for name in parts[:-1]:
        current = os.path.join(current, name)
        try:
            info = os.lstat(current)
        except FileNotFoundError:
            if not create:
                return None
            os.mkdir(current, 0o755)
            continue
        if not stat.S_ISDIR(info.st_mode):
            raise UnsafePathError(f"{current} is a symlink or not a directory: refusing to write "
                                  f"{'/'.join(parts)} through it")
    return current


def _same_file(path: str, digest: str) -> bool:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    return stat.S_ISREG(info.st_mode) and file_digest(path)[0] == digest


def write_blob(repository: Any, descriptor: Descriptor, path: str, mode: int | None = None) -> None:
    """Stream a verified blob into ``path`` through a temporary file renamed at the end."""
    directory, name = os.path.split(path)
    handle = tempfile.NamedTemporaryFile(dir=directory, prefix=f".{name}.ocireg-", delete=False)  # noqa: SIM115 - renamed or removed below
    try:
        with handle, repository.fetch_blob(descriptor.digest, descriptor.size) as chunks:
            for chunk in chunks:
                handle.write(chunk)
        if mode is not None:
            os.chmod(handle.name, mode)
        if os.path.isdir(path) and not os.path.islink(path):
            raise InvalidInputError(f"{path} is a directory; refusing to replace it with a file")
        os.replace(handle.name, path)
    except BaseException:
        if os.path.lexists(handle.name):
            os.unlink(handle.name)
        raise


def marker_path(dest: str) -> str:
    """Where a pull into ``dest`` records its unpacked directories: beside ``dest``, never inside."""
    return os.path.join(os.path.dirname(dest), f".{os.path.basename(dest)}{PULL_MARKER}")


def _read_marker(dest: str) -> dict[str, str]:
    for path in (marker_path(dest), os.path.join(dest, PULL_MARKER)):
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, ValueError):
            continue
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    return {}


def _write_marker(dest: str, marker: dict[str, str]) -> None:
    replace_json(marker_path(dest), dict(marker))
    inside = os.path.join(dest, PULL_MARKER)
    if os.path.isfile(inside) and not os.path.islink(inside):
        os.unlink(inside)


def _unpack_directory(repository: Any, target: Target, parent: str, limits: Limits) -> None:
    tmp = tempfile.mkdtemp(prefix=f".{target.parts[-1]}.ocireg-", dir=parent)
    try:
        tree = Tree(tmp)
        with repository.fetch_blob(target.descriptor.digest, target.descriptor.size) as chunks:
            apply_layer(tree, chunks, limits, Counters(), f"layer {target.descriptor.digest} ({target.name})",
                        required_prefix=target.parts[-1:])
        tree.finish()
        unpacked = os.path.join(tmp, target.parts[-1])
        if not os.path.isdir(unpacked) or os.path.islink(unpacked):
            raise InvalidInputError(f"layer {target.descriptor.digest} ({target.name}) holds no directory "
                                    f"{target.parts[-1]}")
        swap_in(unpacked, os.path.join(parent, target.parts[-1]))
    finally:
        remove_tree(tmp)


def pull_artifact(repository: Any, reference: str, dest: str, *, limits: Limits | None = None,
                  check_mode: bool = False) -> dict[str, Any]:
    """Write the titled layers of artifact ``reference`` under ``dest``; files already there with the same
    digest (directories: same layer digest recorded) are left alone."""
    limits = limits or Limits()
    manifest = repository.fetch_manifest(reference)
    if manifest.is_index or not mt.is_image_manifest(manifest.media_type) or manifest.is_schema1:
        raise InvalidInputError(f"{reference} is a {manifest.media_type}, not an artifact manifest")
    targets, skipped = file_targets(manifest)
    dest = os.path.abspath(dest)
    if os.path.lexists(dest) and not os.path.isdir(dest):
        raise InvalidInputError(f"dest {dest} exists and is not a directory")
    marker = _read_marker(dest)
    files: list[dict[str, Any]] = []
    for target in targets:
        path = os.path.join(dest, *target.parts)
        parent = _inside(dest, target.parts, create=False) if os.path.isdir(dest) else None
        if target.unpack:
            same = parent is not None and marker.get(target.name) == target.descriptor.digest and os.path.isdir(path)
        else:
            same = parent is not None and _same_file(path, target.descriptor.digest)
        files.append({"name": target.name, "path": path, "digest": target.descriptor.digest,
                      "size": target.descriptor.size, "directory": target.unpack, "changed": not same})
    changed = any(f["changed"] for f in files)
    result = {"changed": changed, "digest": manifest.digest, "artifact_type": manifest.effective_artifact_type,
              "files": files, "skipped_layers": skipped, "dest": dest}
    if check_mode or not changed:
        return result
    os.makedirs(dest, exist_ok=True)
    for target, entry in zip(targets, files):
        if not entry["changed"]:
            continue
        parent = _inside(dest, target.parts, create=True)
        if parent is None:  # create=True always gives a directory or raises
            raise InvalidInputError(f"cannot create the directory of {entry['path']}")
        if target.unpack:
            _unpack_directory(repository, target, parent, limits)
            marker[target.name] = target.descriptor.digest
        else:
            write_blob(repository, target.descriptor, entry["path"], 0o644)
    if any(t.unpack for t in targets):
        _write_marker(dest, marker)
    return result


def push_blob_file(repository: Any, path: str, *, check_mode: bool = False) -> dict[str, Any]:
    """Upload one file as a blob (its sha256 is the digest); nothing when the registry has it."""
    if not os.path.isfile(path):
        raise InvalidInputError(f"src {path} is not a file")
    digest, size = file_digest(path)
    exists = repository.blob_exists(digest) is not None
    if not exists and not check_mode:
        repository.push_blob(digest, size, _file_opener(path))
    return {"changed": not exists, "digest": digest, "size": size}


def pull_blob_file(repository: Any, digest: str, dest: str, *, check_mode: bool = False) -> dict[str, Any]:
    """Download one blob to ``dest`` (verified while streaming); nothing when ``dest`` already has it."""
    validate_digest(digest)
    dest = os.path.abspath(dest)
    if not os.path.isdir(os.path.dirname(dest)):
        raise InvalidInputError(f"the directory of dest {dest} does not exist")
    if os.path.isdir(dest):
        raise InvalidInputError(f"dest {dest} is a directory: give the file name to write")
    if _same_file(dest, digest):
        return {"changed": False, "digest": digest, "size": os.path.getsize(dest), "dest": dest}
    size = repository.blob_exists(digest)
    if size is None:
        raise NotFoundError(f"blob {digest} does not exist in {repository.name}")
    if not check_mode:
        write_blob(repository, Descriptor("application/octet-stream", digest, size), dest, 0o644)
    return {"changed": True, "digest": digest, "size": size, "dest": dest}
