# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Manifests, descriptors, platforms and image configs as value objects.

:func:`parse_manifest` reads every manifest kind a registry may serve: OCI
image manifest and index (artifacts, ``subject`` and ``artifactType``
included), Docker schema 2 manifest and manifest list, and the deprecated
Docker schema 1 (read-only). The bytes it was given are kept untouched in
:attr:`Manifest.raw`: they are what gets pushed again, so digests never change
on copy.
"""
from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal, overload

from ansible_collections.ocireg.registry.plugins.module_utils._model import (
    mediatypes as mt,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.digest import (
    compute_digest,
    validate_digest,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    DigestMismatchError,
    InvalidDigestError,
    InvalidInputError,
    ManifestError,
    NotFoundError,
)

#: ``Content-Type`` values that say nothing about the manifest kind; the JSON decides then.
GENERIC_CONTENT_TYPES = frozenset({"", "application/json", "application/octet-stream", "text/plain"})

#: The OCI empty descriptor (image-spec manifest.md): the two bytes ``{}``.
EMPTY_JSON = b"{}"
EMPTY_DESCRIPTOR_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

_KIND_NAMES = {
    mt.OCI_MANIFEST: "OCI image manifest",
    mt.OCI_INDEX: "OCI image index",
    mt.DOCKER_MANIFEST_V2: "Docker schema 2 manifest",
    mt.DOCKER_MANIFEST_LIST: "Docker manifest list",
    mt.DOCKER_MANIFEST_V1: "Docker schema 1 manifest",
    mt.DOCKER_MANIFEST_V1_SIGNED: "signed Docker schema 1 manifest",
}

_EXPECTED_PLATFORM = "expected os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8"
_PLATFORM_PART = re.compile(r"[a-z0-9][a-z0-9._-]*")
_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "i386": "386", "armhf": "arm", "armel": "arm"}
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


# --- platforms ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Platform:
    """Where an image runs: ``os/architecture[/variant]`` (plus Windows' ``os.version``)."""

    os: str
    architecture: str
    variant: str | None = None
    os_version: str | None = None
    os_features: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Parse ``os/arch[/variant]`` (case-insensitive); raise :class:`InvalidInputError` if malformed."""
        if not isinstance(text, str):
            raise InvalidInputError(f"{text!r} is not a valid platform: it must be a string ({_EXPECTED_PLATFORM})")
        parts = text.strip().lower().split("/")
        if len(parts) < 2:
            raise InvalidInputError(f"{text!r} is not a valid platform: it needs both an os and an architecture ({_EXPECTED_PLATFORM})")
        if len(parts) > 3:
            raise InvalidInputError(f"{text!r} is not a valid platform: it has more than three parts ({_EXPECTED_PLATFORM})")
        for part in parts:
            if not _PLATFORM_PART.fullmatch(part):
                problem = "an empty part" if not part else f"the invalid part {part!r} (use [a-z0-9._-])"
                raise InvalidInputError(f"{text!r} is not a valid platform: it has {problem} ({_EXPECTED_PLATFORM})")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    @classmethod
    def from_dict(cls, data: Any) -> Platform:
        """Read an OCI ``platform`` object; raise :class:`ManifestError` if it is malformed."""
        return _platform(data, "platform", "")

    def to_dict(self) -> dict[str, Any]:
        """The OCI JSON form (``os``, ``architecture``, and the optional fields that are set)."""
        data: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            data["variant"] = self.variant
        if self.os_version:
            data["os.version"] = self.os_version
        if self.os_features:
            data["os.features"] = list(self.os_features)
        return data

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text

    def normalized(self) -> Platform:
        """The canonical spelling containerd compares by: ``aarch64`` -> ``arm64``, ``arm64/v8`` -> ``arm64``, ``arm`` -> ``arm/v7``…"""
        os_name = self.os.lower()
        if os_name == "macos":
            os_name = "darwin"
        raw_arch = self.architecture.lower()
        arch = _ARCH_ALIASES.get(raw_arch, raw_arch)
        variant = (self.variant or "").lower()
        if raw_arch == "i386":
            variant = ""
        elif raw_arch == "armhf":
            variant = "v7"
        elif raw_arch == "armel":
            variant = "v6"
        elif arch == "amd64" and variant == "v1":
            variant = ""
        elif arch == "arm64" and variant in ("8", "v8", "v8.0"):
            variant = ""
        elif arch == "arm" and variant in ("", "7"):
            variant = "v7"
        elif arch == "arm" and variant in ("5", "6", "8"):
            variant = f"v{variant}"
        return Platform(os_name, arch, variant or None)

    def matches(self, other: Platform | str) -> bool:
        """True if both name the same platform once normalised (``os.version`` is not compared)."""
        if isinstance(other, str):
            other = Platform.parse(other)
        mine, theirs = self.normalized(), other.normalized()
        return (mine.os, mine.architecture, mine.variant) == (theirs.os, theirs.architecture, theirs.variant)


def parse_platforms(values: Iterable[str] | str | None) -> tuple[Platform, ...] | None:
    """The platforms a user asked for; ``None`` (also for ``all`` or an empty list) means every one."""
    if values is None or values == "all":
        return None
    if isinstance(values, str):
        values = [values]
    items = [v for v in values if v is not None]
    if not items or (len(items) == 1 and str(items[0]).strip().lower() == "all"):
        return None
    if any(str(v).strip().lower() == "all" for v in items):
        raise InvalidInputError(
            f"platforms {items!r} mixes 'all' with a list: give either 'all' or a list of os/arch[/variant]")
    return tuple(Platform.parse(v) for v in items)


# --- descriptors -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Descriptor:
    """A pointer to content: media type, digest, size and the optional descriptor fields.

    ``size`` is None only for Docker schema 1 layers, whose manifests carry no sizes.
    """

    media_type: str
    digest: str
    size: int | None
    annotations: Mapping[str, str] = dataclasses.field(default_factory=dict)
    platform: Platform | None = None
    artifact_type: str | None = None
    urls: tuple[str, ...] = ()

    def __hash__(self) -> int:
        # annotations is a dict; the digest already identifies the content.
        return hash((self.media_type, self.digest, self.size))

    @classmethod
    def from_dict(cls, data: Any) -> Descriptor:
        """Read an OCI descriptor object; raise :class:`ManifestError` if it is malformed."""
        return _descriptor(data, "descriptor", "")

    def to_dict(self) -> dict[str, Any]:
        """Plain data for module results (platform as ``os/arch[/variant]``)."""
        return {
            "media_type": self.media_type,
            "digest": self.digest,
            "size": self.size,
            "annotations": dict(self.annotations),
            "platform": str(self.platform) if self.platform else None,
            "artifact_type": self.artifact_type,
            "urls": list(self.urls),
        }

    def to_oci(self) -> dict[str, Any]:
        """The OCI JSON form, for writing a new manifest that points at this content."""
        data: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.urls:
            data["urls"] = list(self.urls)
        if self.annotations:
            data["annotations"] = dict(self.annotations)
        if self.platform:
            data["platform"] = self.platform.to_dict()
        if self.artifact_type:
            data["artifactType"] = self.artifact_type
        return data


EMPTY_DESCRIPTOR = Descriptor(mt.OCI_EMPTY, EMPTY_DESCRIPTOR_DIGEST, len(EMPTY_JSON))


def unique_empty_artifact(artifact_type: str, annotations: Mapping[str, str]) -> bytes:
    """An OCI artifact manifest on the empty descriptor, made unique by its annotations.

    Unique bytes give a digest no other tag shares, so deleting it by digest removes only the
    tag it was pushed under (the untag placeholder, the prune lease). Its one blob is
    :data:`EMPTY_JSON`, which the caller makes sure the repository has.
    """
    empty = EMPTY_DESCRIPTOR.to_oci()
    document = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "artifactType": artifact_type,
                "config": empty, "layers": [empty], "annotations": dict(annotations)}
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode("utf-8")


def _is_int(value: Any) -> bool:
    # JSON true/false load as bool, a subclass of int: neither is a count or a version.
    return isinstance(value, int) and not isinstance(value, bool)


def _fail(where: str, problem: str) -> ManifestError:
    return ManifestError(f"invalid {where}: {problem}")


@overload
def _string(data: Mapping[str, Any], key: str, where: str, path: str, required: Literal[True]) -> str: ...


@overload
def _string(data: Mapping[str, Any], key: str, where: str, path: str, required: bool = False) -> str | None: ...


def _string(data: Mapping[str, Any], key: str, where: str, path: str, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        shown = "missing" if value is None else f"got {value!r}"
        raise _fail(where, f"{path}{key} must be a non-empty string ({shown})")
    return value


def _string_map(data: Mapping[str, Any], key: str, where: str, path: str) -> dict[str, str]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise _fail(where, f"{path}{key} must be an object of string values")
    return dict(value)


def _string_list(data: Mapping[str, Any], key: str, where: str, path: str) -> tuple[str, ...]:
    value = data.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _fail(where, f"{path}{key} must be a list of strings")
    return tuple(value)


def _object(value: Any, where: str, path: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _fail(where, f"{path or 'it'} must be a JSON object, got {type(value).__name__}")
    return value


def _platform(data: Any, where: str, path: str) -> Platform:
    data = _object(data, where, path.rstrip("."))
    return Platform(
        os=_string(data, "os", where, path, required=True),
        architecture=_string(data, "architecture", where, path, required=True),
        variant=_string(data, "variant", where, path) or None,
        os_version=_string(data, "os.version", where, path),
        os_features=_string_list(data, "os.features", where, path),
    )


def _descriptor(data: Any, where: str, path: str) -> Descriptor:
    data = _object(data, where, path.rstrip("."))
    media_type = _string(data, "mediaType", where, path, required=True)
    digest = _string(data, "digest", where, path, required=True)
    try:
        validate_digest(digest)
    except InvalidDigestError as exc:
        raise _fail(where, f"{path}digest: {exc.message}") from None
    size = data.get("size")
    if not _is_int(size) or size < 0:
        shown = "missing" if size is None else f"got {size!r}"
        raise _fail(where, f"{path}size must be a non-negative integer ({shown})")
    platform = data.get("platform")
    return Descriptor(
        media_type=media_type,
        digest=digest,
        size=size,
        annotations=_string_map(data, "annotations", where, path),
        platform=None if platform is None else _platform(platform, where, f"{path}platform."),
        artifact_type=_string(data, "artifactType", where, path),
        urls=_string_list(data, "urls", where, path),
    )


def _descriptor_list(data: Mapping[str, Any], key: str, where: str) -> tuple[Descriptor, ...]:
    value = data.get(key)
    if not isinstance(value, list):
        shown = "missing" if value is None else f"got {type(value).__name__}"
        raise _fail(where, f"{key} must be a list of descriptors ({shown})")
    return tuple(_descriptor(item, where, f"{key}[{i}].") for i, item in enumerate(value))


# --- manifests ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Manifest:
    """A parsed manifest. ``raw`` holds the exact bytes received; push those, never a re-serialisation."""

    raw: bytes
    media_type: str
    digest: str
    schema_version: int
    config: Descriptor | None = None
    layers: tuple[Descriptor, ...] = ()
    manifests: tuple[Descriptor, ...] = ()
    subject: Descriptor | None = None
    artifact_type: str | None = None
    annotations: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __hash__(self) -> int:
        return hash((self.digest, self.media_type))

    @property
    def size(self) -> int:
        """Length of the raw bytes."""
        return len(self.raw)

    @property
    def is_index(self) -> bool:
        """True for an OCI index or a Docker manifest list."""
        return mt.is_index(self.media_type)

    @property
    def is_schema1(self) -> bool:
        """True for the deprecated Docker schema 1 (read-only: registries refuse new pushes of it)."""
        return mt.is_schema1(self.media_type)

    @property
    def effective_artifact_type(self) -> str | None:
        """``artifactType``, else the config media type when it is not an image config (image-spec guidance)."""
        if self.artifact_type:
            return self.artifact_type
        if self.config is not None and not mt.is_config(self.config.media_type):
            return self.config.media_type
        return None

    def children(self) -> tuple[Descriptor, ...]:
        """Manifests this one points at, which must exist at a destination before it is pushed."""
        return self.manifests

    def blobs(self) -> tuple[Descriptor, ...]:
        """Config then layers, each digest once (schema 1 repeats its empty layer many times)."""
        seen: set[str] = set()
        blobs = []
        for descriptor in ((self.config,) if self.config else ()) + self.layers:
            if descriptor.digest not in seen:
                seen.add(descriptor.digest)
                blobs.append(descriptor)
        return tuple(blobs)

    def platforms(self) -> list[Platform]:
        """Platforms of an index's children, in index order (children without one are left out)."""
        return [d.platform for d in self.manifests if d.platform is not None]

    def descriptor(self, platform: Platform | None = None) -> Descriptor:
        """A descriptor pointing at this manifest (for an index entry or a referrers answer)."""
        return Descriptor(
            media_type=self.media_type,
            digest=self.digest,
            size=self.size,
            annotations=dict(self.annotations),
            platform=platform,
            artifact_type=self.effective_artifact_type,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data for module results."""
        return {
            "digest": self.digest,
            "media_type": self.media_type,
            "size": self.size,
            "schema_version": self.schema_version,
            "config": self.config.to_dict() if self.config else None,
            "layers": [d.to_dict() for d in self.layers],
            "manifests": [d.to_dict() for d in self.manifests],
            "subject": self.subject.to_dict() if self.subject else None,
            "artifact_type": self.artifact_type,
            "annotations": dict(self.annotations),
        }


def _kind_name(media_type: str) -> str:
    return _KIND_NAMES.get(mt.base_type(media_type), "manifest")


def _check_digest(content: bytes, expected: str | None, what: str) -> str:
    if expected is None:
        return compute_digest(content)
    actual = compute_digest(content, expected.partition(":")[0])
    if actual != expected:
        raise DigestMismatchError(
            f"{what} expected to have digest {expected} hashed to {actual}: it was corrupted or changed "
            "in transit; retry, and if it persists the registry holds broken content",
            detail={"expected": expected, "actual": actual},
        )
    return actual


def _detect_media_type(doc: Mapping[str, Any], declared: str | None) -> str:
    """The manifest's media type: its own ``mediaType`` field, else the Content-Type, else its shape."""
    body_type = doc.get("mediaType")
    if body_type is not None:
        if not isinstance(body_type, str) or not mt.is_manifest(body_type):
            raise ManifestError(
                f"unsupported manifest media type {body_type!r} in the manifest's mediaType field: "
                f"expected one of {', '.join(mt.MANIFEST_ACCEPT)}"
            )
        if declared is not None and mt.base_type(body_type) != declared:
            # distribution-spec: clients SHOULD reject a mediaType that differs from Content-Type.
            raise ManifestError(
                f"the manifest says its mediaType is {body_type} but the registry served it as {declared}; "
                "the registry or whoever pushed this manifest is broken, re-push it with a matching type"
            )
        return body_type
    if declared is not None:
        return declared
    if _is_int(doc.get("schemaVersion")) and doc["schemaVersion"] == 1:
        return mt.DOCKER_MANIFEST_V1_SIGNED if "signatures" in doc else mt.DOCKER_MANIFEST_V1
    return mt.OCI_INDEX if "manifests" in doc else mt.OCI_MANIFEST


def _base64url(text: str) -> bytes:
    # JOSE base64url drops the padding; libtrust adds it back and refuses a length of 1 mod 4.
    if not _BASE64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _schema1_payload(raw: bytes, doc: Mapping[str, Any], where: str) -> bytes:
    """The signed payload of a schema 1 manifest: the bytes its digest is computed over.

    libtrust's pretty JWS inserts ``"signatures": [...]`` into the JSON it signs; every
    signature's protected header records how to undo that: keep the first
    ``formatLength`` bytes and append ``formatTail`` (base64url).
    """
    signatures = doc.get("signatures")
    if signatures is None:
        return raw
    if not isinstance(signatures, list) or not signatures:
        raise _fail(where, "signatures must be a non-empty list")
    format_length: int | None = None
    format_tail = b""  # set with format_length by the first signature (the list is not empty)
    for i, signature in enumerate(signatures):
        protected = signature.get("protected") if isinstance(signature, dict) else None
        if not isinstance(protected, str):
            raise _fail(where, f"signatures[{i}].protected must be a string")
        try:
            header = json.loads(_base64url(protected))
            length = header["formatLength"]
            tail = _base64url(header["formatTail"])
        except (ValueError, TypeError, KeyError, RecursionError, binascii.Error):
            raise _fail(
                where, f"signatures[{i}].protected is not a base64url JSON header with formatLength and formatTail"
            ) from None
        if isinstance(length, float) and length.is_integer():
            length = int(length)  # libtrust reads JSON numbers as float64
        if not _is_int(length) or not 0 <= length <= len(raw):
            raise _fail(where, f"signatures[{i}] has formatLength {length!r}, outside the manifest's {len(raw)} bytes")
        if format_length is None:
            format_length, format_tail = length, tail
        elif (length, tail) != (format_length, format_tail):
            raise _fail(where, "its signatures disagree on formatLength or formatTail")
    payload = raw[:format_length] + format_tail
    try:
        matches = json.loads(payload) == {key: value for key, value in doc.items() if key != "signatures"}
    except (ValueError, RecursionError):
        matches = False
    if not matches:
        # Otherwise the digest would cover different content than what is read from the manifest.
        raise _fail(where, "the signed payload does not match the manifest's content")
    return payload


def _schema_version(doc: Mapping[str, Any], expected: int, where: str) -> int:
    version = doc.get("schemaVersion")
    if not _is_int(version) or version != expected:
        raise _fail(where, f"schemaVersion must be {expected}, got {version!r}")
    return expected


def parse_manifest(raw: bytes, media_type: str | None = None, digest: str | None = None) -> Manifest:
    """Parse and validate a manifest of any supported kind.

    ``media_type`` is the ``Content-Type`` it was served with (parameters are
    ignored; None or a generic JSON type means "detect from the content").
    When ``digest`` is given the content is verified against it
    (:class:`DigestMismatchError`); otherwise the sha256 digest is computed.
    Schema 1 signed manifests are digested over their signed payload, as registries do.
    """
    if isinstance(raw, (bytearray, memoryview)):
        raw = bytes(raw)
    if not isinstance(raw, bytes):
        raise ManifestError(f"a manifest must be bytes, got {type(raw).__name__}")
    if digest is not None:
        validate_digest(digest)
    declared: str | None = mt.base_type(media_type)
    if declared in GENERIC_CONTENT_TYPES:
        declared = None
    elif not mt.is_manifest(declared):
        raise ManifestError(
            f"unsupported manifest media type {media_type!r}: expected one of {', '.join(mt.MANIFEST_ACCEPT)}"
        )
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        _check_digest(raw, digest, "the manifest")  # corruption in transit explains bad JSON best
        reason = "it is nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise ManifestError(f"the manifest is not valid JSON: {reason}") from None
    if not isinstance(doc, dict):
        _check_digest(raw, digest, "the manifest")
        raise ManifestError(f"the manifest must be a JSON object, got {type(doc).__name__}")

    kind = _detect_media_type(doc, declared)
    where = _kind_name(kind)
    if mt.is_schema1(kind):
        payload = _schema1_payload(raw, doc, where)
        actual = _check_digest(payload, digest, f"the {where}")
        return _schema1_manifest(raw, kind, actual, doc, where)
    actual = _check_digest(raw, digest, f"the {where}")
    fields: dict[str, Any] = {
        "raw": raw,
        "media_type": kind,
        "digest": actual,
        "schema_version": _schema_version(doc, 2, where),
        "artifact_type": _string(doc, "artifactType", where, ""),
        "annotations": _string_map(doc, "annotations", where, ""),
    }
    if doc.get("subject") is not None:
        fields["subject"] = _descriptor(doc["subject"], where, "subject.")
    if mt.is_index(kind):
        return Manifest(manifests=_descriptor_list(doc, "manifests", where), **fields)
    if "config" not in doc:
        raise _fail(where, "config is missing (an image manifest needs a config descriptor)")
    return Manifest(
        config=_descriptor(doc["config"], where, "config."),
        layers=_descriptor_list(doc, "layers", where),
        **fields,
    )


def _schema1_manifest(raw: bytes, kind: str, digest: str, doc: Mapping[str, Any], where: str) -> Manifest:
    version = _schema_version(doc, 1, where)
    fs_layers = doc.get("fsLayers")
    if not isinstance(fs_layers, list):
        raise _fail(where, "fsLayers must be a list")
    layers = []
    for i, layer in enumerate(fs_layers):
        blob_sum: Any = layer.get("blobSum") if isinstance(layer, dict) else None
        try:
            validate_digest(blob_sum)  # not a string: rejected here
        except InvalidDigestError as exc:
            raise _fail(where, f"fsLayers[{i}].blobSum: {exc.message}") from None
        layers.append(Descriptor(mt.DOCKER_LAYER, blob_sum, None))
    # Schema 1 lists the top layer first; every other format lists the base layer first.
    return Manifest(raw=raw, media_type=kind, digest=digest, schema_version=version, layers=tuple(reversed(layers)))


# --- platform selection ------------------------------------------------------------------------


def select_platform(manifest: Manifest, platform: Platform | str) -> Descriptor:
    """The first child of an index that runs on ``platform`` (normalised comparison).

    Raises :class:`NotFoundError` listing the platforms the index has, and
    :class:`InvalidInputError` for a single-image manifest, which has nothing to select.
    """
    wanted = platform if isinstance(platform, Platform) else Platform.parse(platform)
    if not manifest.is_index:
        raise InvalidInputError(
            f"{manifest.digest} is a single-image {_kind_name(manifest.media_type)}, not an index: there is no "
            f"platform to select; its config says which platform it is for"
        )
    for child in manifest.manifests:
        if child.platform is not None and child.platform.matches(wanted):
            return child
    # "unknown/unknown" entries are build attestations, not images anyone can pick.
    available = [str(p) for p in manifest.platforms() if (p.os, p.architecture) != ("unknown", "unknown")]
    available = list(dict.fromkeys(available))
    raise NotFoundError(
        f"{manifest.digest} has no image for platform {wanted}; available platforms: "
        f"{', '.join(available) or 'none'}",
        detail={"platform": str(wanted), "available": available},
    )


# --- image config ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ImageConfig:
    """The parts of an image config (OCI or Docker) that people ask about. Missing fields are None/empty."""

    architecture: str | None = None
    os: str | None = None
    variant: str | None = None
    os_version: str | None = None
    created: str | None = None
    author: str | None = None
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    env: list[str] = dataclasses.field(default_factory=list)
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    user: str | None = None
    working_dir: str | None = None
    exposed_ports: list[str] = dataclasses.field(default_factory=list)
    history_length: int = 0

    @property
    def platform(self) -> Platform | None:
        """The platform the config names, if it names both os and architecture."""
        if not self.os or not self.architecture:
            return None
        return Platform(self.os, self.architecture, self.variant or None, self.os_version)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for module results."""
        data = dataclasses.asdict(self)
        data["platform"] = str(self.platform) if self.platform else None
        return data


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _command(value: Any) -> list[str] | None:
    # Docker's strslice accepts a bare string where a list is expected.
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return None


def parse_config(raw: bytes) -> ImageConfig:
    """Read an image config blob. Only bytes that are not a JSON object raise :class:`ManifestError`.

    Configs in the wild miss fields or hold ``"config": null``; those read as
    empty. Labels and env entries that are not strings are ignored (Docker could
    not load them either).
    """
    if isinstance(raw, (bytearray, memoryview)):
        raw = bytes(raw)
    try:
        doc = json.loads(raw)
    except (ValueError, TypeError, RecursionError):
        raise ManifestError("the image config is not valid JSON: the blob is damaged or not an image config") from None
    if not isinstance(doc, dict):
        raise ManifestError(f"the image config must be a JSON object, got {type(doc).__name__}")
    config: dict[Any, Any] = doc["config"] if isinstance(doc.get("config"), dict) else {}
    labels: dict[Any, Any] = config["Labels"] if isinstance(config.get("Labels"), dict) else {}
    env: list[Any] = config["Env"] if isinstance(config.get("Env"), list) else []
    ports = config.get("ExposedPorts")
    history = doc.get("history")
    return ImageConfig(
        architecture=_text_or_none(doc.get("architecture")),
        os=_text_or_none(doc.get("os")),
        variant=_text_or_none(doc.get("variant")),
        os_version=_text_or_none(doc.get("os.version")),
        created=_text_or_none(doc.get("created")),
        author=_text_or_none(doc.get("author")),
        labels={k: v for k, v in labels.items() if isinstance(k, str) and isinstance(v, str)},
        env=[item for item in env if isinstance(item, str)],
        entrypoint=_command(config.get("Entrypoint")),
        cmd=_command(config.get("Cmd")),
        user=_text_or_none(config.get("User")),
        working_dir=_text_or_none(config.get("WorkingDir")),
        exposed_ports=sorted(str(p) for p in ports) if isinstance(ports, (dict, list)) else [],
        history_length=len(history) if isinstance(history, list) else 0,
    )
