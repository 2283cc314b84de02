"""registry_prune's ``in_use`` and the retention role's ``retention_in_use_sources`` on a real Distribution 2.8.

What runs is never deleted: a digest in use survives a policy that deletes everything old, whether it is named
by a tag or by a digest, with the children of an index in use and the signature and SBOM of an image in use.
The k8s_info output the role recipe reads is recorded by hand (tests/fixtures/k8s_info: there is no cluster
here); its placeholder host and digests are replaced with this registry's. Images are seeded and checked with
the rig's raw HTTP clients; requests are counted in the registry's access log.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from tests.rig.flavours import RigRegistry
from tests.rig.images import RawPuller, RawPusher, cosign_tag, make_artifact, make_image, make_index, referrers_tag

REPO = "shop/web"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "k8s_info"


def prune_task(server: RigRegistry, name: str = "prune", **options: Any) -> dict[str, Any]:
    """One registry_prune task over ``REPO`` deleting every image older than 30 days (all seeded ones are):
    without ``in_use`` it would empty the repository, which it is allowed to."""
    return {"name": name, "register": "out",
            "ocireg.registry.registry_prune": {"repository": f"{server.host}/{REPO}", "older_than": "30d",
                                               "plan_detail": "full", "allow_empty_repository": True, **options}}


def seed(registry: RigRegistry) -> dict[str, Any]:
    """Old images, each in use a different way, and one that is not in use."""
    pusher = RawPusher.for_registry(registry)
    d: dict[str, Any] = {}
    d["by_tag"] = pusher.push_image(REPO, make_image("by-tag"), tag="v1").digest
    d["by_digest"] = pusher.push_image(REPO, make_image("by-digest"), tag="build-7").digest
    amd64, arm64 = make_image("amd64", platform="linux/amd64"), make_image("arm64", platform="linux/arm64/v8")
    d["index"] = pusher.push(REPO, make_index([amd64, arm64]), tag="multi-1").digest
    d["children"] = [amd64.digest, arm64.digest]
    signed = pusher.push_image(REPO, make_image("signed"), tag="signed-1")
    sbom = make_artifact(signed.content)
    d["signed"] = signed.digest
    d["fallback"] = pusher.push_referrers(REPO, signed.digest, [sbom]).digest
    d["sbom"] = sbom.digest
    d["signature"] = pusher.push_cosign_signature(REPO, signed.content).digest
    d["unused"] = pusher.push_image(REPO, make_image("unused"), tag="dev-1").digest
    return d


def in_use_of(registry: RigRegistry, d: dict[str, Any]) -> list[str]:
    return [f"{registry.host}/{REPO}:v1",                              # a tag
            f"docker-pullable://{registry.host}/{REPO}@{d['by_digest']}",  # a Pod's imageID
            f"{registry.host}/{REPO}@{d['index']}",                    # an index: its children stay with it
            d["signed"],                                               # a bare digest: its referrers stay
            "registry.example.com/shop/web:v1",                        # another registry: counted, ignored
            f"{registry.host}/shop/other:v1"]                          # another repository: counted, ignored


def requests(registry: RigRegistry, mark: int) -> Counter:
    return Counter((r.method, r.path.split("?", 1)[0]) for r in registry.requests_since(mark))


def test_what_runs_survives_at_no_extra_request(plain_registry: RigRegistry, run_playbook) -> None:
    d = seed(plain_registry)
    in_use = in_use_of(plain_registry, d)

    # The floor: the same check-mode prune with and without in_use sends the very same requests (the tags
    # are resolved from the snapshot's own reads: nothing per in-use tag, nothing per repository tag).
    mark = plain_registry.mark()
    blind = run_playbook(tasks=[prune_task(plain_registry, name="blind")], check=True)
    assert blind.rc == 0, blind.explain()
    without = requests(plain_registry, mark)
    blind_plan = {e["digest"]: e["action"] for e in blind.task("blind")["plan"]}
    assert set(blind_plan.values()) == {"delete"}  # everything would go without in_use
    mark = plain_registry.mark()
    checked = run_playbook(tasks=[prune_task(plain_registry, in_use=in_use)], check=True)
    assert checked.rc == 0, checked.explain()
    assert requests(plain_registry, mark) == without
    assert plain_registry.writes_since(mark) == []

    done = run_playbook(tasks=[prune_task(plain_registry, in_use=in_use)])
    assert done.rc == 0, done.explain()
    out = done.task("prune")
    assert out["plan"] == checked.task("prune")["plan"]
    actions = {e["digest"]: e["action"] for e in out["plan"]}
    kept = {d["by_tag"], d["by_digest"], d["index"], *d["children"], d["signed"], d["sbom"], d["fallback"],
            d["signature"]}
    assert {digest for digest, action in actions.items() if action == "keep"} == kept
    assert actions[d["unused"]] == "delete"
    puller = RawPuller.for_registry(plain_registry)
    assert sorted(puller.tags(REPO)) == sorted(["v1", "build-7", "multi-1", "signed-1", referrers_tag(d["signed"]),
                                                cosign_tag(d["signed"])])
    for digest in kept:
        assert puller.digest_of(REPO, digest) == digest
    assert puller.digest_of(REPO, d["unused"]) is None
    # The plan says why each stays, and the skips say which rule was overruled.
    why = {e["digest"]: e["in_use"] for e in out["plan"]}
    assert why[d["by_tag"]] == [f"{plain_registry.host}/{REPO}:v1"]
    assert why[d["by_digest"]] == [f"{plain_registry.host}/{REPO}@{d['by_digest']}"]
    assert why[d["children"][0]] == why[d["index"]] == [f"{plain_registry.host}/{REPO}@{d['index']}"]
    assert why[d["sbom"]] == why[d["signature"]] == [d["signed"]]
    assert why[d["unused"]] == []
    skipped = {s["digest"]: s for s in out["skipped_items"] if s["reason"] == "in_use"}
    assert set(skipped) == {d["by_tag"], d["by_digest"], d["index"], d["signed"]}
    assert "but it is in use" in skipped[d["by_tag"]]["message"]
    assert out["in_use"] == {"references": 6, "protected": 4, "unresolved": [], "other_registry": 1,
                             "other_repository": 1, "not_seen": 0}


def test_an_in_use_tag_that_no_longer_resolves_is_a_warning_and_pruning_goes_on(
        plain_registry: RigRegistry, run_playbook) -> None:
    d = seed(plain_registry)
    gone = f"{plain_registry.host}/{REPO}:v0"
    done = run_playbook(tasks=[prune_task(plain_registry, in_use=[gone, f"{plain_registry.host}/{REPO}:v1"])])
    assert done.rc == 0, done.explain()
    out = done.task("prune")
    assert out["in_use"]["unresolved"] == [gone]
    (warning,) = [w for w in out.get("warnings", []) if w.startswith("in_use:")]
    assert warning.startswith(f"in_use: 1 tag(s) no longer resolve in the registry, so the image that runs under "
                              f"them is unknown and not protected: {gone}.")
    assert "\n" not in warning
    assert RawPuller.for_registry(plain_registry).digest_of(REPO, "v1") == d["by_tag"]
    assert RawPuller.for_registry(plain_registry).digest_of(REPO, d["unused"]) is None


def test_misuse_is_refused_in_one_line_before_any_request(plain_registry: RigRegistry, run_playbook) -> None:
    seed(plain_registry)
    cases = {
        "a string": (f"{plain_registry.host}/{REPO}:v1", "in_use is a str, not a list"),
        "k8s_info as it is": ({"resources": []}, "in_use is a dict, not a list"),
        "a pod in the list": ([{"kind": "Pod"}], "in_use[0] is a dict, not a reference"),
        "a bad reference": (["shop/Web:v1"], "in_use[0]: 'shop/Web:v1' is not a valid image reference"),
        # Through the filter, the refusal names the Pod and container it came from, not a flattened index.
        "a bad image in a pod": (
            "{{ [{'resources': [{'kind': 'Pod', 'metadata': {'namespace': 'shop', 'name': 'web-1'}, 'spec': "
            "{'containers': [{'name': 'app', 'image': 'shop/Web:v1'}]}}]}] | ocireg.registry.images_in_use }}",
            "images_in_use[0].resources[0].spec.containers[0].image (Pod shop/web-1, container app) is no image "
            "reference: 'shop/Web:v1' is not a valid image reference"),
    }
    tasks = [{**prune_task(plain_registry, name=name, in_use=value), "ignore_errors": True}
             for name, (value, _says) in cases.items()]
    mark = plain_registry.mark()
    result = run_playbook(tasks=tasks)
    assert result.rc == 0, result.explain()
    assert plain_registry.requests_since(mark) == []
    for name, (_value, says) in cases.items():
        failed = result.task(name)
        assert failed.failed and says in failed["msg"], (name, failed["msg"])
        assert "\n" not in failed["msg"]
        if name == "a bad image in a pod":  # the filter refused it: the module never saw a flattened list
            assert "images_in_use[" in failed["msg"] and " in_use[" not in failed["msg"], failed["msg"]
            continue
        assert failed["msg"].startswith(says), (name, failed["msg"])
        if name != "a bad reference":
            assert "ocireg.registry.images_in_use" in failed["msg"]


def recorded(name: str, host: str, digests: dict[str, str]) -> Any:
    """A recorded k8s_info output with its placeholder host and digests replaced by this registry's."""
    text = (FIXTURES / name).read_text().replace("registry.example.com:5000", host)
    for placeholder, digest in digests.items():
        text = text.replace(placeholder, digest)
    return yaml.safe_load(text)


