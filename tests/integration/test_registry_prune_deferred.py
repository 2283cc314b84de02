"""registry_prune's ``quarantine.untag_for`` (untag now, delete after a window) on a real Distribution 2.8.

The window tests call the prune with an injected clock (``now``), so days pass without a sleep. The
module-level tests run playbooks; where they need days to pass they rewrite the times of the state
document in the registry (said where they do). Requests are counted in the registry's access log.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._client.credentials import (
    Credentials,
)
from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import (
    Registry,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model import (
    mediatypes as mt,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
    RegistryError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.deferred import (
    STATE_ANNOTATION,
    DeferredDelete,
    decode_state,
    encode_state,
    state_tag,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.in_use import (
    parse_in_use,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.policy import (
    build_policy,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.retention.prune import (
    PruneResult,
    prune,
)

from tests.rig.flavours import RigRegistry
from tests.rig.images import (
    EMPTY_JSON,
    OCI_EMPTY,
    Blob,
    RawPuller,
    RawPusher,
    cosign_tag,
    make_artifact,
    make_image,
    make_index,
    referrers_tag,
)
from tests.rig.playbook import guide_recipe
from tests.rig.token_server import TokenServer, grant

REPO = "shop/web"
STATE = "ops/prune-state"
GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guide_retention.md"
RECIPE_MARK = "<!-- recipe: restore an untagged image -->"
T0 = datetime.now(UTC)
DAY = timedelta(days=1)
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"


def seed(registry: RigRegistry) -> dict[str, Any]:
    """A signed image with an SBOM referrer, two plain condemned images (``old-*``), and a kept one."""
    pusher = RawPusher.for_registry(registry)
    d: dict[str, Any] = {}
    signed = pusher.push_image(REPO, make_image("signed"), tag="old-1")
    d["signed"] = signed.digest
    d["signature"] = pusher.push_cosign_signature(REPO, signed.content).digest
    sbom = make_artifact(signed.content)
    d["sbom"] = sbom.digest
    d["fallback"] = pusher.push_referrers(REPO, signed.digest, [sbom]).digest
    d["plain"] = pusher.push_image(REPO, make_image("plain"), tag="old-2").digest
    d["back"] = pusher.push_image(REPO, make_image("back"), tag="old-3").digest
    d["kept"] = pusher.push_image(REPO, make_image("kept"), tag="keep").digest
    return d


def run(server: RigRegistry, now: datetime, *, check: bool = False, deferred: bool = True,
        in_use: Any = None) -> PruneResult:
    policy = build_policy({"match": ["old-.*"], "older_than": "30d"})
    return prune(Registry(server.host), policy, [REPO], check_mode=check, now=now, in_use=in_use,
                 deferred=DeferredDelete("7d", STATE) if deferred else None)


def statuses(outcome: PruneResult) -> dict[str, str]:
    return {item["digest"]: item["status"] for item in outcome.to_result()["deferred"]}


def state_entries(server: RigRegistry) -> dict[str, dict[str, Any]]:
    """The state's entries by digest; none when its tag is gone (an empty state is no manifest)."""
    puller = RawPuller.for_registry(server)
    if puller.digest_of(STATE, state_tag(REPO)) is None:
        return {}
    raw = puller.manifest(STATE, state_tag(REPO))[0]
    document = json.loads(json.loads(raw)["annotations"][STATE_ANNOTATION])
    assert document["repository"] == REPO
    return {item["digest"]: item for item in document["pending"]}


def state_revisions(server: RigRegistry) -> list[str]:
    """The manifests the state repository holds, read from Distribution's storage (tagged or not)."""
    revisions = server.storage / "docker/registry/v2/repositories" / STATE / "_manifests/revisions/sha256"
    return sorted(f"sha256:{link.parent.name}" for link in revisions.glob("*/link"))


def requests(server: RigRegistry, mark: int) -> list[tuple[str, str]]:
    return [(r.method, r.path.split("?", 1)[0]) for r in server.requests_since(mark)]


