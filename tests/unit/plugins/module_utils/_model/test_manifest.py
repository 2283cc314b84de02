"""Unit tests for manifests, descriptors, platforms and image configs."""
from __future__ import annotations

import base64
import copy
import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.ocireg.registry.plugins.module_utils._model import mediatypes as mt
from ansible_collections.ocireg.registry.plugins.module_utils._model.digest import compute_digest
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    DigestMismatchError,
    InvalidDigestError,
    InvalidInputError,
    ManifestError,
    NotFoundError,
    RegistryError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (
    EMPTY_DESCRIPTOR,
    EMPTY_JSON,
    Descriptor,
    ImageConfig,
    Manifest,
    Platform,
    parse_config,
    parse_manifest,
    select_platform,
    unique_empty_artifact,
)


def sha(n: int) -> str:
    """A valid, distinct sha256 digest for fixtures."""
    return "sha256:" + hashlib.sha256(str(n).encode()).hexdigest()


def dumps(doc) -> bytes:
    # Docker and containerd write manifests with 3-space indentation.
    return json.dumps(doc, indent=3).encode()


# --- fixtures: real-world shapes ------------------------------------------------------------------

# Shaped like docker.io/library/hello-world's linux/amd64 schema 2 manifest.
SCHEMA2 = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
    "config": {
        "mediaType": "application/vnd.docker.container.image.v1+json",
        "size": 1470,
        "digest": "sha256:feb5d9fea6a5e9606aa995e879d862b825965ba48de054caab5ef356dc6b3412",
    },
    "layers": [
        {
            "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "size": 2479,
            "digest": "sha256:2db29710123e3e53a794f2694094b9b4338aa9ee5c40b930cb8063a1be392c54",
        }
    ],
}

PLATFORMS = [
    ("amd64", None), ("arm", "v5"), ("arm", "v7"), ("arm64", "v8"), ("386", None), ("ppc64le", None), ("s390x", None),
]

# Shaped like a buildx-pushed OCI index: one child per platform plus an attestation manifest.
OCI_INDEX = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [
        {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha(i),
            "size": 1000 + i,
            "platform": {"architecture": arch, "os": "linux", **({"variant": variant} if variant else {})},
        }
        for i, (arch, variant) in enumerate(PLATFORMS)
    ]
    + [
        {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha(99),
            "size": 840,
            "annotations": {
                "vnd.docker.reference.digest": sha(0),
                "vnd.docker.reference.type": "attestation-manifest",
            },
            "platform": {"architecture": "unknown", "os": "unknown"},
        }
    ],
    "annotations": {"org.opencontainers.image.created": "2024-05-01T10:00:00Z"},
}

DOCKER_LIST = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
    "manifests": [
        {
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "size": 525,
            "digest": sha(10),
            "platform": {"architecture": "amd64", "os": "linux"},
        },
        {
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "size": 525,
            "digest": sha(11),
            "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
        },
        {
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "size": 1125,
            "digest": sha(12),
            "platform": {"architecture": "amd64", "os": "windows", "os.version": "10.0.20348.2402"},
        },
    ],
}

OCI_MANIFEST = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(20), "size": 7023},
    "layers": [
        {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(21), "size": 32654},
        {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": sha(22), "size": 16724},
        {
            "mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            "digest": sha(23),
            "size": 73109,
            "urls": ["https://mcr.microsoft.com/v2/windows/blobs/" + sha(23)],
        },
    ],
    "annotations": {"com.example.key1": "value1"},
}

# An OCI 1.1 artifact: empty config, artifactType, a subject (e.g. an SBOM attached to an image).
ARTIFACT = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "artifactType": "application/vnd.example.sbom.v1",
    "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": EMPTY_DESCRIPTOR.digest, "size": 2},
    "layers": [{"mediaType": "application/spdx+json", "digest": sha(30), "size": 812}],
    "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(31), "size": 1234},
    "annotations": {"org.opencontainers.image.created": "2024-05-01T10:00:00Z"},
}

SCHEMA1 = {
    "schemaVersion": 1,
    "name": "library/busybox",
    "tag": "1.0",
    "architecture": "amd64",
    "fsLayers": [
        {"blobSum": sha(40)},  # top layer first, as schema 1 lists them
        {"blobSum": sha(41)},
        {"blobSum": sha(40)},
        {"blobSum": sha(42)},  # base layer
    ],
    "history": [{"v1Compatibility": json.dumps({"id": str(i)})} for i in range(4)],
}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_schema1(content: bytes, count: int = 1, header_overrides=None) -> bytes:
    """Insert libtrust-style pretty JWS signatures into ``content`` (signatures are not checked here).

    Each protected header records formatLength (bytes of ``content`` kept before
    the inserted signatures) and formatTail (the bytes after them), exactly as
    libtrust's NewJSONSignature does.
    """
    close = len(content.rstrip()) - 1
    assert content[close:close + 1] == b"}"
    format_length = len(content[:close].rstrip())
    tail = content[format_length:]
    signatures = []
    for i in range(count):
        header = {"formatLength": format_length, "formatTail": b64url(tail), "time": f"2016-01-0{i + 1}T00:00:00Z"}
        header.update((header_overrides or {}).get(i, {}))
        signatures.append({
            "header": {
                "jwk": {"crv": "P-256", "kty": "EC", "kid": "ABCD:EFGH", "x": b64url(bytes(range(32))),
                        "y": b64url(bytes(range(32, 64)))},
                "alg": "ES256",
            },
            "signature": b64url(bytes(64)),
            "protected": b64url(json.dumps(header).encode()),
        })
    inserted = b',\n   "signatures": ' + json.dumps(signatures, indent=3).replace("\n", "\n   ").encode()
    return content[:format_length] + inserted + tail


# --- platforms --------------------------------------------------------------------------------------


