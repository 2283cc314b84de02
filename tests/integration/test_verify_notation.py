"""Notation signatures in the verify gate, against a real Distribution 2.8 registry (tests/rig).

Real notation signatures (tests/fixtures/notation) name images whose blobs we do not have, so they
are covered by the unit tests; here fresh images are signed with a test-made PKI (a root, an
intermediate and code-signing leaves, tests/rig/notation_signing.py) in the Notary Project's JWS
and COSE formats and pushed as OCI 1.1 referrers. Distribution 2.8 has no referrers API, so the
gate finds them through the ``sha256-<hex>`` fallback index, which the tests push themselves.

Every refusal is checked to write nothing (the registry's access log).
"""
from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
import yaml
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

from tests.rig.images import Blob, RawPuller, RawPusher, make_image, make_multiarch
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
    signature_manifest,
)

REPO = "team/app"
IDENTITY = "x509.subject: C=US, ST=WA, O=ocireg-test, CN=release"


@pytest.fixture(scope="module")
def pki():
    root = Authority("Release Root")
    return root, Authority("Release Intermediate", parent=root)


def notation_verify(reg, root_pem, identities=(IDENTITY,), scopes=None):
    return {"notation": {
        "trust_store": [root_pem], "trusted_identities": list(identities),
        "registry_scopes": list(scopes) if scopes is not None else [f"{reg.host}/{REPO}"]}}


def sign(pusher, image, signer, *, make=jws_envelope, media_type=JWS, named=None, **options):
    """Push a notation signature of ``image`` (naming ``named``'s digest when given) as its referrer."""
    target = named or image
    body = payload(target.digest, target.media_type, len(target.data))
    referrer = signature_manifest(image, make(signer, body, **options), media_type)
    pusher.push_referrers(REPO, image.digest, [referrer])
    return referrer


def test_jws_and_cose_signatures_verify_and_say_who_signed(plain_registry, pki):
    root, intermediate = pki
    pusher = RawPusher.for_registry(plain_registry)
    for make, media_type, seed in ((jws_envelope, JWS, "jws"), (cose_envelope, COSE, "cose")):
        repo = Registry(plain_registry.host).repository(REPO)  # fresh: it has not learnt the API is missing
        image = make_image(seed)
        pusher.push(REPO, image, tag=seed)
        referrer = sign(pusher, image, intermediate.issue(), make=make, media_type=media_type, expiry=NOW + DAY)
        mark = plain_registry.mark()
        result = verify_image(repo, image.digest, parse_verify(notation_verify(plain_registry, root.pem)))
        requests = plain_registry.requests_since(mark)
        assert [r for r in requests if r.method not in ("GET", "HEAD")] == []
        # The request floor: the image (whose media type and size the payload must match), the
        # referrers API (404 on Distribution 2.8) and its fallback index, the signature manifest, the envelope;
        # no cosign tag is read, as no key or keyless rule could accept what it holds.
        assert [(r.method, r.path.split("/")[-2], r.status) for r in requests] == [
            ("GET", "manifests", 200), ("GET", "referrers", 404), ("GET", "manifests", 200),
            ("GET", "manifests", 200), ("GET", "blobs", 200)]
        [signature] = result["verified"][0]["signatures"]
        assert signature == {
            "kind": "notation", "key": None, "predicate_type": None, "envelope": seed, "algorithm": "ES384",
            "identity": "CN=release,O=ocireg-test,ST=WA,C=US",
            "issuer": "CN=Release Intermediate,O=ocireg-test,ST=WA,C=US",
            "trust_anchor": "CN=Release Root,O=ocireg-test,ST=WA,C=US",
            "certificate": signature["certificate"], "signing_scheme": "notary.x509",
            "signing_time": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "expiry": (NOW + DAY).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "source": "referrer", "manifest": referrer.digest}
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", signature["certificate"])


@pytest.mark.parametrize("name, media_type, envelope", [
    ("jws_signature.sig", JWS, "jws"), ("cose_signature.sig", COSE, "cose")])