def test_untag_then_delete_only_after_the_window(plain_registry: RigRegistry) -> None:
    d = seed(plain_registry)
    puller = RawPuller.for_registry(plain_registry)
    images = {d["signed"], d["plain"], d["back"]}

    # Check mode, first run: what would be untagged, and not one write anywhere.
    mark = plain_registry.mark()
    checked = run(plain_registry, T0, check=True)
    assert plain_registry.writes_since(mark) == []
    assert statuses(checked) == {digest: "untagged" for digest in images}

    # First run: the state first, then the untags; nothing deleted.
    mark = plain_registry.mark()
    first = run(plain_registry, T0)
    sent = requests(plain_registry, mark)
    writes = [(r.method, r.path.split("?", 1)[0]) for r in plain_registry.writes_since(mark)]
    assert statuses(first) == {digest: "untagged" for digest in images}
    assert first.to_result()["changed"] is True
    assert not [a for a in first.applied.applied if a["action"] == "delete"]
    state_writes = [w for w in writes if w[1].startswith(f"/v2/{STATE}/")]
    assert state_writes[-1] == ("PUT", f"/v2/{STATE}/manifests/{state_tag(REPO)}")
    assert writes.index(state_writes[-1]) < min(i for i, w in enumerate(writes) if w[1].startswith(f"/v2/{REPO}/"))
    # In the pruned repository only the untag mechanics: Distribution 2.8 refuses the tag DELETE (tried once), so
    # each tag is pointed at a placeholder (its empty blob uploaded once) that is then deleted by digest.
    by_tag = {(method, f"/v2/{REPO}/manifests/old-{n}") for n in (1, 2, 3) for method in ("PUT", "DELETE")}
    for method, path in writes:
        if path.startswith(f"/v2/{REPO}/"):
            assert (method, path) in by_tag \
                or (method == "DELETE" and "/manifests/sha256:" in path and path.rsplit("/", 1)[1] not in images) \
                or "/blobs/uploads/" in path, (method, path)
    recorded = state_entries(plain_registry)
    assert set(recorded) == images
    first_revision = puller.digest_of(STATE, state_tag(REPO))
    assert recorded[d["signed"]]["tags"] == ["old-1"]
    assert recorded[d["signed"]]["rules"] == ["older_than"]
    assert recorded[d["signed"]]["delete_after"] > recorded[d["signed"]]["untagged_at"]
    assert sorted(puller.tags(REPO)) == sorted(["keep", cosign_tag(d["signed"]), referrers_tag(d["signed"])])
    for key in ("signed", "signature", "sbom", "plain", "back"):
        assert puller.digest_of(REPO, d[key]) == d[key], key
    first_count = len(sent)

    # Three days later: nothing due, nothing written, each entry pending with its delete_after.
    mark = plain_registry.mark()
    pending = run(plain_registry, T0 + 3 * DAY)
    assert plain_registry.writes_since(mark) == []
    pending_count = len(requests(plain_registry, mark))
    state_get = ("GET", f"/v2/{STATE}/manifests/{state_tag(REPO)}")
    state_put = ("PUT", f"/v2/{STATE}/manifests/{state_tag(REPO)}")
    assert [r for r in requests(plain_registry, mark) if r[1].startswith(f"/v2/{STATE}/")] == [state_get]
    assert statuses(pending) == {digest: "pending" for digest in images}
    assert pending.to_result()["changed"] is False
    assert {i["delete_after"] for i in pending.to_result()["deferred"]} == {recorded[d["signed"]]["delete_after"]}

    # old-3 is tagged again inside the window (as the guide's recipe does; here with the rig's raw client).
    raw, media_type = puller.manifest(REPO, d["back"])[:2]
    RawPusher.for_registry(plain_registry).push_manifest(REPO, "back-3", raw, media_type)

    # Eight days later, check mode: what would be deleted and rescued; nothing written.
    mark = plain_registry.mark()
    would = run(plain_registry, T0 + 8 * DAY, check=True)
    assert plain_registry.writes_since(mark) == []
    assert statuses(would) == {d["signed"]: "deleted", d["plain"]: "deleted", d["back"]: "rescued"}

    mark = plain_registry.mark()
    done = run(plain_registry, T0 + 8 * DAY)
    deleting = requests(plain_registry, mark)
    # One read and one write of the state: nothing is left in it, so its manifest is deleted (its tag with it).
    state_delete = ("DELETE", f"/v2/{STATE}/manifests/{first_revision}")
    assert [r for r in deleting if r[1].startswith(f"/v2/{STATE}/")] == [state_get, state_delete]
    assert statuses(done) == {d["signed"]: "deleted", d["plain"]: "deleted", d["back"]: "rescued"}
    rescued = next(i for i in done.to_result()["deferred"] if i["digest"] == d["back"])
    assert rescued["rescued_by"] == "tagged again"
    deleted = {a["digest"] for a in done.applied.applied if a["action"] == "delete"}
    assert deleted == {d["signed"], d["signature"], d["sbom"], d["fallback"], d["plain"]}
    for key in ("signed", "signature", "sbom", "plain"):
        assert puller.digest_of(REPO, d[key]) is None, key
    assert puller.digest_of(REPO, "back-3") == d["back"] == puller.digest_of(REPO, d["back"])
    assert puller.digest_of(REPO, "keep") == d["kept"]
    assert puller.digest_of(STATE, state_tag(REPO)) is None and state_revisions(plain_registry) == []
    # The state is rewritten once, after the image DELETEs.
    assert deleting.index(state_delete) == max(i for i, r in enumerate(deleting) if r[0] == "DELETE")

    # A later run has nothing left: one state read, nothing written.
    mark = plain_registry.mark()
    after = run(plain_registry, T0 + 9 * DAY)
    assert plain_registry.writes_since(mark) == [] and after.to_result()["deferred"] == []
    print(f"requests: first run {first_count}, pending run {pending_count}, deleting run {len(deleting)}")