def test_the_role_recipe_with_recorded_k8s_info(plain_registry: RigRegistry, run_playbook) -> None:
    pusher = RawPusher.for_registry(plain_registry)
    web = pusher.push_image("shop/web", make_image("web-v1"), tag="v1").digest
    pusher.push_image("shop/web", make_image("web-dev"), tag="dev-9")
    # The worker runs by digest; its tag 2.3 is gone (only build-77 names the image now).
    worker = pusher.push_image("shop/worker", make_image("worker-2.3"), tag="build-77").digest
    pusher.push_image("shop/worker", make_image("worker-old"), tag="build-76")
    tools = pusher.push_image("shop/tools", make_image("tools-2026.11"), tag="2026.11").digest
    pusher.push_image("shop/tools", make_image("tools-2026.10"), tag="2026.10")
    digests = {"sha256:" + "1" * 64: web, "sha256:" + "2" * 64: worker, "sha256:" + "3" * 64: tools}
    play = {"name": "retention", "hosts": "localhost", "gather_facts": False,
            "roles": [{"role": "ocireg.registry.retention", "vars": {
                "retention_in_use_sources": [recorded("pods.yml", plain_registry.host, digests),
                                             recorded("workloads.yml", plain_registry.host, digests)],
                "retention_policies": [{"name": "shop", "registry": plain_registry.host,
                                        "repositories": ["shop/web", "shop/worker", "shop/tools"],
                                        "older_than": "30d", "plan_detail": "full"}]}}]}

    done = run_playbook(play)
    assert done.rc == 0, done.explain()
    puller = RawPuller.for_registry(plain_registry)
    assert sorted(puller.tags("shop/web")) == ["v1"]
    assert sorted(puller.tags("shop/worker")) == ["build-77"]
    assert sorted(puller.tags("shop/tools")) == ["2026.11"]
    (result,) = [item for item in done.items if item.action.endswith("registry_prune")]
    # worker-0 pairs its gone tag with the digest it runs (see the next test); the StatefulSet's
    # template still names worker:2.3, and a new replica pulling it would fail: that one is said.
    assert result["in_use"]["unresolved"] == [f"{plain_registry.host}/shop/worker:2.3"]
    assert result["in_use"]["other_registry"] == 3  # nginx and busybox as the Pods run them, a template's nginx
    (line,) = done.task("Show the summary")["msg"]
    assert "in use: 3 digests kept, 1 tag no longer resolves" in line
    assert "delete 3" in line