def test_real_notation_signatures_through_the_registry(plain_registry, name, media_type, envelope):
    """notation-go's real envelopes, stored as notation stores them, verified through the gate.

    Their image's layer (3 MiB) is not among the fixtures, so the image cannot be pushed: its real
    manifest is parsed (hashing its bytes) and handed to verify_image as the subject, as
    test_verify.py does with real cosign signatures; the signature manifest and the fallback index
    naming it are pushed (Distribution 2.8 stores a manifest whose subject it does not hold).
    """
    raw = fixture_bytes("oci-layout-manifest-19dbd2e4.json")
    subject = parse_manifest(raw)
    pusher = RawPusher.for_registry(plain_registry)
    referrer = signature_manifest(Blob(raw, subject.media_type), fixture_bytes(name), media_type)
    pusher.push_referrers(REPO, subject.digest, [referrer])
    repo = Registry(plain_registry.host).repository(REPO)
    options = {"notation": {
        "trust_store": [str(FIXTURES / "alpine-2123.pem")],
        "trusted_identities": ["x509.subject: C=US, ST=WA, L=Seattle, O=Notary, CN=alpine"],
        "registry_scopes": [f"{plain_registry.host}/{REPO}"]}}
    mark = plain_registry.mark()
    [signature] = verify_image(repo, subject, parse_verify(options))["verified"][0]["signatures"]
    assert plain_registry.writes_since(mark) == []
    assert (signature["envelope"], signature["identity"], signature["manifest"]) == (
        envelope, "CN=alpine,O=Notary,L=Seattle,ST=WA,C=US", referrer.digest)
    options["notation"]["trust_store"] = [str(FIXTURES / "NotationTestRoot.pem")]
    with pytest.raises(VerificationError, match="leads to no certificate of the trust store"):
        verify_image(repo, subject, parse_verify(options))


def test_an_unsigned_image_and_a_repository_outside_the_scopes(plain_registry, pki):
    root, intermediate = pki
    pusher = RawPusher.for_registry(plain_registry)
    repo = Registry(plain_registry.host).repository(REPO)
    unsigned = pusher.push(REPO, make_image("unsigned"), tag="unsigned").digest
    with pytest.raises(VerificationError, match=rf"^verify: {REPO}@{unsigned} has no signature \(no signature "
                                                r"referrer\)$"):
        verify_image(repo, unsigned, parse_verify(notation_verify(plain_registry, root.pem)))
    image = make_image("scoped")
    pusher.push(REPO, image, tag="scoped")
    sign(pusher, image, intermediate.issue())
    with pytest.raises(VerificationError, match=rf"{plain_registry.host}/{REPO} is not in "
                                                r"verify.notation.registry_scopes \(registry.example.com/other\)"):
        verify_image(repo, image.digest, parse_verify(notation_verify(plain_registry, root.pem,
                                                                      scopes=["registry.example.com/other"])))


def test_a_signature_of_the_image_under_another_media_type_is_refused(plain_registry, pki):
    """The payload must name the image's media type and size as its manifest says them, not as the
    referrer's (unsigned, anyone's) subject descriptor says them: a referrer that describes the image
    as a Docker manifest, carrying a signature of that description, is refused without a write."""
    root, intermediate = pki
    pusher = RawPusher.for_registry(plain_registry)
    image = make_image("described")
    pusher.push(REPO, image, tag="described")
    docker = "application/vnd.docker.distribution.manifest.v2+json"
    lying = Blob(image.data, docker)  # same bytes and digest, another media type
    body = payload(image.digest, docker, len(image.data))
    referrer = signature_manifest(lying, jws_envelope(intermediate.issue(), body), JWS)
    pusher.push_referrers(REPO, image.digest, [referrer])
    repo = Registry(plain_registry.host).repository(REPO)
    mark = plain_registry.mark()
    said = f"referrer {referrer.digest}: its subject descriptor says {docker}, {len(image.data)} bytes; the image is " \
           f"{image.media_type}, {len(image.data)} bytes"
    with pytest.raises(VerificationError, match=re.escape(said)):
        verify_image(repo, image.digest, parse_verify(notation_verify(plain_registry, root.pem)))
    assert plain_registry.writes_since(mark) == []


