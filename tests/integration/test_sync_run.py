"""The mirror engine (_ops/sync/run.py) between real Distribution 2.8 registries and layouts: selectors,
naming rules, the shared pool, exact mirrors with guardrails, no_clobber drift, progress, the rate-limit
stop, and the tags spelling (run_transfer) on the same pool over registries and layouts."""
from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import UTC, datetime

import pytest
from ansible_collections.ocireg.registry.plugins.module_utils._glue.clients import (
    ClientFactory,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    InvalidInputError,
    RegistryError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.image import (
    CopyOptions,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.copying.transfer import (
    run_transfer,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.sync import run as sync_run
from ansible_collections.ocireg.registry.plugins.module_utils._ops.sync.run import (
    RequestRate,
    SyncOptions,
    run_sync,
)
from ansible_collections.ocireg.registry.plugins.module_utils._ops.sync.spec import (
    expand_spec,
)

from tests.rig import images
from tests.rig.fault_proxy import FaultProxy, docker_hub_rate_limit
from tests.rig.images import RawPuller, RawPusher

NOW = datetime(2026, 6, 1, tzinfo=UTC)
APP_TAGS = ["1.0.0", "1.1.0", "1.1.1", "1.2.0-rc.1", "2.0.0", "latest", "dev"]


def opener(*registries):
    """The run's registry factory: plain HTTP clients for the rig's hosts (sides share options here)."""
    factory = ClientFactory({"plain_http": True, "retries": 1, "timeout": 30})
    hosts = {registry.host for registry in registries}

    def open_registry(host, side):
        assert host in hosts, host
        assert side in ("src", "dest")
        return factory.registry(host)
    return open_registry


def seed(registry, name, tags, created=None):
    RawPusher.for_registry(registry).push_tags(name, tags, created=created, default_created="2026-01-01T00:00:00Z")


def dest_tags(registry, name):
    return RawPuller.for_registry(registry).existing_tags(name)


@pytest.fixture
def src(registry_factory):
    registry = registry_factory()
    seed(registry, "lib/app", APP_TAGS)
    seed(registry, "lib/tool", ["v1.0", "v1.1"])
    seed(registry, "other/x", ["a", "b"])
    return registry


@pytest.fixture
def dest(registry_factory):
    return registry_factory()


def test_selectors_and_naming_rules_across_repositories_each_tag_copied_once(src, dest, tmp_path):
    pairs = expand_spec([
        {"src": [f"{src.host}/lib/app", f"{src.host}/lib/tool"], "dest": f"{dest.host}/mirror", "naming": "flat",
         "semver": ">=1.1", "exclude": ["2\\..*"]},
        {"src": f"{src.host}/other/x", "dest": dest.host,
         "rewrite": {"pattern": "other/(.*)", "replacement": "renamed/\\1"}, "names": ["a"]},
        {"src": f"{src.host}/lib/app", "dest": f"{dest.host}/keep", "names": ["latest"], "include": ["1\\.0\\..*"]},
    ])
    progress = tmp_path / "progress.jsonl"
    mark = dest.mark()
    result = run_sync(pairs, opener(src, dest), SyncOptions(concurrency=4, progress_file=str(progress)), now=NOW)
    assert not result["failed"], result
    assert dest_tags(dest, "mirror/app") == ["1.1.0", "1.1.1"]   # rc and 2.0.0 left out, 1.0.0 below the range
    assert dest_tags(dest, "mirror/tool") == ["v1.1"]
    assert dest_tags(dest, "renamed/x") == ["a"]
    assert dest_tags(dest, "keep/lib/app") == ["1.0.0", "latest"]  # prefix naming keeps the source path
    # The shared pool copies each selected tag exactly once: one tag PUT per (repository, tag).
    tag_puts = Counter(r.path for r in dest.writes_since(mark)
                       if r.method == "PUT" and "/manifests/" in r.path and "sha256:" not in r.path)
    assert set(tag_puts.values()) == {1} and len(tag_puts) == 6, tag_puts
    assert result["summary"]["copied"] == 6 and result["summary"]["repositories"] == 4
    app = result["repositories"][0]
    assert app["line"].startswith(f"{src.host}/lib/app -> {dest.host}/mirror/app: 2 copied, 0 already present, "
                                  "0 failed")
    decisions = {d["tag"]: d for d in app["selection"]["decisions"]}
    assert decisions["2.0.0"]["selector"] == "exclude" and decisions["1.2.0-rc.1"]["selector"] == "match"
    # Progress: one JSON line per tag, as they finished.
    lines = [json.loads(line) for line in progress.read_text().splitlines()]
    assert sorted((line["dest"], line["tag"]) for line in lines) == sorted(
        (r["dest"], tag) for r in result["repositories"] for tag in r["copied"])
    assert lines[-1]["done"] == lines[-1]["total"] == 6
    # Again: nothing to do, nothing written.
    mark = dest.mark()
    again = run_sync(pairs, opener(src, dest), SyncOptions(concurrency=4), now=NOW)
    assert not again["changed"] and again["summary"]["already_present"] == 6
    assert dest.writes_since(mark) == []


def test_source_listed_once_per_repository(src, dest):
    pairs = expand_spec([
        {"src": f"{src.host}/lib/app", "dest": f"{dest.host}/one", "names": ["dev"]},
        {"src": f"{src.host}/lib/app", "dest": f"{dest.host}/two", "names": ["dev"]},
    ])
    mark = src.mark()
    run_sync(pairs, opener(src, dest), SyncOptions(), now=NOW)
    listings = [r for r in src.requests_since(mark) if r.method == "GET" and "/tags/list" in r.path]
    assert len(listings) == 1, listings


def test_ages_are_read_only_when_needed_and_drive_newest_and_min_age(registry_factory, dest):
    src = registry_factory()
    created = {"a": "2026-05-01T00:00:00Z", "b": "2026-05-20T00:00:00Z", "c": "2026-05-31T12:00:00Z",
               "d": "2026-04-01T00:00:00Z"}
    seed(src, "aged", list(created), created)
    pairs = expand_spec([{"src": f"{src.host}/aged", "dest": dest.host, "newest": 2, "newest_by": "age",
                          "min_age": "2d"}])
    result = run_sync(pairs, opener(src, dest), SyncOptions(check_mode=True), now=NOW)
    repo = result["repositories"][0]
    assert sorted(repo["selection"]["selected"]) == ["a", "b"]  # c is 12 h old; of a, b, d the two newest
    reasons = {d["tag"]: d["reason"] for d in repo["selection"]["decisions"]}
    assert reasons["c"] == "12h old, younger than min_age 2d"
    assert "2 newer tags by age" in reasons["d"]
    # Without age selectors no config blob is read.
    mark = src.mark()
    run_sync(expand_spec([{"src": f"{src.host}/aged", "dest": dest.host, "newest": 1}]), opener(src, dest),
             SyncOptions(check_mode=True), now=NOW)
    assert not [r for r in src.requests_since(mark) if "/blobs/" in r.path and r.method == "GET"]


def test_exact_mirror_with_guardrails(src, dest):
    spec = [{"src": f"{src.host}/lib/tool", "dest": dest.host}]
    run_sync(expand_spec(spec), opener(src, dest), SyncOptions(), now=NOW)
    seed(dest, "lib/tool", ["gone1", "gone2"])  # tags the source does not have
    pairs = expand_spec(spec)

    # Over the limit: nothing is removed, the run says why.
    mark = dest.mark()
    refused = run_sync(pairs, opener(src, dest), SyncOptions(prune_missing=True, max_deletions=1), now=NOW)
    assert refused["failed"] and "more than max_deletions 1" in refused["prune"]["refused"]
    assert refused["prune"]["planned"] == {f"{dest.host}/lib/tool": ["gone1", "gone2"]}
    assert dest.writes_since(mark) == []

    # Check mode shows them and writes nothing.
    checked = run_sync(pairs, opener(src, dest), SyncOptions(prune_missing=True, check_mode=True), now=NOW)
    assert checked["repositories"][0]["prune_planned"] == ["gone1", "gone2"] and checked["changed"]
    assert "2 would be removed" in checked["repositories"][0]["line"]
    assert dest.writes_since(mark) == []

    done = run_sync(pairs, opener(src, dest), SyncOptions(prune_missing=True, max_deletions=2), now=NOW)
    assert not done["failed"] and done["summary"]["pruned"] == 2, done
    assert dest_tags(dest, "lib/tool") == ["v1.0", "v1.1"]


def test_prune_refuses_to_empty_a_destination_when_the_source_lists_nothing(registry_factory, dest):
    src = registry_factory()
    image = images.make_image("empty:t")
    RawPusher.for_registry(src).push("empty", image, tag="t")
    pairs = expand_spec([{"src": f"{src.host}/empty", "dest": dest.host}])
    run_sync(pairs, opener(src, dest), SyncOptions(), now=NOW)
    RawPusher.for_registry(src).delete_manifest("empty", image.digest)
    result = run_sync(pairs, opener(src, dest), SyncOptions(prune_missing=True), now=NOW)
    assert "lists no tags" in result["prune"]["refused"] and dest_tags(dest, "empty") == ["t"]


def test_no_clobber_reports_drift_and_leaves_the_tag(src, dest):
    other = images.make_image("somewhere else")
    RawPusher.for_registry(dest).push("lib/tool", other, tag="v1.0")
    pairs = expand_spec([{"src": f"{src.host}/lib/tool", "dest": dest.host}])
    result = run_sync(pairs, opener(src, dest), SyncOptions(no_clobber=True), now=NOW)
    repo = result["repositories"][0]
    assert repo["drift"] == ["v1.0"] and repo["copied"] == ["v1.1"] and result["failed"]
    assert repo["tags"]["v1.0"]["dest_digest"] == other.digest
    assert RawPuller.for_registry(dest).head_manifest("lib/tool", "v1.0").headers["Docker-Content-Digest"] \
        == other.digest
    # Without no_clobber the tag is moved to the source's image.
    moved = run_sync(pairs, opener(src, dest), SyncOptions(), now=NOW)
    assert moved["repositories"][0]["copied"] == ["v1.0"]


def test_rate_limit_stop_before_min_remaining(src, dest):
    # A fake: Distribution 2.8 sends no RateLimit-* headers (only Docker Hub does), so a proxy in
    # front of the real source adds them, counting down one per request, as Docker Hub does per pull.
    with FaultProxy.for_registry(src) as proxy:
        proxy.add("rewrite", times=None, handler=docker_hub_rate_limit(12))
        pairs = expand_spec([{"src": f"{proxy.host}/lib/app", "dest": dest.host},
                             {"src": f"{proxy.host}/lib/tool", "dest": dest.host}])

        class Both:
            host = proxy.host
        result = run_sync(pairs, opener(Both, dest), SyncOptions(concurrency=1, min_remaining=5), now=NOW)
    # The tag in flight when the limit was crossed finishes (a few more requests), nothing new starts.
    assert result["failed"] and result["stopped"].startswith(f"stopped: {proxy.host} reports ")
    assert "at or below min_remaining 5" in result["stopped"]
    limit = result["rate_limits"][proxy.host]
    assert limit["limit"] == 100 and limit["window"] == 21600 and limit["remaining"] <= 5
    summary = result["summary"]
    assert summary["copied"] >= 1 and summary["not_attempted"] >= 1 and summary["failed"] == 0
    # Stopped cleanly: every tag that was started finished (a tag exists at dest only whole).
    for repo in result["repositories"]:
        for tag in repo["copied"]:
            assert tag in dest_tags(dest, repo["dest"].split("/", 1)[1])


def test_request_ceiling_is_shared_by_the_pool(src, dest, monkeypatch):
    # The bucket's clock only moves when a worker waits for a token: no wall clock, no real waiting.
    clock, buckets, lock = [0.0], [], threading.Lock()

    def sleep(seconds):
        with lock:  # at least a nanosecond: a wait below the float's resolution would not move the clock
            clock[0] += max(seconds, 1e-9)

    def bucket(rate, **options):
        buckets.append(RequestRate(rate, clock=lambda: clock[0], sleep=sleep, **options))
        return buckets[-1]

    monkeypatch.setattr(sync_run, "RequestRate", bucket)
    pairs = expand_spec([{"src": f"{src.host}/lib/app", "dest": dest.host, "names": ["dev", "latest", "1.0.0"]}])
    mark, dest_mark = src.mark(), dest.mark()
    result = run_sync(pairs, opener(src, dest), SyncOptions(concurrency=4, max_requests_per_second=10), now=NOW)
    assert not result["failed"] and result["summary"]["copied"] == 3
    sent = len(src.requests_since(mark)) + len(dest.requests_since(dest_mark))
    # One bucket for the whole pool, and every request to either registry took one of its tokens ...
    assert len(buckets) == 1 and buckets[0].acquired == sent > 20, (len(buckets), buckets[0].acquired, sent)
    # ... so after the burst of 10 the workers waited for the rest at 10 a second.
    assert clock[0] >= (sent - 10) / 10 - 1e-9, (sent, clock[0])


def test_bad_options_are_one_line_each():
    with pytest.raises(InvalidInputError) as caught:
        run_sync([], lambda host, side: None, SyncOptions(concurrency=0, max_deletions=-1, min_remaining=-2,
                                                          max_requests_per_second=0))
    assert len(str(caught.value).splitlines()) == 5


def test_a_progress_file_that_cannot_be_written_is_an_input_error(tmp_path):
    with pytest.raises(InvalidInputError, match="progress_file: cannot append to"):
        run_sync([], lambda host, side: None, SyncOptions(progress_file=str(tmp_path / "no" / "such" / "p.jsonl")))
    # Check mode judges the path the same way, and writes nothing even where it could.
    for path in (tmp_path / "no" / "such" / "p.jsonl", tmp_path):
        with pytest.raises(InvalidInputError, match="progress_file: cannot append to"):
            run_sync([], lambda host, side: None, SyncOptions(check_mode=True, progress_file=str(path)))
    result = run_sync([], lambda host, side: None, SyncOptions(check_mode=True, progress_file=str(tmp_path / "p")))
    assert result["progress_file"] is None and list(tmp_path.iterdir()) == []


def test_request_rate_bucket_waits_for_tokens():
    clock = [0.0]

    def sleep(seconds):
        clock[0] += seconds

    rate = RequestRate(2, clock=lambda: clock[0], sleep=sleep)
    for _request in range(5):
        rate.acquire()
    # Burst of 2, then one token every 0.5 s: 5 requests take 1.5 s.
    assert clock[0] == pytest.approx(1.5) and rate.acquired == 5


# -- the tags spelling on the same engine: any store, the shared pool ------------------------------------
def tags_mirror(src_text, dest_text, factory, **options):
    """registry_copy's ``tags`` mirror as the module runs it (run_transfer), with plain HTTP clients."""
    def open_repository(reference, _side):
        return factory.registry(reference.registry).repository(reference.repository)
    return run_transfer(src_text, dest_text, CopyOptions(), open_repository, tag_patterns=[".*"], **options)


def test_the_tags_spelling_copies_tags_at_once_on_the_pool(src, dest):
    # Each of the four tags' first look at the destination waits until all four are there: a mirror
    # that copied one tag after another would break the barrier (a failure, not a slow pass).
    factory = ClientFactory({"plain_http": True, "retries": 1, "timeout": 30})
    barrier = threading.Barrier(4, timeout=30)
    looked: set[str] = set()
    lock = threading.Lock()
    target = factory.registry(dest.host).repository("m/app")
    resolve = target.resolve

    def resolve_together(reference):
        with lock:
            first = reference in APP_TAGS[:4] and reference not in looked
            looked.add(reference)
        if first:
            barrier.wait()
        return resolve(reference)

    target.resolve = resolve_together
    seed(src, "four/app", APP_TAGS[:4])

    def open_repository(reference, side):
        return target if side == "dest" else factory.registry(reference.registry).repository(reference.repository)

    done = run_transfer(f"{src.host}/four/app", f"{dest.host}/m/app", CopyOptions(), open_repository,
                        tag_patterns=[".*"], concurrency=4)
    assert not done.mirror.failed and sorted(done.mirror.tags) == sorted(APP_TAGS[:4]), done.mirror.failed
    assert dest_tags(dest, "m/app") == sorted(APP_TAGS[:4])
    # One result shape: the repository's summary line next to the per-tag results.
    [repository] = done.mirror.repositories
    assert repository["copied"] == sorted(APP_TAGS[:4]) and "4 copied, 0 already present, 0 failed" in \
        repository["line"]


def test_the_tags_spelling_from_a_registry_into_a_layout_and_back(src, dest, tmp_path):
    factory = ClientFactory({"plain_http": True, "retries": 1, "timeout": 30})
    layout = tmp_path / "bundle"
    into = tags_mirror(f"{src.host}/lib/app", f"oci:{layout}", factory, concurrency=8)
    assert into.changed and not into.mirror.failed and sorted(into.mirror.tags) == sorted(APP_TAGS)
    # Tags written from several workers at once: every one is named in index.json.
    names = sorted(entry["annotations"]["org.opencontainers.image.ref.name"]
                   for entry in json.loads((layout / "index.json").read_text())["manifests"])
    assert names == sorted(f"lib/app:{tag}" for tag in APP_TAGS)
    assert into.mirror.summary["copied"] == len(APP_TAGS) and into.mirror.repositories[0]["error"] is None
    again = tags_mirror(f"{src.host}/lib/app", f"oci:{layout}", factory)
    assert not again.changed and again.mirror.summary["already_present"] == len(APP_TAGS)

    # Out of the layout (a bundle of one repository) into a registry, each tag under its repository.
    mark = dest.mark()
    back = tags_mirror(f"oci:{layout}", f"{dest.host}/restored", factory)
    assert back.changed and sorted(back.mirror.tags) == sorted(f"lib/app:{tag}" for tag in APP_TAGS)
    assert dest_tags(dest, "restored/lib/app") == sorted(APP_TAGS)
    for tag in APP_TAGS:
        assert RawPuller.for_registry(dest).pull("restored/lib/app", tag).digest == \
            RawPuller.for_registry(src).pull("lib/app", tag).digest
    assert dest.writes_since(mark)
    mark = dest.mark()
    again = tags_mirror(f"oci:{layout}", f"{dest.host}/restored", factory)
    assert not again.changed and dest.writes_since(mark) == []
    # The no-op of a layout source: one HEAD per tag at the destination, nothing else.
    assert len(dest.requests_since(mark)) == len(APP_TAGS)


def test_keep_going_off_starts_no_tag_after_a_failure(src, dest):
    factory = ClientFactory({"plain_http": True, "retries": 1, "timeout": 30})
    target = factory.registry(dest.host).repository("m/app")
    resolve = target.resolve

    def refuse_one(reference):
        if reference == "1.0.0":
            raise RegistryError("the destination refused 1.0.0")
        return resolve(reference)

    target.resolve = refuse_one

    def open_repository(reference, side):
        return target if side == "dest" else factory.registry(reference.registry).repository(reference.repository)

    done = run_transfer(f"{src.host}/lib/app", f"{dest.host}/m/app", CopyOptions(), open_repository,
                        tag_patterns=[".*"], concurrency=1)
    # Sorted order, one at a time: 1.0.0 is first and fails, no other tag is started.
    assert list(done.mirror.failed) == ["1.0.0"] and done.mirror.tags == {}
    assert sorted(done.mirror.not_attempted) == sorted(set(APP_TAGS) - {"1.0.0"})
    message = sync_run.failure_message(done.mirror.to_dict(), per_tag=True)
    # Counted of every selected tag, and the one failed tag named in its cause.
    assert message.startswith(f"1 of {len(APP_TAGS)} tags failed to mirror: 1.0.0: the destination refused 1.0.0; "
                              f"{len(APP_TAGS) - 1} not attempted: "), message
    assert message.endswith(f"and {len(APP_TAGS) - 1 - 3} more"), message
    assert dest_tags(dest, "m/app") == []