class TestPlatform:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("linux/amd64", Platform("linux", "amd64")),
            ("linux/arm64/v8", Platform("linux", "arm64", "v8")),
            ("Linux/AMD64", Platform("linux", "amd64")),
            (" linux/arm/v7 ", Platform("linux", "arm", "v7")),
            ("windows/amd64", Platform("windows", "amd64")),
            ("linux/x86_64", Platform("linux", "x86_64")),
            ("linux/riscv64", Platform("linux", "riscv64")),
        ],
    )
    def test_parse(self, text, expected):
        assert Platform.parse(text) == expected

    @pytest.mark.parametrize("text", ["linux/amd64", "linux/arm64/v8", "darwin/arm64", "linux/arm/v6"])
    def test_str_round_trip(self, text):
        assert str(Platform.parse(text)) == text

    @pytest.mark.parametrize(
        ("text", "reason"),
        [
            ("", "needs both an os and an architecture"),
            ("linux", "needs both an os and an architecture"),
            ("linux/", "has an empty part"),
            ("/amd64", "has an empty part"),
            ("linux//v8", "has an empty part"),
            ("linux/amd64/v8/x", "more than three parts"),
            ("linux/am d64", "invalid part 'am d64'"),
            ("linux/-arm", "invalid part '-arm'"),
            ("linux/arm64/v8+", "invalid part 'v8+'"),
        ],
    )
    def test_parse_errors(self, text, reason):
        with pytest.raises(InvalidInputError) as info:
            Platform.parse(text)
        message = str(info.value)
        assert message.startswith(f"{text!r} is not a valid platform")
        assert reason in message
        assert "expected os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8" in message

    def test_parse_non_string(self):
        with pytest.raises(InvalidInputError, match="must be a string"):
            Platform.parse(None)

    @pytest.mark.parametrize(
        ("a", "b"),
        [
            ("linux/arm64", "linux/arm64/v8"),
            ("linux/aarch64", "linux/arm64/v8"),
            ("linux/arm64/8", "linux/arm64"),
            ("linux/x86_64", "linux/amd64"),
            ("linux/amd64/v1", "linux/amd64"),
            ("linux/arm", "linux/arm/v7"),
            ("linux/arm/7", "linux/arm/v7"),
            ("linux/arm/6", "linux/arm/v6"),
            ("linux/armhf", "linux/arm/v7"),
            ("linux/armel", "linux/arm/v6"),
            ("linux/i386", "linux/386"),
            ("macos/arm64", "darwin/arm64"),
            ("linux/amd64", "linux/amd64"),
        ],
    )
    def test_matches_after_normalisation(self, a, b):
        assert Platform.parse(a).matches(Platform.parse(b))
        assert Platform.parse(b).matches(a)

    @pytest.mark.parametrize(
        ("a", "b"),
        [
            ("linux/arm/v6", "linux/arm/v7"),
            ("linux/arm", "linux/arm/v6"),
            ("linux/amd64", "linux/arm64"),
            ("linux/amd64", "windows/amd64"),
            ("linux/amd64/v2", "linux/amd64"),
            ("linux/arm64/v9", "linux/arm64"),
            ("linux/arm64", "linux/arm"),
        ],
    )
    def test_does_not_match(self, a, b):
        assert not Platform.parse(a).matches(Platform.parse(b))

    def test_os_version_is_not_compared(self):
        assert Platform("windows", "amd64", os_version="10.0.17763").matches("windows/amd64")

    def test_from_dict_and_to_dict(self):
        data = {"architecture": "amd64", "os": "windows", "os.version": "10.0.20348", "os.features": ["win32k"]}
        platform = Platform.from_dict(data)
        assert platform == Platform("windows", "amd64", None, "10.0.20348", ("win32k",))
        assert platform.to_dict() == data
        assert Platform.from_dict({"architecture": "arm", "os": "linux", "variant": "v7"}).to_dict() == {
            "architecture": "arm", "os": "linux", "variant": "v7",
        }

    @pytest.mark.parametrize(
        ("data", "reason"),
        [
            ("linux/amd64", "it must be a JSON object, got str"),
            ({"os": "linux"}, "architecture must be a non-empty string (missing)"),
            ({"os": "", "architecture": "amd64"}, "os must be a non-empty string"),
            ({"os": "linux", "architecture": 1}, "architecture must be a non-empty string (got 1)"),
            ({"os": "linux", "architecture": "arm", "variant": 7}, "variant must be a non-empty string"),
            ({"os": "linux", "architecture": "amd64", "os.features": "x"}, "os.features must be a list of strings"),
        ],
    )
    def test_from_dict_errors(self, data, reason):
        with pytest.raises(ManifestError, match="invalid platform") as info:
            Platform.from_dict(data)
        assert reason in str(info.value)


# --- descriptors ------------------------------------------------------------------------------------


