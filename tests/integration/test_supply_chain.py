"""Supply chain against real Distribution 2.8 registries (tests/rig): signatures travel with images,
the verification gate blocks before any write, and retention keeps attachments with their subject.

Signed images are seeded with the rig's raw pusher and signed with ``tests/rig/signing.py`` (cosign's
formats made with ``cryptography``, independent of the collection's code); real cosign signatures
are covered in test_verify.py. Distribution 2.8 has no referrers API, so OCI 1.1 referrers are found
through the ``sha256-<hex>`` fallback index, which the tests push themselves where they seed.
Write requests are counted in each registry's access log.
"""
from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import (
    Registry,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.reference import (
    Reference,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.image import (
    CopyOptions,
    copy_image,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.transfer import (
    run_transfer,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.sync.run import (
    SyncOptions,
    mirror_tags,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.check import (
    make_verifier,
)

from tests.rig.flavours import RigRegistry
from tests.rig.images import (
    Layer,
    RawPuller,
    RawPusher,
    cosign_tag,
    make_artifact,
    make_image,
    make_multiarch,
    referrers_tag,
)
from tests.rig.signing import (
    Signer,
    dsse_envelope,
    in_toto_statement,
    make_att_manifest,
    make_signed_bundle_referrer,
    push_signature,
    simple_signing_payload,
)

REPO = "team/app"
SPDX = "application/spdx+json"
SLSA = "https://slsa.dev/provenance/v1"


def head(registry: RigRegistry, reference: str, repository: str = REPO) -> str | None:
    """The digest a tag or digest resolves to with raw HTTP, None when absent."""
    return RawPuller.for_registry(registry).digest_of(repository, reference)


def manifest_json(registry: RigRegistry, reference: str, repository: str = REPO) -> dict[str, Any]:
    raw, _media_type, _digest = RawPuller.for_registry(registry).manifest(repository, reference)
    return json.loads(raw)


def seed_signed(pusher: RawPusher, signer: Signer, tag: str = "v1", seed: str = "app") -> dict[str, Any]:
    """A two-platform index with: a .sig and an .att for the index, a .sig for each child, a cosign
    .sbom attachment, and an OCI 1.1 SPDX referrer listed in the fallback index."""
    index = make_multiarch(seed)
    pushed = pusher.push(REPO, index, tag=tag)
    digest = pushed.digest
    found: dict[str, Any] = {"digest": digest, "children": [c.digest for c in index.children]}
    found["sig"] = push_signature(pusher, REPO, digest, signer).digest
    found["child_sigs"] = [push_signature(pusher, REPO, child, signer).digest for child in found["children"]]
    att = make_att_manifest([dsse_envelope(in_toto_statement(digest, predicate_type=SLSA), signer)])
    found["att"] = pusher.push(REPO, att, tag=cosign_tag(digest, "att")).digest
    sbom_attachment = make_image(f"{seed}-sbom", layers=[Layer(b'{"spdxVersion": "SPDX-2.3"}', "text/spdx+json")])
    found["sbom_tag"] = pusher.push(REPO, sbom_attachment, tag=cosign_tag(digest, "sbom")).digest
    sbom = make_artifact(index, artifact_type=SPDX, payload=f'{{"spdxVersion": "{seed}"}}'.encode())
    found["sbom"] = sbom.digest
    pusher.push_referrers(REPO, digest, [sbom])
    return found


def attached_refs(seeded: dict[str, Any]) -> list[str]:
    """Every reference that must be identical at both ends after a copy with referrers."""
    digest = seeded["digest"]
    return [digest, *seeded["children"], cosign_tag(digest), cosign_tag(digest, "att"), cosign_tag(digest, "sbom"),
            *(cosign_tag(child) for child in seeded["children"]), seeded["sbom"]]


def client(registry: RigRegistry, repository: str = REPO):
    return Registry(registry.host).repository(repository)


# -- the done-when playbook: mirror with everything, then a verified promotion at the mirror -------------
def test_mirror_carries_sig_att_sbom_and_referrer_then_verified_promotion(plain_registry, registry_factory,
                                                                          run_playbook):
    src, dest = plain_registry, registry_factory()
    signer = Signer()
    seeded = seed_signed(RawPusher.for_registry(src), signer)
    verify = {"keys": [signer.public_pem], "require": ["signature", "attestation"],
              "referrers": [{"artifact_type": SPDX}]}
    mirror = {"name": "mirror", "register": "out", "ocireg.registry.registry_copy": {
        "src": f"{src.host}/{REPO}", "dest": f"{dest.host}/{REPO}", "tags": [".*"], "referrers": True,
        "verify": verify}}

    mark = src.mark()
    result = run_playbook(tasks=[mirror])
    assert result.rc == 0, result.explain()
    assert src.writes_since(mark) == []  # nothing is ever written to the source
    done = result.task("mirror")
    # The .sig/.att/.sbom and fallback tags were not mirrored as tags of their own: they travelled with v1.
    assert list(done["tag_results"]) == ["v1"]
    v1 = done["tag_results"]["v1"]
    assert v1["verified"]["digest"] == seeded["digest"]
    assert {a["tag"]: a["action"] for a in v1["attached"]} == {
        cosign_tag(seeded["digest"]): "copied", cosign_tag(seeded["digest"], "att"): "copied",
        cosign_tag(seeded["digest"], "sbom"): "copied", **{cosign_tag(c): "copied" for c in seeded["children"]}}
    for reference in attached_refs(seeded):
        assert head(src, reference) is not None and head(dest, reference) == head(src, reference), reference
    assert head(dest, "v1") == seeded["digest"]
    listed = [m["digest"] for m in manifest_json(dest, referrers_tag(seeded["digest"]))["manifests"]]
    assert listed == [seeded["sbom"]]

    # Again: nothing to do, nothing written.
    mark = dest.mark()
    again = run_playbook(tasks=[mirror])
    assert again.rc == 0, again.explain()
    assert not again.task("mirror").changed
    assert dest.writes_since(mark) == []

    # The mirror verifies with the same key, and the gated promotion moves the tag.
    promote = {"name": "promote", "register": "out", "ocireg.registry.registry_tag": {
        "repository": f"{dest.host}/{REPO}", "source": ":v1", "tags": ["prod"], "verify": verify}}
    promoted = run_playbook(tasks=[promote])
    assert promoted.rc == 0, promoted.explain()
    task = promoted.task("promote")
    assert task.changed and head(dest, "prod") == seeded["digest"]
    [entry] = task["verified"]["verified"]
    assert {s["kind"] for s in entry["signatures"]} == {"signature", "attestation"}
    assert {s["source"] for s in entry["signatures"]} == {"tag_scheme"}
    assert entry["referrers"] == [{"artifact_type": SPDX, "digest": seeded["sbom"], "signed_by": None}]


# -- hostile cases: each blocks with zero write requests and a clear message -----------------------------
def test_hostile_signatures_block_promotion_and_copy_with_zero_writes(plain_registry, registry_factory,
                                                                      run_playbook):
    reg, other = plain_registry, registry_factory()
    pusher = RawPusher.for_registry(reg)
    trusted, attacker = Signer(), Signer()
    prod = pusher.push_image(REPO, make_image("prod"), tag="prod").digest
    cases: dict[str, str] = {}

    wrong_key = pusher.push_image(REPO, make_image("wrong-key"), tag="wrong-key").digest
    push_signature(pusher, REPO, wrong_key, attacker)
    cases["wrong-key"] = rf"{REPO}@{wrong_key} has no valid signature by the given keys \(tag " \
                         rf"{cosign_tag(wrong_key)} layer 1: not signed by any given key\)"

    other_digest = pusher.push_image(REPO, make_image("other-digest"), tag="other-digest").digest
    # a valid signature, of another image
    push_signature(pusher, REPO, other_digest, trusted, payload=simple_signing_payload(prod))
    cases["other-digest"] = rf"{REPO}@{other_digest} has no valid signature .*the signed payload names {prod}"

    truncated = pusher.push_image(REPO, make_image("truncated"), tag="truncated").digest
    payload = simple_signing_payload(truncated)
    push_signature(pusher, REPO, truncated, trusted, signature=base64.b64encode(trusted.sign(payload)[:-6]).decode())
    cases["truncated"] = rf"{REPO}@{truncated} has no valid signature .*not signed by any given key"

    forged = pusher.push_image(REPO, make_image("attacker"), tag="attacker")
    bundle = make_signed_bundle_referrer(forged.content, attacker)
    pusher.push_referrers(REPO, forged.digest, [bundle])
    cases["attacker"] = rf"{REPO}@{forged.digest} has no valid signature by the given keys \(referrer " \
                        rf"{bundle.digest} layer 1: not signed by any given key\)"

    verify = {"keys": [trusted.public_pem]}
    tasks = [{"name": name, "ignore_errors": True, "ocireg.registry.registry_tag": {
        "repository": f"{reg.host}/{REPO}", "source": f":{name}", "tags": ["prod"], "verify": verify}}
        for name in cases]
    # Across registries: the gate runs before the copy, so neither side sees a write.
    tasks.append({"name": "tag-across", "ignore_errors": True, "ocireg.registry.registry_tag": {
        "repository": f"{other.host}/{REPO}", "source": f"{reg.host}/{REPO}:attacker", "tags": ["prod"],
        "referrers": True, "verify": verify}})
    tasks.append({"name": "copy", "ignore_errors": True, "ocireg.registry.registry_copy": {
        "src": f"{reg.host}/{REPO}:wrong-key", "dest": f"{other.host}/{REPO}:prod", "referrers": True,
        "verify": verify}})

    marks = reg.mark(), other.mark()
    result = run_playbook(tasks=tasks)
    assert reg.writes_since(marks[0]) == [] and other.writes_since(marks[1]) == []
    for name, pattern in {**cases, "tag-across": cases["attacker"], "copy": cases["wrong-key"]}.items():
        task = result.task(name)
        assert task.failed, name
        message = task["msg"]
        assert "\n" not in message and message.startswith("verify: "), message
        assert re.search(pattern, message), (name, message)
    assert head(reg, "prod") == prod and head(other, "prod") is None


def test_check_mode_reports_verified_and_a_verified_promotion_moves_the_tag(plain_registry, run_playbook):
    pusher = RawPusher.for_registry(plain_registry)
    signer = Signer()
    image = pusher.push_image(REPO, make_image("good"), tag="rc").digest
    push_signature(pusher, REPO, image, signer)
    task = {"name": "promote", "ocireg.registry.registry_tag": {
        "repository": f"{plain_registry.host}/{REPO}", "source": ":rc", "tags": ["prod"],
        "verify": {"keys": [signer.public_pem]}}}
    mark = plain_registry.mark()
    checked = run_playbook(tasks=[task], check=True)
    assert checked.rc == 0, checked.explain()
    assert plain_registry.writes_since(mark) == []
    assert checked.task("promote")["verified"]["verified"][0]["signatures"][0]["manifest"] == \
        head(plain_registry, cosign_tag(image))
    applied = run_playbook(tasks=[task])
    assert applied.rc == 0, applied.explain()
    assert head(plain_registry, "prod") == image


# -- merging with what the destination has ---------------------------------------------------------------
def test_a_different_sig_at_the_destination_is_merged_not_overwritten(plain_registry, registry_factory):
    src, dest = plain_registry, registry_factory()
    build, mirror = Signer(), Signer()
    image = make_image("merged")
    src_pusher, dest_pusher = RawPusher.for_registry(src), RawPusher.for_registry(dest)
    digest = src_pusher.push(REPO, image, tag="v1").digest
    push_signature(src_pusher, REPO, digest, build)
    dest_pusher.push(REPO, image, tag=None)
    dest_sig = push_signature(dest_pusher, REPO, digest, mirror).digest  # the mirror's own signature, already there
    dest_layers = manifest_json(dest, cosign_tag(digest))["layers"]
    src_layers = manifest_json(src, cosign_tag(digest))["layers"]

    result = copy_image(client(src), "v1", client(dest), ["v1"], CopyOptions(referrers=True))
    [entry] = result.attached
    assert entry["action"] == "merged" and entry["tag"] == cosign_tag(digest)
    merged = manifest_json(dest, cosign_tag(digest))
    assert merged["layers"] == dest_layers + src_layers  # the destination's first, then the source's
    assert head(dest, cosign_tag(digest)) == entry["digest"] != dest_sig
    # cosign's config lists one diff_id per layer: it follows the merge.
    config = json.loads(RawPuller.for_registry(dest).blob(REPO, merged["config"]["digest"]))
    assert config["rootfs"]["diff_ids"] == [layer["digest"] for layer in merged["layers"]]
    # Both signatures verify at the destination, each with its own key.
    for signer in (build, mirror):
        assert make_verifier({"keys": [signer.public_pem]})(client(dest), digest)

    mark = dest.mark()
    again = copy_image(client(src), "v1", client(dest), ["v1"], CopyOptions(referrers=True))
    assert not again.changed and again.attached == [{"tag": cosign_tag(digest), "digest": entry["digest"],
                                                     "action": "present"}]
    assert dest.writes_since(mark) == []


def test_mirror_with_verify_skips_an_unsigned_tag_and_copies_the_signed_one(plain_registry, registry_factory):
    src, dest = plain_registry, registry_factory()
    pusher = RawPusher.for_registry(src)
    signer = Signer()
    signed = pusher.push_image(REPO, make_image("signed"), tag="v1").digest
    push_signature(pusher, REPO, signed, signer)
    pusher.push_image(REPO, make_image("unsigned"), tag="v2")
    options = SyncOptions(referrers=True, verify=make_verifier({"keys": [signer.public_pem]}))
    summary = mirror_tags(client(src), client(dest), [".*"], options)
    assert list(summary.tags) == ["v1"] and list(summary.failed) == ["v2"]
    assert summary.failed["v2"]["type"] == "VerificationError"
    assert "has no signature" in summary.failed["v2"]["message"]
    assert head(dest, "v1") == signed and head(dest, cosign_tag(signed)) == head(src, cosign_tag(signed))
    assert head(dest, "v2") is None


# -- local layouts: signatures as named entries, so they travel in a bundle -------------------------------
def test_signatures_travel_through_an_oci_layout(plain_registry, registry_factory, tmp_path: Path):
    src, dest = plain_registry, registry_factory()
    signer = Signer()
    seeded = seed_signed(RawPusher.for_registry(src), signer)
    layout = tmp_path / "bundle"

    def open_repository(reference: Reference, _side: str):
        return Registry(reference.registry).repository(reference.repository)

    options = CopyOptions(referrers=True)
    run_transfer(f"{src.host}/{REPO}:v1", f"oci:{layout}", options, open_repository)
    names = {entry.get("annotations", {}).get("org.opencontainers.image.ref.name")
             for entry in json.loads((layout / "index.json").read_text())["manifests"]}
    assert {f"{REPO}:v1", f"{REPO}:{cosign_tag(seeded['digest'])}",
            f"{REPO}:{cosign_tag(seeded['digest'], 'att')}"} <= names

    # The layout named by its path alone still holds one image: the attachments are not images of their own.
    verify = make_verifier({"keys": [signer.public_pem], "require": ["signature", "attestation"]})
    back = run_transfer(f"oci:{layout}", f"{dest.host}/{REPO}:v1", CopyOptions(referrers=True, verify=verify),
                        open_repository)
    assert back.copy is not None and back.copy.verified["digest"] == seeded["digest"]
    for reference in attached_refs(seeded):
        assert head(src, reference) is not None and head(dest, reference) == head(src, reference), reference


# -- retention: .att, .sbom and OCI 1.1 bundles follow their subject --------------------------------------
def test_prune_keeps_and_deletes_att_sbom_and_bundles_with_their_subject(plain_registry, run_playbook):
    pusher = RawPusher.for_registry(plain_registry)
    signer = Signer()
    seeded: dict[str, dict[str, str]] = {}
    for key, tag in (("kept", "v1"), ("old", "dev-old")):
        image = pusher.push_image(REPO, make_image(key), tag=tag)
        att = make_att_manifest([dsse_envelope(in_toto_statement(image.digest, predicate_type=SLSA), signer)])
        sbom = make_image(f"{key}-sbom", layers=[Layer(key.encode(), "text/spdx+json")])
        bundle = make_signed_bundle_referrer(image.content, signer)
        seeded[key] = {
            "digest": image.digest,
            "att": pusher.push(REPO, att, tag=cosign_tag(image.digest, "att")).digest,
            "sbom": pusher.push(REPO, sbom, tag=cosign_tag(image.digest, "sbom")).digest,
            "bundle": bundle.digest,
            "fallback": pusher.push_referrers(REPO, image.digest, [bundle]).digest,
        }
    task = {"name": "prune", "register": "out", "ocireg.registry.registry_prune": {
        "repository": f"{plain_registry.host}/{REPO}",
        "rules": [{"name": "releases", "action": "keep", "regex": ["v[0-9].*"]},
                  {"name": "old-dev", "action": "delete", "prefix": ["dev-"], "older_than": "30d"}]}}
    result = run_playbook(tasks=[task])
    assert result.rc == 0, result.explain()
    deleted = {a["digest"] for a in result.task("prune")["applied"] if a["action"] == "delete"}
    old, kept = seeded["old"], seeded["kept"]
    assert deleted == set(old.values())
    for digest in old.values():
        assert head(plain_registry, digest) is None
    for suffix in ("att", "sbom"):
        assert head(plain_registry, cosign_tag(old["digest"], suffix)) is None
        assert head(plain_registry, cosign_tag(kept["digest"], suffix)) == kept[suffix]
    assert head(plain_registry, referrers_tag(kept["digest"])) == kept["fallback"]
    assert head(plain_registry, kept["bundle"]) == kept["bundle"]
    # The bundle still verifies at its subject after the prune.
    assert make_verifier({"keys": [signer.public_pem]})(client(plain_registry), kept["digest"])
