"""Referrers through a registry that resolves a missing fallback tag to the subject, with an *index* subject.

GitLab's registry answers ``GET /v2/<name>/manifests/sha256-<hex>`` with the
manifest ``sha256:<hex>`` when no such tag exists, and has no referrers API,
so every referrers lookup there takes the tag-schema fallback and reads the
subject itself (oras-project/oras-go #1396, fixed in oras-go #1403). For an
image subject that is harmless (an image manifest is no index); for an index
subject its children look like its referrers. The ``fallback_tag_is_subject``
quirk of the personality rig reproduces it in front of a real Distribution;
every personality carrying the quirk runs one playbook through info, artifact
push, copy out of and into it, and prune, and each step is checked against
what the registries really hold.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.rig.flavours import RigRegistry
from tests.rig.images import (
    Image,
    Index,
    RawPuller,
    RawPusher,
    make_artifact,
    make_index,
    make_multiarch,
    referrers_tag,
)
from tests.rig.personalities.registries import PERSONALITIES
from tests.rig.personalities.stack import PersonalityStack
from tests.rig.playbook import PlaybookResult, PlaybookRunner
from tests.rig.token_server import TokenServer

COLL = "ocireg.registry"
ARTIFACT_TYPE = "application/vnd.ocireg.fallback-subject.test+json"
KEYS = [key for key, data in PERSONALITIES.items() if data.has("fallback_tag_is_subject")]


def _index_sorting_first(seed: str) -> Index:
    """A two-platform index whose digest sorts before its children's.

    Prune asks the referrers of one tagged digest through the client (the probe that learns whether the
    registry has the API) and reads the rest from the listed fallback tags; the probe takes the first
    digest in sorted order, so the index must come first for the quirk to meet the index.
    """
    for attempt in range(200):
        index = make_multiarch(f"{seed}-{attempt}")
        if all(index.digest < child.digest for child in index.children):
            return index
    raise AssertionError("no seed gave an index sorting before its children")


@dataclass
class Run:
    """One personality's seeded content and its playbook result."""

    key: str
    upstream: RigRegistry
    plain: RigRegistry
    bare: Index
    signed: Index
    source: Index
    source_artifact: Image
    pruned: Index
    result: PlaybookResult

    def task(self, name: str) -> Any:
        return self.result.task(name)


def _tasks(key: str, front: str, plain: str, payload: str) -> list[dict[str, Any]]:
    def task(name: str, module: str, check: bool = False, **args: Any) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": name, f"{COLL}.{module}": args, "ignore_errors": True}
        if check:
            entry["check_mode"] = True
        return entry

    src_auth = {"username": "alice", "password": "secret"}
    return [
        task("info_bare", "registry_manifest_info", reference=f"{front}/{key}/bare:1.0", include=["referrers"]),
        task("artifact_push", "registry_artifact", reference=f"{front}/{key}/signed", subject=":1.0",
             artifact_type=ARTIFACT_TYPE, files=[payload]),
        task("info_signed", "registry_manifest_info", reference=f"{front}/{key}/signed:1.0",
             include=["referrers"]),
        task("copy_out", "registry_copy", src=f"{front}/{key}/bare:1.0", dest=f"{plain}/{key}/out:1.0",
             referrers=True, src_auth=src_auth),
        task("copy_in", "registry_copy", src=f"{plain}/{key}/source:1.0", dest=f"{front}/{key}/in:1.0",
             referrers=True),
        task("prune_check", "registry_prune", check=True, repository=f"{front}/{key}/pruned", match=["old"],
             keep_latest=0),
    ]


@pytest.fixture(scope="module")
def runs(rig_collection: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Run]]:
    """Each personality with the quirk, seeded and run once."""
    workdir = tmp_path_factory.mktemp("fallback-subject")
    done: dict[str, Run] = {}
    with TokenServer() as token_server, RigRegistry(token_server=token_server) as upstream, RigRegistry() as plain:
        runner = PlaybookRunner(rig_collection, workdir)
        for key in KEYS:
            pusher = RawPusher.for_registry(upstream)
            bare = make_multiarch(f"{key}-bare")
            signed = make_multiarch(f"{key}-signed")
            pusher.push(f"{key}/bare", bare, tag="1.0")
            pusher.push(f"{key}/signed", signed, tag="1.0")
            # Prune: the index is matched (old) and goes; one of its children is tagged apart (arm) and stays.
            pruned = _index_sorting_first(f"{key}-pruned")
            pusher.push(f"{key}/pruned", pruned, tag="old")
            pusher.push(f"{key}/pruned", pruned.children[1], tag="arm")
            # Copy into the personality: an index with one referrer, as the plain registry holds it.
            source = make_index(make_multiarch(f"{key}-source").children)
            source_artifact = make_artifact(source, artifact_type=ARTIFACT_TYPE)
            plain_pusher = RawPusher.for_registry(plain)
            plain_pusher.push(f"{key}/source", source, tag="1.0")
            plain_pusher.push(f"{key}/source", source_artifact, tag=None)
            plain_pusher.push_referrers(f"{key}/source", source, [source_artifact])
            # The destination already holds the subject, so its missing fallback tag resolves to it there.
            pusher.push(f"{key}/in", source, tag="1.0")
            payload = workdir / f"{key}-payload.json"
            payload.write_text('{"payload": true}\n')
            with PersonalityStack(key, PERSONALITIES[key].quirks, upstream, token_server) as stack:
                play = {"name": key, "hosts": "localhost", "gather_facts": False,
                        "module_defaults": {f"group/{COLL}.registry": {"username": "alice", "password": "secret"}},
                        "tasks": _tasks(key, stack.host, plain.host, str(payload))}
                result = runner.run(play)
            done[key] = Run(key, upstream, plain, bare, signed, source, source_artifact, pruned, result)
        yield done


