"""The suite through every registry personality (each vendor's recorded quirks): real ansible-playbook runs, real Distribution.

One token-auth Distribution (plus its token server) and one plain registry are
shared by the whole file. Each personality (``tests/rig/personalities``) gets
its own stack of proxies in front of them, its own repository namespace
(``<key>/…``), one seeding and ONE playbook run with every step; the tests
then check each step's result against what the registries really hold.

A step a registry refuses by design (``PersonalityData.refuses``) must fail
with the module's clear message. A step that fails because the client lacks a
fix is ``xfail(strict=True)`` with the quirk named (``XFAIL`` below), and
``tests/rig/personalities/FINDINGS.md`` says where the fix belongs.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme
from ansible_collections.ocireg.registry.plugins.module_utils._client.credentials import (
    Credentials,
)
from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import (
    Registry,
)
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.core import (
    TransportOptions,
)

from tests.rig.flavours import RigRegistry
from tests.rig.images import RawPuller, RawPusher, make_image, make_multiarch
from tests.rig.personalities.registries import PERSONALITIES
from tests.rig.personalities.stack import PersonalityData, PersonalityStack
from tests.rig.playbook import PlaybookResult, PlaybookRunner
from tests.rig.token_server import TokenServer

COLL = "ocireg.registry"
ARTIFACT_TYPE = "application/vnd.ocireg.personality.test+json"
ARTIFACT_TEXT = "personality artifact payload\n"
STEPS = ("info", "info_missing", "info_solo", "lookup", "tag", "copy_within", "copy_in", "copy_out", "mirror",
         "artifact_push", "artifact_pull", "prune_check", "prune_catalog", "prune_apply", "untag")
PRUNE_TAGS = ("v1", "v2", "v3", "v4", "keep")
CREDENTIALS = {"username": "alice", "password": "secret"}
BIG_LAYER = 5 * 1024 * 1024

#: (personality, step) -> the quirk and what breaks. Filled from real runs; see FINDINGS.md.
XFAIL: dict[tuple[str, str], str] = {
}


@dataclass
class PersonalityRun:
    """One personality's seeded content, its playbook result, and the registries to check against."""

    key: str
    data: PersonalityData
    front: str
    upstream: RigRegistry
    plain: RigRegistry
    app_digest: str
    seed_digest: str
    solo_digest: str
    prune_digests: dict[str, str]
    result: PlaybookResult
    seconds: float
    dest_dir: Path
    front_requests: list[Any] = field(default_factory=list)
    #: The stack's quirk state after the run (uploads the chunk quirks judged, refusals they sent).
    state: dict[str, Any] = field(default_factory=dict)

    def task(self, step: str) -> Any:
        return self.result.task(step)


def _solo_upstream(key: str) -> str:
    # Docker Hub keeps one-component names under library/ (the library_prefix quirk).
    return f"library/solo-{key}" if PERSONALITIES[key].quirks and any(
        q.name == "library_prefix" for q in PERSONALITIES[key].quirks) else f"solo-{key}"