class TestDescriptor:
    FULL = {
        "mediaType": mt.OCI_MANIFEST,
        "digest": sha(1),
        "size": 1234,
        "annotations": {"a": "b"},
        "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
        "artifactType": "application/vnd.example",
        "urls": ["https://example.com/blob"],
    }

    def test_from_dict(self):
        d = Descriptor.from_dict(self.FULL)
        assert d == Descriptor(
            mt.OCI_MANIFEST, sha(1), 1234, {"a": "b"}, Platform("linux", "arm64", "v8"),
            "application/vnd.example", ("https://example.com/blob",),
        )

    def test_to_dict_gives_plain_json_data(self):
        assert Descriptor.from_dict(self.FULL).to_dict() == {
            "media_type": mt.OCI_MANIFEST,
            "digest": sha(1),
            "size": 1234,
            "annotations": {"a": "b"},
            "platform": "linux/arm64/v8",
            "artifact_type": "application/vnd.example",
            "urls": ["https://example.com/blob"],
        }
        minimal = Descriptor(mt.OCI_LAYER, sha(2), 5).to_dict()
        assert minimal["platform"] is None and minimal["annotations"] == {} and minimal["urls"] == []
        json.dumps(minimal)

    def test_to_oci_round_trips(self):
        assert Descriptor.from_dict(self.FULL).to_oci() == self.FULL
        minimal = {"mediaType": mt.OCI_LAYER, "digest": sha(2), "size": 0}
        assert Descriptor.from_dict(minimal).to_oci() == minimal

    def test_unknown_fields_are_ignored(self):
        assert Descriptor.from_dict({**self.FULL, "data": "e30=", "x-extra": 1}) == Descriptor.from_dict(self.FULL)

    def test_hashable_despite_annotations(self):
        d = Descriptor.from_dict(self.FULL)
        assert {d, Descriptor.from_dict(self.FULL)} == {d}

    def test_empty_descriptor_is_the_spec_one(self):
        assert EMPTY_DESCRIPTOR.to_oci() == {"mediaType": mt.OCI_EMPTY, "digest": compute_digest(EMPTY_JSON), "size": 2}

    @pytest.mark.parametrize(
        ("change", "reason"),
        [
            ({"mediaType": None}, "mediaType must be a non-empty string (missing)"),
            ({"mediaType": ""}, "mediaType must be a non-empty string"),
            ({"mediaType": 5}, "mediaType must be a non-empty string (got 5)"),
            ({"digest": None}, "digest must be a non-empty string (missing)"),
            ({"digest": "sha256:abc"}, "digest: 'sha256:abc' is not a valid digest"),
            ({"digest": "md5:" + "0" * 32}, "unsupported algorithm 'md5'"),
            ({"size": None}, "size must be a non-negative integer (missing)"),
            ({"size": -1}, "size must be a non-negative integer (got -1)"),
            ({"size": True}, "size must be a non-negative integer (got True)"),
            ({"size": 1.5}, "size must be a non-negative integer"),
            ({"size": "12"}, "size must be a non-negative integer"),
            ({"annotations": {"a": 1}}, "annotations must be an object of string values"),
            ({"annotations": ["a"]}, "annotations must be an object of string values"),
            ({"urls": "https://x"}, "urls must be a list of strings"),
            ({"urls": [1]}, "urls must be a list of strings"),
            ({"platform": {"os": "linux"}}, "platform.architecture must be a non-empty string"),
            ({"platform": "linux/amd64"}, "platform must be a JSON object"),
            ({"artifactType": 1}, "artifactType must be a non-empty string"),
        ],
    )
    def test_errors(self, change, reason):
        data = {k: v for k, v in {**self.FULL, **change}.items() if v is not None}
        with pytest.raises(ManifestError, match="invalid descriptor") as info:
            Descriptor.from_dict(data)
        assert reason in str(info.value)

    def test_not_an_object(self):
        with pytest.raises(ManifestError, match="it must be a JSON object, got list"):
            Descriptor.from_dict([])


# --- parse_manifest: kinds --------------------------------------------------------------------------


class TestSchema2:
    RAW = dumps(SCHEMA2)

    def test_fields(self):
        m = parse_manifest(self.RAW, mt.DOCKER_MANIFEST_V2)
        assert m.media_type == mt.DOCKER_MANIFEST_V2
        assert m.schema_version == 2
        assert m.digest == "sha256:" + hashlib.sha256(self.RAW).hexdigest()
        assert m.size == len(self.RAW)
        assert m.config == Descriptor(mt.DOCKER_CONFIG, SCHEMA2["config"]["digest"], 1470)
        assert m.layers == (Descriptor(mt.DOCKER_LAYER, SCHEMA2["layers"][0]["digest"], 2479),)
        assert m.manifests == () and m.children() == ()
        assert m.blobs() == (m.config, m.layers[0])
        assert not m.is_index and not m.is_schema1
        assert m.subject is None and m.artifact_type is None and m.effective_artifact_type is None
        assert m.annotations == {}

    def test_raw_bytes_are_kept_untouched(self):
        # Odd key order and spacing: a re-serialisation would change the digest.
        raw = b'{"layers":[],  "schemaVersion" :2,"config":{"size":2,"digest":"' + EMPTY_DESCRIPTOR.digest.encode() + (
            b'","mediaType":"application/vnd.oci.empty.v1+json"},"mediaType":"application/vnd.oci.image.manifest.v1+json"}\n'
        )
        m = parse_manifest(bytearray(raw))
        assert m.raw == raw and type(m.raw) is bytes  # pylint: disable=unidiomatic-typecheck
        assert m.digest == compute_digest(raw)
        assert m.digest != compute_digest(json.dumps(json.loads(raw)).encode())

    @pytest.mark.parametrize(
        "content_type",
        [None, mt.DOCKER_MANIFEST_V2, mt.DOCKER_MANIFEST_V2 + "; charset=utf-8", "application/json", "text/plain", ""],
    )
    def test_content_type_variants(self, content_type):
        assert parse_manifest(self.RAW, content_type).media_type == mt.DOCKER_MANIFEST_V2

    def test_given_digest_is_verified(self):
        good = compute_digest(self.RAW)
        assert parse_manifest(self.RAW, digest=good).digest == good

    def test_sha512_digest(self):
        good = compute_digest(self.RAW, "sha512")
        assert parse_manifest(self.RAW, digest=good).digest == good

    def test_digest_mismatch_names_both(self):
        with pytest.raises(DigestMismatchError) as info:
            parse_manifest(self.RAW, digest=sha(1))
        message = str(info.value)
        assert sha(1) in message and compute_digest(self.RAW) in message
        assert "corrupted or changed in transit" in message

    def test_truncated_content_is_a_digest_mismatch_when_the_digest_is_known(self):
        with pytest.raises(DigestMismatchError):
            parse_manifest(self.RAW[:-5], digest=compute_digest(self.RAW))
        with pytest.raises(DigestMismatchError):
            parse_manifest(b"[1]", digest=compute_digest(self.RAW))

    def test_truncated_content_is_a_manifest_error_otherwise(self):
        with pytest.raises(ManifestError, match="not valid JSON"):
            parse_manifest(self.RAW[:-5])

    def test_invalid_digest_argument(self):
        with pytest.raises(InvalidDigestError):
            parse_manifest(self.RAW, digest="sha256:nope")


