"""cosign-format signatures for tests: real ones from ``tests/fixtures/cosign`` and fresh ones.

Independent of ``plugins/module_utils`` on purpose (like :mod:`tests.rig.images`): the signatures
a test checks the engine with must not be produced by the engine's own code. Fresh signatures are
made with ``cryptography`` in exactly the shapes cosign writes (see the fixtures' SOURCES.md):

* :func:`simple_signing_payload` + :class:`Signer` ``.sign`` -> a layer of a ``.sig`` manifest,
  assembled by :func:`make_sig_manifest` (one layer per signature, as cosign appends them);
* :func:`dsse_envelope` around an :func:`in_toto_statement`; :func:`make_att_manifest` (``.att``);
* :func:`sigstore_bundle` (v0.3, DSSE content) and :func:`make_bundle_referrer`, the OCI 1.1
  referrer ``cosign sign --new-bundle-format`` pushes; :func:`make_signed_bundle_referrer` builds
  the whole chain for one subject and key.

:func:`push_signature` pushes a ``.sig`` the way ``cosign sign`` lays it out in the tag scheme.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from tests.rig.images import (
    COSIGN_SIGNATURE_ANNOTATION,
    COSIGN_SIMPLESIGNING,
    EMPTY_JSON,
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_MANIFEST,
    Blob,
    Content,
    Image,
    Layer,
    PushedImage,
    RawPusher,
    cosign_tag,
    sha256_digest,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "cosign"
DSSE_ENVELOPE = "application/vnd.dsse.envelope.v1+json"
BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
IN_TOTO = "application/vnd.in-toto+json"
COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@dataclass(frozen=True)
class FixtureSignature:
    """One layer of a real cosign ``.sig`` manifest (containers/image's ``sigstore-json`` file)."""

    media_type: str
    payload: bytes
    signature: str  # base64, as in the layer annotation
    annotations: dict[str, str]

    @property
    def named_digest(self) -> str:
        return json.loads(self.payload)["critical"]["image"]["docker-manifest-digest"]


def fixture_signature(name: str) -> FixtureSignature:
    raw = fixture_bytes(name)
    header = b"\x00sigstore-json\n"
    assert raw.startswith(header), f"{name} is not in containers/image's sigstore-json format"
    document = json.loads(raw[len(header):])
    return FixtureSignature(document["mimeType"], base64.b64decode(document["payload"]),
                            document["annotations"][COSIGN_SIGNATURE_ANNOTATION], document["annotations"])


class Signer:
    """A private key of one kind, signing as cosign does with such a key."""

    def __init__(self, kind: str = "ecdsa") -> None:
        self.kind = kind
        if kind == "ecdsa":
            self.private: Any = ec.generate_private_key(ec.SECP256R1())
        elif kind == "ecdsa-p384":
            self.private = ec.generate_private_key(ec.SECP384R1())
        elif kind == "rsa":
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif kind == "ed25519":
            self.private = ed25519.Ed25519PrivateKey.generate()
        else:
            raise ValueError(kind)

    @property
    def public_pem(self) -> str:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def sign(self, message: bytes) -> bytes:
        if self.kind == "ecdsa":
            return self.private.sign(message, ec.ECDSA(hashes.SHA256()))
        if self.kind == "ecdsa-p384":
            return self.private.sign(message, ec.ECDSA(hashes.SHA384()))
        if self.kind == "rsa":
            return self.private.sign(message, padding.PKCS1v15(), hashes.SHA256())
        return self.private.sign(message)

    def sign_b64(self, message: bytes) -> str:
        return base64.b64encode(self.sign(message)).decode()


def simple_signing_payload(digest: str, identity: str = "registry.example/app",
                           optional: dict[str, Any] | None = None) -> bytes:
    """cosign's payload (cosign writes ``"optional":null`` when there are no annotations)."""
    return json.dumps({
        "critical": {"identity": {"docker-reference": identity}, "image": {"docker-manifest-digest": digest},
                     "type": "cosign container image signature"},
        "optional": optional,
    }, separators=(",", ":")).encode()


def _cosign_config(layers: list[Layer]) -> Blob:
    # cosign's .sig manifests carry an image config listing the payloads as diff_ids.
    return Blob(json.dumps({
        "architecture": "", "created": "0001-01-01T00:00:00Z", "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "", "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]}, "config": {},
    }, separators=(",", ":")).encode(), OCI_CONFIG)


