"""registry_prune's ``unsigned`` rules against a real Distribution 2.8 registry.

One repository holds an old unsigned image, an old one signed by the given key (cosign tag scheme),
one signed by another key, one signed keyless (our own Sigstore, tests/rig/keyless.py), a young
unsigned one, and an old unsigned release a keep rule holds. The unsigned rule condemns only the
old unsigned images (the wrong key counts as unsigned), the grace spares the young one without a
check, and the keep rule's image costs no check either: the extra requests are counted, digest by
digest, against a prune without the rule.
"""
from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import Registry
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import InvalidInputError
from ansible_collections.ocireg.registry.plugins.module_utils._model.tag_schemes import cosign_tag
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.policy import build_policy
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.prune import prune

from tests.rig.flavours import RigRegistry
from tests.rig.images import RawPusher, make_image
from tests.rig.keyless import GITHUB_ISSUER, RELEASE_WORKFLOW, PrivateSigstore, push_keyless_signature
from tests.rig.signing import Signer, push_signature

REPO = "team/app"
KEEP_RELEASES = {"name": "releases", "action": "keep", "prefix": ["release-"]}


def created(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def sigstore() -> PrivateSigstore:
    return PrivateSigstore()


def seed(registry: RigRegistry, signer: Signer, sigstore: PrivateSigstore) -> dict[str, str]:
    pusher = RawPusher.for_registry(registry)
    d = {name: pusher.push(REPO, make_image(name, created=created(age)), tag=tag).digest
         for name, tag, age in (("unsigned", "old-unsigned", 30), ("signed", "old-signed", 30),
                                ("wrong_key", "old-wrong-key", 30), ("keyless", "old-keyless", 30),
                                ("young", "young", 2), ("release", "release-1", 90))}
    push_signature(pusher, REPO, d["signed"], signer)
    push_signature(pusher, REPO, d["wrong_key"], Signer())
    push_keyless_signature(pusher, REPO, d["keyless"], sigstore)
    return d


def unsigned_rule(verify: dict[str, Any], grace: str = "7d") -> dict[str, Any]:
    return {"name": "unsigned", "action": "delete", "unsigned": {"verify": verify, "grace": grace}}


def requests(registry: RigRegistry, mark: int) -> Counter:
    return Counter((r.method, r.path.split("?", 1)[0]) for r in registry.requests_since(mark))


def test_unsigned_past_grace_is_planned_signed_and_young_are_not(plain_registry: RigRegistry, sigstore, tmp_path):
    signer = Signer()
    d = seed(plain_registry, signer, sigstore)
    root = str(sigstore.write_root(tmp_path / "trusted_root.json"))
    verify = {"keys": [signer.public_pem], "keyless": [{"identity": RELEASE_WORKFLOW, "issuer": GITHUB_ISSUER}],
              "trusted_root": root}

    def run(rules: list[dict[str, Any]]):
        mark = plain_registry.mark()  # a fresh client each time: nothing learnt by the first run is reused
        outcome = prune(Registry(plain_registry.host), build_policy({"rules": rules}), [REPO], check_mode=True)
        assert plain_registry.writes_since(mark) == []  # check mode writes nothing, signature checks included
        return outcome, requests(plain_registry, mark)

    base, floor = run([KEEP_RELEASES])
    tags_before = base.plan.tags_before[f"{plain_registry.host}/{REPO}"]
    outcome, sent = run([KEEP_RELEASES, unsigned_rule(verify)])
    result = outcome.to_result("full", diff=False)
    actions = {entry["digest"]: entry["action"] for entry in result["plan"]}
    assert {name: actions[digest] for name, digest in d.items()} == {
        "unsigned": "delete", "wrong_key": "delete", "signed": "keep", "keyless": "keep", "young": "keep",
        "release": "keep"}

    why = {entry["digest"]: entry["unsigned"] for entry in result["plan"]}
    assert why[d["unsigned"]]["reason"] == "unsigned" and why[d["unsigned"]]["rule"] == "unsigned"
    assert why[d["unsigned"]]["grace"] == "7d"
    assert f"{REPO}@{d['unsigned']} has no signature" in why[d["unsigned"]]["checked"]
    # A signature by another key is no signature: the plan says it was found and refused.
    assert f"{REPO}@{d['wrong_key']} has no valid signature by" in why[d["wrong_key"]]["checked"]
    assert why[d["signed"]] is None and why[d["keyless"]] is None

    [grace] = [s for s in result["skipped_items"] if s["reason"] == "unsigned_grace"]
    assert grace["digest"] == d["young"] and grace["tags"] == ["young"]
    assert "within its grace (7d); its signatures were not checked; kept" in grace["message"]

    # The rule's cost: the requests beyond the plain prune are the signature checks of the four candidates,
    # and none names the young image or the kept release.
    extra = sent - floor
    assert floor - sent == Counter(), floor - sent  # everything the plain prune sends, it still sends
    checked = ("unsigned", "signed", "wrong_key", "keyless")
    spared = ("young", "release")
    paths = " ".join(path for _method, path in extra.elements())
    for name in spared:
        assert d[name].split(":", 1)[1] not in paths, name
    # What the snapshot read is not read again: no image manifest, no sha256-<hex> fallback index, no .att
    # tag (the tag list says there is none), no .sig tag where the list has none. Per checked digest that
    # has a .sig tag: its manifest (by the digest the tag list gave) and one blob per signature layer.
    with_sig = ("signed", "wrong_key", "keyless")
    sig_manifests = {f"/v2/{REPO}/manifests/{tags_before[cosign_tag(d[name], 'sig')]}" for name in with_sig}
    assert {path for _method, path in extra if "/manifests/" in path} == sig_manifests, extra
    assert all("/manifests/" in path or "/blobs/" in path for _method, path in extra), extra
    assert sum(extra.values()) == 2 * len(with_sig), extra
    print(f"\nunsigned rule: {sum(floor.values())} requests without it, {sum(sent.values())} with it, "
          f"{sum(extra.values())} for {len(checked)} checked digests")


def test_a_repository_where_everything_is_kept_costs_no_check(plain_registry: RigRegistry, sigstore):
    seed(plain_registry, Signer(), sigstore)
    signer = Signer()

    def sent(rules: list[dict[str, Any]]) -> Counter:
        mark = plain_registry.mark()
        prune(Registry(plain_registry.host), build_policy({"rules": rules}), [REPO], check_mode=True)
        return requests(plain_registry, mark)

    keep_all = {"name": "all", "action": "keep"}
    assert sent([keep_all, unsigned_rule({"keys": [signer.public_pem]})]) == sent([keep_all])


def test_a_real_run_deletes_the_unsigned_image_and_keeps_the_signed(plain_registry: RigRegistry, sigstore,
                                                                    run_playbook, tmp_path):
    signer = Signer()
    d = seed(plain_registry, signer, sigstore)
    key = tmp_path / "cosign.pub"
    key.write_text(signer.public_pem)
    rules = [KEEP_RELEASES, unsigned_rule({"keys": [str(key)]})]
    task = {"name": "prune", "register": "out",
            "ocireg.registry.registry_prune": {"repository": f"{plain_registry.host}/{REPO}", "rules": rules}}
    mark = plain_registry.mark()
    checked = run_playbook(tasks=[task], check=True)
    assert checked.rc == 0, checked.explain()
    assert plain_registry.writes_since(mark) == []
    real = run_playbook(tasks=[task])
    assert real.rc == 0, real.explain()
    done = real.task("prune")
    assert done["plan"] == checked.task("prune")["plan"]
    deleted = {a["digest"] for a in done["applied"] if a["action"] == "delete"}
    # keyless is unsigned here: this rule gives no keyless identity. The signed image's .sig stays with it.
    assert {d["unsigned"], d["wrong_key"], d["keyless"]} <= deleted
    assert not deleted & {d["signed"], d["young"], d["release"]}
    # The compiled policy shows the block as written.
    assert done["policy"]["rules"][1]["unsigned"] == {"verify": {"keys": [str(key)]}, "grace": "7d"}


def test_misuse_is_refused_in_one_line_before_any_request(plain_registry: RigRegistry, run_playbook, tmp_path):
    cases = {
        "bad duration": (unsigned_rule({"keys": ["/k.pub"]}, grace="a week"),
                         "rule 'unsigned' (rules[0]): unsigned.grace "),
        "verify asks nothing": (unsigned_rule({"require": []}),
                                "rule 'unsigned' (rules[0]): unsigned.verify asks for nothing"),
        "no key": (unsigned_rule({"require": ["signature"]}), "rule 'unsigned' (rules[0]): unsigned.verify needs keys"),
        "missing key file": (unsigned_rule({"keys": [str(tmp_path / "absent.pub")]}),
                             f"verify.keys[0] ({tmp_path / 'absent.pub'}) cannot be read"),
        "no grace": ({"name": "unsigned", "action": "delete", "unsigned": {"verify": {"keys": ["/k.pub"]}}},
                     "rule 'unsigned' (rules[0]): unsigned needs grace"),
    }
    tasks = [{"name": name, "register": "out", "ignore_errors": True,
              "ocireg.registry.registry_prune": {"repository": f"{plain_registry.host}/{REPO}", "rules": [rule]}}
             for name, (rule, _says) in cases.items()]
    mark = plain_registry.mark()
    result = run_playbook(tasks=tasks)
    assert result.rc == 0, result.explain()
    assert plain_registry.requests_since(mark) == []
    for name, (_rule, says) in cases.items():
        failed = result.task(name)
        assert failed.failed and says in failed["msg"], (name, failed["msg"])
        assert "\n" not in failed["msg"]
    # The same refusals from the Python API, before a registry is even built.
    with pytest.raises(InvalidInputError):
        build_policy({"rules": [cases["bad duration"][0]]})