def test_the_mode_adds_exactly_the_state_reads_and_writes(plain_registry: RigRegistry) -> None:
    seed(plain_registry)
    mark = plain_registry.mark()
    run(plain_registry, T0, check=True, deferred=False)
    without = requests(plain_registry, mark)
    mark = plain_registry.mark()
    run(plain_registry, T0, check=True)
    with_mode = requests(plain_registry, mark)
    extra = Counter(with_mode) - Counter(without)
    assert extra == Counter({("GET", f"/v2/{STATE}/manifests/{state_tag(REPO)}"): 1})
    assert not Counter(without) - Counter(with_mode)

    # Written: beyond what an untagging prune sends to the pruned repository, the state's requests only: its
    # read, the empty blob its manifest refers to (looked for, and uploaded the first time), its one PUT.
    mark = plain_registry.mark()
    run(plain_registry, T0)
    state = [(m, p.rsplit("/", 1)[0] if m == "PUT" and "/blobs/uploads/" in p else p)
             for m, p in requests(plain_registry, mark) if p.startswith(f"/v2/{STATE}/")]
    assert state == [("GET", f"/v2/{STATE}/manifests/{state_tag(REPO)}"),
                     ("HEAD", f"/v2/{STATE}/blobs/{EMPTY_DIGEST}"),
                     ("POST", f"/v2/{STATE}/blobs/uploads/"),
                     ("PUT", f"/v2/{STATE}/blobs/uploads"),
                     ("PUT", f"/v2/{STATE}/manifests/{state_tag(REPO)}")]