def _tasks(key: str, front: str, plain: str, dest_dir: Path, payload: Path,
           ca_path: str | None = None) -> list[dict[str, Any]]:
    def task(name: str, module: str, check: bool = False, **args: Any) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": name, f"{COLL}.{module}": args, "ignore_errors": True}
        if check:
            entry["check_mode"] = True
        return entry

    app = f"{front}/{key}/app"
    tls = f", ca_path='{ca_path}'" if ca_path else ""
    lookup = f"lookup('{COLL}.registry', '{app}:1.0', username='alice', password='secret'{tls})"
    # The personality as a source gets its own src_auth (and, behind TLS, the rig CA).
    src_auth = {**CREDENTIALS, "ca_path": ca_path} if ca_path else CREDENTIALS
    return [
        task("info", "registry_manifest_info", reference=f"{app}:1.0", include=["tags"]),
        task("info_missing", "registry_manifest_info", reference=f"{front}/{key}/nothing:1.0"),
        task("info_solo", "registry_manifest_info", reference=f"{front}/solo-{key}:1.0"),
        {"name": "lookup", "ansible.builtin.set_fact": {"looked_up": "{{ " + lookup + " }}"}, "ignore_errors": True},
        task("tag", "registry_tag", repository=app, source=":1.0", tags=["prod"]),
        task("copy_within", "registry_copy", src=f"{app}:1.0", dest=f"{front}/{key}/copy"),
        task("copy_in", "registry_copy", src=f"{plain}/{key}/seed:1.0", dest=f"{front}/{key}/in"),
        # The top-level credentials go only to the registry written to (dest): the personality is the
        # source here, so it gets its own src_auth.
        task("copy_out", "registry_copy", src=f"{app}:1.0", dest=f"{plain}/{key}/out", src_auth=src_auth),
        task("mirror", "registry_copy", src=f"{front}/{key}/prune", dest=f"{plain}/{key}/mirror", tags=[".*"],
             src_auth=src_auth),
        task("artifact_push", "registry_artifact", reference=app, subject=":1.0", artifact_type=ARTIFACT_TYPE,
             files=[str(payload)]),
        task("artifact_pull", "registry_artifact", action="pull", reference=app, subject=":1.0",
             artifact_type=ARTIFACT_TYPE, dest=str(dest_dir)),
        task("prune_check", "registry_prune", check=True, repository=f"{front}/{key}/prune", match=["v.*"],
             keep_latest=1),
        # Repositories selected by pattern: matched against /v2/_catalog (refused by Hub, ACR, Harbor).
        task("prune_catalog", "registry_prune", check=True, registry=front, repositories=[f"{key}/prun*"],
             match=["v.*"], keep_latest=1),
        task("prune_apply", "registry_prune", repository=f"{front}/{key}/prune", match=["v.*"], keep_latest=1),
        task("untag", "registry_tag", repository=app, tags=["prod"], state="absent"),
    ]


class Runs:
    """Runs each personality once (lazily, on its first test) and keeps the results."""

    def __init__(self, token_server: TokenServer, upstream: RigRegistry, plain: RigRegistry,
                 runner: PlaybookRunner, workdir: Path) -> None:
        self.token_server = token_server
        self.upstream = upstream
        self.plain = plain
        self.runner = runner
        self.workdir = workdir
        # One CA for the personalities that sit behind TLS (data.tls).
        self.ca = trustme.CA()
        self.ca_file = workdir / "personality-ca.pem"
        self.ca_file.write_bytes(self.ca.cert_pem.bytes())
        self.done: dict[str, PersonalityRun] = {}

    def get(self, key: str) -> PersonalityRun:
        if key not in self.done:
            self.done[key] = self._run(key)
        return self.done[key]

    def _run(self, key: str) -> PersonalityRun:
        data = PERSONALITIES[key]
        pusher = RawPusher.for_registry(self.upstream)
        # What the personality holds is seeded as it holds it (data.seeded: e.g. no top-level mediaType).
        app = pusher.push(f"{key}/app", data.seeded(make_multiarch(f"{key}-app", layer_size=4096)), tag="1.0")
        solo = pusher.push(_solo_upstream(key), data.seeded(make_image(f"{key}-solo")), tag="1.0")
        prune = {}
        for number, tag in enumerate(PRUNE_TAGS):
            # Distinct images, oldest first, so keep_latest keeps v4 (and 'keep' is not matched).
            image = data.seeded(make_image(f"{key}-prune-{tag}", created=f"2024-01-0{number + 1}T00:00:00Z"))
            prune[tag] = pusher.push(f"{key}/prune", image, tag=tag).digest
        # Where a registry refuses big or open-ended upload chunks, copy_in carries a 5 MiB layer, over GHCR's
        # 4 MiB chunk limit, so the quirk judges a real multi-MiB upload.
        big = data.has("chunk_limit_416") or data.has("content_range_star_refused")
        seed = RawPusher.for_registry(self.plain).push(
            f"{key}/seed", make_image(f"{key}-seed", layer_size=BIG_LAYER if big else 1024), tag="1.0")
        workdir = self.workdir / key
        workdir.mkdir()
        payload = workdir / "payload.json"
        payload.write_text(ARTIFACT_TEXT)
        dest_dir = workdir / "pulled"
        ca_path = str(self.ca_file) if data.tls else None
        with PersonalityStack(key, data.quirks, self.upstream, self.token_server,
                              tls_ca=self.ca if data.tls else None) as stack:
            defaults = {"username": "alice", "password": "secret", **({"ca_path": ca_path} if ca_path else {})}
            play = {"name": key, "hosts": "localhost", "gather_facts": False,
                    "module_defaults": {f"group/{COLL}.registry": defaults},
                    "tasks": _tasks(key, stack.host, self.plain.host, dest_dir, payload, ca_path)}
            started = time.monotonic()
            result = self.runner.run(play)
            seconds = time.monotonic() - started
            requests = list(stack.front.requests)
        return PersonalityRun(key, data, stack.host, self.upstream, self.plain, app.digest, seed.digest, solo.digest,
                              prune, result, seconds, dest_dir, requests, dict(stack.state))


