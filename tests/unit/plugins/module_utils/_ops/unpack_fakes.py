"""An in-memory repository for the unpack and artifact unit tests.

A fake on purpose: these tests check the file-system side (what lands where, what is refused)
for layers no registry would help build faster; the integration tests use real registries.
"""
from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._model import (
    mediatypes as mt,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.digest import (
    verify_stream,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (
    Descriptor,
    parse_manifest,
)


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class FakeRepository:
    name = "team/app"

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[str, tuple[bytes, str]] = {}
        self.tags_: dict[str, str] = {}
        self.writes: list[str] = []

    def add_image(self, layers: list[bytes], tag: str = "latest") -> str:
        descs = []
        for layer in layers:
            self.blobs[sha(layer)] = layer
            descs.append({"mediaType": mt.OCI_LAYER_GZIP, "digest": sha(layer), "size": len(layer)})
        config = b"{}"
        self.blobs[sha(config)] = config
        raw = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
                          "config": {"mediaType": mt.OCI_CONFIG, "digest": sha(config), "size": 2},
                          "layers": descs}).encode()
        self.manifests[sha(raw)] = (raw, mt.OCI_MANIFEST)
        self.tags_[tag] = sha(raw)
        return sha(raw)

    def fetch_manifest(self, reference: str):
        digest = self.tags_.get(reference, reference)
        raw, media_type = self.manifests[digest]
        return parse_manifest(raw, media_type, digest=digest)

    def resolve(self, reference: str):
        digest = self.tags_.get(reference, reference)
        if digest not in self.manifests:
            return None
        raw, media_type = self.manifests[digest]
        return Descriptor(media_type, digest, len(raw))

    @contextmanager
    def fetch_blob(self, digest: str, size: int | None = None):
        data = self.blobs[digest]
        yield verify_stream((data[i:i + 7] for i in range(0, len(data), 7)), digest, size)

    def blob_exists(self, digest: str):
        return len(self.blobs[digest]) if digest in self.blobs else None

    def push_blob(self, digest: str, size: Any, chunks: Any) -> None:
        data = b"".join(chunks(0))
        assert sha(data) == digest and len(data) == size
        self.blobs[digest] = data
        self.writes.append(f"blob {digest}")

    def push_manifest(self, reference: str, raw: bytes, media_type: str, *, update_referrers: bool = True) -> str:
        manifest = parse_manifest(raw, media_type)
        missing = [d.digest for d in manifest.blobs() if d.digest not in self.blobs]
        assert not missing, f"manifest pushed before its blobs {missing}"  # what a registry refuses too
        self.manifests[sha(raw)] = (raw, media_type)
        if not reference.startswith("sha256:"):
            self.tags_[reference] = sha(raw)
        self.writes.append(f"manifest {reference}")
        return sha(raw)

    def referrers(self, digest: str, artifact_type: str | None = None):
        found = []
        for d, (raw, media_type) in self.manifests.items():
            m = parse_manifest(raw, media_type, digest=d)
            if m.subject is not None and m.subject.digest == digest and \
                    (artifact_type is None or m.artifact_type == artifact_type):
                found.append(Descriptor(media_type, d, len(raw), annotations=dict(m.annotations),
                                        artifact_type=m.artifact_type))
        return found
