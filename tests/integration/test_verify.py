"""The verification engine against a real Distribution 2.8 registry (tests/rig).

Signatures made by real cosign (tests/fixtures/cosign, see SOURCES.md) name images whose layers
we do not have, so those images cannot be pushed; their real manifests are parsed (which checks
that their bytes hash to the digest the payload names) and handed to ``verify_image`` as the
subject, while the real payload blobs and signatures are pushed as the ``.sig`` manifest, exactly
as cosign lays them out. Every other test pushes a fresh image and signs it here with
``cryptography`` in cosign's formats (tests/rig/signing.py), because only then can the registry
hold the subject too (needed for indexes, referrers and the fallback tag).

Distribution 2.8 has no referrers API: referrers are found through the ``sha256-<hex>`` fallback
index, which the tests push themselves (the rig pusher does not maintain it).

Every verification is checked to send zero write requests.
"""
from __future__ import annotations

import base64
import json
import re

import pytest
from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import (
    Registry,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    VerificationError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.manifest import (
    parse_manifest,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.check import (
    verify_image,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.policy import (
    parse_verify,
)

from tests.rig.images import (
    RawPusher,
    cosign_tag,
    make_artifact,
    make_image,
    make_multiarch,
)
from tests.rig.signing import (
    Signer,
    dsse_envelope,
    fixture_bytes,
    fixture_signature,
    in_toto_statement,
    make_att_manifest,
    make_sig_manifest,
    make_signed_bundle_referrer,
    push_signature,
    simple_signing_payload,
)

REPO = "team/app"
SPDX = "application/spdx+json"


@pytest.fixture
def rig(plain_registry):
    pusher = RawPusher.for_registry(plain_registry)
    repo = Registry(plain_registry.host).repository(REPO)
    return plain_registry, pusher, repo


def verify(reg, repo, subject, **options):
    """verify_image, asserting that it wrote nothing whatever the outcome."""
    mark = reg.mark()
    try:
        return verify_image(repo, subject, parse_verify(options))
    finally:
        assert reg.writes_since(mark) == []


def fingerprint(pem):
    from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.signatures import (
        load_public_key,
    )
    return load_public_key(pem, "k").fingerprint


# -- real cosign signatures --------------------------------------------------------------------
@pytest.mark.parametrize("manifest, signatures, pub, other", [
    ("image-634a8f.manifest.json", ["image-634a8f.signature-1", "image-634a8f.signature-2"], "cosign.pub",
     "cosign2.pub"),
    ("image-048947.manifest.json", ["image-048947.signature-1"], "cosign2.pub", "cosign.pub"),
])
def test_real_cosign_signatures_in_the_tag_scheme(rig, manifest, signatures, pub, other):
    reg, pusher, repo = rig
    subject = parse_manifest(fixture_bytes(manifest))  # hashes the real bytes
    real = [fixture_signature(name) for name in signatures]
    assert {s.named_digest for s in real} == {subject.digest}
    pusher.push(REPO, make_sig_manifest([(s.payload, s.signature) for s in real]), tag=cosign_tag(subject.digest))
    pem = fixture_bytes(pub).decode()

    result = verify(reg, repo, subject, keys=[pem])
    assert result["digest"] == subject.digest
    [entry] = result["verified"]
    assert entry["digest"] == subject.digest
    assert len(entry["signatures"]) == len(signatures)
    assert {s["key"] for s in entry["signatures"]} == {fingerprint(pem)}
    assert {s["source"] for s in entry["signatures"]} == {"tag_scheme"}

    with pytest.raises(VerificationError) as info:
        verify(reg, repo, subject, keys=[fixture_bytes(other).decode()])
    message = str(info.value)
    assert "\n" not in message and subject.digest in message and "not signed by any given key" in message


def test_key_given_as_a_file(rig, tmp_path):
    reg, pusher, repo = rig
    subject = parse_manifest(fixture_bytes("image-634a8f.manifest.json"))
    real = fixture_signature("image-634a8f.signature-1")
    pusher.push(REPO, make_sig_manifest([(real.payload, real.signature)]), tag=cosign_tag(subject.digest))
    path = tmp_path / "cosign.pub"
    path.write_bytes(fixture_bytes("cosign.pub"))
    assert verify(reg, repo, subject, keys=[str(path)])["verified"][0]["signatures"]


# -- fresh signatures: the good path -----------------------------------------------------------
def test_fresh_signature_by_digest_and_unsigned_image(rig):
    reg, pusher, repo = rig
    image = pusher.push(REPO, make_image("app"), tag="v1")
    unsigned = pusher.push(REPO, make_image("other"), tag="v2")
    signer = Signer()
    push_signature(pusher, REPO, image.digest, signer)
    result = verify(reg, repo, image.digest, keys=[signer.public_pem])
    assert result["verified"][0]["signatures"][0]["key"] == fingerprint(signer.public_pem)
    with pytest.raises(VerificationError, match=rf"{REPO}@{unsigned.digest} has no signature \(no sha256-"):
        verify(reg, repo, unsigned.digest, keys=[signer.public_pem])


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
def test_rsa_and_ed25519_keys(rig, kind):
    reg, pusher, repo = rig
    image = pusher.push(REPO, make_image(f"app-{kind}"), tag="v1")
    signer = Signer(kind)
    push_signature(pusher, REPO, image.digest, signer)
    [sig] = verify(reg, repo, image.digest, keys=[signer.public_pem])["verified"][0]["signatures"]
    assert sig["algorithm"].startswith(kind)


def test_bundle_referrer_through_the_fallback_index(rig):
    reg, pusher, repo = rig
    image = pusher.push(REPO, make_image("app"), tag="v1")
    signer = Signer()
    referrer = make_signed_bundle_referrer(image.content, signer)
    pusher.push_referrers(REPO, image.digest, [referrer])
    [sig] = verify(reg, repo, image.digest, keys=[signer.public_pem])["verified"][0]["signatures"]
    assert sig == {"kind": "signature", "key": fingerprint(signer.public_pem), "algorithm": "ecdsa-secp256r1",
                   "source": "referrer", "manifest": referrer.digest, "predicate_type":
                   "https://sigstore.dev/cosign/sign/v1"}


def test_attestation_in_the_att_tag(rig):
    reg, pusher, repo = rig
    image = pusher.push(REPO, make_image("app"), tag="v1")
    signer = Signer()
    push_signature(pusher, REPO, image.digest, signer)
    with pytest.raises(VerificationError, match="has no attestation"):
        verify(reg, repo, image.digest, keys=[signer.public_pem], require=["signature", "attestation"])
    statement = in_toto_statement(image.digest, predicate_type="https://slsa.dev/provenance/v1")
    pusher.push(REPO, make_att_manifest([dsse_envelope(statement, signer)]), tag=cosign_tag(image.digest, "att"))
    result = verify(reg, repo, image.digest, keys=[signer.public_pem], require=["signature", "attestation"])
    kinds = {s["kind"]: s for s in result["verified"][0]["signatures"]}
    assert kinds["attestation"]["predicate_type"] == "https://slsa.dev/provenance/v1"


def test_required_annotations(rig):
    reg, pusher, repo = rig
    image = pusher.push(REPO, make_image("app"), tag="v1")
    signer = Signer()
    push_signature(pusher, REPO, image.digest, signer,
                   payload=simple_signing_payload(image.digest, optional={"env": "prod"}))
    assert verify(reg, repo, image.digest, keys=[signer.public_pem], annotations={"env": "prod"})
    with pytest.raises(VerificationError, match="none carries the annotations env=staging"):
        verify(reg, repo, image.digest, keys=[signer.public_pem], annotations={"env": "staging"})


# -- hostile cases -----------------------------------------------------------------------------
def test_wrong_key(rig):
    reg, pusher, repo = rig
    image = pusher.push(REPO, make_image("app"), tag="v1")
    push_signature(pusher, REPO, image.digest, Signer())
    with pytest.raises(VerificationError, match=r"has no valid signature by the given keys \(tag sha256-.*\.sig "
                                                r"layer 1: not signed by any given key\)"):
        verify(reg, repo, image.digest, keys=[Signer().public_pem])


def test_payload_naming_another_digest(rig):
    """A valid signature of image B copied to the .sig tag of image A does not sign A."""
    reg, pusher, repo = rig
    a = pusher.push(REPO, make_image("a"), tag="a")
    b = pusher.push(REPO, make_image("b"), tag="b")
    signer = Signer()
    push_signature(pusher, REPO, a.digest, signer, payload=simple_signing_payload(b.digest))
    with pytest.raises(VerificationError, match=f"the signed payload names {b.digest}"):
        verify(reg, repo, a.digest, keys=[signer.public_pem])


def test_truncated_signature(rig):
    reg, pusher, repo = rig
    image = pusher.push(REPO, make_image("app"), tag="v1")
    signer = Signer()
    raw = signer.sign(simple_signing_payload(image.digest))
    push_signature(pusher, REPO, image.digest, signer, signature=base64.b64encode(raw[:-6]).decode())
    with pytest.raises(VerificationError, match="not signed by any given key"):
        verify(reg, repo, image.digest, keys=[signer.public_pem])


def test_attackers_signature_on_the_fallback_tag(rig):
    """An attacker who can push adds a bundle signed by their own key to the referrers fallback
    index (and points the index at it): it is found, examined, and rejected."""
    reg, pusher, repo = rig
    image = pusher.push(REPO, make_image("app"), tag="v1")
    trusted, attacker = Signer(), Signer()
    forged = make_signed_bundle_referrer(image.content, attacker)
    pusher.push_referrers(REPO, image.digest, [forged])
    with pytest.raises(VerificationError) as info:
        verify(reg, repo, image.digest, keys=[trusted.public_pem])
    assert f"referrer {forged.digest} layer 1: not signed by any given key" in str(info.value)
    # The attacker's key would pass, which shows the referrer was really read.
    assert verify(reg, repo, image.digest, keys=[attacker.public_pem])


def test_fallback_index_listing_a_referrer_of_another_subject(rig):
    reg, pusher, repo = rig
    a = pusher.push(REPO, make_image("a"), tag="a")
    b = pusher.push(REPO, make_image("b"), tag="b")
    signer = Signer()
    of_b = make_signed_bundle_referrer(b.content, signer)
    pusher.push_referrers(REPO, a.digest, [of_b])  # filed under a
    with pytest.raises(VerificationError, match=f"its subject is {b.digest}"):
        verify(reg, repo, a.digest, keys=[signer.public_pem])


def test_sig_with_several_layers_one_valid_passes_none_valid_fails(rig):
    reg, pusher, repo = rig
    image = pusher.push(REPO, make_image("app"), tag="v1")
    other = pusher.push(REPO, make_image("other"), tag="v2")
    signer, stranger = Signer(), Signer()
    junk = simple_signing_payload(image.digest, identity="evil.example/app")
    wrong_digest = simple_signing_payload(other.digest)
    bad_layers = [(junk, stranger.sign_b64(junk)), (wrong_digest, signer.sign_b64(wrong_digest))]
    push_signature(pusher, REPO, image.digest, signer, extra=bad_layers)
    [sig] = verify(reg, repo, image.digest, keys=[signer.public_pem])["verified"][0]["signatures"]
    assert sig["source"] == "tag_scheme"

    pusher.push(REPO, make_sig_manifest(bad_layers), tag=cosign_tag(image.digest))
    with pytest.raises(VerificationError) as info:
        verify(reg, repo, image.digest, keys=[signer.public_pem])
    message = str(info.value)
    assert "layer 1: not signed by any given key" in message
    assert f"layer 2: the signed payload names {other.digest}" in message


# -- referrers and indexes ---------------------------------------------------------------------
def test_required_sbom_referrer_signed_and_unsigned(rig):
    reg, pusher, repo = rig
    image = pusher.push(REPO, make_image("app"), tag="v1")
    signer = Signer()
    push_signature(pusher, REPO, image.digest, signer)
    with pytest.raises(VerificationError, match=f"has no referrer of artifact type {re.escape(SPDX)}"):
        verify(reg, repo, image.digest, keys=[signer.public_pem], referrers=[{"artifact_type": SPDX}])
    sbom = make_artifact(image.content, artifact_type=SPDX, payload=json.dumps({"spdxVersion": "SPDX-2.3"}).encode(),
                         payload_media_type=SPDX)
    pusher.push_referrers(REPO, image.digest, [sbom])
    result = verify(reg, repo, image.digest, keys=[signer.public_pem], referrers=[{"artifact_type": SPDX}])
    assert result["verified"][0]["referrers"] == [{"artifact_type": SPDX, "digest": sbom.digest, "signed_by": None}]
    # Referrers only: no signature asked, no key needed.
    assert verify(reg, repo, image.digest, require=[], referrers=[{"artifact_type": SPDX}])

    signed = [{"artifact_type": SPDX, "signed": True}]
    with pytest.raises(VerificationError, match=f"no {re.escape(SPDX)} referrer of .* is signed by the given keys"):
        verify(reg, repo, image.digest, keys=[signer.public_pem], referrers=signed)
    push_signature(pusher, REPO, sbom.digest, signer)
    result = verify(reg, repo, image.digest, keys=[signer.public_pem], referrers=signed)
    assert result["verified"][0]["referrers"][0]["signed_by"] == fingerprint(signer.public_pem)


def test_index_self_children_both(rig):
    reg, pusher, repo = rig
    index = pusher.push(REPO, make_multiarch("multi"), tag="v1")
    children = [child.digest for child in index.children]
    signer = Signer()
    push_signature(pusher, REPO, index.digest, signer)
    assert [v["digest"] for v in verify(reg, repo, index.digest, keys=[signer.public_pem])["verified"]] == \
        [index.digest]
    with pytest.raises(VerificationError, match=f"{REPO}@{children[0]} has no signature"):
        verify(reg, repo, index.digest, keys=[signer.public_pem], index="children")
    for child in children:
        push_signature(pusher, REPO, child, signer)
    result = verify(reg, repo, index.digest, keys=[signer.public_pem], index="both")
    assert [v["digest"] for v in result["verified"]] == [index.digest, *children]
    # children alone does not need the index's own signature
    pusher.delete_manifest(REPO, pusher.push(REPO, make_sig_manifest([]), tag=cosign_tag(index.digest)).digest)
    assert [v["digest"] for v in verify(reg, repo, index.digest, keys=[signer.public_pem],
                                        index="children")["verified"]] == children
    with pytest.raises(VerificationError, match=f"{REPO}@{index.digest} has no signature"):
        verify(reg, repo, index.digest, keys=[signer.public_pem], index="both")