class TestOciManifest:
    def test_layers_and_non_distributable(self):
        m = parse_manifest(dumps(OCI_MANIFEST), mt.OCI_MANIFEST)
        assert [layer.media_type for layer in m.layers] == [layer["mediaType"] for layer in OCI_MANIFEST["layers"]]
        foreign = m.layers[2]
        assert mt.is_non_distributable(foreign.media_type)
        assert foreign.urls == tuple(OCI_MANIFEST["layers"][2]["urls"])
        assert m.annotations == {"com.example.key1": "value1"}
        assert m.config.media_type == mt.OCI_CONFIG

    def test_without_media_type_field_or_content_type_it_is_an_oci_manifest(self):
        doc = {k: v for k, v in OCI_MANIFEST.items() if k != "mediaType"}
        assert parse_manifest(dumps(doc)).media_type == mt.OCI_MANIFEST

    def test_content_type_names_the_kind_when_the_field_is_absent(self):
        doc = {k: v for k, v in SCHEMA2.items() if k != "mediaType"}
        assert parse_manifest(dumps(doc), mt.DOCKER_MANIFEST_V2).media_type == mt.DOCKER_MANIFEST_V2

    def test_blobs_deduplicate_but_layers_keep_repeats(self):
        doc = copy.deepcopy(OCI_MANIFEST)
        doc["layers"].append(doc["layers"][0])
        m = parse_manifest(dumps(doc))
        assert len(m.layers) == 4
        assert [b.digest for b in m.blobs()] == [sha(20), sha(21), sha(22), sha(23)]

    def test_to_dict(self):
        m = parse_manifest(dumps(OCI_MANIFEST))
        data = m.to_dict()
        assert data["digest"] == m.digest and data["size"] == m.size and data["schema_version"] == 2
        assert data["config"]["digest"] == sha(20)
        assert [layer["digest"] for layer in data["layers"]] == [sha(21), sha(22), sha(23)]
        assert data["subject"] is None and data["manifests"] == []
        json.dumps(data)

    def test_descriptor_points_at_the_manifest(self):
        m = parse_manifest(dumps(OCI_MANIFEST))
        d = m.descriptor(Platform("linux", "amd64"))
        assert (d.media_type, d.digest, d.size, str(d.platform)) == (mt.OCI_MANIFEST, m.digest, m.size, "linux/amd64")
        assert d.annotations == {"com.example.key1": "value1"}

    def test_hashable(self):
        m = parse_manifest(dumps(OCI_MANIFEST))
        assert {m, parse_manifest(dumps(OCI_MANIFEST))} == {m}


class TestArtifacts:
    def test_artifact_with_empty_config_and_subject(self):
        m = parse_manifest(dumps(ARTIFACT), mt.OCI_MANIFEST)
        assert m.artifact_type == "application/vnd.example.sbom.v1"
        assert m.effective_artifact_type == "application/vnd.example.sbom.v1"
        assert m.config == EMPTY_DESCRIPTOR
        assert m.subject == Descriptor(mt.OCI_MANIFEST, sha(31), 1234)
        assert m.blobs() == (EMPTY_DESCRIPTOR, m.layers[0])  # the empty blob must be pushed too
        assert m.descriptor().artifact_type == "application/vnd.example.sbom.v1"
        assert m.to_dict()["subject"]["digest"] == sha(31)

    def test_artifact_type_falls_back_to_the_config_media_type(self):
        doc = copy.deepcopy(ARTIFACT)
        del doc["artifactType"]
        doc["config"] = {"mediaType": "application/vnd.cncf.helm.config.v1+json", "digest": sha(32), "size": 10}
        assert parse_manifest(dumps(doc)).effective_artifact_type == "application/vnd.cncf.helm.config.v1+json"

    def test_empty_config_without_artifact_type_is_still_read(self):
        # image-spec says artifactType MUST be set then, but copying must not choke on it.
        doc = copy.deepcopy(ARTIFACT)
        del doc["artifactType"]
        m = parse_manifest(dumps(doc))
        assert m.artifact_type is None and m.effective_artifact_type == mt.OCI_EMPTY

    def test_artifact_with_no_layers(self):
        doc = copy.deepcopy(ARTIFACT)
        doc["layers"] = []
        assert parse_manifest(dumps(doc)).layers == ()

    def test_index_with_subject_and_artifact_type(self):
        doc = {**OCI_INDEX, "artifactType": "application/vnd.example.bundle", "subject": ARTIFACT["subject"]}
        m = parse_manifest(dumps(doc))
        assert m.artifact_type == "application/vnd.example.bundle"
        assert m.subject.digest == sha(31)


class TestIndexes:
    def test_oci_index(self):
        m = parse_manifest(dumps(OCI_INDEX), mt.OCI_INDEX)
        assert m.is_index and m.media_type == mt.OCI_INDEX
        assert m.config is None and m.layers == () and m.blobs() == ()
        assert m.children() == m.manifests and len(m.manifests) == 8
        assert [str(p) for p in m.platforms()] == [
            "linux/amd64", "linux/arm/v5", "linux/arm/v7", "linux/arm64/v8", "linux/386", "linux/ppc64le",
            "linux/s390x", "unknown/unknown",
        ]
        assert m.manifests[-1].annotations["vnd.docker.reference.type"] == "attestation-manifest"
        assert m.annotations == {"org.opencontainers.image.created": "2024-05-01T10:00:00Z"}

    def test_docker_list(self):
        m = parse_manifest(dumps(DOCKER_LIST))
        assert m.is_index and m.media_type == mt.DOCKER_MANIFEST_LIST
        assert m.manifests[2].platform == Platform("windows", "amd64", None, "10.0.20348.2402")
        assert m.to_dict()["manifests"][1]["platform"] == "linux/arm64/v8"

    def test_shape_detection_picks_oci_index_without_media_type(self):
        doc = {k: v for k, v in DOCKER_LIST.items() if k != "mediaType"}
        assert parse_manifest(dumps(doc)).media_type == mt.OCI_INDEX
        assert parse_manifest(dumps(doc), mt.DOCKER_MANIFEST_LIST).media_type == mt.DOCKER_MANIFEST_LIST

    def test_empty_index(self):
        assert parse_manifest(dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []})).manifests == ()