@pytest.fixture(scope="module")
def runs(rig_collection: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    """The shared registries and the per-personality runs of this file."""
    workdir = tmp_path_factory.mktemp("personalities")
    with TokenServer() as token_server, RigRegistry(token_server=token_server) as upstream, RigRegistry() as plain:
        found = Runs(token_server, upstream, plain, PlaybookRunner(rig_collection, workdir), workdir)
        yield found
        timings = ", ".join(f"{k} {r.seconds:.1f}s" for k, r in found.done.items())
        print(f"\npersonality playbook times: {timings}")
        for key, run in found.done.items():
            for task in run.result.tasks:
                if task.failed:
                    print(f"FAILED-STEP {key} {task.name}: {str(task.get('msg'))[:600]}")


# -- checks: each returns None when the step did what it should --------------------------------------
def _puller(reg: RigRegistry) -> RawPuller:
    return RawPuller.for_registry(reg)


def _digest_of(reg: RigRegistry, repository: str, tag: str) -> str | None:
    """The digest ``tag`` pulls as (all content verified); None only when the registry answers 404.

    A 401, a 500 or content that does not match its digest raises: read as "gone", they would pass a
    prune or untag check that should fail.
    """
    pulled = _puller(reg).pull_if_present(repository, tag)
    return None if pulled is None else pulled.digest


def check_info(run: PersonalityRun) -> None:
    result = run.task("info")
    assert result["exists"] is True and result["digest"] == run.app_digest, result.result
    if run.data.has("manifest_without_media_type"):
        # The registry really holds the index without a top-level mediaType (the quirk is exercised), and
        # the module still names its type: from Content-Type or, failing that, its shape.
        raw, _served_as, _digest = _puller(run.upstream).manifest(f"{run.key}/app", "1.0")
        assert "mediaType" not in json.loads(raw)
        assert result["media_type"] == "application/vnd.oci.image.index.v1+json", result.result


def check_info_missing(run: PersonalityRun) -> None:
    result = run.task("info_missing")
    assert not result.failed and result["exists"] is False, result.result
    if run.data.has("manifest_head_405"):
        # The quirk fired: manifest HEADs drew 405 (and the steps passed on GET). The client learns it per
        # run, so each module run sends at most one; fewer HEADs than module runs is all this can show.
        heads = [r.status for r in run.front_requests if r.method == "HEAD" and "/manifests/" in r.path]
        assert heads and set(heads) == {405} and len(heads) <= len(STEPS), heads


def check_info_solo(run: PersonalityRun) -> None:
    result = run.task("info_solo")
    assert result["exists"] is True and result["digest"] == run.solo_digest, result.result


def check_lookup(run: PersonalityRun) -> None:
    result = run.task("lookup")
    assert not result.failed and result["ansible_facts"]["looked_up"] == run.app_digest, result.result


def check_tag(run: PersonalityRun) -> None:
    assert not run.task("tag").failed, run.task("tag").result
    # untag runs later in the same playbook: the tag step's own report must say it pointed prod at the image.
    assert run.task("tag").changed and run.app_digest in str(run.task("tag").result), run.task("tag").result


def check_copy_within(run: PersonalityRun) -> None:
    assert not run.task("copy_within").failed, run.task("copy_within").result
    assert _digest_of(run.upstream, f"{run.key}/copy", "1.0") == run.app_digest
    if run.data.has("location_http_behind_tls"):
        # Behind TLS the registry named http:// upload Locations, and every upload still reached the TLS front
        # (the front only speaks TLS: a plain-http request would not have been answered at all).
        assert run.state.get("http_locations", 0) > 0, run.state
        assert any(r.method == "PUT" and "/blobs/uploads/" in r.path and r.status == 201 for r in run.front_requests)


def check_copy_in(run: PersonalityRun) -> None:
    assert not run.task("copy_in").failed, run.task("copy_in").result
    assert _digest_of(run.upstream, f"{run.key}/in", "1.0") == run.seed_digest
    if run.data.has("chunk_limit_416") or run.data.has("content_range_star_refused"):
        # GHCR refuses PATCH chunks over 4 MiB (416), ACR a `Content-Range: bytes 0-N/*` (400). The quirks
        # saw the 5 MiB layer go up and refused nothing: the client PUTs a blob of known size in one request.
        uploads = run.state.get("uploads", [])
        assert any(method == "PUT" and size > 4 * 1024 * 1024 for method, size, _range in uploads), uploads
        assert not [u for u in uploads if u[0] == "PATCH" and (u[1] > 4 * 1024 * 1024 or u[2].endswith("/*"))]
        assert run.state.get("refused", 0) == 0
    if run.data.has("range_stalls"):
        # ECR's Range stops advancing after the first PATCH: the client sent no PATCH at all, one PUT per blob.
        uploads = run.state.get("uploads", [])
        assert any(method == "PUT" and size > 0 for method, size, _range in uploads), uploads
        assert not [u for u in uploads if u[0] == "PATCH"] and run.state.get("stalled", 0) == 0, uploads


def check_copy_out(run: PersonalityRun) -> None:
    assert not run.task("copy_out").failed, run.task("copy_out").result
    assert _digest_of(run.plain, f"{run.key}/out", "1.0") == run.app_digest


def check_mirror(run: PersonalityRun) -> None:
    assert not run.task("mirror").failed, run.task("mirror").result
    for tag, digest in run.prune_digests.items():
        assert _digest_of(run.plain, f"{run.key}/mirror", tag) == digest, tag
    if any(q.name.startswith("page_size_over_") and q.name.endswith("_413") for q in run.data.quirks):
        # Quay: the client's first tag page (n=1000) really drew the 413 and was asked again smaller.
        assert any(r.status == 413 and "/tags/list" in r.path for r in run.front_requests), "413 never sent"


def check_artifact_push(run: PersonalityRun) -> None:
    result = run.task("artifact_push")
    assert not result.failed and result.changed, result.result


def check_artifact_pull(run: PersonalityRun) -> None:
    result = run.task("artifact_pull")
    assert not result.failed, result.result
    assert (run.dest_dir / "payload.json").read_text() == ARTIFACT_TEXT


def check_prune_check(run: PersonalityRun) -> None:
    result = run.task("prune_check")
    assert not result.failed and result.changed, result.result
    # The plan: v1-v3 go, v4 (newest of the matched) and 'keep' (unmatched) stay. That check mode wrote
    # nothing is proven in test_registry_prune.py; prune_apply runs next in this same playbook.
    assert result["summary"]["delete"] == 3, result["summary"]


def check_prune_catalog(run: PersonalityRun) -> None:
    result = run.task("prune_catalog")
    assert not result.failed and result.changed, result.result
    # The pattern found <key>/prune (and only it) in the shared registry's catalog: the same plan as prune_check.
    assert result["summary"]["delete"] == 3, result["summary"]
    assert any(r.path.startswith("/v2/_catalog") and r.status == 200 for r in run.front_requests)


def check_prune_apply(run: PersonalityRun) -> None:
    result = run.task("prune_apply")
    assert not result.failed, result.result
    # Deleted, not merely untagged: the tags and the manifests they named are gone (404 on each).
    for tag in ("v1", "v2", "v3"):
        assert _digest_of(run.upstream, f"{run.key}/prune", tag) is None, tag
        assert _digest_of(run.upstream, f"{run.key}/prune", run.prune_digests[tag]) is None, tag
    assert _digest_of(run.upstream, f"{run.key}/prune", "v4") == run.prune_digests["v4"]
    assert _digest_of(run.upstream, f"{run.key}/prune", "keep") == run.prune_digests["keep"]


def check_untag(run: PersonalityRun) -> None:
    assert not run.task("untag").failed, run.task("untag").result
    # Untagged, not deleted: prod answers 404, the image it named is still whole under 1.0 and by digest.
    assert _digest_of(run.upstream, f"{run.key}/app", "prod") is None
    assert _digest_of(run.upstream, f"{run.key}/app", "1.0") == run.app_digest
    assert _digest_of(run.upstream, f"{run.key}/app", run.app_digest) == run.app_digest


CHECKS: dict[str, Callable[[PersonalityRun], None]] = {
    name[len("check_"):]: fn for name, fn in globals().items() if name.startswith("check_")}
assert set(CHECKS) == set(STEPS), set(STEPS) ^ set(CHECKS)


def _cases() -> Iterator[Any]:
    for key in PERSONALITIES:
        for step in STEPS:
            marks = ([pytest.mark.xfail(strict=True, reason=XFAIL[key, step])] if (key, step) in XFAIL else [])
            yield pytest.param(key, step, marks=marks, id=f"{key}-{step}")


@pytest.mark.parametrize(("key", "step"), list(_cases()))
def test_personality(runs: Runs, key: str, step: str) -> None:
    """Each step through each personality does what it does on plain Distribution, or is refused clearly."""
    run = runs.get(key)
    refused = run.data.refuses.get(step)
    if refused is not None:
        why, pattern = refused
        result = run.task(step)
        assert result.failed, f"{key} {step} should be refused ({why}): {result.result}"
        message = str(result.get("msg", ""))
        assert re.search(pattern, message), f"{key} {step}: unclear refusal {message!r}"
        assert "Traceback" not in message
        return
    CHECKS[step](run)


def test_ecr_stalled_range_on_a_chunked_upload_is_finished_whole(runs: Runs) -> None:
    """ECR's range_stalls quirk, met head-on: modules PUT blobs whole (check_copy_in), so this drives the client's
    chunked path directly (it is used for content of unknown size). The second PATCH is stored but its Range stays
    at the first chunk's end; the client must not re-send (416) but finish the blob with one monolithic PUT."""
    data = PERSONALITIES["ecr"]
    blob = bytes(range(256)) * 12 * 1024  # 3 MiB: three 1 MiB chunks
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    with PersonalityStack("ecr", data.quirks, runs.upstream, runs.token_server) as stack:
        registry = Registry(stack.host, TransportOptions(plain_http=True),
                            Credentials(username="alice", password="secret"))
        try:
            registry.repository("ecr/chunked", for_write=True).push_blob(
                digest, len(blob), blob, chunked=True, chunk_size=1024 * 1024)
        finally:
            registry.close()
        patches = [r for r in stack.front.requests if r.method == "PATCH"]
        puts = [r for r in stack.front.requests if r.method == "PUT" and "/blobs/uploads/" in r.path]
    assert stack.state.get("stalled", 0) == 1, stack.state  # the quirk fired once ...
    assert len(patches) == 2 and all(r.status == 201 for r in patches)  # ... (ECR's PATCH answers 201) ...
    assert len(puts) == 1 and puts[0].status == 201  # ... and one fresh session took the blob whole
    assert _puller(runs.upstream).blob("ecr/chunked", digest) == blob