def test_in_use_holds_a_pending_digest_until_it_stops_running(plain_registry: RigRegistry) -> None:
    d = seed(plain_registry)
    run(plain_registry, T0)
    # In use when its window passes: kept, and kept in the state (it has no tag: nothing else could find it again).
    held = run(plain_registry, T0 + 8 * DAY, in_use=parse_in_use([d["plain"]]))
    item = next(i for i in held.to_result()["deferred"] if i["digest"] == d["plain"])
    assert (item["status"], item["held_by"], item["rescued_by"]) == ("pending", "in use", None)
    assert statuses(held)[d["signed"]] == "deleted"
    assert RawPuller.for_registry(plain_registry).digest_of(REPO, d["plain"]) == d["plain"]
    assert d["plain"] in state_entries(plain_registry)
    # Still in use a day later: nothing to write.
    mark = plain_registry.mark()
    again = run(plain_registry, T0 + 9 * DAY, in_use=parse_in_use([d["plain"]]))
    assert plain_registry.writes_since(mark) == []
    assert statuses(again)[d["plain"]] == "pending"
    # No longer in use: the next run judges it again and deletes it.
    gone = run(plain_registry, T0 + 10 * DAY)
    assert statuses(gone)[d["plain"]] == "deleted"
    assert RawPuller.for_registry(plain_registry).digest_of(REPO, d["plain"]) is None


def test_each_state_change_replaces_the_previous_revision(plain_registry: RigRegistry) -> None:
    d = seed(plain_registry)
    puller = RawPuller.for_registry(plain_registry)
    tag = state_tag(REPO)
    run(plain_registry, T0)
    seen = [puller.digest_of(STATE, tag)]
    assert state_revisions(plain_registry) == seen

    # Three changes: old-3 tagged again (rescued), then one deleted and one held, then the held one deleted.
    raw, media_type = puller.manifest(REPO, d["back"])[:2]
    RawPusher.for_registry(plain_registry).push_manifest(REPO, "back-3", raw, media_type)
    for now, in_use in ((T0 + DAY, None), (T0 + 8 * DAY, parse_in_use([d["plain"]]))):
        mark = plain_registry.mark()
        run(plain_registry, now, in_use=in_use)
        state_writes = [(r.method, r.path) for r in plain_registry.writes_since(mark) if r.path.startswith(f"/v2/{STATE}/")]
        # The one request a change adds: the previous revision deleted by digest, after the new one took the tag.
        assert state_writes == [("PUT", f"/v2/{STATE}/manifests/{tag}"), ("DELETE", f"/v2/{STATE}/manifests/{seen[-1]}")]
        seen.append(puller.digest_of(STATE, tag))
        assert state_revisions(plain_registry) == [seen[-1]]
        assert all(puller.head_manifest(STATE, old).status_code == 404 for old in seen[:-1])
    assert set(state_entries(plain_registry)) == {d["plain"]}

    # Nothing left: the last revision goes, its tag with it (one DELETE, no PUT); a state that is no manifest.
    mark = plain_registry.mark()
    run(plain_registry, T0 + 9 * DAY)
    assert [(r.method, r.path) for r in plain_registry.writes_since(mark) if r.path.startswith(f"/v2/{STATE}/")] \
        == [("DELETE", f"/v2/{STATE}/manifests/{seen[-1]}")]
    assert state_revisions(plain_registry) == [] and puller.digest_of(STATE, tag) is None
    # A run after that reads no state (a 404) and writes none.
    mark = plain_registry.mark()
    assert run(plain_registry, T0 + 10 * DAY).to_result()["deferred"] == []
    assert plain_registry.writes_since(mark) == []