class TestSelectPlatform:
    INDEX = parse_manifest(dumps(OCI_INDEX))

    @pytest.mark.parametrize(
        ("wanted", "digest"),
        [
            ("linux/amd64", sha(0)),
            ("linux/x86_64", sha(0)),
            ("linux/arm64", sha(3)),
            ("linux/aarch64", sha(3)),
            ("linux/arm64/v8", sha(3)),
            ("linux/arm", sha(2)),
            ("linux/arm/v5", sha(1)),
            ("linux/i386", sha(4)),
            (Platform("linux", "s390x"), sha(6)),
        ],
    )
    def test_selects_the_matching_child(self, wanted, digest):
        assert select_platform(self.INDEX, wanted).digest == digest

    def test_first_match_wins(self):
        doc = copy.deepcopy(DOCKER_LIST)
        doc["manifests"].append({**doc["manifests"][0], "digest": sha(13)})
        assert select_platform(parse_manifest(dumps(doc)), "linux/amd64").digest == sha(10)

    def test_missing_platform_lists_the_available_ones(self):
        with pytest.raises(NotFoundError) as info:
            select_platform(self.INDEX, "linux/riscv64")
        message = str(info.value)
        assert "no image for platform linux/riscv64" in message
        assert ("available platforms: linux/amd64, linux/arm/v5, linux/arm/v7, linux/arm64/v8, linux/386, "
                "linux/ppc64le, linux/s390x") in message
        assert "unknown" not in message
        assert info.value.detail["available"][0] == "linux/amd64"

    def test_windows_is_not_linux(self):
        with pytest.raises(NotFoundError, match="available platforms: linux/amd64, linux/arm64/v8, windows/amd64"):
            select_platform(parse_manifest(dumps(DOCKER_LIST)), "windows/arm64")

    def test_index_without_platforms(self):
        index = parse_manifest(dumps({"schemaVersion": 2, "manifests": [{"mediaType": mt.OCI_MANIFEST, "digest": sha(1), "size": 1}]}))
        with pytest.raises(NotFoundError, match="available platforms: none"):
            select_platform(index, "linux/amd64")

    def test_single_image_has_nothing_to_select(self):
        with pytest.raises(InvalidInputError, match="not an index"):
            select_platform(parse_manifest(dumps(SCHEMA2)), "linux/amd64")

    def test_bad_platform_text(self):
        with pytest.raises(InvalidInputError, match="not a valid platform"):
            select_platform(self.INDEX, "amd64")


# --- parse_manifest: schema 1 -----------------------------------------------------------------------


