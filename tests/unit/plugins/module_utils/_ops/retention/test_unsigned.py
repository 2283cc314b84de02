"""Unit tests for _ops/retention/unsigned.py: the verdict each verify outcome gives, and that only the
candidates are checked. The verify gate itself is tested against real registries (test_verify.py,
test_registry_prune_unsigned.py); here a verifier is a plain function, to pin the mapping."""
from __future__ import annotations

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
    RegistryError,
    VerificationError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.plan import (
    ManifestRecord,
    RepositorySnapshot,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.policy import build_policy
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.unsigned import (
    already_read,
    check_one,
    check_signatures,
    signed_detail,
    unsigned_verifiers,
)


def test_verified_is_signed_with_who_signed():
    verified = {"verified": [{"signatures": [{"key": "sha256:abc"}, {"identity": "ci@example.com", "key": None}]}]}
    check = check_one(lambda repo, digest, already: verified, None, "sha256:1")
    assert (check.signed, check.detail) == (True, "signed by ci@example.com, sha256:abc")
    assert signed_detail({"verified": []}) == "verified"


def test_a_refused_verification_is_unsigned_with_its_line():
    def refuse(repo, digest, already):
        raise VerificationError(f"verify: team/app@{digest} has no signature (no sha256-1.sig tag)")
    check = check_one(refuse, None, "sha256:1")
    assert (check.signed, check.detail) == (False, "verify: team/app@sha256:1 has no signature (no sha256-1.sig tag)")


def test_another_error_leaves_it_unknown():
    def broken(repo, digest, already):
        raise RegistryError("read timed out")
    assert check_one(broken, None, "sha256:1").signed is None


@pytest.mark.parametrize("workers", [1, 4])
def test_only_the_candidates_are_checked_once_per_rule(workers):
    seen = []

    def verifier(repo, digest, already):
        seen.append((repo, digest))
        raise VerificationError("none")
    candidates = {"r1": {"sha256:a": ("u",), "sha256:b": ("u",)}, "r2": {"sha256:c": ("u",)}}
    out = check_signatures({"r1": "repo1", "r2": "repo2"}, candidates, {"u": verifier}, max_concurrency=workers)
    assert sorted(seen) == [("repo1", "sha256:a"), ("repo1", "sha256:b"), ("repo2", "sha256:c")]
    assert {repo: {d: c["u"].signed for d, c in by.items()} for repo, by in out.items()} == {
        "r1": {"sha256:a": False, "sha256:b": False}, "r2": {"sha256:c": False}}
    assert check_signatures({}, {}, {"u": verifier}) == {}


def test_a_missing_key_file_is_refused_before_any_request(tmp_path):
    policy = build_policy({"rules": [{"name": "u", "action": "delete",
                                      "unsigned": {"verify": {"keys": [str(tmp_path / "none.pub")]}, "grace": "1d"}}]})
    with pytest.raises(InvalidInputError, match="verify.keys\\[0\\]"):
        unsigned_verifiers(policy)
    assert unsigned_verifiers(build_policy({"older_than": "1d"})) == {}


def test_the_gate_is_given_what_the_snapshot_read():
    image = ManifestRecord("sha256:i", "application/vnd.oci.image.manifest.v1+json", 500)
    sig = ManifestRecord("sha256:s", "application/vnd.oci.image.manifest.v1+json", 300,
                         artifact_type="application/vnd.dev.cosign.artifact.sig.v1+json", subject="sha256:i")
    lonely = ManifestRecord("sha256:l", "application/vnd.oci.image.manifest.v1+json", 400)
    index = ManifestRecord("sha256:x1", "application/vnd.oci.image.index.v1+json", 200, children=("sha256:i",))
    untyped = ManifestRecord("sha256:x2", "", 200, children=("sha256:l",))
    snapshot = RepositorySnapshot("h/team/app", tags={"v1": "sha256:i", "v2": "sha256:l", "sha256-i.sig": "sha256:x"},
                                  manifests={r.digest: r for r in (image, sig, lonely, index, untyped)},
                                  referrers={"sha256:i": ["sha256:s"], "sha256:l": ["sha256:gone"]})
    read = already_read(snapshot)
    assert read.tags == snapshot.tags
    assert (read.images["sha256:i"].media_type, read.images["sha256:i"].size) == (image.media_type, 500)
    [listed] = read.referrers["sha256:i"]
    assert (listed.digest, listed.artifact_type, listed.size) == ("sha256:s", sig.artifact_type, 300)
    assert read.referrers["sha256:s"] == ()  # read, and nothing refers to it
    assert "sha256:l" not in read.referrers  # a listed referrer the snapshot could not read: the gate asks
    assert set(read.images) == {"sha256:i", "sha256:s", "sha256:l"}  # indexes are read by the gate


def test_each_repository_gets_its_own_reads():
    given = []

    def verifier(repo, digest, already):
        given.append((repo, already.tags))
        raise VerificationError("none")
    snapshots = [RepositorySnapshot("r1", tags={"a": "sha256:a"}), RepositorySnapshot("r2", tags={"c": "sha256:c"})]
    check_signatures({"r1": "repo1", "r2": "repo2"}, {"r1": {"sha256:a": ("u",)}, "r2": {"sha256:c": ("u",)}},
                     {"u": verifier}, snapshots=snapshots, max_concurrency=1)
    assert given == [("repo1", {"a": "sha256:a"}), ("repo2", {"c": "sha256:c"})]