def _fallback_entries(registry: RigRegistry, repository: str, subject: str) -> list[str] | None:
    """The digests the real fallback index of ``subject`` lists (None when the tag is absent)."""
    puller = RawPuller.for_registry(registry)
    if puller.digest_of(repository, referrers_tag(subject)) is None:
        return None
    raw, _media_type, _digest = puller.manifest(repository, referrers_tag(subject))
    return [entry["digest"] for entry in json.loads(raw)["manifests"]]


@pytest.mark.parametrize("key", KEYS)
def test_an_index_subject_without_referrers_has_none(runs: dict[str, Run], key: str) -> None:
    """The registry answers the fallback tag with the index itself; its children are not its referrers."""
    result = runs[key].task("info_bare")
    assert not result.failed, result.result
    assert result["referrers"] == [], result["referrers"]


@pytest.mark.parametrize("key", KEYS)
def test_an_artifact_pushed_to_an_index_subject_gets_a_fallback_index_of_its_own(
        runs: dict[str, Run], key: str) -> None:
    """The first referrer of an index: the fallback index written lists it alone, not the subject's children."""
    run = runs[key]
    pushed = run.task("artifact_push")
    assert not pushed.failed and pushed.changed, pushed.result
    assert _fallback_entries(run.upstream, f"{key}/signed", run.signed.digest) == [pushed["digest"]]
    info = run.task("info_signed")
    assert [r["digest"] for r in info["referrers"]] == [pushed["digest"]], info["referrers"]
    # The subject itself is untouched.
    assert RawPuller.for_registry(run.upstream).digest_of(f"{key}/signed", "1.0") == run.signed.digest


@pytest.mark.parametrize("key", KEYS)
def test_a_copy_out_with_referrers_copies_no_children_as_referrers(runs: dict[str, Run], key: str) -> None:
    """Out of the registry: the index and its two children, and no referrers (there are none)."""
    run = runs[key]
    result = run.task("copy_out")
    assert not result.failed, result.result
    assert RawPuller.for_registry(run.plain).digest_of(f"{key}/out", "1.0") == run.bare.digest
    assert result["copied"]["manifests"] == 3, result["copied"]
    assert _fallback_entries(run.plain, f"{key}/out", run.bare.digest) is None


@pytest.mark.parametrize("key", KEYS)
def test_a_copy_in_with_referrers_writes_a_fallback_index_of_the_referrers_only(runs: dict[str, Run],
                                                                                key: str) -> None:
    """Into the registry, which holds the subject index already: the fallback index written there lists the one
    referrer; the subject's bytes (its children) are not taken for an index to add it to."""
    run = runs[key]
    result = run.task("copy_in")
    assert not result.failed, result.result
    assert RawPuller.for_registry(run.upstream).digest_of(f"{key}/in", "1.0") == run.source.digest
    assert _fallback_entries(run.upstream, f"{key}/in", run.source.digest) == [run.source_artifact.digest]


@pytest.mark.parametrize("key", KEYS)
def test_prune_does_not_take_an_index_child_for_a_referrer(runs: dict[str, Run], key: str) -> None:
    """A kept child (tagged apart) is no referrer protecting its index: the matched index goes, the child stays."""
    run = runs[key]
    result = run.task("prune_check")
    assert not result.failed, result.result
    plan = {entry["digest"]: entry for entry in result["plan"]}
    index, kept_child = run.pruned.digest, run.pruned.children[1].digest
    assert plan[index]["action"] == "delete", plan[index]
    assert plan.get(kept_child, {}).get("action", "keep") == "keep", plan[kept_child]
    # The index and its other child (cascaded); the kept child stays.
    assert (result["summary"]["delete"], result["summary"]["delete_cascaded"]) == (2, 1), result["summary"]
    assert not [c for c in plan[index]["cascaded"] if c["relation"] == "referrer"], plan[index]["cascaded"]
