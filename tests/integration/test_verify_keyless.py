"""The keyless gate end to end: images signed by a private Sigstore, in a real Distribution 2.8.

Every signature here is made by :class:`tests.rig.keyless.PrivateSigstore` (our own CA, CT log and
Rekor key, written as a ``trusted_root.json`` the modules are given by path): only a root we hold
can sign images the test pushes. Real public-good signatures go through the same parser and crypto
in tests/unit/plugins/module_utils/_ops/test_verify_keyless.py.

Both placements are covered: cosign's tag scheme (a ``.sig`` layer with certificate, chain and
bundle annotations) and a sigstore bundle referrer (found through the ``sha256-<hex>`` fallback
index, as Distribution 2.8 has no referrers API). Every refusal is one line and writes nothing
(counted in the registry's access log), and the recipe in docs/guide_signed_promotion.md runs as
written.
"""
from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import (
    Registry,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    VerificationError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.reads import (
    read_small_blob,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify import (
    check,
    policy,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify import (
    signatures as sg,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.check import (
    make_verifier,
)

from tests.rig.images import RawPuller, RawPusher, cosign_tag, make_artifact, make_image
from tests.rig.keyless import GITHUB_ISSUER, RELEASE_WORKFLOW, PrivateSigstore, push_keyless_signature
from tests.rig.playbook import guide_recipe
from tests.rig.signing import Signer, push_signature, simple_signing_payload

REPO = "team/app"
GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guide_signed_promotion.md"
RECIPE_MARK = "<!-- recipe: keyless release workflow -->"
TAGGED_RELEASE = "https://github.com/example/app/.github/workflows/release.yml@refs/tags/v1.4.2"
CI_WORKFLOW = "https://github.com/example/app/.github/workflows/ci.yml@refs/heads/main"


@pytest.fixture(scope="module")
def sigstore():
    return PrivateSigstore()


@pytest.fixture
def root_path(sigstore, tmp_path):
    return str(sigstore.write_root(tmp_path / "trusted_root.json"))


def head(registry, reference):
    return RawPuller.for_registry(registry).digest_of(REPO, reference)


def rule(identity=RELEASE_WORKFLOW, issuer=GITHUB_ISSUER):
    return {"identity": identity, "issuer": issuer}


def test_tag_scheme_and_bundle_referrer_both_verify_with_zero_writes(plain_registry, sigstore, root_path):
    pusher = RawPusher.for_registry(plain_registry)
    repo = Registry(plain_registry.host).repository(REPO)
    tagged = pusher.push(REPO, make_image("tag-scheme"), tag="a")
    sig = push_keyless_signature(pusher, REPO, tagged.digest, sigstore)
    referred = pusher.push(REPO, make_image("bundle"), tag="b")
    bundle = sigstore.bundle_referrer(referred.content)
    pusher.push_referrers(REPO, referred.digest, [bundle])
    verify = make_verifier({"keyless": [rule()], "trusted_root": root_path})

    mark = plain_registry.mark()
    [by_tag] = verify(repo, tagged.digest)["verified"][0]["signatures"]
    [by_referrer] = verify(repo, referred.digest)["verified"][0]["signatures"]
    assert plain_registry.writes_since(mark) == []
    assert by_tag["source"] == "tag_scheme" and by_tag["manifest"] == sig.digest
    assert by_referrer["source"] == "referrer" and by_referrer["manifest"] == bundle.digest
    for signature in (by_tag, by_referrer):
        assert signature["kind"] == "signature" and signature["key"] is None
        assert (signature["identity"], signature["issuer"]) == (RELEASE_WORKFLOW, GITHUB_ISSUER)
        assert isinstance(signature["log_index"], int) and signature["log_index"] > 1000
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", signature["signed_at"])


def test_keys_and_keyless_rules_together_either_one_counts(plain_registry, sigstore, root_path):
    pusher = RawPusher.for_registry(plain_registry)
    repo = Registry(plain_registry.host).repository(REPO)
    signer = Signer()
    by_key = pusher.push(REPO, make_image("by-key"), tag="k").digest
    push_signature(pusher, REPO, by_key, signer)
    keyless = pusher.push(REPO, make_image("keyless"), tag="l").digest
    push_keyless_signature(pusher, REPO, keyless, sigstore)
    unsigned = pusher.push(REPO, make_image("unsigned"), tag="u").digest
    verify = make_verifier({"keys": [signer.public_pem], "keyless": [rule()], "trusted_root": root_path})
    assert verify(repo, by_key)["verified"][0]["signatures"][0]["key"].startswith("sha256:")
    assert verify(repo, keyless)["verified"][0]["signatures"][0]["identity"] == RELEASE_WORKFLOW
    with pytest.raises(VerificationError, match=r"has no signature \(no sha256-.*\.sig tag, no signature referrer\)"):
        verify(repo, unsigned)


def test_hostile_keyless_signatures_refused_by_the_module_with_one_line_and_no_write(
        plain_registry, sigstore, root_path, run_playbook):
    pusher = RawPusher.for_registry(plain_registry)
    prod = pusher.push(REPO, make_image("prod"), tag="prod").digest
    untrusted = PrivateSigstore("untrusted")
    cases: dict[str, tuple[dict, str]] = {
        "wrong-identity": ({"identity": CI_WORKFLOW},
                           rf"signed by {re.escape(CI_WORKFLOW)} \(issuer {re.escape(GITHUB_ISSUER)}\), not by "),
        "wrong-issuer": ({"issuer": "https://accounts.google.com"},
                         r"\(issuer https://accounts\.google\.com\), not by "),
        "expired": ({"issued": sigstore.certificate(), "late": True},
                    r"its certificate was not valid when it was logged"),
        "no-log-entry": ({"log": False}, r"no transparency-log entry \(no dev\.sigstore\.cosign/bundle annotation\)"),
        "log-for-another-payload": ({"log_payload": b"something else"}, r"its log entry is for another payload"),
        "another-digest": ({"payload": simple_signing_payload(prod)}, rf"the signed payload names {prod}"),
        "untrusted-root": ({"issued": untrusted.certificate()},
                           r"its certificate does not chain to a certificate authority of the trusted root"),
        "tampered-bundle": ({"tamper": True}, r"its log entry's signed entry timestamp does not verify"),
    }
    for name, (options, _pattern) in cases.items():
        digest = pusher.push(REPO, make_image(name), tag=name).digest
        options = dict(options)
        if options.pop("late", False):
            options["signed_at"] = options["issued"].certificate.not_valid_after_utc + timedelta(minutes=1)
        push_keyless_signature(pusher, REPO, digest, sigstore, **options)
    tampered_referrer = pusher.push(REPO, make_image("tampered-referrer"), tag="tampered-referrer")
    pusher.push_referrers(REPO, tampered_referrer.digest,
                          [sigstore.bundle_referrer(tampered_referrer.content, tamper_proof=True)])
    cases["tampered-referrer"] = ({}, r"referrer sha256:\w+ layer 1: its inclusion proof does not lead to the "
                                      r"logged root hash")
    verify = {"keyless": [rule()], "trusted_root": root_path}
    tasks = [{"name": name, "ignore_errors": True, "ocireg.registry.registry_tag": {
        "repository": f"{plain_registry.host}/{REPO}", "source": f":{name}", "tags": ["prod"], "verify": verify}}
        for name in cases]

    mark = plain_registry.mark()
    result = run_playbook(tasks=tasks)
    assert plain_registry.writes_since(mark) == []
    for name, (_options, pattern) in cases.items():
        task = result.task(name)
        message = task["msg"]
        assert task.failed and "\n" not in message, (name, message)
        assert message.startswith(f"verify: {REPO}@sha256:") and "has no valid signature by the given identities (" \
            in message, (name, message)
        assert re.search(pattern, message), (name, message)
    assert head(plain_registry, "prod") == prod


def test_bad_keyless_input_fails_before_any_request(plain_registry, tmp_path, run_playbook):
    broken = tmp_path / "root.json"
    broken.write_text("{}")
    verifies = {
        "no-issuer": {"keyless": [{"identity": RELEASE_WORKFLOW}]},
        "bad-root": {"keyless": [rule()], "trusted_root": str(broken)},
        "missing-root": {"keyless": [rule()], "trusted_root": str(tmp_path / "absent.json")},
    }
    tasks = [{"name": name, "ignore_errors": True, "ocireg.registry.registry_tag": {
        "repository": f"{plain_registry.host}/{REPO}", "source": ":rc", "tags": ["prod"], "verify": verify}}
        for name, verify in verifies.items()]
    mark = plain_registry.mark()
    result = run_playbook(tasks=tasks)
    assert plain_registry.requests_since(mark) == []
    assert "verify.keyless[0] needs exactly one of issuer and issuer_regex" in result.task("no-issuer")["msg"]
    assert "is not a Sigstore trusted root" in result.task("bad-root")["msg"]
    assert "cannot be read" in result.task("missing-root")["msg"]


def recipe() -> str:
    return guide_recipe(GUIDE, RECIPE_MARK)


def test_the_guides_keyless_recipe_runs_as_written(plain_registry, sigstore, root_path, run_playbook):
    pusher = RawPusher.for_registry(plain_registry)
    release = pusher.push(REPO, make_image("release"), tag="rc").digest
    push_keyless_signature(pusher, REPO, release, sigstore, identity=TAGGED_RELEASE)
    variables = {"registry": plain_registry.host, "sigstore_trusted_root": root_path}

    result = run_playbook(recipe(), extra_vars=variables)
    assert result.rc == 0, result.explain()
    assert head(plain_registry, "prod") == release
    assert TAGGED_RELEASE in result.stdout

    # Signed, but by the CI workflow: the same recipe refuses it and writes nothing.
    from_ci = pusher.push(REPO, make_image("from-ci"), tag="rc").digest
    push_keyless_signature(pusher, REPO, from_ci, sigstore, identity=CI_WORKFLOW)
    mark = plain_registry.mark()
    refused = run_playbook(recipe(), extra_vars=variables)
    assert refused.rc != 0
    assert plain_registry.writes_since(mark) == []
    assert head(plain_registry, "prod") == release
    [failed] = [task for task in refused.tasks if task.failed]
    assert f"signed by {CI_WORKFLOW}" in failed["msg"] and "\n" not in failed["msg"]
    assert cosign_tag(from_ci) in failed["msg"]


def test_another_trust_kind_plugs_in_beside_keys_and_keyless(plain_registry, monkeypatch):
    """The extension points a third kind (Notation) uses: a parser in policy.TRUST_KINDS, a loader in
    check.TRUST_LOADERS and a referrer checker in check.REFERRER_CHECKERS; its verdicts join the
    same gate, result and refusal line. The kind here is a stand-in that trusts a referrer whose
    payload names the subject and a listed signer."""

    artifact_type = "application/vnd.example.signature"

    def parse(value):
        signers = value.get("example")
        return None if signers is None else tuple(signers)

    def checker(repo, manifest, digest, trust, where):
        layer = manifest.layers[0]
        names = read_small_blob(repo, layer.digest, layer.size, 1024, lambda size: "too big").decode()
        signer, _sep, named = names.partition("@")
        if named != digest:
            return [(f"{where} layer 1", sg.Verdict(None, reason=f"it names {named}"))]
        if signer not in trust.others["example"]:
            return [(f"{where} layer 1", sg.Verdict(None, reason=f"signed by {signer}"))]
        return [(f"{where} layer 1", sg.Verdict(None, proof={"identity": signer, "scheme": "example"}))]

    monkeypatch.setitem(policy.TRUST_KINDS, "example", policy.TrustKind(("example",), parse, {}))
    monkeypatch.setitem(check.TRUST_LOADERS, "example", frozenset)
    monkeypatch.setitem(check.REFERRER_CHECKERS, artifact_type, checker)

    pusher = RawPusher.for_registry(plain_registry)
    repo = Registry(plain_registry.host).repository(REPO)
    image = pusher.push(REPO, make_image("other-kind"), tag="x")
    good = make_artifact(image.content, artifact_type=artifact_type, payload=f"alice@{image.digest}".encode())
    bad = make_artifact(image.content, artifact_type=artifact_type, payload=f"mallory@{image.digest}".encode())
    pusher.push_referrers(REPO, image.digest, [bad])
    verify = make_verifier({"example": ["alice"]})
    with pytest.raises(VerificationError, match=r"has no valid signature by the given example policy \(referrer "
                                                r"sha256:\w+ layer 1: signed by mallory\)"):
        verify(repo, image.digest)
    pusher.push_referrers(REPO, image.digest, [bad, good])
    [signature] = verify(repo, image.digest)["verified"][0]["signatures"]
    assert signature["identity"] == "alice" and signature["scheme"] == "example"
    assert signature["source"] == "referrer" and signature["manifest"] == good.digest


def test_registry_copy_with_keyless_verify_copies_the_signed_refuses_the_other(plain_registry, registry_factory,
                                                                               sigstore, root_path, run_playbook):
    """Across registries, in check mode and for real: the gate runs on the source before the
    destination is read, and a refused tag writes nothing on either side."""
    other = registry_factory()
    pusher = RawPusher.for_registry(plain_registry)
    signed = pusher.push(REPO, make_image("signed"), tag="signed").digest
    push_keyless_signature(pusher, REPO, signed, sigstore)
    from_ci = pusher.push(REPO, make_image("from-ci"), tag="from-ci").digest
    push_keyless_signature(pusher, REPO, from_ci, sigstore, identity=CI_WORKFLOW)
    verify = {"keyless": [rule()], "trusted_root": root_path}

    def copy(name, tag):
        return {"name": name, "ignore_errors": True, "ocireg.registry.registry_copy": {
            "src": f"{plain_registry.host}/{REPO}:{tag}", "dest": f"{other.host}/{REPO}:{tag}",
            "referrers": True, "verify": verify}}

    marks = plain_registry.mark(), other.mark()
    checked = run_playbook(tasks=[copy("signed", "signed"), copy("from-ci", "from-ci")], check=True)
    assert plain_registry.writes_since(marks[0]) == [] and other.writes_since(marks[1]) == []
    assert checked.task("signed")["verified"]["verified"][0]["signatures"][0]["identity"] == RELEASE_WORKFLOW
    assert checked.task("from-ci").failed

    marks = plain_registry.mark(), other.mark()
    applied = run_playbook(tasks=[copy("from-ci", "from-ci"), copy("signed", "signed")])
    refused = applied.task("from-ci")
    assert refused.failed and "\n" not in refused["msg"]
    assert f"signed by {CI_WORKFLOW}" in refused["msg"]
    assert applied.task("signed").changed
    assert plain_registry.writes_since(marks[0]) == []
    assert RawPuller.for_registry(other).digest_of(REPO, "signed") == signed
    assert RawPuller.for_registry(other).digest_of(REPO, "from-ci") is None
    # the signature travelled with the image, so the copy verifies at the destination too
    copied = Registry(other.host).repository(REPO)
    assert make_verifier(verify)(copied, signed)["verified"][0]["signatures"][0]["identity"] == RELEASE_WORKFLOW


def test_keyless_verification_costs_the_requests_a_key_check_costs(plain_registry, sigstore, root_path):
    """Everything keyless needs travels with the signature (certificate, log entry, proof) or is in the
    trusted root, read before any request: the same requests as a key-based check of the same layout."""
    pusher = RawPusher.for_registry(plain_registry)
    signer = Signer()
    by_key = pusher.push(REPO, make_image("count-key"), tag="ck").digest
    push_signature(pusher, REPO, by_key, signer)
    keyless = pusher.push(REPO, make_image("count-keyless"), tag="cl").digest
    push_keyless_signature(pusher, REPO, keyless, sigstore)
    key_gate = make_verifier({"keys": [signer.public_pem]})
    keyless_gate = make_verifier({"keyless": [rule()], "trusted_root": root_path})

    def shape(requests):
        return [(r.method, re.sub(r"sha256[:-][0-9a-f]{64}", "D", r.path), r.status) for r in requests]

    def measured(gate, digest):
        # a fresh client each time, as a task has: its first request also checks the API version
        client = Registry(plain_registry.host).repository(REPO)
        client.fetch_manifest(digest)
        mark = plain_registry.mark()
        gate(client, digest)
        return plain_registry.requests_since(mark)

    with_key, with_keyless = measured(key_gate, by_key), measured(keyless_gate, keyless)
    assert shape(with_keyless) == shape(with_key), (shape(with_key), shape(with_keyless))
    # subject manifest, referrers API (404 on Distribution 2.8), fallback tag (404), .sig, its blob, .att (404)
    assert len(with_key) == 6, shape(with_key)