def test_an_old_revision_the_credentials_may_not_delete_is_a_warning_and_the_new_state_stands() -> None:
    """A token that may push the state repository but not delete in it: the state is written, the old revision
    stays, and one warning line says so (the run is not failed for a leftover)."""
    acl = [grant("alice", "shop/*", "pull", "push", "delete"), grant("alice", "ops/*", "pull", "push")]
    with TokenServer(acl=acl) as tokens, RigRegistry(token_server=tokens) as registry:
        d = seed(registry)
        credentials = Credentials(username=registry.username, password=registry.password, source="explicit")
        policy = build_policy({"match": ["old-.*"], "older_than": "30d"})

        def run_with_token(now: datetime) -> PruneResult:
            return prune(Registry(registry.host, credentials=credentials), policy, [REPO], check_mode=False, now=now,
                         deferred=DeferredDelete("7d", STATE))

        run_with_token(T0)
        first = RawPuller.for_registry(registry).digest_of(STATE, state_tag(REPO))
        raw, media_type = RawPuller.for_registry(registry).manifest(REPO, d["back"])[:2]
        RawPusher.for_registry(registry).push_manifest(REPO, "back-3", raw, media_type)
        changed = run_with_token(T0 + DAY)
        assert statuses(changed)[d["back"]] == "rescued"
        said = [w for w in changed.warnings if "previous deferred-delete state" in w]
        assert len(said) == 1 and first in said[0] and "\n" not in said[0], changed.warnings
        assert set(state_entries(registry)) == {d["signed"], d["plain"]}
        assert len(state_revisions(registry)) == 2 and first in state_revisions(registry)


def test_a_corrupted_or_unreadable_state_is_one_line_and_no_write(plain_registry: RigRegistry) -> None:
    seed(plain_registry)
    pusher = RawPusher.for_registry(plain_registry)
    pusher.push_blob(STATE, Blob(EMPTY_JSON, OCI_EMPTY))
    other = encode_state("shop/other", [])
    pusher.push_manifest(STATE, state_tag(REPO), other, mt.OCI_MANIFEST)
    mark = plain_registry.mark()
    with pytest.raises(RegistryError) as caught:
        run(plain_registry, T0)
    assert "is corrupted" in caught.value.message and "\n" not in caught.value.message
    assert plain_registry.writes_since(mark) == []
    with pytest.raises(RegistryError):
        decode_state(REPO, b"not json", "x")


@pytest.mark.parametrize("state, words", [
    (REPO, "is a repository this run prunes"),
    ("other.example.com/ops/state", "not on"),
    ("ops/state:1", "ops/state:1"),
])
def test_misuse_is_one_line_and_no_request(plain_registry: RigRegistry, state: str, words: str) -> None:
    mark = plain_registry.mark()
    with pytest.raises(InvalidInputError) as caught:
        prune(Registry(plain_registry.host), build_policy({"match": ["old-.*"], "older_than": "30d"}), [REPO],
              check_mode=False, deferred=DeferredDelete("7d", state))
    assert words in caught.value.message and "\n" not in caught.value.message
    assert plain_registry.writes_since(mark) == []


def test_the_guides_short_window_for_trying_the_mode(plain_registry: RigRegistry) -> None:
    """The guide's "Trying it": keep_latest 1 of every tag with untag_for 1m; a run a minute later deletes."""
    pusher = RawPusher.for_registry(plain_registry)
    digests = [pusher.push_image("try/app", make_image(f"try-{n}"), tag=f"b{n}").digest for n in range(3)]
    policy = build_policy({"match": [".*"], "keep_latest": 1})
    first = prune(Registry(plain_registry.host), policy, ["try/app"], check_mode=False, now=T0,
                  deferred=DeferredDelete("1m", STATE))
    untagged = {i["digest"] for i in first.to_result()["deferred"] if i["status"] == "untagged"}
    assert len(untagged) == 2 and untagged < set(digests)
    later = prune(Registry(plain_registry.host), policy, ["try/app"], check_mode=False, now=T0 + timedelta(minutes=2),
                  deferred=DeferredDelete("1m", STATE))
    assert {i["digest"]: i["status"] for i in later.to_result()["deferred"]} == dict.fromkeys(untagged, "deleted")