def test_index_children_each_need_their_own_signature(plain_registry, pki):
    root, intermediate = pki
    pusher = RawPusher.for_registry(plain_registry)
    index = make_multiarch("multi")
    pusher.push(REPO, index, tag="multi")
    first, second = index.children
    sign(pusher, first, intermediate.issue())
    options = {**notation_verify(plain_registry, root.pem), "index": "children"}
    repo = Registry(plain_registry.host).repository(REPO)
    with pytest.raises(VerificationError, match=rf"{REPO}@{second.digest} has no signature"):
        verify_image(repo, index.digest, parse_verify(options))
    sign(pusher, second, intermediate.issue(), make=cose_envelope, media_type=COSE)
    mark = plain_registry.mark()
    result = verify_image(repo, index.digest, parse_verify(options))
    # Each child's media type and size come from the index: no HEAD, no write.
    assert [r.method for r in plain_registry.requests_since(mark) if r.method != "GET"] == []
    assert [(entry["digest"], entry["signatures"][0]["envelope"]) for entry in result["verified"]] == [
        (first.digest, "jws"), (second.digest, "cose")]


def test_hostile_notation_signatures_block_promotion_and_copy_with_zero_writes(plain_registry, registry_factory,
                                                                               run_playbook, pki):
    reg, other = plain_registry, registry_factory()
    root, intermediate = pki
    pusher = RawPusher.for_registry(reg)
    good = make_image("good")
    pusher.push(REPO, good, tag="good")
    sign(pusher, good, intermediate.issue())
    prod = pusher.push(REPO, make_image("prod"), tag="prod").digest
    cases: dict[str, str] = {}

    def image(name):
        made = make_image(name)
        pusher.push(REPO, made, tag=name)
        return made

    wrong = image("wrong-identity")
    ref = sign(pusher, wrong, intermediate.issue(cn="nightly", org="someone-else"))
    cases["wrong-identity"] = rf"referrer {ref.digest}: its signer CN=nightly,O=someone-else,ST=WA,C=US is not a " \
                              "trusted identity"
    other_digest = image("other-digest")
    ref = sign(pusher, other_digest, intermediate.issue(), named=good)  # a valid signature, of another image
    cases["other-digest"] = rf"referrer {ref.digest}: the signed payload names {good.digest}"
    untrusted = image("untrusted-root")
    ref = sign(pusher, untrusted, Authority("Attacker Root").issue())
    cases["untrusted-root"] = rf"referrer {ref.digest}: its chain \(root CN=Attacker Root,O=ocireg-test,ST=WA,C=US\) " \
                              "leads to no certificate of the trust store"
    expired = image("expired-cert")
    old = intermediate.issue(not_before=NOW - 400 * DAY, not_after=NOW - 100 * DAY)
    ref = sign(pusher, expired, old, signing_time=NOW - 50 * DAY)
    cases["expired-cert"] = rf"referrer {ref.digest}: certificate CN=release,O=ocireg-test,ST=WA,C=US was not valid " \
                            "at the signing time"
    tampered = image("tampered")
    envelope = json.loads(jws_envelope(intermediate.issue(), payload(tampered.digest, tampered.media_type,
                                                                     len(tampered.data))))
    # Moved a year back after signing (to look valid before a revocation, say): still well-formed, no longer signed.
    headers = json.loads(base64.urlsafe_b64decode(envelope["protected"] + "=="))
    headers["io.cncf.notary.signingTime"] = (NOW - 365 * DAY).strftime("%Y-%m-%dT%H:%M:%SZ")
    envelope["protected"] = base64.urlsafe_b64encode(json.dumps(headers).encode()).rstrip(b"=").decode()
    forged = signature_manifest(tampered, json.dumps(envelope).encode(), JWS)
    pusher.push_referrers(REPO, tampered.digest, [forged])
    cases["tampered"] = rf"referrer {forged.digest}: the signature does not verify with its signing certificate\)$"

    verify = notation_verify(reg, root.pem)
    tasks = [{"name": name, "ignore_errors": True, "ocireg.registry.registry_tag": {
        "repository": f"{reg.host}/{REPO}", "source": f":{name}", "tags": ["prod"], "verify": verify}}
        for name in cases]
    tasks.append({"name": "copy", "ignore_errors": True, "ocireg.registry.registry_copy": {
        "src": f"{reg.host}/{REPO}:wrong-identity", "dest": f"{other.host}/{REPO}:prod", "referrers": True,
        "verify": verify}})
    tasks.append({"name": "good", "register": "out", "ocireg.registry.registry_tag": {
        "repository": f"{reg.host}/{REPO}", "source": ":good", "tags": ["prod"], "verify": verify}})

    marks = reg.mark(), other.mark()
    result = run_playbook(tasks=tasks)
    assert result.rc == 0, result.explain()
    writes = reg.writes_since(marks[0])
    # Only the good promotion wrote: one tag PUT.
    assert [(w.method, w.path) for w in writes] == [("PUT", f"/v2/{REPO}/manifests/prod")]
    assert other.writes_since(marks[1]) == []
    for name, pattern in {**cases, "copy": cases["wrong-identity"]}.items():
        task = result.task(name)
        assert task.failed, name
        message = task["msg"]
        assert "\n" not in message and message.startswith("verify: ") and "has no valid signature by the given " \
            "notation policy" in message, message
        assert re.search(pattern, message), (name, message)
    done = result.task("good")
    assert done["changed"] and done["verified"]["verified"][0]["signatures"][0]["kind"] == "notation"
    assert RawPuller.for_registry(reg).digest_of(REPO, "prod") == good.digest != prod


