"""Unit tests for Notation signatures in the verify gate: the option, CBOR, envelopes, certificates.

Real envelopes from notation-go (tests/fixtures/notation, see SOURCES.md there) go through the JWS
and COSE parsing and the crypto first; envelopes made here with a test PKI
(tests/rig/notation_signing.py) cover the hostile cases the real ones do not.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json

import pytest
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.notation import (
    envelope as ev,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.notation.gate import (
    load_trust_store,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.notation.spec import (
    parse_notation,
)
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.rig.notation_signing import (
    COSE,
    DAY,
    FIXTURES,
    JWS,
    NOW,
    Authority,
    cose_envelope,
    fixture_bytes,
    jws_envelope,
    payload,
)

UTC = datetime.timezone.utc
REAL_DIGEST = "sha256:19dbd2e48e921426ee8ace4dc892edfb2ecdc1d1a72d5416c83670c30acecef0"
MOCK_DIGEST = "sha256:60043cf45eaebc4c0867fea485a039b598f52fd09fd5b07b0b2d2f88fad9d74e"
TIMESTAMPED_DIGEST = "sha256:c0669ef34cdc14332c0f1ab0c2c01acb91d96014b172f1a76f3a39e63d1f0bda"
#: The real fixtures are checked at a fixed time, so that a certificate's end (2033) does not
#: make the test fail years from now; fresh envelopes are checked at the current time.
REAL_NOW = datetime.datetime(2026, 1, 1, tzinfo=UTC)
IMAGE = "sha256:" + "cd" * 32
OTHER = "sha256:" + "ab" * 32
MEDIA = "application/vnd.oci.image.manifest.v1+json"


def policy(identities=("*",), store=("NotationTestRoot.pem",), scopes=("*",)):
    """A policy whose trust store entries are fixture file names (read as paths) or other paths."""
    return parse_notation({"trust_store": [s if "/" in s else str(FIXTURES / s) for s in store],
                           "trusted_identities": list(identities), "registry_scopes": list(scopes)})


def pem_policy(*pems, identities=("*",)):
    return parse_notation({"trust_store": list(pems), "trusted_identities": list(identities),
                           "registry_scopes": ["*"]})


def check(data, media_type, digest, chosen, *, now=None, artifact=None):
    return ev.verify_envelope(data, media_type, digest, chosen, load_trust_store(chosen), now=now,
                              artifact=artifact)


# -- real notation signatures ----------------------------------------------------------------------
def test_the_real_manifest_is_the_one_the_real_signatures_name():
    assert "sha256:" + hashlib.sha256(fixture_bytes("oci-layout-manifest-19dbd2e4.json")).hexdigest() == REAL_DIGEST


@pytest.mark.parametrize("name, media_type, envelope_format", [
    ("jws_signature.sig", JWS, "jws"), ("cose_signature.sig", COSE, "cose")])
def test_real_jws_and_cose_envelopes_verify(name, media_type, envelope_format):
    chosen = policy(store=["alpine-2123.pem"], identities=["x509.subject: C=US, ST=WA, O=Notary, CN=alpine"])
    manifest = fixture_bytes("oci-layout-manifest-19dbd2e4.json")
    verdict = check(fixture_bytes(name), media_type, REAL_DIGEST, chosen, now=REAL_NOW,
                    artifact={"mediaType": MEDIA, "size": len(manifest)})
    assert verdict.ok, verdict.reason
    assert verdict.result == {
        "kind": "notation", "envelope": envelope_format, "algorithm": "PS256",
        "identity": "CN=alpine,O=Notary,L=Seattle,ST=WA,C=US", "issuer": "CN=alpine,O=Notary,L=Seattle,ST=WA,C=US",
        "trust_anchor": "CN=alpine,O=Notary,L=Seattle,ST=WA,C=US",
        "certificate": "sha256:9f5f5aecee24b5cfdc7a91f6d5ac5c3a5348feb17c934d403f59ac251549ea0d",
        "signing_scheme": "notary.x509",
        "signing_time": "2023-03-14T08:10:02Z" if envelope_format == "jws" else "2023-03-14T04:45:22Z",
        "expiry": None}


def test_real_signature_with_a_chain_of_two_verifies_against_its_root():
    verdict = check(fixture_bytes("ca_valid_sig_env.json"), JWS, MOCK_DIGEST, policy(), now=REAL_NOW)
    assert verdict.ok, verdict.reason
    assert verdict.result["algorithm"] == "PS384" and verdict.result["expiry"] == "2120-11-09T07:00:00Z"
    assert verdict.result["trust_anchor"] == "CN=Notation Test Root,O=Notary,L=Seattle,ST=WA,C=US"


@pytest.mark.parametrize("name, media_type", [("jwsWithTimestamp.sig", JWS), ("coseWithTimestamp.sig", COSE)])
def test_real_timestamped_envelopes_verify_without_the_timestamp(name, media_type):
    verdict = check(fixture_bytes(name), media_type, TIMESTAMPED_DIGEST, policy(store=["alpine-2033.pem"]),
                    now=REAL_NOW)
    assert verdict.ok, verdict.reason
    # Without a verified timestamp the chain must be valid at verification time (spec, notary.x509).
    late = check(fixture_bytes(name), media_type, TIMESTAMPED_DIGEST, policy(store=["alpine-2033.pem"]),
                 now=datetime.datetime(2034, 1, 1, tzinfo=UTC))
    assert "is not valid now" in late.reason and "no authentic timestamp" in late.reason


@pytest.mark.parametrize("name, digest, store, reason", [
    ("ca_expired_sig_env.json", MOCK_DIGEST, "NotationTestRoot.pem", "the signature expired at 2022-07-29T23:59:00Z"),
    ("ca_invalid_sig_env.json", MOCK_DIGEST, "NotationTestRoot.pem",
     "the signature does not verify with its signing certificate"),
    ("sa_valid_sig_env.json", MOCK_DIGEST, "NotationTestRoot.pem",
     "its signing scheme is notary.x509.signingAuthority, which needs a signing-authority trust store"),
    ("ca_valid_sig_env.json", OTHER, "NotationTestRoot.pem", f"the signed payload names {MOCK_DIGEST}"),
    ("ca_valid_sig_env.json", MOCK_DIGEST, "GlobalSignRootCA.crt", "leads to no certificate of the trust store"),
])
def test_real_envelopes_refused(name, digest, store, reason):
    verdict = check(fixture_bytes(name), JWS, digest, policy(store=[store]), now=REAL_NOW)
    assert not verdict.ok and reason in verdict.reason


def test_real_envelope_wrong_identity_and_wrong_media_type_and_size():
    chosen = policy(store=["alpine-2123.pem"], identities=["x509.subject: C=US, ST=WA, O=Notary, CN=builder"])
    verdict = check(fixture_bytes("jws_signature.sig"), JWS, REAL_DIGEST, chosen, now=REAL_NOW)
    assert verdict.reason == "its signer CN=alpine,O=Notary,L=Seattle,ST=WA,C=US is not a trusted identity"
    verdict = check(fixture_bytes("jws_signature.sig"), JWS, REAL_DIGEST, policy(store=["alpine-2123.pem"]),
                    now=REAL_NOW, artifact={"mediaType": MEDIA, "size": 480})
    assert verdict.reason == "the signed payload's size is 481, the image's is 480"


def test_a_trust_store_directory_is_read(tmp_path):
    (tmp_path / "root.pem").write_bytes(fixture_bytes("NotationTestRoot.pem"))
    (tmp_path / "notes.txt").write_text("not a certificate")
    verdict = check(fixture_bytes("ca_valid_sig_env.json"), JWS, MOCK_DIGEST, policy(store=[str(tmp_path)]),
                    now=REAL_NOW)
    assert verdict.ok, verdict.reason


def test_a_tampered_real_envelope_is_refused():
    envelope = json.loads(fixture_bytes("jws_signature.sig"))
    body = json.loads(base64.urlsafe_b64decode(envelope["payload"] + "=="))
    body["targetArtifact"]["digest"] = OTHER
    envelope["payload"] = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    verdict = check(json.dumps(envelope).encode(), JWS, OTHER, policy(store=["alpine-2123.pem"]), now=REAL_NOW)
    assert verdict.reason == "the signature does not verify with its signing certificate"


# -- fresh envelopes: the spec's rules one by one --------------------------------------------------
@pytest.fixture(scope="module")
def pki():
    root = Authority("Test Root")
    intermediate = Authority("Test Intermediate", parent=root)
    return root, intermediate


@pytest.mark.parametrize("kind", ["ec", "rsa"])
@pytest.mark.parametrize("make, media_type", [(jws_envelope, JWS), (cose_envelope, COSE)])
def test_fresh_envelopes_through_an_intermediate(pki, kind, make, media_type):
    root, intermediate = pki
    signer = intermediate.issue(kind=kind)
    data = make(signer, payload(IMAGE, MEDIA, 100), expiry=NOW + DAY)
    chosen = pem_policy(root.pem, identities=["x509.subject: C=US, ST=WA, O=ocireg-test, CN=release"])
    verdict = check(data, media_type, IMAGE, chosen, artifact={"mediaType": MEDIA, "size": 100})
    assert verdict.ok, verdict.reason
    assert verdict.result["algorithm"] == ("PS384" if kind == "rsa" else "ES384")
    assert verdict.result["issuer"] == "CN=Test Intermediate,O=ocireg-test,ST=WA,C=US"


def test_hostile_fresh_envelopes(pki):
    root, intermediate = pki
    trusted = pem_policy(root.pem)
    signer = intermediate.issue()
    body = payload(IMAGE, MEDIA, 100)

    def reason(data, media_type=JWS, chosen=trusted):
        verdict = check(data, media_type, IMAGE, chosen)
        assert not verdict.ok
        return verdict.reason

    assert reason(jws_envelope(signer, body, expiry=NOW - DAY)).startswith("the signature expired at")
    assert reason(cose_envelope(signer, body, expiry=NOW - DAY), COSE).startswith("the signature expired at")
    # a certificate that had expired when it signed (and is expired now)
    old = intermediate.issue(not_before=NOW - 400 * DAY, not_after=NOW - 100 * DAY)
    assert "was not valid at the signing time" in reason(jws_envelope(old, body, signing_time=NOW - 50 * DAY))
    # a certificate not yet valid at the time it claims to have signed
    assert "was not valid at the signing time" in reason(jws_envelope(signer, body, signing_time=NOW - 60 * DAY))
    # another root
    assert "leads to no certificate of the trust store" in reason(
        jws_envelope(Authority("Evil Root").issue(), body))
    # a critical header we do not process, a missing crit entry, a plugin
    unknown = ["io.cncf.notary.signingScheme", "io.acme.policy"]
    assert "marks 'io.acme.policy' critical" in reason(
        jws_envelope(signer, body, extra={"io.acme.policy": "x"}, crit=unknown))
    assert reason(jws_envelope(signer, body, crit=["io.cncf.notary.expiry"])) == \
        "crit does not list io.cncf.notary.signingScheme"
    assert "verification plugin" in reason(jws_envelope(
        signer, body, extra={"io.cncf.notary.verificationPlugin": "acme"},
        crit=["io.cncf.notary.signingScheme", "io.cncf.notary.verificationPlugin"]))
    assert reason(jws_envelope(signer, body, expiry=NOW + DAY, crit=["io.cncf.notary.signingScheme"])) == \
        "io.cncf.notary.expiry is present but not marked critical"
    # alg that does not fit the key (an algorithm substitution), signed honestly
    assert reason(jws_envelope(signer, body, extra={"alg": "ES256"})) == \
        "alg is ES256 but the signing key (EC secp384r1) calls for ES384"
    # a leaf that may also authenticate TLS servers
    tls = intermediate.issue(eku=[ExtendedKeyUsageOID.CODE_SIGNING, ExtendedKeyUsageOID.SERVER_AUTH])
    assert reason(jws_envelope(tls, body)) == "the signing certificate's extendedKeyUsage has serverAuth"
    # a chain with its root removed does not end at a root
    cut = intermediate.issue()
    cut.chain = cut.chain[:2]
    assert reason(jws_envelope(cut, body)) == "the chain does not end at a root (self-signed)"
    # tampered COSE: one payload byte changed after signing
    data = bytearray(cose_envelope(signer, body))
    at = bytes(data).index(IMAGE.encode()) + 10
    data[at] ^= 1
    assert reason(bytes(data), COSE) == "the signature does not verify with its signing certificate"
    # truncated and non-envelopes
    assert reason(b"\xd2\x84", COSE).startswith("the COSE envelope is not CBOR")
    assert reason(b"[]") == "the JWS envelope is not a JSON object"
