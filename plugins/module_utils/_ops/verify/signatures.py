# Copyright (c) 2026, ocireg.registry contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What cosign and sigstore signatures say, and whether a given public key made them (pure, no I/O).

Three containers of a signature are read, all as cosign writes them:

- **simple signing** (``.sig`` tag layers, and cosign's OCI 1.1 "sig" referrers): the layer blob
  is the signed payload ``{"critical": {"identity": {"docker-reference": ...}, "image":
  {"docker-manifest-digest": D}, "type": "cosign container image signature"}, "optional": {...}}``;
  the base64 signature over those exact bytes sits in the layer annotation
  ``dev.cosignproject.cosign/signature``. ``optional`` holds the ``-a key=value`` annotations.
- **DSSE envelope** (``.att`` tag layers): ``{"payloadType", "payload" (base64), "signatures":
  [{"sig"}]}``; the signature is over the DSSE pre-authentication encoding, the payload an in-toto
  statement whose ``subject`` digests name the image.
- **sigstore bundle** (OCI 1.1 referrers of artifact type ``application/vnd.dev.sigstore.bundle.v0.3+json``,
  cosign's ``--new-bundle-format``): a DSSE envelope as above (cosign signs an in-toto statement
  with predicate type ``https://sigstore.dev/cosign/sign/v1`` for ``cosign sign``, and the
  attestation's own predicate type for ``cosign attest``), or a ``messageSignature`` whose
  ``messageDigest`` is the image digest (ECDSA and RSA keys only: the signature is over a prehash).

Keys: PEM public keys, ECDSA (P-256 with SHA-256, P-384 with SHA-384, P-521 with SHA-512, as
sigstore pairs them), RSA (PKCS#1 v1.5 with SHA-256, cosign's default for RSA keys) and Ed25519.
A key is named by its fingerprint: ``sha256:`` and the hex SHA-256 of its DER SubjectPublicKeyInfo.

Keyless signatures (a Fulcio certificate instead of a key: the ``dev.sigstore.cosign/certificate``
and ``bundle`` annotations of a simple-signing layer, or a bundle's ``verificationMaterial``
certificate and ``tlogEntries``) are checked by :mod:`.keyless` when a :class:`Trust` holds keyless
rules; what they sign is read here, exactly as for keys.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.json_documents import (
    json_object,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify import (
    keyless as kl,
)

try:
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
except ImportError as _exc:  # ansible-core depends on it; ansible-test's import check runs without it
    CRYPTOGRAPHY_IMPORT_ERROR: ImportError | None = _exc
else:
    CRYPTOGRAPHY_IMPORT_ERROR = None

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
SIMPLE_SIGNING_TYPE = "cosign container image signature"
DSSE_ENVELOPE = "application/vnd.dsse.envelope.v1+json"
IN_TOTO_PAYLOAD = "application/vnd.in-toto+json"
IN_TOTO_STATEMENTS = frozenset({"https://in-toto.io/Statement/v0.1", "https://in-toto.io/Statement/v1"})
#: The predicate type ``cosign sign --new-bundle-format`` signs: a signature, not an attestation.
COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
#: cosign's artifact type for simple-signing signatures stored as OCI 1.1 referrers
#: (``COSIGN_EXPERIMENTAL`` referrers mode: it is the config media type there).
COSIGN_SIG_ARTIFACT = "application/vnd.dev.cosign.artifact.sig.v1+json"
BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"
#: Every spelling of the bundle media type (v0.1 and v0.2 were only ever written with a parameter).
BUNDLE_MEDIA_TYPES = frozenset({
    BUNDLE_V03,
    "application/vnd.dev.sigstore.bundle+json;version=0.1",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
})

SIGNATURE = "signature"
ATTESTATION = "attestation"

#: Digest algorithms an in-toto subject or a message digest may name, as OCI digest algorithms.
_IN_TOTO_ALGORITHMS = {"sha256": "sha256", "sha512": "sha512"}
_MESSAGE_ALGORITHMS = {"SHA2_256": "sha256", "SHA2_512": "sha512"}


@dataclass(frozen=True)
class PublicKey:
    """A verification key and the name results give it."""

    key: Any = field(repr=False, compare=False)
    fingerprint: str
    algorithm: str


@dataclass(frozen=True)
class Verdict:
    """What checking one signature found: accepted (``key`` or ``keyless`` set) or rejected (``reason``)."""

    key: PublicKey | None
    kind: str = SIGNATURE
    predicate_type: str | None = None
    annotations: Mapping[str, Any] = field(default_factory=dict)
    reason: str = ""
    keyless: kl.KeylessProof | None = None
    #: What another trust kind (a :data:`.policy.TRUST_KINDS` entry) proved: the fields it adds to the
    #: result of an accepted signature (``identity`` among them when it has one).
    proof: Mapping[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.key is not None or self.keyless is not None or self.proof is not None


@dataclass(frozen=True)
class KeylessTrust:
    """Keyless rules and the trusted root they are checked against."""

    rules: tuple[kl.KeylessRule, ...]
    root: kl.TrustedRoot


@dataclass(frozen=True)
class Trust:
    """Everything a signature may be trusted through: given keys, keyless rules (either may be empty)."""

    keys: tuple[PublicKey, ...] = ()
    keyless: KeylessTrust | None = None
    #: What each other trust kind loaded (kind name -> its material: a trust store and policy, ...).
    others: Mapping[str, Any] = field(default_factory=dict)

    def nobody(self) -> str:
        """How a refusal names who was trusted (``the given keys``, ``the given identities``, ...)."""
        names = (["the given keys"] if self.keys or not (self.keyless or self.others) else []) + (
            ["the given identities"] if self.keyless else []) + [f"the given {kind} policy" for kind in self.others]
        return " or ".join(names)


def as_trust(trust: Trust | Sequence[PublicKey]) -> Trust:
    """A :class:`Trust`; a plain key list (the key-only callers) is wrapped."""
    return trust if isinstance(trust, Trust) else Trust(tuple(trust))


class SignatureFormatError(ValueError):
    """A signature container is malformed (its text says how); the signature is rejected."""


def is_bundle_media_type(media_type: str | None) -> bool:
    """True for a sigstore bundle media type (any version; parameter spacing and case ignored)."""
    if not media_type:
        return False
    return media_type.replace(" ", "").lower() in BUNDLE_MEDIA_TYPES


# -- keys --------------------------------------------------------------------------------------
def load_public_key(pem: str | bytes, where: str) -> PublicKey:
    """Parse a PEM public key; :class:`InvalidInputError` naming ``where`` when it is none we verify with."""
    if CRYPTOGRAPHY_IMPORT_ERROR is not None:
        raise InvalidInputError("verify needs the Python package cryptography on the host that runs the module "
                                "(ansible-core depends on it): install it there")
    data = pem.encode("utf-8") if isinstance(pem, str) else bytes(pem)
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm, TypeError):
        raise InvalidInputError(
            f"{where} is not a PEM public key (expected '-----BEGIN PUBLIC KEY-----', as in cosign.pub)") from None
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in _EC_HASHES:
            raise InvalidInputError(f"{where} is an ECDSA key on {key.curve.name}; cosign keys use P-256, P-384 or P-521")
        algorithm = f"ecdsa-{key.curve.name}"
    elif isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise InvalidInputError(f"{where} is a {key.key_size}-bit RSA key; use at least 2048 bits")
        algorithm = f"rsa-{key.key_size}"
    elif isinstance(key, ed25519.Ed25519PublicKey):
        algorithm = "ed25519"
    else:
        raise InvalidInputError(f"{where} is a {type(key).__name__}; supported keys are ECDSA, RSA and Ed25519")
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return PublicKey(key, "sha256:" + hashlib.sha256(der).hexdigest(), algorithm)


_EC_HASHES: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {} if CRYPTOGRAPHY_IMPORT_ERROR else {
    "secp256r1": hashes.SHA256, "secp384r1": hashes.SHA384, "secp521r1": hashes.SHA512,
}


def signature_verifies(key: PublicKey, signature: bytes, message: bytes) -> bool:
    """True when ``signature`` over ``message`` verifies with ``key`` (the scheme cosign uses for it)."""
    try:
        if isinstance(key.key, ec.EllipticCurvePublicKey):
            key.key.verify(signature, message, ec.ECDSA(_EC_HASHES[key.key.curve.name]()))
        elif isinstance(key.key, rsa.RSAPublicKey):
            key.key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        else:
            key.key.verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def _prehashed_verifies(key: PublicKey, signature: bytes, digest: bytes, algorithm: str) -> bool:
    # A messageSignature signs the artifact, and verifiers that only hold its digest check the
    # signature as a prehash; Ed25519 has no prehash form (it signs the message itself).
    chosen = hashes.SHA256() if algorithm == "sha256" else hashes.SHA512()
    try:
        if isinstance(key.key, ec.EllipticCurvePublicKey):
            key.key.verify(signature, digest, ec.ECDSA(Prehashed(chosen)))
        elif isinstance(key.key, rsa.RSAPublicKey):
            key.key.verify(signature, digest, padding.PKCS1v15(), Prehashed(chosen))
        else:
            return False
    except (InvalidSignature, ValueError):
        return False
    return True


def _first_key(keys: Sequence[PublicKey], signature: bytes, message: bytes) -> PublicKey | None:
    return next((key for key in keys if signature_verifies(key, signature, message)), None)


def _b64(text: Any, what: str) -> bytes:
    if not isinstance(text, str) or not text:
        raise SignatureFormatError(f"{what} is missing")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureFormatError(f"{what} is not valid base64") from None


def _json_object(data: bytes, what: str) -> dict[str, Any]:
    return json_object(data, lambda found: SignatureFormatError(f"{what} is {found}"))


# -- simple signing ----------------------------------------------------------------------------
def simple_signing_digest(payload: bytes) -> tuple[str, Mapping[str, Any]]:
    """The manifest digest a simple-signing payload names, and its ``optional`` annotations."""
    document = _json_object(payload, "the signed payload")
    critical = document.get("critical")
    if not isinstance(critical, dict):
        raise SignatureFormatError("the signed payload has no 'critical' section")
    if critical.get("type") != SIMPLE_SIGNING_TYPE:
        raise SignatureFormatError(f"the signed payload's type is {critical.get('type')!r}, not {SIMPLE_SIGNING_TYPE!r}")
    image = critical.get("image")
    digest = image.get("docker-manifest-digest") if isinstance(image, dict) else None
    if not isinstance(digest, str) or not digest:
        raise SignatureFormatError("the signed payload names no docker-manifest-digest")
    optional = document.get("optional")
    return digest, optional if isinstance(optional, dict) else {}


def verify_simple_signing(payload: bytes, signature_b64: Any, trust: Trust | Sequence[PublicKey], digest: str,
                          layer_annotations: Mapping[str, Any] | None = None) -> Verdict:
    """Check a cosign simple-signing signature of ``digest``: made by one of ``trust``, naming exactly it.

    The signature is checked over the payload bytes first, and only then is the payload read:
    nothing an unsigned payload says is believed. A layer whose annotations carry a Fulcio
    certificate is checked as a keyless signature when ``trust`` has keyless rules.
    """
    trust = as_trust(trust)
    annotations = layer_annotations or {}
    try:
        signature = _b64(signature_b64, f"the {SIGNATURE_ANNOTATION} annotation")
    except SignatureFormatError as exc:
        return Verdict(None, reason=str(exc))
    key = _first_key(trust.keys, signature, payload)
    proof = None
    if key is None:
        certificate = annotations.get(kl.CERTIFICATE_ANNOTATION)
        if trust.keyless is None or not isinstance(certificate, str) or not certificate:
            return Verdict(None, reason=_unsigned(trust, keyless_material=bool(certificate)))
        try:
            proof = kl.verify_keyless(kl.load_certificate(certificate.encode("utf-8"), pem=True), signature,
                                      kl.Signed(payload), kl.cosign_log_entry(annotations.get(kl.BUNDLE_ANNOTATION)),
                                      trust.keyless.root, trust.keyless.rules)
        except kl.KeylessError as exc:
            return Verdict(None, reason=str(exc))
    try:
        named, optional = simple_signing_digest(payload)
    except SignatureFormatError as exc:
        return Verdict(None, reason=str(exc))
    if named != digest:
        return Verdict(None, reason=f"the signed payload names {named}")
    return Verdict(key, SIGNATURE, annotations=optional, keyless=proof)


#: Stands for keyless material that is there but not read, because no keyless rule was given.
_NOT_READ = ("not read",)


def _unsigned(trust: Trust, keyless_material: bool) -> str:
    """Why no given key (and no keyless rule) accepts a signature, saying what would."""
    if trust.keys and not keyless_material:
        return "not signed by any given key"
    if trust.keys:
        return "not signed by any given key (a keyless signature: give verify.keyless to accept its signer)"
    if keyless_material:
        return "a keyless signature, and verify.keyless is not given"
    return "a key-based signature (no certificate), and verify.keys is not given"


# -- DSSE and in-toto --------------------------------------------------------------------------
def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what a DSSE signature is over."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def verify_dsse(envelope: Mapping[str, Any], trust: Trust | Sequence[PublicKey], digest: str,
                keyless: Any = None) -> Verdict:
    """Check a DSSE envelope around an in-toto statement about ``digest``.

    Accepted when one of its signatures verifies with one of ``keys`` and the statement lists
    ``digest`` among its subjects. The kind is ``signature`` for cosign's sign predicate, else
    ``attestation``; the annotations are those of the matching subject (where cosign puts ``-a``).
    ``keyless`` is a bundle's ``(certificate, log entry)`` when it has them, checked against ``trust``'s
    keyless rules when no key verifies.
    """
    trust = as_trust(trust)
    proof = None
    try:
        payload_type = envelope.get("payloadType")
        if not isinstance(payload_type, str):
            raise SignatureFormatError("the DSSE envelope has no payloadType")
        payload = _b64(envelope.get("payload"), "the DSSE payload")
        entries = envelope.get("signatures")
        if not isinstance(entries, list) or not entries:
            raise SignatureFormatError("the DSSE envelope has no signatures")
        message = pae(payload_type, payload)
        key = None
        signatures = [_b64(entry.get("sig") if isinstance(entry, dict) else None, "a DSSE signature")
                      for entry in entries]
        for sig in signatures:
            key = _first_key(trust.keys, sig, message)
            if key is not None:
                break
        if key is None:
            if trust.keyless is None or keyless is None or keyless is _NOT_READ:
                return Verdict(None, reason=_unsigned(trust, keyless_material=keyless is not None))
            certificate, log_entry = keyless
            proof = kl.verify_keyless(certificate, signatures[0], kl.Signed(message), log_entry, trust.keyless.root,
                                      trust.keyless.rules, payload_hash=hashlib.sha256(payload).digest())
        if payload_type != IN_TOTO_PAYLOAD:
            raise SignatureFormatError(f"the DSSE payload is {payload_type!r}, not an in-toto statement")
        statement = _json_object(payload, "the in-toto statement")
        if statement.get("_type") not in IN_TOTO_STATEMENTS:
            raise SignatureFormatError(f"the in-toto statement type is {statement.get('_type')!r}")
        predicate_type = statement.get("predicateType")
        subject = _subject_naming(statement.get("subject"), digest)
    except (SignatureFormatError, kl.KeylessError) as exc:
        return Verdict(None, reason=str(exc))
    if subject is None:
        named = ", ".join(_subject_digests(statement.get("subject"))) or "no digest"
        return Verdict(None, reason=f"the signed statement names {named}")
    kind = SIGNATURE if predicate_type == COSIGN_SIGN_PREDICATE else ATTESTATION
    annotations = subject.get("annotations")
    return Verdict(key, kind, predicate_type if isinstance(predicate_type, str) else None,
                   annotations if isinstance(annotations, dict) else {}, keyless=proof)


def _subject_digests(subjects: Any) -> list[str]:
    found = []
    for subject in subjects if isinstance(subjects, list) else []:
        digests = subject.get("digest") if isinstance(subject, dict) else None
        for algorithm, value in (digests.items() if isinstance(digests, dict) else ()):
            if algorithm in _IN_TOTO_ALGORITHMS and isinstance(value, str):
                found.append(f"{_IN_TOTO_ALGORITHMS[algorithm]}:{value}")
    return found


def _subject_naming(subjects: Any, digest: str) -> dict[str, Any] | None:
    algorithm, _sep, encoded = digest.partition(":")
    for subject in subjects if isinstance(subjects, list) else []:
        digests = subject.get("digest") if isinstance(subject, dict) else None
        if isinstance(digests, dict) and digests.get(algorithm) == encoded:
            return subject
    return None


def verify_envelope_blob(data: bytes, keys: Trust | Sequence[PublicKey], digest: str,
                         layer_annotations: Mapping[str, Any] | None = None) -> Verdict:
    """A DSSE envelope as cosign stores it in an ``.att`` layer blob (keyless: certificate and bundle annotations)."""
    trust = as_trust(keys)
    try:
        keyless = None
        certificate = (layer_annotations or {}).get(kl.CERTIFICATE_ANNOTATION)
        if isinstance(certificate, str) and certificate:
            keyless = _NOT_READ if trust.keyless is None else (
                kl.load_certificate(certificate.encode("utf-8"), pem=True),
                kl.cosign_log_entry((layer_annotations or {}).get(kl.BUNDLE_ANNOTATION)))
        return verify_dsse(_json_object(data, "the DSSE envelope"), trust, digest, keyless)
    except (SignatureFormatError, kl.KeylessError) as exc:
        return Verdict(None, reason=str(exc))


# -- sigstore bundles --------------------------------------------------------------------------
def verify_bundle(data: bytes, trust: Trust | Sequence[PublicKey], digest: str) -> Verdict:
    """Check a sigstore bundle (v0.1 to v0.3) about ``digest`` with ``trust``.

    With a key, the bundle's log entries are not read (the key is the trust); a keyless bundle's
    certificate and first log entry are checked by :func:`.keyless.verify_keyless`.
    """
    trust = as_trust(trust)
    try:
        bundle = _json_object(data, "the sigstore bundle")
        if not is_bundle_media_type(bundle.get("mediaType")):
            raise SignatureFormatError(f"the bundle media type is {bundle.get('mediaType')!r}")
        keyless = _bundle_keyless_material(bundle, read=trust.keyless is not None)
        envelope = bundle.get("dsseEnvelope")
        if isinstance(envelope, dict):
            return verify_dsse(envelope, trust, digest, keyless)
        message = bundle.get("messageSignature")
        if isinstance(message, dict):
            return _verify_message_signature(message, trust, digest, keyless)
        raise SignatureFormatError("the bundle holds neither a dsseEnvelope nor a messageSignature")
    except (SignatureFormatError, kl.KeylessError) as exc:
        return Verdict(None, reason=str(exc))


def _bundle_keyless_material(bundle: Mapping[str, Any], read: bool) -> Any:
    """A bundle's signing certificate and first log entry (:data:`_NOT_READ` unless ``read``); None for a
    key-based bundle."""
    material = bundle.get("verificationMaterial")
    if not isinstance(material, dict):
        raise SignatureFormatError("the bundle has no verificationMaterial")
    certificate = material.get("certificate")
    if not isinstance(certificate, dict):
        chain = material.get("x509CertificateChain")
        certificates = chain.get("certificates") if isinstance(chain, dict) else None
        certificate = certificates[0] if isinstance(certificates, list) and certificates else None
    if not isinstance(certificate, dict):
        return None
    if not read:
        return _NOT_READ
    entries = material.get("tlogEntries")
    if not isinstance(entries, list) or not entries:
        raise kl.KeylessError("no transparency-log entry (the bundle's tlogEntries is empty)")
    raw = _b64(certificate.get("rawBytes"), "the bundle's certificate")
    return kl.load_certificate(raw, pem=False), kl.bundle_log_entry(entries[0])


def _verify_message_signature(message: Mapping[str, Any], trust: Trust, digest: str, keyless: Any) -> Verdict:
    signature = _b64(message.get("signature"), "the bundle's message signature")
    claimed = message.get("messageDigest")
    if not isinstance(claimed, dict) or claimed.get("algorithm") not in _MESSAGE_ALGORITHMS:
        raise SignatureFormatError("the bundle's messageDigest is missing or uses an unknown algorithm")
    algorithm = _MESSAGE_ALGORITHMS[claimed["algorithm"]]
    value = _b64(claimed.get("digest"), "the bundle's message digest")
    key = next((k for k in trust.keys if _prehashed_verifies(k, signature, value, algorithm)), None)
    proof = None
    if key is None:
        if keyless is not None and keyless is not _NOT_READ and algorithm != "sha256":
            return Verdict(None, reason=f"the bundle's message digest is {claimed['algorithm']}; a keyless "
                                        "messageSignature is checked over SHA2_256")
        if trust.keyless is None or keyless is None or keyless is _NOT_READ:
            reason = _unsigned(trust, keyless_material=keyless is not None)
            if trust.keys and keyless is None:
                reason += " (Ed25519 keys cannot verify a messageSignature)"
            return Verdict(None, reason=reason)
        certificate, entry = keyless
        proof = kl.verify_keyless(certificate, signature, kl.Signed(value, prehashed=True), entry,
                                  trust.keyless.root, trust.keyless.rules)
    named = f"{algorithm}:{value.hex()}"
    if named != digest:
        return Verdict(None, reason=f"the signed message digest is {named}")
    return Verdict(key, SIGNATURE, keyless=proof)


def annotations_match(verdict: Verdict, required: Mapping[str, str]) -> bool:
    """True when the signed annotations hold every required ``key: value`` (values compared as text)."""
    return all(key in verdict.annotations and _text(verdict.annotations[key]) == value
               for key, value in required.items())


def _text(value: Any) -> str:
    # The policy holds text; a payload may hold JSON true/false or numbers for the same annotation.
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