def test_a_catalog_glob_that_selects_the_state_is_told_to_exclude_it(plain_registry: RigRegistry) -> None:
    seed(plain_registry)
    run(plain_registry, T0)  # the state repository now exists, so the catalog lists it
    policy = build_policy({"match": ["old-.*"], "older_than": "30d"})
    mark = plain_registry.mark()
    with pytest.raises(InvalidInputError) as caught:
        prune(Registry(plain_registry.host), policy, ["*"], check_mode=False, now=T0 + DAY,
              deferred=DeferredDelete("7d", STATE))
    assert f"exclude it (a catalog glob such as '*' selects it too: exclude_repositories: ['{STATE}'])" \
        in caught.value.message and "\n" not in caught.value.message
    assert plain_registry.writes_since(mark) == []
    done = prune(Registry(plain_registry.host), policy, ["*"], exclude=[STATE], check_mode=True, now=T0 + DAY,
                 deferred=DeferredDelete("7d", STATE))
    assert done.to_result()["repositories"] == [f"{plain_registry.host}/{REPO}"]


# -- the module ---------------------------------------------------------------------------------------


def prune_task(server: RigRegistry, name: str = "prune", **quarantine: Any) -> dict[str, Any]:
    """Delete the ``old-*`` tags older than 30 days (every seeded image is), with an untag window."""
    options = quarantine or {"untag_for": "7d", "state": STATE}
    return {"name": name, "register": "out", "ignore_errors": True,
            "ocireg.registry.registry_prune": {"repository": f"{server.host}/{REPO}", "match": ["old-.*"],
                                               "older_than": "30d", "quarantine": options}}


def age_state(server: RigRegistry, days: int) -> None:
    """Days pass for the state: its times are moved back by rewriting the document in the registry (a
    playbook cannot be given a clock, and a test must not sleep)."""
    puller = RawPuller.for_registry(server)
    tag = state_tag(REPO)
    entries = decode_state(REPO, puller.manifest(STATE, tag)[0], tag)
    shifted = [replace(e, untagged_at=e.untagged_at - days * DAY, delete_after=e.delete_after - days * DAY)
               for e in entries]
    RawPusher.for_registry(server).push_manifest(STATE, tag, encode_state(REPO, shifted), mt.OCI_MANIFEST)


def test_module_check_mode_writes_nothing_and_the_guides_recipe_restores(plain_registry, run_playbook) -> None:
    d = seed(plain_registry)
    puller = RawPuller.for_registry(plain_registry)

    mark = plain_registry.mark()
    checked = run_playbook(tasks=[prune_task(plain_registry)], check=True)
    assert checked.rc == 0, checked.explain()
    assert plain_registry.writes_since(mark) == []
    out = checked.task("prune")
    assert out.changed and {i["status"] for i in out["deferred"]} == {"untagged"}

    first = run_playbook(tasks=[prune_task(plain_registry)])
    out = first.task("prune")
    assert out.status != "failed", out
    assert out.changed
    untagged = {i["digest"]: i for i in out["deferred"]}
    assert {i["status"] for i in untagged.values()} == {"untagged"}
    assert set(untagged) == {d["signed"], d["plain"], d["back"]}
    assert puller.digest_of(REPO, "old-1") is None and puller.digest_of(REPO, d["signed"]) == d["signed"]

    # The guide's recipe, as written, with what the result's deferred entry says.
    item = untagged[d["back"]]
    restored = run_playbook(guide_recipe(GUIDE, RECIPE_MARK), extra_vars={
        "registry": plain_registry.host, "repository": REPO, "digest": item["digest"], "former_tags": item["tags"]})
    assert restored.rc == 0, restored.explain()
    assert "reserved" not in restored.stdout + restored.stderr, restored.explain()
    assert puller.digest_of(REPO, "old-3") == d["back"]

    # Eight days pass for the state (rewritten in the registry, see age_state); check mode: nothing written.
    age_state(plain_registry, 8)
    mark = plain_registry.mark()
    checked = run_playbook(tasks=[prune_task(plain_registry)], check=True)
    assert plain_registry.writes_since(mark) == []
    would: dict[str, list[str]] = {}
    for entry in checked.task("prune")["deferred"]:
        would.setdefault(entry["digest"], []).append(entry["status"])
    assert would[d["signed"]] == would[d["plain"]] == ["deleted"]
    # old-3 is tagged again, and still old-*, so the policy condemns it again: the old entry is rescued and a new
    # window starts (the guide says so: a restore that should last gives the image a tag the policy keeps).
    assert sorted(would[d["back"]]) == ["rescued", "untagged"]

    done = run_playbook(tasks=[prune_task(plain_registry)])
    out = done.task("prune")
    assert out.status != "failed", out
    assert {i["status"] for i in out["deferred"] if i["digest"] == d["signed"]} == {"deleted"}
    assert puller.digest_of(REPO, d["signed"]) is None and puller.digest_of(REPO, d["signature"]) is None
    assert puller.digest_of(REPO, d["back"]) == d["back"]
    assert out["gc_required"] is True