class TestSchema1:
    PAYLOAD = dumps(SCHEMA1)
    SIGNED = sign_schema1(PAYLOAD)

    def test_signed_digest_is_over_the_payload_reconstructed_per_the_jws(self):
        m = parse_manifest(self.SIGNED)
        # Reconstruct independently: first signature's protected header -> formatLength / formatTail.
        protected = json.loads(self.SIGNED)["signatures"][0]["protected"]
        header = json.loads(base64.urlsafe_b64decode(protected + "=" * (-len(protected) % 4)))
        tail = base64.urlsafe_b64decode(header["formatTail"] + "=" * (-len(header["formatTail"]) % 4))
        payload = self.SIGNED[: header["formatLength"]] + tail
        assert payload == self.PAYLOAD
        assert m.digest == "sha256:" + hashlib.sha256(payload).hexdigest()
        assert m.digest != compute_digest(self.SIGNED)
        assert m.raw == self.SIGNED

    def test_signed_digest_matches_skopeo(self):
        # The same construction as sign_schema1 over a smaller manifest, digested with
        # `skopeo manifest-digest` (skopeo 1.9, containers/image + libtrust) when this test was written.
        doc = {
            "schemaVersion": 1, "name": "library/hello", "tag": "latest", "architecture": "amd64",
            "fsLayers": [{"blobSum": "sha256:" + "a" * 64}, {"blobSum": "sha256:" + "b" * 64}],
            "history": [{"v1Compatibility": json.dumps({"id": "x"})}, {"v1Compatibility": json.dumps({"id": "y"})}],
        }
        expected = "sha256:d6ec854ad44b60e4e4f2da2391160190988c8b5878162765e83708c277823d90"
        assert parse_manifest(sign_schema1(dumps(doc))).digest == expected
        assert parse_manifest(dumps(doc)).digest == expected

    def test_fields(self):
        m = parse_manifest(self.SIGNED, mt.DOCKER_MANIFEST_V1_SIGNED)
        assert m.media_type == mt.DOCKER_MANIFEST_V1_SIGNED and m.is_schema1 and not m.is_index
        assert m.schema_version == 1 and m.config is None
        # fsLayers lists the top layer first; layers lists the base first.
        assert [d.digest for d in m.layers] == [sha(42), sha(40), sha(41), sha(40)]
        assert all(d.media_type == mt.DOCKER_LAYER and d.size is None for d in m.layers)
        assert [d.digest for d in m.blobs()] == [sha(42), sha(40), sha(41)]

    def test_detected_without_content_type(self):
        assert parse_manifest(self.SIGNED).media_type == mt.DOCKER_MANIFEST_V1_SIGNED
        assert parse_manifest(self.PAYLOAD).media_type == mt.DOCKER_MANIFEST_V1

    def test_unsigned_digest_is_over_the_bytes(self):
        m = parse_manifest(self.PAYLOAD, mt.DOCKER_MANIFEST_V1)
        assert m.digest == "sha256:" + hashlib.sha256(self.PAYLOAD).hexdigest()

    def test_signatures_are_honoured_whatever_the_content_type(self):
        # Distribution parses every schema 1 as a signed manifest, so its digest is the payload's.
        assert parse_manifest(self.SIGNED, mt.DOCKER_MANIFEST_V1).digest == compute_digest(self.PAYLOAD)
        assert parse_manifest(self.SIGNED, "application/json").digest == compute_digest(self.PAYLOAD)

    def test_given_digest_is_checked_against_the_payload(self):
        assert parse_manifest(self.SIGNED, digest=compute_digest(self.PAYLOAD)).digest == compute_digest(self.PAYLOAD)
        with pytest.raises(DigestMismatchError):
            parse_manifest(self.SIGNED, digest=compute_digest(self.SIGNED))

    def test_several_agreeing_signatures(self):
        assert parse_manifest(sign_schema1(self.PAYLOAD, count=3)).digest == compute_digest(self.PAYLOAD)

    def test_trailing_newline_lands_in_the_tail(self):
        payload = self.PAYLOAD + b"\n"
        signed = sign_schema1(payload)
        assert signed.endswith(b"\n}\n")
        assert parse_manifest(signed).digest == compute_digest(payload)

    def test_integral_float_format_length_is_accepted(self):
        # libtrust reads JSON numbers as float64.
        fl = len(self.PAYLOAD.rstrip()[:-1].rstrip())
        signed = sign_schema1(self.PAYLOAD, header_overrides={0: {"formatLength": float(fl)}})
        assert parse_manifest(signed).digest == compute_digest(self.PAYLOAD)

    @pytest.mark.parametrize(
        ("overrides", "reason"),
        [
            ({1: {"formatLength": 10}}, "disagree on formatLength or formatTail"),
            ({1: {"formatTail": b64url(b"}")}}, "disagree on formatLength or formatTail"),
            ({0: {"formatLength": 10**9}, 1: {"formatLength": 10**9}}, "outside the manifest's"),
            ({0: {"formatLength": -1}, 1: {"formatLength": -1}}, "formatLength -1"),
            ({0: {"formatLength": True}, 1: {"formatLength": True}}, "formatLength True"),
            ({0: {"formatLength": 1.5}, 1: {"formatLength": 1.5}}, "formatLength 1.5"),
            ({0: {"formatTail": "***"}}, "signatures[0].protected is not a base64url JSON header"),
            ({0: {"formatTail": 5}}, "signatures[0].protected is not a base64url JSON header"),
            ({0: {"formatLength": 20}, 1: {"formatLength": 20}}, "signed payload does not match"),
        ],
    )
    def test_bad_protected_headers(self, overrides, reason):
        with pytest.raises(ManifestError) as info:
            parse_manifest(sign_schema1(self.PAYLOAD, count=2, header_overrides=overrides))
        assert reason in str(info.value)
        assert str(info.value).startswith("invalid signed Docker schema 1 manifest: ")

    def _with_signatures(self, signatures) -> bytes:
        return dumps({**SCHEMA1, "signatures": signatures})

    @pytest.mark.parametrize(
        ("signatures", "reason"),
        [
            ([], "signatures must be a non-empty list"),
            ({}, "signatures must be a non-empty list"),
            (["x"], "signatures[0].protected must be a string"),
            ([{"protected": 1}], "signatures[0].protected must be a string"),
            ([{"protected": "!!!"}], "signatures[0].protected is not a base64url JSON header"),
            ([{"protected": "a"}], "signatures[0].protected is not a base64url JSON header"),
            ([{"protected": b64url(b"not json")}], "signatures[0].protected is not a base64url JSON header"),
            ([{"protected": b64url(b"[1]")}], "signatures[0].protected is not a base64url JSON header"),
            ([{"protected": b64url(b'{"formatLength": 3}')}], "is not a base64url JSON header"),
        ],
    )
    def test_bad_signatures(self, signatures, reason):
        with pytest.raises(ManifestError) as info:
            parse_manifest(self._with_signatures(signatures))
        assert reason in str(info.value)

    def test_content_outside_the_signed_payload_is_refused(self):
        # Appending a second fsLayers after the signed part would change what is read
        # without changing the digest; the parser must notice.
        tampered = self.SIGNED[:-2] + b',\n   "fsLayers": []\n}'
        with pytest.raises(ManifestError, match="signed payload does not match"):
            parse_manifest(tampered)

    @pytest.mark.parametrize(
        ("change", "reason"),
        [
            ({"fsLayers": None}, "fsLayers must be a list"),
            ({"fsLayers": {}}, "fsLayers must be a list"),
            ({"fsLayers": [{"blobSum": "sha256:1"}]}, "fsLayers[0].blobSum: 'sha256:1' is not a valid digest"),
            ({"fsLayers": ["x"]}, "fsLayers[0].blobSum: None is not a valid digest"),
        ],
    )
    def test_invalid_unsigned(self, change, reason):
        doc = {k: v for k, v in {**SCHEMA1, **change}.items() if v is not None}
        with pytest.raises(ManifestError, match="invalid Docker schema 1 manifest") as info:
            parse_manifest(dumps(doc))
        assert reason in str(info.value)

    def test_float_schema_version_is_not_schema1(self):
        with pytest.raises(ManifestError, match="invalid OCI image manifest: schemaVersion must be 2, got 1.0"):
            parse_manifest(dumps({**SCHEMA1, "schemaVersion": 1.0}))

    def test_schema1_content_type_needs_schema_version_1(self):
        with pytest.raises(ManifestError, match="schemaVersion must be 1, got 2"):
            parse_manifest(dumps(SCHEMA2 | {"mediaType": None}), mt.DOCKER_MANIFEST_V1)


# --- parse_manifest: errors -------------------------------------------------------------------------


