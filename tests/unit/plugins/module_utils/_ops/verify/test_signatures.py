"""Unit tests for the verify room's signature checks (_ops/verify/signatures.py, pure); the option shape is in test_policy.py.

The crypto is tested first against signatures made by real cosign (tests/fixtures/cosign, see
SOURCES.md there), then against fresh ones in cosign's formats for the key types and hostile
cases real fixtures do not cover.
"""
from __future__ import annotations

import base64
import hashlib
import json

import pytest
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify import (
    signatures as sg,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from tests.rig.signing import (
    Signer,
    dsse_envelope,
    fixture_bytes,
    fixture_signature,
    in_toto_statement,
    sigstore_bundle,
    simple_signing_payload,
)

OTHER = "sha256:" + "ab" * 32


def key(name_or_pem: str) -> sg.PublicKey:
    pem = name_or_pem if "BEGIN" in name_or_pem else fixture_bytes(name_or_pem).decode()
    return sg.load_public_key(pem, "test key")


def manifest_digest(name: str) -> str:
    return "sha256:" + hashlib.sha256(fixture_bytes(name)).hexdigest()


# -- real cosign signatures --------------------------------------------------------------------
@pytest.mark.parametrize("signature, manifest, pub", [
    ("image-634a8f.signature-1", "image-634a8f.manifest.json", "cosign.pub"),
    ("image-634a8f.signature-2", "image-634a8f.manifest.json", "cosign.pub"),
    ("image-048947.signature-1", "image-048947.manifest.json", "cosign2.pub"),
])
def test_real_cosign_signature_verifies_and_names_the_real_manifest(signature, manifest, pub):
    real = fixture_signature(signature)
    digest = manifest_digest(manifest)
    assert real.named_digest == digest  # the fixture's payload names the bytes we hold
    verdict = sg.verify_simple_signing(real.payload, real.signature, [key(pub)], digest)
    assert verdict.ok, verdict.reason
    assert verdict.kind == "signature" and verdict.key.fingerprint == key(pub).fingerprint


def test_real_signature_with_the_other_real_keys_fails():
    real = fixture_signature("image-634a8f.signature-1")
    digest = real.named_digest
    verdict = sg.verify_simple_signing(real.payload, real.signature, [key("cosign2.pub")], digest)
    assert not verdict.ok and verdict.reason == "not signed by any given key"
    # An RSA key (real, from the same upstream) is a wrong key of another type: no crash, a rejection.
    assert not sg.verify_simple_signing(real.payload, real.signature, [key("some-rsa-key.pub")], digest).ok
    # Among several keys one that signed is enough, and it is the one reported.
    both = sg.verify_simple_signing(real.payload, real.signature, [key("cosign2.pub"), key("cosign.pub")], digest)
    assert both.ok and both.key.fingerprint == key("cosign.pub").fingerprint


@pytest.mark.parametrize("position", [0, 40, 120, -3])
def test_mutated_real_payload_fails(position):
    real = fixture_signature("image-634a8f.signature-1")
    mutated = bytearray(real.payload)
    mutated[position] ^= 0x01
    verdict = sg.verify_simple_signing(bytes(mutated), real.signature, [key("cosign.pub")], real.named_digest)
    assert not verdict.ok


def test_real_signature_for_another_digest_fails_even_with_the_right_key():
    real = fixture_signature("image-634a8f.signature-1")
    verdict = sg.verify_simple_signing(real.payload, real.signature, [key("cosign.pub")], OTHER)
    assert not verdict.ok and verdict.reason == f"the signed payload names {real.named_digest}"


def test_truncated_and_garbled_real_signatures_fail():
    real = fixture_signature("image-634a8f.signature-1")
    raw = base64.b64decode(real.signature)
    for bad in (base64.b64encode(raw[:-4]).decode(), base64.b64encode(raw[:8]).decode(), real.signature[:-5],
                "not base64!!", "", None):
        verdict = sg.verify_simple_signing(real.payload, bad, [key("cosign.pub")], real.named_digest)
        assert not verdict.ok, bad


def test_fingerprint_is_sha256_of_the_der_subject_public_key_info():
    pem = fixture_bytes("cosign.pub").decode()
    der = base64.b64decode("".join(line for line in pem.splitlines() if "-----" not in line))
    assert key("cosign.pub").fingerprint == "sha256:" + hashlib.sha256(der).hexdigest()
    assert key("cosign.pub").algorithm == "ecdsa-secp256r1"
    assert key("some-rsa-key.pub").algorithm.startswith("rsa-")


def real_bundle_key() -> sg.PublicKey:
    """The public key inside the real bundle's certificate, given to the engine as a plain key."""
    bundle = json.loads(fixture_bytes("oci-attestation.sigstore.json"))
    cert = x509.load_der_x509_certificate(base64.b64decode(bundle["verificationMaterial"]["certificate"]["rawBytes"]))
    pem = cert.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return sg.load_public_key(pem, "bundle key")


def test_real_cosign_bundle_dsse_verifies():
    data = fixture_bytes("oci-attestation.sigstore.json")
    subject = "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4"
    verdict = sg.verify_bundle(data, [real_bundle_key()], subject)
    assert verdict.ok, verdict.reason
    assert verdict.kind == "attestation"  # cosign attest, not cosign sign
    assert verdict.predicate_type == "https://cosign.sigstore.dev/attestation/v1"
    assert verdict.key.fingerprint == real_bundle_key().fingerprint


def test_real_cosign_bundle_fails_for_another_digest_wrong_key_or_tampered_payload():
    data = fixture_bytes("oci-attestation.sigstore.json")
    subject = "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4"
    other = sg.verify_bundle(data, [real_bundle_key()], OTHER)
    assert not other.ok and other.reason == f"the signed statement names {subject}"
    # the bundle carries a Fulcio certificate: the refusal says a keyless rule would be the way to accept it
    assert sg.verify_bundle(data, [key("cosign.pub")], subject).reason == \
        "not signed by any given key (a keyless signature: give verify.keyless to accept its signer)"
    bundle = json.loads(data)
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    statement["subject"][0]["digest"]["sha256"] = OTHER.split(":")[1]
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    assert not sg.verify_bundle(json.dumps(bundle).encode(), [real_bundle_key()], OTHER).ok


# -- fresh signatures in cosign's formats ------------------------------------------------------
@pytest.mark.parametrize("kind, algorithm", [("ecdsa", "ecdsa-secp256r1"), ("ecdsa-p384", "ecdsa-secp384r1"),
                                             ("rsa", "rsa-2048"), ("ed25519", "ed25519")])
def test_each_key_type_verifies_its_own_and_rejects_anothers(kind, algorithm):
    signer, stranger = Signer(kind), Signer(kind)
    payload = simple_signing_payload(OTHER)
    signature = signer.sign_b64(payload)
    good = sg.verify_simple_signing(payload, signature, [key(signer.public_pem)], OTHER)
    assert good.ok and good.key.algorithm == algorithm
    assert not sg.verify_simple_signing(payload, signature, [key(stranger.public_pem)], OTHER).ok


def test_payload_must_be_a_cosign_container_signature():
    signer = Signer()
    document = json.loads(simple_signing_payload(OTHER))
    document["critical"]["type"] = "atomic container signature"
    payload = json.dumps(document).encode()
    verdict = sg.verify_simple_signing(payload, signer.sign_b64(payload), [key(signer.public_pem)], OTHER)
    assert not verdict.ok and "type" in verdict.reason
    unparsable = b"not json"
    verdict = sg.verify_simple_signing(unparsable, signer.sign_b64(unparsable), [key(signer.public_pem)], OTHER)
    assert not verdict.ok and "not JSON" in verdict.reason


def test_signed_annotations_are_read_from_optional():
    signer = Signer()
    payload = simple_signing_payload(OTHER, optional={"env": "prod", "reviewed": True})
    verdict = sg.verify_simple_signing(payload, signer.sign_b64(payload), [key(signer.public_pem)], OTHER)
    assert sg.annotations_match(verdict, {"env": "prod", "reviewed": "true"})
    assert not sg.annotations_match(verdict, {"env": "staging"})
    assert not sg.annotations_match(verdict, {"team": "x"})


def test_bundle_with_cosign_sign_predicate_is_a_signature_with_subject_annotations():
    signer = Signer()
    envelope = dsse_envelope(in_toto_statement(OTHER, annotations={"env": "prod"}), signer)
    verdict = sg.verify_bundle(sigstore_bundle(envelope), [key(signer.public_pem)], OTHER)
    assert verdict.ok and verdict.kind == "signature" and verdict.annotations == {"env": "prod"}
    v01 = sigstore_bundle(envelope, "application/vnd.dev.sigstore.bundle+json;version=0.1")
    assert sg.verify_bundle(v01, [key(signer.public_pem)], OTHER).ok
    assert "media type" in sg.verify_bundle(sigstore_bundle(envelope, "application/json"),
                                            [key(signer.public_pem)], OTHER).reason


def test_dsse_signature_over_the_payload_instead_of_pae_fails():
    signer = Signer()
    statement = in_toto_statement(OTHER)
    envelope = {"payloadType": "application/vnd.in-toto+json", "payload": base64.b64encode(statement).decode(),
                "signatures": [{"sig": signer.sign_b64(statement)}]}
    assert not sg.verify_dsse(envelope, [key(signer.public_pem)], OTHER).ok


def test_message_signature_bundle_over_the_digest():
    signer = Signer()
    digest = bytes.fromhex(OTHER.split(":")[1])
    signature = signer.private.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    bundle = {"mediaType": sg.BUNDLE_V03, "verificationMaterial": {"publicKey": {"hint": "k"}},
              "messageSignature": {"messageDigest": {"algorithm": "SHA2_256",
                                                     "digest": base64.b64encode(digest).decode()},
                                   "signature": base64.b64encode(signature).decode()}}
    data = json.dumps(bundle).encode()
    assert sg.verify_bundle(data, [key(signer.public_pem)], OTHER).ok
    assert sg.verify_bundle(data, [key(signer.public_pem)], "sha256:" + "cd" * 32).reason.startswith(
        "the signed message digest is")


@pytest.mark.parametrize("pem, fragment", [
    ("garbage", "not a PEM public key"),
    (dsa.generate_private_key(2048).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode(), "DSAPublicKey"),
    (ec.generate_private_key(ec.SECP256K1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode(), "secp256k1"),
])
def test_unusable_keys_fail_with_one_line(pem, fragment):
    with pytest.raises(InvalidInputError, match=fragment) as info:
        sg.load_public_key(pem, "verify.keys[0]")
    assert "\n" not in str(info.value) and "verify.keys[0]" in str(info.value)