@pytest.mark.parametrize("quarantine, says", [
    ({"untag_for": "7d", "state": STATE, "dest": "oci:/tmp/q"}, "quarantine takes dest"),
    ({"untag_for": "a week", "state": STATE}, "quarantine.untag_for: 'a week' is not a duration"),
    ({"untag_for": "7d", "state": REPO}, f"quarantine.state {REPO} is a repository this run prunes"),
    ({"untag_for": "7d"}, "quarantine needs dest"),
])
def test_module_misuse_is_one_line_and_zero_writes(plain_registry, run_playbook, quarantine, says) -> None:
    seed(plain_registry)
    mark = plain_registry.mark()
    result = run_playbook(tasks=[prune_task(plain_registry, **quarantine)])
    failed = result.task("prune")
    assert failed.failed and failed["msg"].startswith(says), failed["msg"]
    assert "\n" not in failed["msg"] and "Traceback" not in str(failed)
    assert plain_registry.writes_since(mark) == []


def test_a_state_the_credentials_cannot_read_is_one_line_before_any_write(basic_registry: RigRegistry) -> None:
    pusher = RawPusher.for_registry(basic_registry)
    pusher.push_image(REPO, make_image("plain"), tag="old-2")
    mark = basic_registry.mark()
    with pytest.raises(RegistryError) as caught:
        prune(Registry(basic_registry.host), build_policy({"match": ["old-.*"], "older_than": "30d"}), [REPO],
              check_mode=False, deferred=DeferredDelete("7d", STATE))
    message = caught.value.message
    assert message.startswith(f"the deferred-delete state {basic_registry.host}/{STATE}:{state_tag(REPO)} could "
                              "not be read (") and "nothing was pruned" in message and "\n" not in message
    assert basic_registry.writes_since(mark) == []
    assert [r.path for r in basic_registry.requests_since(mark)][-1].startswith(f"/v2/{STATE}/manifests/")


def test_a_digest_a_kept_index_reaches_is_rescued(plain_registry: RigRegistry) -> None:
    d = seed(plain_registry)
    run(plain_registry, T0)
    # Inside the window someone tags an index that lists the untagged image (the same bytes, so the same digest).
    plain = make_image("plain")
    assert plain.digest == d["plain"]
    RawPusher.for_registry(plain_registry).push(REPO, make_index([plain]), tag="bundle")
    done = run(plain_registry, T0 + 8 * DAY)
    item = next(i for i in done.to_result()["deferred"] if i["digest"] == d["plain"])
    assert (item["status"], item["rescued_by"]) == ("rescued", "reached by bundle")
    assert RawPuller.for_registry(plain_registry).digest_of(REPO, d["plain"]) == d["plain"]
    assert d["plain"] not in state_entries(plain_registry)
    assert statuses(done)[d["signed"]] == "deleted"