class TestManifestErrors:
    @pytest.mark.parametrize(
        ("raw", "reason"),
        [
            (b"", "not valid JSON"),
            (b"{", "not valid JSON"),
            (b"\xff\xfe\x00", "not valid JSON"),
            (b"[" * 100000 + b"]" * 100000, "not valid JSON"),
            (b"[]", "must be a JSON object, got list"),
            (b'"x"', "must be a JSON object, got str"),
            (b"null", "must be a JSON object, got NoneType"),
        ],
    )
    def test_not_a_json_object(self, raw, reason):
        with pytest.raises(ManifestError, match=reason):
            parse_manifest(raw)

    def test_not_bytes(self):
        with pytest.raises(ManifestError, match="must be bytes, got str"):
            parse_manifest(dumps(SCHEMA2).decode())

    @pytest.mark.parametrize("content_type", [mt.OCI_LAYER_GZIP, mt.OCI_CONFIG, "text/html", "application/vnd.foo"])
    def test_unsupported_content_type(self, content_type):
        with pytest.raises(ManifestError, match="unsupported manifest media type"):
            parse_manifest(dumps(SCHEMA2), content_type)

    @pytest.mark.parametrize("body_type", [mt.OCI_CONFIG, "application/vnd.foo", 5])
    def test_unsupported_media_type_field(self, body_type):
        with pytest.raises(ManifestError, match="in the manifest's mediaType field"):
            parse_manifest(dumps({**SCHEMA2, "mediaType": body_type}))

    def test_media_type_field_must_match_content_type(self):
        with pytest.raises(ManifestError) as info:
            parse_manifest(dumps(OCI_MANIFEST), mt.DOCKER_MANIFEST_V2)
        assert mt.OCI_MANIFEST in str(info.value) and mt.DOCKER_MANIFEST_V2 in str(info.value)

    def test_media_type_field_wins_over_a_generic_content_type(self):
        assert parse_manifest(dumps(OCI_INDEX), "application/octet-stream").media_type == mt.OCI_INDEX

    @pytest.mark.parametrize(
        ("doc", "message"),
        [
            ({**SCHEMA2, "schemaVersion": None}, "invalid Docker schema 2 manifest: schemaVersion must be 2, got None"),
            ({**SCHEMA2, "schemaVersion": 3}, "schemaVersion must be 2, got 3"),
            ({**SCHEMA2, "schemaVersion": "2"}, "schemaVersion must be 2, got '2'"),
            ({**SCHEMA2, "schemaVersion": True}, "schemaVersion must be 2, got True"),
            ({**SCHEMA2, "schemaVersion": 2.0}, "schemaVersion must be 2, got 2.0"),
            ({k: v for k, v in SCHEMA2.items() if k != "config"}, "config is missing"),
            ({**SCHEMA2, "config": "x"}, "config must be a JSON object, got str"),
            ({**SCHEMA2, "config": {**SCHEMA2["config"], "size": -5}}, "config.size must be a non-negative integer"),
            ({k: v for k, v in SCHEMA2.items() if k != "layers"}, "layers must be a list of descriptors (missing)"),
            ({**SCHEMA2, "layers": {}}, "layers must be a list of descriptors (got dict)"),
            ({**SCHEMA2, "layers": [SCHEMA2["layers"][0], {"mediaType": "x", "digest": sha(1)}]},
             "layers[1].size must be a non-negative integer (missing)"),
            ({**SCHEMA2, "layers": [None]}, "layers[0] must be a JSON object, got NoneType"),
            ({**OCI_INDEX, "manifests": None}, "invalid OCI image index: manifests must be a list of descriptors"),
            ({**OCI_INDEX, "manifests": [{**OCI_INDEX["manifests"][0], "platform": {"os": "linux"}}]},
             "manifests[0].platform.architecture must be a non-empty string"),
            ({**DOCKER_LIST, "manifests": [{"digest": sha(1), "size": 1}]},
             "invalid Docker manifest list: manifests[0].mediaType must be a non-empty string (missing)"),
            ({**OCI_MANIFEST, "annotations": {"a": None}}, "annotations must be an object of string values"),
            ({**ARTIFACT, "artifactType": 7}, "artifactType must be a non-empty string (got 7)"),
            ({**ARTIFACT, "subject": {"mediaType": mt.OCI_MANIFEST}}, "subject.digest must be a non-empty string"),
            ({**ARTIFACT, "subject": []}, "subject must be a JSON object, got list"),
        ],
    )
    def test_validation_messages(self, doc, message):
        doc = {k: v for k, v in doc.items() if v is not None}  # None marks a field to leave out
        with pytest.raises(ManifestError) as info:
            parse_manifest(dumps(doc))
        assert message in str(info.value)


# --- image configs ----------------------------------------------------------------------------------

DOCKER_CONFIG = {
    "architecture": "arm64",
    "variant": "v8",
    "os": "linux",
    "created": "2023-05-04T17:37:03.872958712Z",
    "author": "someone",
    "config": {
        "User": "nginx",
        "ExposedPorts": {"80/tcp": {}, "443/tcp": {}},
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "NGINX_VERSION=1.25.0"],
        "Entrypoint": ["/docker-entrypoint.sh"],
        "Cmd": ["nginx", "-g", "daemon off;"],
        "WorkingDir": "/srv",
        "Labels": {"maintainer": "NGINX Docker Maintainers", "org.opencontainers.image.version": "1.25.0"},
        "StopSignal": "SIGQUIT",
    },
    "rootfs": {"type": "layers", "diff_ids": [sha(50), sha(51)]},
    "history": [{"created_by": "ADD file"}, {"created_by": "CMD", "empty_layer": True}, {"created_by": "RUN"}],
}


class TestParseConfig:
    def test_full_config(self):
        config = parse_config(dumps(DOCKER_CONFIG))
        assert config == ImageConfig(
            architecture="arm64",
            os="linux",
            variant="v8",
            created="2023-05-04T17:37:03.872958712Z",
            author="someone",
            labels={"maintainer": "NGINX Docker Maintainers", "org.opencontainers.image.version": "1.25.0"},
            env=DOCKER_CONFIG["config"]["Env"],
            entrypoint=["/docker-entrypoint.sh"],
            cmd=["nginx", "-g", "daemon off;"],
            user="nginx",
            working_dir="/srv",
            exposed_ports=["443/tcp", "80/tcp"],
            history_length=3,
        )
        assert config.platform == Platform("linux", "arm64", "v8")
        data = config.to_dict()
        assert data["platform"] == "linux/arm64/v8" and data["labels"]["maintainer"].startswith("NGINX")
        json.dumps(data)

    @pytest.mark.parametrize(
        "raw",
        [b"{}", b'{"config": null}', b'{"config": {"Labels": null, "Env": null, "Cmd": null}, "history": null}',
         b'{"config": []}', b'{"architecture": 5, "os": null, "created": 0, "config": {"ExposedPorts": 3}}'],
    )
    def test_missing_or_odd_fields_read_as_empty(self, raw):
        config = parse_config(raw)
        assert config == ImageConfig()
        assert config.platform is None
        assert config.labels == {} and config.env == [] and config.exposed_ports == []
        assert config.entrypoint is None and config.cmd is None and config.created is None

    def test_oci_artifact_empty_config(self):
        assert parse_config(EMPTY_JSON) == ImageConfig()

    def test_string_entrypoint_and_non_string_entries(self):
        config = parse_config(dumps({"config": {
            "Entrypoint": "/bin/sh -c run", "Cmd": ["a", 1, "b"], "Env": ["A=1", None],
            "Labels": {"good": "yes", "bad": 1}, "ExposedPorts": ["8080/tcp"],
        }}))
        assert config.entrypoint == ["/bin/sh -c run"]
        assert config.cmd == ["a", "b"]
        assert config.env == ["A=1"]
        assert config.labels == {"good": "yes"}
        assert config.exposed_ports == ["8080/tcp"]

    def test_windows_os_version(self):
        config = parse_config(dumps({"os": "windows", "architecture": "amd64", "os.version": "10.0.20348.2402"}))
        assert config.platform == Platform("windows", "amd64", None, "10.0.20348.2402")

    @pytest.mark.parametrize(("raw", "message"), [
        (b"{", "not valid JSON"), (b"\x00", "not valid JSON"), (b"[]", "must be a JSON object, got list"),
        (None, "not valid JSON"),
    ])
    def test_invalid(self, raw, message):
        with pytest.raises(ManifestError, match=message):
            parse_config(raw)