def test_a_pod_whose_tag_is_gone_is_protected_by_the_digest_it_runs(
        plain_registry: RigRegistry, run_playbook) -> None:
    """worker-0 was started from shop/worker:2.3, a tag deleted since; its status names the digest it runs.
    The filter gives shop/worker:2.3@digest: the digest is kept, the tag is not looked up nor warned about."""
    pusher = RawPusher.for_registry(plain_registry)
    worker = pusher.push_image("shop/worker", make_image("worker-2.3"), tag="build-77").digest
    old = pusher.push_image("shop/worker", make_image("worker-old"), tag="build-76").digest
    pods = recorded("pods.yml", plain_registry.host, {"sha256:" + "2" * 64: worker})
    task = {"name": "prune", "register": "out", "vars": {"pods": pods},
            "ocireg.registry.registry_prune": {
                "repository": f"{plain_registry.host}/shop/worker", "older_than": "30d", "plan_detail": "full",
                "allow_empty_repository": True, "in_use": "{{ pods | ocireg.registry.images_in_use }}"}}

    done = run_playbook(tasks=[task])
    assert done.rc == 0, done.explain()
    out = done.task("prune")
    assert out["in_use"]["unresolved"] == []
    assert [w for w in out.get("warnings", []) if w.startswith("in_use:")] == []
    puller = RawPuller.for_registry(plain_registry)
    assert puller.digest_of("shop/worker", worker) == worker
    assert puller.digest_of("shop/worker", old) is None
    assert sorted(puller.tags("shop/worker")) == ["build-77"]