def make_sig_manifest(signatures: list[tuple[bytes, str]]) -> Image:
    """A ``.sig`` manifest with one simple-signing layer per ``(payload, base64 signature)``."""
    layers = [Layer(payload, COSIGN_SIMPLESIGNING, diff_id=sha256_digest(payload)) for payload, _sig in signatures]
    config = _cosign_config(layers)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config.descriptor(),
                "layers": [layer.descriptor(annotations={COSIGN_SIGNATURE_ANNOTATION: sig})
                           for layer, (_payload, sig) in zip(layers, signatures)]}
    unique = tuple({layer.digest: layer for layer in layers}.values())
    return Image(json.dumps(manifest, separators=(",", ":")).encode(), OCI_MANIFEST, config=config,
                 layers=unique)


def in_toto_statement(digest: str, predicate_type: str = COSIGN_SIGN_PREDICATE,
                      annotations: dict[str, Any] | None = None, predicate: Any = None) -> bytes:
    algorithm, _sep, encoded = digest.partition(":")
    subject: dict[str, Any] = {"digest": {algorithm: encoded}}
    if annotations:
        subject["annotations"] = annotations
    return json.dumps({"_type": "https://in-toto.io/Statement/v1", "subject": [subject],
                       "predicateType": predicate_type, "predicate": predicate or {}}).encode()


def pae(payload_type: str, payload: bytes) -> bytes:
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def dsse_envelope(statement: bytes, signer: Signer) -> dict[str, Any]:
    return {"payloadType": IN_TOTO, "payload": base64.b64encode(statement).decode(),
            "signatures": [{"keyid": "", "sig": signer.sign_b64(pae(IN_TOTO, statement))}]}


def sigstore_bundle(envelope: dict[str, Any], media_type: str = BUNDLE_V03) -> bytes:
    """A key-based bundle: a public-key hint instead of a certificate, no tlog entries (offline)."""
    return json.dumps({"mediaType": media_type, "verificationMaterial": {"publicKey": {"hint": "test"},
                                                                         "tlogEntries": []},
                       "dsseEnvelope": envelope}).encode()


def make_att_manifest(envelopes: list[dict[str, Any]]) -> Image:
    """A ``.att`` manifest: one DSSE envelope layer per attestation."""
    blobs = [json.dumps(env).encode() for env in envelopes]
    layers = [Layer(data, DSSE_ENVELOPE, diff_id=sha256_digest(data)) for data in blobs]
    config = _cosign_config(layers)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config.descriptor(),
                "layers": [layer.descriptor(annotations={"predicateType": COSIGN_SIGN_PREDICATE}) for layer in layers]}
    return Image(json.dumps(manifest, separators=(",", ":")).encode(), OCI_MANIFEST, config=config,
                 layers=tuple(layers))


def make_bundle_referrer(subject: Content, bundle: bytes) -> Image:
    """The referrer cosign's new bundle format pushes: empty config, the bundle as the only layer."""
    config = Blob(EMPTY_JSON, OCI_EMPTY)
    layer = Layer(bundle, BUNDLE_V03)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": BUNDLE_V03,
                "config": config.descriptor(), "layers": [layer.descriptor()],
                "subject": subject.descriptor(),
                "annotations": {"dev.sigstore.bundle.content": "dsse-envelope",
                                "dev.sigstore.bundle.predicateType": COSIGN_SIGN_PREDICATE}}
    return Image(json.dumps(manifest, separators=(",", ":")).encode(), OCI_MANIFEST, config=config,
                 layers=(layer,), artifact_type=BUNDLE_V03)


def make_signed_bundle_referrer(subject: Content, signer: Signer) -> Image:
    """The bundle referrer of ``subject`` signed by ``signer`` (an in-toto statement naming it, in DSSE)."""
    return make_bundle_referrer(subject, sigstore_bundle(dsse_envelope(in_toto_statement(subject.digest), signer)))


def push_signature(pusher: RawPusher, repository: str, subject_digest: str, signer: Signer, *,
                   payload: bytes | None = None, signature: str | None = None,
                   extra: tuple[tuple[bytes, str], ...] | list[tuple[bytes, str]] = ()) -> PushedImage:
    """Push the ``.sig`` of ``subject_digest`` under its cosign tag.

    Its last layer is ``payload`` (default: the simple-signing payload naming ``subject_digest``)
    signed by ``signer``, or carrying ``signature`` instead when a test forges one; ``extra``
    ``(payload, base64 signature)`` layers come first, as earlier ``cosign sign`` runs append them.
    """
    payload = payload if payload is not None else simple_signing_payload(subject_digest)
    layer = (payload, signature if signature is not None else signer.sign_b64(payload))
    return pusher.push(repository, make_sig_manifest([*extra, layer]), tag=cosign_tag(subject_digest))