# --- property tests ---------------------------------------------------------------------------------

# Thousands of examples per fuzz test; no example database, which costs more than the tests here.
FUZZ = settings(max_examples=2000, deadline=None, database=None)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 2**70) | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)
FIXTURES = [SCHEMA2, OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, ARTIFACT, SCHEMA1]


def _paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from _paths(value, prefix + (i,))


# Every (fixture, path to a value in it), computed once: drawing from this is cheap.
FIXTURE_PATHS = [(i, path) for i, doc in enumerate(FIXTURES) for path in _paths(doc)]


@st.composite
def mutated_manifests(draw):
    """A real-world manifest with one value anywhere in it replaced or removed."""
    index, path = draw(st.sampled_from(FIXTURE_PATHS))
    if not path:
        return dumps(draw(json_values))
    doc = copy.deepcopy(FIXTURES[index])
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if isinstance(parent, dict) and draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(json_values)
    raw = dumps(doc)
    return sign_schema1(raw) if doc.get("schemaVersion") == 1 and draw(st.booleans()) else raw


content_types = st.one_of(st.none(), st.sampled_from(sorted(mt.MANIFEST_TYPES) + ["application/json"]), st.text(max_size=10))


def _parse_or_registry_error(raw, content_type=None, digest=None):
    try:
        manifest = parse_manifest(raw, content_type, digest)
    except RegistryError:
        return None
    assert isinstance(manifest, Manifest) and manifest.raw == raw
    json.dumps(manifest.to_dict())
    return manifest


@FUZZ
@given(st.binary(max_size=200), content_types)
def test_fuzz_parse_manifest_bytes(raw, content_type):
    manifest = _parse_or_registry_error(raw, content_type)
    if manifest is not None and not manifest.is_schema1:
        assert manifest.digest == compute_digest(raw)


@settings(FUZZ, max_examples=1000)  # each example builds a whole manifest: fewer, to stay fast
@given(mutated_manifests(), content_types)
def test_fuzz_parse_manifest_mutations(raw, content_type):
    manifest = _parse_or_registry_error(raw, content_type)
    if manifest is not None and not manifest.is_schema1:
        assert manifest.digest == compute_digest(raw)


@FUZZ
@given(st.one_of(st.text(max_size=30), st.text("linuxamd64rv8ARM/._- ", max_size=20)))
def test_fuzz_platform_parse(text):
    try:
        platform = Platform.parse(text)
    except RegistryError as exc:
        assert repr(text) in str(exc)
        return
    assert Platform.parse(str(platform)) == platform
    assert platform.matches(platform)


@settings(FUZZ, max_examples=500)  # parse_config reads a handful of fields: a small space
@given(st.one_of(st.binary(max_size=100), json_values.map(lambda v: json.dumps({"config": v, "history": v}).encode())))
def test_fuzz_parse_config(raw):
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        doc = None
    try:
        config = parse_config(raw)
    except ManifestError:
        assert not isinstance(doc, dict)  # only bytes that are not a JSON object are refused
        return
    assert isinstance(doc, dict)
    json.dumps(config.to_dict())
    # What was read is what the blob holds: string labels and env entries as they were, the history counted.
    section = doc.get("config") if isinstance(doc.get("config"), dict) else {}
    labels = section.get("Labels") if isinstance(section.get("Labels"), dict) else {}
    assert config.labels == {k: v for k, v in labels.items() if isinstance(v, str)}
    env = section.get("Env") if isinstance(section.get("Env"), list) else []
    assert config.env == [item for item in env if isinstance(item, str)]
    history = doc.get("history")
    assert config.history_length == (len(history) if isinstance(history, list) else 0)
    for field in (config.architecture, config.os, config.variant, config.created, config.author, config.user):
        assert field is None or isinstance(field, str)


def test_unique_empty_artifact_is_byte_exact_and_unique_by_its_annotations():
    raw = unique_empty_artifact("application/vnd.example.placeholder.v1", {"example.id": "one"})
    manifest = parse_manifest(raw, mt.OCI_MANIFEST)
    assert manifest.config == EMPTY_DESCRIPTOR and list(manifest.layers) == [EMPTY_DESCRIPTOR]
    assert manifest.effective_artifact_type == "application/vnd.example.placeholder.v1"
    # Compact, sorted keys: the untag placeholder and the prune lease were pushed as these bytes before
    # they shared this builder (the lease of token a*16 expiring at 123 had this digest).
    assert raw == json.dumps(json.loads(raw), separators=(",", ":"), sort_keys=True).encode()
    lease = unique_empty_artifact("application/vnd.ocireg.prune-lease.v1", {
        "io.ocireg.registry.prune-lease.id": "a" * 16, "io.ocireg.registry.prune-lease.expires": "123"})
    assert hashlib.sha256(lease).hexdigest() == "dc0d50c5464d38b9c6297f5890a8de87549f6ed536cf90678f43b5433c83a829"
    assert unique_empty_artifact("application/vnd.example.placeholder.v1", {"example.id": "two"}) != raw
