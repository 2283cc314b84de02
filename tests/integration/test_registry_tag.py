"""registry_tag through real ``ansible-playbook`` runs against real Distribution 2.8 registries.

Images are seeded with the rig's raw pusher (tests/rig/images.py), never with
our own client, and checked with the rig's raw puller and ``skopeo``. Write
requests are counted in the registry's access log.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from typing import Any

import pytest

from tests.rig.flavours import RigRegistry
from tests.rig.images import RawPuller, RawPusher, make_image, make_multiarch

SKOPEO = shutil.which("skopeo")
needs_skopeo = pytest.mark.skipif(SKOPEO is None, reason="skopeo is not installed")
REPO = "team/app"


def tag_task(registry: RigRegistry, name: str = "promote", repository: str = REPO, **options: Any) -> dict[str, Any]:
    """One registry_tag task on ``registry`` (plain HTTP is the default for 127.0.0.1)."""
    return {"name": name, "ocireg.registry.registry_tag": {"repository": f"{registry.host}/{repository}", **options},
            "register": "out"}


def skopeo_digest(registry: RigRegistry, repository: str, tag: str) -> str:
    """sha256 of the manifest bytes skopeo reads for ``repository:tag`` (a third party's view)."""
    proc = subprocess.run([SKOPEO, "inspect", "--raw", "--tls-verify=false", registry.docker_ref(repository, tag)],
                          capture_output=True, check=True)
    return "sha256:" + hashlib.sha256(proc.stdout).hexdigest()


def digest_of(registry: RigRegistry, repository: str, tag: str) -> str | None:
    """What the tag points to, read with raw HTTP; None when the tag does not exist."""
    response = RawPuller.for_registry(registry).head_manifest(repository, tag)
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    return response.headers["Docker-Content-Digest"]


@pytest.fixture
def staged(plain_registry: RigRegistry) -> dict[str, str]:
    """team/app with staging -> image A and prod -> image B; returns their digests."""
    pusher = RawPusher.for_registry(plain_registry)
    a = pusher.push_image(REPO, make_image("a"), tag="staging")
    b = pusher.push_image(REPO, make_image("b"), tag="prod")
    return {"a": a.digest, "b": b.digest}


# -- present, same repository ----------------------------------------------------------------
@pytest.mark.ansible216
def test_check_diff_apply_then_rerun(plain_registry: RigRegistry, staged: dict[str, str], run_playbook) -> None:
    task = tag_task(plain_registry, source=":staging", tags=["prod", "stable"])

    mark = plain_registry.mark()
    checked = run_playbook(tasks=[task], check=True, diff=True)
    assert checked.rc == 0, checked.explain()
    assert plain_registry.writes_since(mark) == []
    result = checked.task("promote")
    assert result.changed
    assert result.diff["before"] == {"prod": staged["b"], "stable": "absent"}
    assert result.diff["after"] == {"prod": staged["a"], "stable": staged["a"]}
    assert staged["b"] in checked.stdout and staged["a"] in checked.stdout  # --diff printed digests
    assert result["tags"]["prod"] == {"before": staged["b"], "after": staged["a"], "action": "move",
                                      "sibling": False, "method": None}
    assert result["digest"] == staged["a"]
    assert digest_of(plain_registry, REPO, "prod") == staged["b"]

    mark = plain_registry.mark()
    applied = run_playbook(tasks=[task], diff=True)
    assert applied.rc == 0, applied.explain()
    assert applied.task("promote").changed
    assert applied.task("promote")["tags"] == result["tags"]  # check mode predicted exactly this
    writes = plain_registry.writes_since(mark)
    assert sorted((w.method, w.path) for w in writes) == [
        ("PUT", f"/v2/{REPO}/manifests/prod"), ("PUT", f"/v2/{REPO}/manifests/stable")]
    assert digest_of(plain_registry, REPO, "prod") == staged["a"]
    assert digest_of(plain_registry, REPO, "stable") == staged["a"]

    mark = plain_registry.mark()
    again = run_playbook(tasks=[task])
    assert again.rc == 0, again.explain()
    assert not again.task("promote").changed
    assert plain_registry.writes_since(mark) == []


@needs_skopeo
def test_same_repository_promotion_is_byte_exact(plain_registry: RigRegistry, staged: dict[str, str],
                                                 run_playbook) -> None:
    run = run_playbook(tasks=[tag_task(plain_registry, source=f"@{staged['a']}", tags=["prod"])])
    assert run.rc == 0, run.explain()
    assert skopeo_digest(plain_registry, REPO, "prod") == staged["a"]


@needs_skopeo
def test_multiarch_index_keeps_its_digest(plain_registry: RigRegistry, run_playbook) -> None:
    index = RawPusher.for_registry(plain_registry).push(REPO, make_multiarch("multi"), tag="staging")
    run = run_playbook(tasks=[tag_task(plain_registry, source=":staging", tags=["prod"])])
    assert run.rc == 0, run.explain()
    assert run.task("promote")["digest"] == index.digest
    assert skopeo_digest(plain_registry, REPO, "prod") == index.digest


# -- the compare-and-swap guard ------------------------------------------------------------
def test_stale_expected_digest_blocks_and_changes_nothing(plain_registry: RigRegistry, staged: dict[str, str],
                                                          run_playbook) -> None:
    stale = make_image("c").digest  # prod was read as C, but B is there now
    mark = plain_registry.mark()
    run = run_playbook(tasks=[tag_task(plain_registry, source=":staging", tags=["new", "prod"],
                                       expected_digest=stale)])
    assert run.rc != 0
    failed = run.task("promote")
    assert failed.failed
    assert staged["b"] in failed["msg"] and stale in failed["msg"] and "'prod'" in failed["msg"]
    assert "nothing was changed" in failed["msg"]
    assert failed["tags"]["prod"]["after"] == staged["b"]
    assert plain_registry.writes_since(mark) == []
    assert digest_of(plain_registry, REPO, "prod") == staged["b"]
    assert digest_of(plain_registry, REPO, "new") is None


def test_matching_expected_digest_promotes(plain_registry: RigRegistry, staged: dict[str, str],
                                           run_playbook) -> None:
    run = run_playbook(tasks=[
        tag_task(plain_registry, "swap", source=":staging", tags=["prod"], expected_digest=staged["b"]),
        tag_task(plain_registry, "create", source=":prod", tags=["fresh"], expected_digest="absent"),
        tag_task(plain_registry, "rerun", source=":staging", tags=["prod"], expected_digest=staged["b"]),
    ])
    assert run.rc == 0, run.explain()
    assert run.task("swap").changed and run.task("create").changed
    assert not run.task("rerun").changed  # finished promotion: old guard, nothing to do
    assert digest_of(plain_registry, REPO, "prod") == staged["a"]
    assert digest_of(plain_registry, REPO, "fresh") == staged["a"]


def test_expected_digest_absent_refuses_to_overwrite(plain_registry: RigRegistry, staged: dict[str, str],
                                                     run_playbook) -> None:
    run = run_playbook(tasks=[tag_task(plain_registry, source=":staging", tags=["prod"], expected_digest="absent")])
    assert run.rc != 0
    assert "expected_digest is absent" in run.task("promote")["msg"] and staged["b"] in run.task("promote")["msg"]
    assert digest_of(plain_registry, REPO, "prod") == staged["b"]


def test_missing_source_fails_cleanly(plain_registry: RigRegistry, staged: dict[str, str], run_playbook) -> None:
    mark = plain_registry.mark()
    run = run_playbook(tasks=[tag_task(plain_registry, source=":nope", tags=["prod"])])
    assert run.rc != 0
    assert "does not exist" in run.task("promote")["msg"] and "nope" in run.task("promote")["msg"]
    assert plain_registry.writes_since(mark) == []
