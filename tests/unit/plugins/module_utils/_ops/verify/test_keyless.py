"""Unit tests for keyless (Sigstore) verification: the rules, the trusted root and every check.

Real public material first (tests/fixtures/keyless, see SOURCES.md there): a keyless cosign
``.sig`` layer (tag scheme: certificate, chain and Rekor bundle annotations) and a sigstore bundle
made in GitHub Actions, both checked against Sigstore's public-good root, shipped with the
collection. Then signatures made by a private Sigstore (tests/rig/keyless.py: our own CA, CT log
and Rekor keys) for the hostile cases the real ones cannot show.
"""
from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta

import pytest
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify import (
    keyless as kl,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify import (
    signatures as sg,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.check import (
    load_trusted_root,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.keyless_root import (
    PUBLIC_GOOD_TRUSTED_ROOT,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.policy import (
    KeylessRule,
    parse_verify,
)

from tests.rig.keyless import GITHUB_ISSUER, RELEASE_WORKFLOW, PrivateSigstore, audit_path, merkle_tree_hash
from tests.rig.signing import FIXTURES, IN_TOTO, Signer, in_toto_statement, pae, simple_signing_payload

KEYLESS = FIXTURES.parent / "keyless"
REAL_IMAGE = "sha256:0489474da8ea22426ece86ace6c1c0026ab2fd3cdfbbd62b7e94650266c37d9a"
MITR = KeylessRule(identity="mitr@redhat.com", issuer="https://github.com/login/oauth")
WORKFLOW = KeylessRule(
    identity_regex=r"https://github\.com/trailofbits/rfc8785\.py/\.github/workflows/release\.yml@refs/tags/v.*",
    issuer=GITHUB_ISSUER)
OTHER = "sha256:" + "ab" * 32
CI_WORKFLOW = "https://github.com/example/app/.github/workflows/ci.yml@refs/heads/main"


@pytest.fixture(scope="module")
def public_good():
    return load_trusted_root(None)


@pytest.fixture(scope="module")
def private():
    return PrivateSigstore()


def trust_for(root, *rules):
    return sg.Trust((), sg.KeylessTrust(tuple(rules), root))


def private_trust(sigstore, *rules):
    return trust_for(kl.load_trusted_root(json.dumps(sigstore.trusted_root()), "rig root"),
                     *(rules or (KeylessRule(identity=RELEASE_WORKFLOW, issuer=GITHUB_ISSUER),)))


def real_cosign_layer():
    raw = (KEYLESS / "image-048947.fulcio-rekor.signature-1").read_bytes()
    document = json.loads(raw[len(b"\x00sigstore-json\n"):])
    return base64.b64decode(document["payload"]), document["annotations"]


# -- real public material ----------------------------------------------------------------------
def test_the_shipped_root_is_the_public_good_fixture_byte_for_byte():
    assert PUBLIC_GOOD_TRUSTED_ROOT == (KEYLESS / "public-good.trusted_root.json").read_text()


def test_real_cosign_keyless_signature_in_the_tag_scheme(public_good):
    payload, annotations = real_cosign_layer()
    manifest = (KEYLESS / "image-048947.fulcio-rekor.manifest.json").read_bytes()
    assert "sha256:" + hashlib.sha256(manifest).hexdigest() == REAL_IMAGE
    verdict = sg.verify_simple_signing(payload, annotations[sg.SIGNATURE_ANNOTATION], trust_for(public_good, MITR),
                                       REAL_IMAGE, annotations)
    assert verdict.ok and verdict.key is None, verdict.reason
    proof = verdict.keyless
    assert (proof.identity, proof.issuer, proof.log_index) == ("mitr@redhat.com", "https://github.com/login/oauth",
                                                               11605770)
    assert proof.signed_at.isoformat() == "2023-01-20T20:51:33+00:00"


def test_real_cosign_keyless_signature_refused_for_another_identity_and_another_digest(public_good):
    payload, annotations = real_cosign_layer()
    signature = annotations[sg.SIGNATURE_ANNOTATION]
    other = KeylessRule(identity="mitr@redhat.com", issuer="https://accounts.google.com")
    verdict = sg.verify_simple_signing(payload, signature, trust_for(public_good, other), REAL_IMAGE, annotations)
    assert verdict.reason == ("signed by mitr@redhat.com (issuer https://github.com/login/oauth), "
                              "not by mitr@redhat.com from https://accounts.google.com")
    verdict = sg.verify_simple_signing(payload, signature, trust_for(public_good, MITR), OTHER, annotations)
    assert verdict.reason == f"the signed payload names {REAL_IMAGE}"


def test_real_cosign_keyless_signature_without_keyless_rules_is_not_a_key_signature(public_good):
    payload, annotations = real_cosign_layer()
    verdict = sg.verify_simple_signing(payload, annotations[sg.SIGNATURE_ANNOTATION], sg.Trust(), REAL_IMAGE,
                                       annotations)
    assert verdict.reason == "a keyless signature, and verify.keyless is not given"
    with_a_key = sg.Trust((sg.load_public_key(Signer().public_pem, "a key"),))
    verdict = sg.verify_bundle(json.dumps(real_bundle()).encode(), with_a_key, whl_digest())
    assert verdict.reason == \
        "not signed by any given key (a keyless signature: give verify.keyless to accept its signer)"


def test_real_cosign_keyless_signature_with_its_log_entry_tampered(public_good):
    payload, annotations = real_cosign_layer()
    entry = json.loads(annotations[kl.BUNDLE_ANNOTATION])
    entry["Payload"]["integratedTime"] += 60
    tampered = {**annotations, kl.BUNDLE_ANNOTATION: json.dumps(entry)}
    verdict = sg.verify_simple_signing(payload, annotations[sg.SIGNATURE_ANNOTATION], trust_for(public_good, MITR),
                                       REAL_IMAGE, tampered)
    assert verdict.reason == "its log entry's signed entry timestamp does not verify (tampered or another log)"


def real_bundle():
    return json.loads((KEYLESS / "github-workflow.whl.sigstore").read_bytes())


def whl_digest():
    return "sha256:" + hashlib.sha256((KEYLESS / "github-workflow.whl").read_bytes()).hexdigest()


def test_real_github_actions_bundle_with_inclusion_proof(public_good):
    verdict = sg.verify_bundle(json.dumps(real_bundle()).encode(), trust_for(public_good, WORKFLOW), whl_digest())
    assert verdict.ok, verdict.reason
    assert verdict.keyless.identity == \
        "https://github.com/trailofbits/rfc8785.py/.github/workflows/release.yml@refs/tags/v0.1.2"
    assert verdict.keyless.log_index == 79605083


@pytest.mark.parametrize("change, reason", [
    (lambda b: b["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"].reverse(),
     "its inclusion proof does not lead to the logged root hash"),
    (lambda b: b["verificationMaterial"]["tlogEntries"][0]["inclusionProof"].update(
        checkpoint={"envelope": b["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["checkpoint"]
                    ["envelope"].replace("\u2014 rekor.sigstore.dev ", "\u2014 rekor.sigstore.dev AAAA")}),
     "its inclusion proof's checkpoint is not signed by the log"),
    (lambda b: b["verificationMaterial"]["tlogEntries"][0].update(logIndex="1"),
     "its log entry's signed entry timestamp does not verify (tampered or another log)"),
    (lambda b: b["messageSignature"].update(signature=b["messageSignature"]["signature"][:-8] + "AAAAAAA="),
     "the signature does not verify with its certificate's key"),
    (lambda b: b["verificationMaterial"].update(tlogEntries=[]),
     "no transparency-log entry (the bundle's tlogEntries is empty)"),
    (lambda b: b["messageSignature"]["messageDigest"].update(algorithm="SHA2_512"),
     "the bundle's message digest is SHA2_512; a keyless messageSignature is checked over SHA2_256"),
])
def test_real_bundle_tampered(public_good, change, reason):
    bundle = real_bundle()
    change(bundle)
    verdict = sg.verify_bundle(json.dumps(bundle).encode(), trust_for(public_good, WORKFLOW), whl_digest())
    assert verdict.reason == reason


def test_real_material_against_a_root_that_does_not_trust_it(private, public_good):
    payload, annotations = real_cosign_layer()
    verdict = sg.verify_simple_signing(payload, annotations[sg.SIGNATURE_ANNOTATION], private_trust(private, MITR),
                                       REAL_IMAGE, annotations)
    assert verdict.reason.startswith("its log entry is from a transparency log not in the trusted root")


# -- the trusted root and the rules -----------------------------------------------------------
@pytest.mark.parametrize("data, fragment", [
    (b"not json", "is not JSON"),
    (b'{"mediaType": "x"}', "is not a Sigstore trusted root"),
    (json.dumps({"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1", "tlogs": [],
                 "ctlogs": [], "certificateAuthorities": []}).encode(), "lacks certificate authorities"),
    (json.dumps({"mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
                 "tlogs": [{"publicKey": {"rawBytes": "AAAA"}}]}).encode(), "is not a usable Sigstore trusted root"),
])
def test_bad_trusted_root_is_one_line(tmp_path, data, fragment):
    path = tmp_path / "root.json"
    path.write_bytes(data)
    with pytest.raises(InvalidInputError) as caught:
        load_trusted_root(str(path))
    assert fragment in caught.value.message and "\n" not in caught.value.message
    with pytest.raises(InvalidInputError, match="cannot be read"):
        load_trusted_root(str(tmp_path / "missing.json"))


def test_parse_keyless_rules():
    policy = parse_verify({"keyless": [{"identity": "a@example.com", "issuer": "https://accounts.google.com"},
                                       {"identity_regex": "https://github.com/org/.*",
                                        "issuer_regex": "https://token\\.actions\\..*"}],
                           "trusted_root": "/etc/root.json"})
    assert policy.keys == () and policy.keyless.trusted_root == "/etc/root.json"
    assert policy.keyless.rules[1].matches("https://github.com/org/repo", "https://token.actions.githubusercontent.com")
    # anchored: a prefix or a suffix does not make a match
    assert not policy.keyless.rules[1].matches("https://evil.example/?https://github.com/org/x",
                                               "https://token.actions.githubusercontent.com")
    assert parse_verify({"keyless": [{"identity": "a", "issuer": "b"}],
                         "trusted_root": "public-good"}).keyless.trusted_root is None


@pytest.mark.parametrize("value, fragment", [
    ({"keyless": []}, "verify.keyless must be a list"),
    ({"keyless": [{"issuer": "x"}]}, "verify.keyless[0] needs exactly one of identity and identity_regex"),
    ({"keyless": [{"identity": "a", "identity_regex": "a", "issuer": "x"}]}, "needs exactly one of identity"),
    ({"keyless": [{"identity": "a"}]}, "needs exactly one of issuer and issuer_regex"),
    ({"keyless": [{"identity_regex": "(", "issuer": "x"}]}, "identity_regex is not a regular expression"),
    ({"keyless": [{"identity": "a", "issuer": "x", "subject": "y"}]}, "unknown option(s) subject"),
    ({"trusted_root": "/x"}, "verify.trusted_root is for keyless signatures"),
    ({"require": ["signature"]}, "verify needs keys"),
])
def test_parse_keyless_rejects_with_one_line(value, fragment):
    with pytest.raises(InvalidInputError) as caught:
        parse_verify(value)
    assert fragment in caught.value.message and "\n" not in caught.value.message


# -- hostile cases, with a private Sigstore ----------------------------------------------------
def check_cosign(sigstore, trust, digest=OTHER, payload=None, **options):
    payload = payload if payload is not None else simple_signing_payload(digest)
    annotations = sigstore.cosign_annotations(payload, **options)
    return sg.verify_simple_signing(payload, annotations[sg.SIGNATURE_ANNOTATION], trust, digest, annotations)


def test_private_sigstore_signature_verifies(private):
    verdict = check_cosign(private, private_trust(private))
    assert verdict.ok and verdict.keyless.identity == RELEASE_WORKFLOW and verdict.keyless.issuer == GITHUB_ISSUER


def test_hostile_cosign_signatures_each_name_their_cause(private):
    trust = private_trust(private)
    other_sigstore = PrivateSigstore("untrusted")
    issued = private.certificate()
    after = issued.certificate.not_valid_after_utc + timedelta(minutes=5)
    cases = {
        "wrong identity": (check_cosign(private, trust, identity=CI_WORKFLOW),
                           f"signed by {CI_WORKFLOW} "
                           f"(issuer {GITHUB_ISSUER}), not by {RELEASE_WORKFLOW} from {GITHUB_ISSUER}"),
        "wrong issuer": (check_cosign(private, trust, issuer="https://accounts.google.com"),
                         f"signed by {RELEASE_WORKFLOW} (issuer https://accounts.google.com), not by"),
        "expired at signing time": (check_cosign(private, trust, issued=issued, signed_at=after),
                                    "its certificate was not valid when it was logged"),
        "no log entry": (check_cosign(private, trust, log=False),
                         "no transparency-log entry (no dev.sigstore.cosign/bundle annotation)"),
        "entry for another payload": (check_cosign(private, trust, log_payload=b"another payload"),
                                      "its log entry is for another payload"),
        "another digest": (check_cosign(private, trust, payload=simple_signing_payload("sha256:" + "cd" * 32)),
                           "the signed payload names sha256:cdcd"),
        "untrusted chain": (check_cosign(private, trust, issued=other_sigstore.certificate()),
                            "its certificate does not chain to a certificate authority of the trusted root"),
        "tampered bundle": (check_cosign(private, trust, tamper=True),
                            "its log entry's signed entry timestamp does not verify"),
        "no sct": (check_cosign(private, trust, issued=private.certificate(sct=False)),
                   "its certificate carries no SCT"),
    }
    for name, (verdict, fragment) in cases.items():
        assert not verdict.ok, name
        assert verdict.reason.startswith(fragment), (name, verdict.reason)


def test_sct_from_an_untrusted_ct_log_is_refused(private):
    root = private.trusted_root()
    stranger = PrivateSigstore("stranger").trusted_root()
    root["ctlogs"] = stranger["ctlogs"]
    trust = trust_for(kl.load_trusted_root(json.dumps(root), "rig root"),
                      KeylessRule(identity=RELEASE_WORKFLOW, issuer=GITHUB_ISSUER))
    assert check_cosign(private, trust).reason == \
        "no SCT of its certificate verifies with a CT log key of the trusted root"


def test_a_ca_outside_its_validity_window_does_not_count(private):
    root = private.trusted_root()
    root["certificateAuthorities"][0]["validFor"]["end"] = "2020-01-01T00:00:00Z"
    trust = trust_for(kl.load_trusted_root(json.dumps(root), "rig root"),
                      KeylessRule(identity=RELEASE_WORKFLOW, issuer=GITHUB_ISSUER))
    assert check_cosign(private, trust).reason.startswith("its certificate does not chain")


def test_private_bundle_with_inclusion_proof_and_its_tampered_twin(private):
    trust = private_trust(private)
    statement = in_toto_statement(OTHER)
    verdict = sg.verify_bundle(private.bundle(statement), trust, OTHER)
    assert verdict.ok and verdict.kind == sg.SIGNATURE, verdict.reason
    assert sg.verify_bundle(private.bundle(statement, tamper_proof=True), trust, OTHER).reason == \
        "its inclusion proof does not lead to the logged root hash"
    assert sg.verify_bundle(private.bundle(statement), trust, "sha256:" + "cd" * 32).reason.startswith(
        "the signed statement names")


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13])
def test_merkle_inclusion_for_every_leaf_of_small_trees(size):
    leaves = [hashlib.sha256(bytes([n])).digest() for n in range(size)]
    root = merkle_tree_hash(leaves)
    for index in range(size):
        proof = audit_path(index, leaves)
        assert kl.merkle_root(index, size, leaves[index], proof) == root
        assert kl.merkle_root(index, size, hashlib.sha256(b"other").digest(), proof) != root
        assert kl.merkle_root(size, size, leaves[index], proof) is None
        if proof:
            assert kl.merkle_root(index, size, leaves[index], proof[:-1]) != root
            assert kl.merkle_root(index, size, leaves[index], [bytes(32), *proof[1:]]) != root


def test_keyless_attestation_layer_with_an_intoto_entry_is_refused_as_unsupported(private):
    statement = in_toto_statement(OTHER, predicate_type="https://slsa.dev/provenance/v1")
    issued = private.certificate()
    signature = base64.b64encode(issued.sign(pae(IN_TOTO, statement))).decode()
    envelope = {"payloadType": IN_TOTO, "payload": base64.b64encode(statement).decode(),
                "signatures": [{"keyid": "", "sig": signature}]}
    body = json.dumps({"apiVersion": "0.0.2", "kind": "intoto", "spec": {}}).encode()
    entry = private.entry(body, int(issued.certificate.not_valid_before_utc.timestamp()) + 30)
    annotations = {kl.CERTIFICATE_ANNOTATION: issued.pem, kl.BUNDLE_ANNOTATION: json.dumps(entry)}
    verdict = sg.verify_envelope_blob(json.dumps(envelope).encode(), private_trust(private), OTHER, annotations)
    assert verdict.reason == "its log entry is of kind 'intoto'; hashedrekord and dsse entries are understood"
    # without keyless rules, the same layer is named for what it is
    verdict = sg.verify_envelope_blob(json.dumps(envelope).encode(), sg.Trust(), OTHER, annotations)
    assert verdict.reason == "a keyless signature, and verify.keyless is not given"


def test_real_cosign_dsse_bundle_with_a_dsse_log_entry(public_good):
    """cosign's own test bundle (tests/fixtures/cosign, see SOURCES.md there): DSSE, a dsse Rekor entry."""
    data = (FIXTURES / "oci-attestation.sigstore.json").read_bytes()
    subject = "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4"
    rule = KeylessRule(identity="cody@soyland.com", issuer="https://github.com/login/oauth")
    verdict = sg.verify_bundle(data, trust_for(public_good, rule), subject)
    assert verdict.ok and verdict.kind == sg.ATTESTATION, verdict.reason
    assert (verdict.keyless.identity, verdict.keyless.log_index) == ("cody@soyland.com", 175508996)
    bundle = json.loads(data)
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(b'{"_type": "forged"}').decode()
    assert sg.verify_bundle(json.dumps(bundle).encode(), trust_for(public_good, rule), subject).reason == \
        "the signature does not verify with its certificate's key"


def test_missing_or_old_cryptography_is_one_line(monkeypatch):
    import cryptography
    from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify import check
    monkeypatch.setattr(cryptography, "__version__", "41.0.7")
    with pytest.raises(InvalidInputError, match=r"^verify.keyless needs cryptography 42 or newer on the host that "
                                                r"runs the module; it has 41.0.7: upgrade it there$"):
        check.load_trusted_root(None)
    monkeypatch.setattr(sg, "CRYPTOGRAPHY_IMPORT_ERROR", ImportError("No module named 'cryptography'"))
    with pytest.raises(InvalidInputError, match=r"^verify.keyless needs the Python package cryptography \(42 or "
                                                r"newer\) on the host that runs the module: install it there$"):
        check.load_trusted_root(None)


def test_an_absurd_log_time_is_a_refusal_not_a_traceback(private):
    payload = simple_signing_payload(OTHER)
    annotations = private.cosign_annotations(payload)
    entry = json.loads(annotations[kl.BUNDLE_ANNOTATION])
    entry["Payload"]["integratedTime"] = 10 ** 30
    annotations[kl.BUNDLE_ANNOTATION] = json.dumps(entry)
    verdict = sg.verify_simple_signing(payload, annotations[sg.SIGNATURE_ANNOTATION], private_trust(private), OTHER,
                                       annotations)
    assert verdict.reason == "its certificate or log entry cannot be read (OverflowError)"


def test_a_regex_that_matches_only_part_of_the_identity_says_it_must_match_all_of_it(private):
    # cosign's --certificate-identity-regexp matches anywhere; ours must match the whole identity.
    partial = private_trust(private, KeylessRule(identity_regex=r"release\.yml", issuer=GITHUB_ISSUER))
    verdict = check_cosign(private, partial)
    assert not verdict.ok and verdict.reason.endswith(
        "identity_regex must match the whole identity (write .* around it to match a part)"), verdict.reason
    whole = private_trust(private, KeylessRule(identity_regex=r".*release\.yml.*", issuer=GITHUB_ISSUER))
    assert check_cosign(private, whole).ok
    other = private_trust(private, KeylessRule(identity_regex=r"nightly\.yml", issuer=GITHUB_ISSUER))
    assert "must match the whole identity" not in check_cosign(private, other).reason