def test_check_mode_verifies_and_writes_nothing(plain_registry, run_playbook, pki):
    root, intermediate = pki
    pusher = RawPusher.for_registry(plain_registry)
    image = make_image("checked")
    pusher.push(REPO, image, tag="rc")
    sign(pusher, image, intermediate.issue(kind="rsa"), make=cose_envelope, media_type=COSE)
    task = {"name": "promote", "ocireg.registry.registry_tag": {
        "repository": f"{plain_registry.host}/{REPO}", "source": ":rc", "tags": ["prod"],
        "verify": notation_verify(plain_registry, root.pem, identities=["*"], scopes=["*"])}}
    mark = plain_registry.mark()
    checked = run_playbook(tasks=[task], check=True)
    assert checked.rc == 0, checked.explain()
    assert plain_registry.writes_since(mark) == []
    [signature] = checked.task("promote")["verified"]["verified"][0]["signatures"]
    assert signature["envelope"] == "cose" and signature["algorithm"] == "PS384"


def test_a_bad_trust_store_fails_before_any_request(plain_registry, run_playbook, tmp_path):
    task = {"name": "promote", "ignore_errors": True, "ocireg.registry.registry_tag": {
        "repository": f"{plain_registry.host}/{REPO}", "source": ":rc", "tags": ["prod"],
        "verify": notation_verify(plain_registry, str(tmp_path / "missing-ca.pem"))}}
    mark = plain_registry.mark()
    result = run_playbook(tasks=[task])
    assert plain_registry.requests_since(mark) == []
    message = result.task("promote")["msg"]
    assert "verify.notation.trust_store[0]" in message and "cannot be read" in message and "\n" not in message


def test_the_guide_recipe_runs_as_written(plain_registry, run_playbook, tmp_path):
    """docs/guide_notation.md's recipe, with only the registry host and the trust store path replaced."""
    guide = (Path(__file__).resolve().parents[2] / "docs" / "guide_notation.md").read_text()
    recipe = yaml.safe_load(re.search(r"```yaml\n(.*?)```", guide, re.S)[1])
    root = Authority("Acme Root")
    store = tmp_path / "acme"
    store.mkdir()
    (store / "root.pem").write_text(root.pem)
    text = json.dumps(recipe).replace("registry.example.com", plain_registry.host).replace(
        "/etc/notation/truststore/x509/ca/acme", str(store))
    [task] = json.loads(text)
    pusher = RawPusher.for_registry(plain_registry)
    image = make_image("recipe")
    pusher.push(REPO, image, tag="rc")
    nightly = make_image("recipe-nightly")
    pusher.push(REPO, nightly, tag="nightly")
    sign(pusher, image, root.issue("release-pipeline", org="acme", unit="Release"))
    sign(pusher, nightly, root.issue("nightly", org="acme", unit="Release"))
    refused = json.loads(text)[0]
    refused["ocireg.registry.registry_tag"]["source"] = ":nightly"
    refused.update({"name": "nightly", "ignore_errors": True})
    mark = plain_registry.mark()
    result = run_playbook(tasks=[refused, task])
    assert result.rc == 0, result.explain()
    assert result.task("nightly").failed and "is not a trusted identity" in result.task("nightly")["msg"]
    assert [w.path for w in plain_registry.writes_since(mark)] == [f"/v2/{REPO}/manifests/prod"]
    assert RawPuller.for_registry(plain_registry).digest_of(REPO, "prod") == image.digest
