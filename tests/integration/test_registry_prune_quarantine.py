"""registry_prune's ``quarantine`` (an undo window) on a real Distribution 2.8.

Each image a prune deletes is first copied, with its cosign signature and its referrers, to an OCI layout,
an oci-archive or a holding repository, and read back; the recipe of docs/guide_retention.md ("How to undo
a prune") then puts it back byte-exact and its signature verifies again. Check mode writes nothing anywhere;
a target that cannot be written keeps every image and says so in one line; misuse is refused in one line.
Requests are counted in the registry's access log.
"""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import (
    Registry,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.check import (
    verify_image,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.verify.policy import (
    parse_verify,
)

from tests.rig.flavours import RigRegistry
from tests.rig.images import RawPuller, RawPusher, cosign_tag, make_artifact, make_image, referrers_tag
from tests.rig.playbook import guide_recipe
from tests.rig.signing import Signer, push_signature

REPO = "shop/web"
GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guide_retention.md"
RECIPE_MARK = "<!-- recipe: restore from quarantine -->"


def prune_task(server: RigRegistry, name: str = "prune", repository: str = REPO, **options: Any) -> dict[str, Any]:
    """Delete the ``old-*`` tags (every seeded image is older than 30 days); ``keep`` stays."""
    return {"name": name, "register": "out", "ignore_errors": True,
            "ocireg.registry.registry_prune": {"repository": f"{server.host}/{repository}", "match": ["old-.*"],
                                               "older_than": "30d", "plan_detail": "full", **options}}


def seed(registry: RigRegistry, signer: Signer, repository: str = REPO) -> dict[str, Any]:
    """A signed image with an SBOM referrer (condemned), a plain condemned image, and a kept one."""
    pusher = RawPusher.for_registry(registry)
    d: dict[str, Any] = {}
    signed = pusher.push_image(repository, make_image("signed"), tag="old-1")
    d["signed"] = signed.digest
    d["signature"] = push_signature(pusher, repository, signed.digest, signer).digest
    sbom = make_artifact(signed.content)
    d["sbom"] = sbom.digest
    d["fallback"] = pusher.push_referrers(repository, signed.digest, [sbom]).digest
    d["plain"] = pusher.push_image(repository, make_image("plain"), tag="old-2").digest
    d["kept"] = pusher.push_image(repository, make_image("kept"), tag="keep").digest
    return d


def raw_manifests(registry: RigRegistry, d: dict[str, Any], repository: str = REPO) -> dict[str, bytes]:
    puller = RawPuller.for_registry(registry)
    return {key: puller.manifest(repository, d[key])[0] for key in ("signed", "signature", "sbom", "plain")}


def deletions(result: dict[str, Any]) -> dict[str, Any]:
    return {entry["digest"]: entry["quarantined"] for entry in result["applied"] if entry["action"] == "delete"}


def recipe() -> str:
    return guide_recipe(GUIDE, RECIPE_MARK)


def test_quarantine_to_a_layout_then_the_guides_recipe_restores_byte_exact(plain_registry, run_playbook, tmp_path):
    signer = Signer()
    d = seed(plain_registry, signer)
    before = raw_manifests(plain_registry, d)
    layout = tmp_path / "backups" / "prune"
    dest = f"oci:{layout}"

    # Check mode: where each would go, and nothing written anywhere.
    mark = plain_registry.mark()
    checked = run_playbook(tasks=[prune_task(plain_registry, quarantine={"dest": dest})], check=True)
    assert checked.rc == 0, checked.explain()
    assert plain_registry.writes_since(mark) == []
    assert not layout.exists() and not (tmp_path / "backups").exists()
    would = deletions(checked.task("prune"))
    assert would[d["signed"]] == f"{dest}:{REPO}:old-1"
    assert would[d["plain"]] == f"{dest}:{REPO}:old-2"
    assert would[d["signature"]] == f"{dest}@{d['signature']}"

    result = run_playbook(tasks=[prune_task(plain_registry, quarantine={"dest": dest})])
    assert result.rc == 0, result.explain()
    out = result.task("prune")
    assert out.status != "failed", out
    went = deletions(out)
    assert went == would
    assert set(went) >= {d["signed"], d["signature"], d["sbom"], d["plain"]}
    puller = RawPuller.for_registry(plain_registry)
    for key in ("signed", "signature", "sbom", "plain"):
        assert puller.digest_of(REPO, d[key]) is None, key
    assert puller.digest_of(REPO, "keep") == d["kept"]

    # The recipe, as written, once per image.
    for tag in ("old-1", "old-2"):
        restored = run_playbook(recipe(), extra_vars={"registry": plain_registry.host, "quarantine": str(layout),
                                                      "image": f"{REPO}:{tag}"})
        assert restored.rc == 0, restored.explain()
    assert raw_manifests(plain_registry, d) == before  # the same bytes, so the same digests
    assert puller.digest_of(REPO, "old-1") == d["signed"]
    assert puller.digest_of(REPO, "old-2") == d["plain"]
    assert puller.digest_of(REPO, cosign_tag(d["signed"])) == d["signature"]
    fallback = puller.manifest(REPO, referrers_tag(d["signed"]))[0]
    assert d["sbom"] in fallback.decode()
    repo = Registry(plain_registry.host).repository(REPO)
    proof = verify_image(repo, d["signed"], parse_verify({"keys": [signer.public_pem]}))
    assert proof["verified"][0]["signatures"], proof


def requests(registry: RigRegistry, mark: int) -> Counter:
    return Counter((r.method, r.path.split("?", 1)[0]) for r in registry.requests_since(mark))


def test_quarantine_to_a_holding_repository_and_what_it_costs(plain_registry, run_playbook):
    signer = Signer()
    # The same images in two repositories: one pruned without quarantine, one with.
    plain = seed(plain_registry, signer, "shop/plain")
    d = seed(plain_registry, signer)
    # ECDSA signatures differ run to run; everything else is the same bytes.
    assert {k: v for k, v in plain.items() if k != "signature"} == {k: v for k, v in d.items() if k != "signature"}
    mark = plain_registry.mark()
    bare = run_playbook(tasks=[prune_task(plain_registry, repository="shop/plain")])
    assert bare.rc == 0, bare.explain()
    without = requests(plain_registry, mark)

    holding = f"{plain_registry.host}/holding/web"
    mark = plain_registry.mark()
    result = run_playbook(tasks=[prune_task(plain_registry, quarantine={"dest": holding})])
    assert result.rc == 0, result.explain()
    out = result.task("prune")
    assert out.status != "failed", out
    went = deletions(out)
    assert went[d["signed"]] == f"{holding}:old-1"
    assert went[d["plain"]] == f"{holding}:old-2"
    puller = RawPuller.for_registry(plain_registry)
    assert puller.digest_of("holding/web", "old-1") == d["signed"]
    assert puller.digest_of("holding/web", "old-2") == d["plain"]
    assert puller.digest_of("holding/web", cosign_tag(d["signed"])) == d["signature"]
    assert puller.digest_of("holding/web", d["sbom"]) == d["sbom"]
    for key in ("signed", "signature", "sbom", "plain"):
        assert puller.digest_of(REPO, d[key]) is None, key

    # The cost: what the same prune sends on the source, plus one tag list (the checks run after the copy),
    # plus the copy into the holding repository and its read-back.
    sent = requests(plain_registry, mark)
    # Digests are left out: the signatures differ, and so may the digest the plan's referrers probe picks.
    without = shapes(without)
    on_source = shapes(Counter({(m, p.replace(f"/v2/{REPO}/", "/v2/shop/plain/")): n
                                for (m, p), n in sent.items() if p.startswith(f"/v2/{REPO}/")}))
    extra_source = on_source - without
    assert without - on_source == Counter()  # everything the prune sends, it still sends
    source = "/v2/shop/plain"
    # One tag list: the checks before the first DELETE run after the copy. The rest is the copy engine reading
    # the two images with their referrers (a GET per manifest, a HEAD of each digest and of its cosign tags).
    assert dict(extra_source) == {
        ("GET", f"{source}/tags/list"): 1,
        ("GET", f"{source}/manifests/<digest>"): 7,
        ("HEAD", f"{source}/manifests/<digest>"): 6,
        ("HEAD", f"{source}/manifests/<digest>.sig"): 4,
        ("HEAD", f"{source}/manifests/<digest>.att"): 4,
        ("HEAD", f"{source}/manifests/<digest>.sbom"): 4,
    }
    holding_sent = shapes(Counter({key: n for key, n in sent.items() if key[1].startswith("/v2/holding/web/")}))
    # Blobs are mounted from the source repository (same registry: no blob is read or uploaded), five
    # manifests are written, and the four deleted digests are read back (a HEAD each) before their DELETE.
    target = "/v2/holding/web"
    assert dict(holding_sent) == {
        ("HEAD", f"{target}/blobs/<digest>"): 8,
        ("POST", f"{target}/blobs/uploads/"): 8,
        ("HEAD", f"{target}/manifests/<digest>"): 8,
        ("GET", f"{target}/manifests/<digest>"): 1,
        ("HEAD", f"{target}/manifests/<digest>.sig"): 2,
        ("HEAD", f"{target}/manifests/old-1"): 2,
        ("HEAD", f"{target}/manifests/old-2"): 2,
        ("PUT", f"{target}/manifests/<digest>"): 2,
        ("PUT", f"{target}/manifests/<digest>.sig"): 1,
        ("PUT", f"{target}/manifests/old-1"): 1,
        ("PUT", f"{target}/manifests/old-2"): 1,
    }
    assert sum(sent.values()) - sum(without.values()) == 26 + 36  # docs/performance.md: 62 for this shape


def shapes(sent: Counter) -> Counter:
    """Requests by method and path with every digest (and digest-named tag) written as <digest>."""
    out: Counter = Counter()
    for (method, path), n in sent.items():
        out[(method, re.sub(r"sha256[:-][0-9a-f]{64}", "<digest>", path))] += n
    return out


def test_a_target_that_cannot_be_written_keeps_every_image(plain_registry, run_playbook, tmp_path):
    signer = Signer()
    d = seed(plain_registry, signer)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    mark = plain_registry.mark()
    result = run_playbook(tasks=[prune_task(plain_registry, quarantine={"dest": f"oci:{blocker}/prune"})])
    assert result.rc == 0, result.explain()
    out = result.task("prune")
    assert plain_registry.writes_since(mark) == []
    assert out["applied"] == []
    reasons = {item["digest"]: item["reason"] for item in out["skipped_items"] if item["reason"] == "quarantine_failed"}
    assert d["signed"] in reasons and d["plain"] in reasons
    lines = [w for w in out.get("warnings", []) if "quarantine" in w]
    assert len(lines) == 2, lines  # one line per image kept
    for line in lines:
        assert "\n" not in line and "the image stays" in line and str(blocker) in line, line
    puller = RawPuller.for_registry(plain_registry)
    for key in ("signed", "signature", "sbom", "plain"):
        assert puller.digest_of(REPO, d[key]) == d[key], key


def test_misuse_is_refused_in_one_line_before_any_request(plain_registry, run_playbook, tmp_path):
    base = tmp_path / "quarantines"
    mark = refused(plain_registry, run_playbook, {
        "archive-name": (f"oci:{base}/q:app:1.0", "names an image"),
        "docker": (f"docker-archive:{base}/q.tar", "cannot hold an image byte-exact"),
        "tagged": (f"{plain_registry.host}/holding/web:1.0", "carries a tag or digest"),
        "empty": ("", "quarantine.dest is empty"),
    })
    assert plain_registry.requests_since(mark) == []
    assert not base.exists()

    # A holding repository the run prunes: refused once the repositories are known, before any write.
    RawPusher.for_registry(plain_registry).push_image(REPO, make_image("old"), tag="old-1")
    mark = refused(plain_registry, run_playbook,
                   {"itself": (f"{plain_registry.host}/{REPO}", "is a repository this run prunes")})
    assert plain_registry.writes_since(mark) == []


def refused(registry: RigRegistry, run_playbook, cases: dict[str, tuple[str, str]]) -> int:
    """Run one prune per case (name -> (dest, words)); each fails with one line holding its words."""
    mark = registry.mark()
    result = run_playbook(tasks=[prune_task(registry, name=name, quarantine={"dest": dest})
                                 for name, (dest, _words) in cases.items()])
    for name, (_dest, words) in cases.items():
        out = result.task(name)
        assert out.status == "failed", out
        assert words in out["msg"] and "\n" not in out["msg"], out["msg"]
    return mark


def test_the_guides_mirror_back_recipe_restores_every_repository(plain_registry, run_playbook, tmp_path):
    """The guide's second recipe, extracted from the page: dest is the registry host, and each repository of the
    layout comes back where it was pruned (not under host/shop/web/shop/web)."""
    signer = Signer()
    d = seed(plain_registry, signer)
    other = seed(plain_registry, signer, "shop/api")
    before = raw_manifests(plain_registry, d), raw_manifests(plain_registry, other, "shop/api")
    layout = tmp_path / "backups" / "prune"
    pruned = run_playbook(tasks=[prune_task(plain_registry, quarantine={"dest": f"oci:{layout}"}),
                                 {**prune_task(plain_registry, "prune api", "shop/api",
                                               quarantine={"dest": f"oci:{layout}"}), "register": "api"}])
    assert pruned.rc == 0, pruned.explain()
    puller = RawPuller.for_registry(plain_registry)
    assert puller.digest_of(REPO, d["signed"]) is None and puller.digest_of("shop/api", other["plain"]) is None

    mirror_back = guide_recipe(GUIDE, "<!-- recipe: restore a whole quarantine -->")
    restored = run_playbook(mirror_back, extra_vars={"registry": plain_registry.host, "quarantine": str(layout)})
    assert restored.rc == 0, restored.explain()
    assert (raw_manifests(plain_registry, d), raw_manifests(plain_registry, other, "shop/api")) == before
    for repository, seeded in ((REPO, d), ("shop/api", other)):
        assert puller.digest_of(repository, "old-1") == seeded["signed"]
        assert puller.digest_of(repository, "old-2") == seeded["plain"]
        assert puller.digest_of(repository, cosign_tag(seeded["signed"])) == seeded["signature"]
    catalog = puller.request("GET", "/v2/_catalog", repository=REPO).json()["repositories"]
    assert not [name for name in catalog if name.count("shop/") > 1], catalog


def test_quarantine_to_an_oci_archive_comes_back_byte_exact(plain_registry, run_playbook, tmp_path):
    signer = Signer()
    d = seed(plain_registry, signer)
    before = raw_manifests(plain_registry, d)
    archive = tmp_path / "prune.tar"
    result = run_playbook(tasks=[prune_task(plain_registry, quarantine={"dest": f"oci-archive:{archive}"})])
    assert result.rc == 0, result.explain()
    went = deletions(result.task("prune"))
    assert went[d["signed"]] == f"oci-archive:{archive}:{REPO}:old-1"
    assert archive.is_file() and not Path(f"{archive}.ocireg-partial").exists()  # the staging is gone
    # skopeo reads what the archive holds, under the name the result gives.
    assert skopeo_digest(f"oci-archive:{archive}:{REPO}:old-2") == d["plain"]

    restore = [{"name": f"restore {tag}", "ocireg.registry.registry_copy": {
        "src": f"oci-archive:{archive}:{REPO}:{tag}", "dest": f"{plain_registry.host}/{REPO}:{tag}",
        "referrers": True}} for tag in ("old-1", "old-2")]
    restored = run_playbook(tasks=restore)
    assert restored.rc == 0, restored.explain()
    assert raw_manifests(plain_registry, d) == before
    puller = RawPuller.for_registry(plain_registry)
    assert puller.digest_of(REPO, cosign_tag(d["signed"])) == d["signature"]


def skopeo_digest(reference: str) -> str:
    import hashlib
    import subprocess
    raw = subprocess.run(["skopeo", "inspect", "--raw", reference], check=True, capture_output=True).stdout
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def test_the_role_passes_quarantine_through(plain_registry, run_playbook, tmp_path):
    signer = Signer()
    d = seed(plain_registry, signer)
    layout = tmp_path / "role-backups"
    play = {"name": "retention", "hosts": "localhost", "gather_facts": False,
            "roles": [{"role": "ocireg.registry.retention", "vars": {
                "retention_defaults": {"quarantine": {"dest": f"oci:{layout}"}},
                "retention_policies": [{"name": "shop", "repository": f"{plain_registry.host}/{REPO}",
                                        "match": ["old-.*"], "older_than": "30d"}]}}]}
    done = run_playbook(play)
    assert done.rc == 0, done.explain()
    (result,) = [item for item in done.items if item.action.endswith("registry_prune")]
    assert deletions(result)[d["plain"]] == f"oci:{layout}:{REPO}:old-2"
    assert skopeo_digest(f"oci:{layout}:{REPO}:old-1") == d["signed"]
    assert RawPuller.for_registry(plain_registry).digest_of(REPO, "old-1") is None
