"""registry_copy's sync mode (mirror_spec, select) through real ``ansible-playbook`` runs against real
Distribution 2.8 registries: every selector, the naming rules of a many-repository spec, exact-mirror
removal with its guardrails, no_clobber drift, the rate-limit stop, progress, and bad input.

To keep the file fast, each test is one playbook with several tasks (``ignore_errors`` so one failing
task does not hide the others), checked afterwards through the task results and the registries.
"""
from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.rig.fault_proxy import FaultProxy, Reply, docker_hub_rate_limit
from tests.rig.images import RawPuller, RawPusher, cosign_tag, make_image

MODULE = "ocireg.registry.registry_copy"
OLD = "2020-01-01T00:00:00Z"
APP_TAGS = ["0.9.0", "1.0.0", "1.0.1", "1.1.0", "1.1.1", "1.2.0-rc.1", "2.0.0", "latest", "dev"]


def stamp(delta: timedelta) -> str:
    return (datetime.now(UTC) - delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def task(name: str, check: bool = False, **args) -> dict:
    entry = {"name": name, MODULE: {"plain_http": True, **args}, "register": "out", "ignore_errors": True}
    if check:
        entry["check_mode"] = True
    return entry


def seed(registry, name, tags, created=None):
    RawPusher.for_registry(registry).push_tags(name, tags, created=created, default_created=OLD)


def tags_of(registry, name):
    return RawPuller.for_registry(registry).existing_tags(name)


def digest_of(registry, name, tag):
    return RawPuller.for_registry(registry).digest_of(name, tag)


@pytest.fixture
def src(registry_factory):
    registry = registry_factory()
    # Ages for min_age and newest_by: age: dev is an hour old, latest two days, the rest years.
    seed(registry, "lib/app", APP_TAGS, {"dev": stamp(timedelta(hours=1)), "latest": stamp(timedelta(days=2))})
    seed(registry, "lib/tool", ["v1.0", "v1.1"])
    seed(registry, "other/x", ["a", "b"])
    return registry


def test_every_selector_and_the_naming_rules(src, registry_factory, run_playbook, tmp_path):
    dest = registry_factory()
    app = f"{src.host}/lib/app"

    def exact(path, **selectors):
        return {"src": app, "dest": f"{dest.host}/sel/{path}", "naming": "exact", **selectors}

    progress = tmp_path / "progress.jsonl"
    selectors_task = task("selectors", mirror_spec=[
        exact("include", include=["1\\.1\\..*"]),
        exact("semver", semver=">=1.0 <2", exclude=["1\\.0\\.0"]),
        exact("prerelease", semver="^1", prerelease=True),
        exact("names", names=["latest", "nope"]),
        exact("patch", semver="*", newest_patch_per="minor"),
        exact("major", semver="*", newest_patch_per="major"),
        exact("newest", semver="*", newest=2),
        exact("age", newest=1, newest_by="age"),
        exact("min_age", include=["dev|latest|2\\..*"], min_age="1d"),
    ], concurrency=4, progress_file=str(progress))
    naming_task = task("naming", mirror_spec=[
        {"src": [app, f"{src.host}/lib/tool"], "dest": f"{dest.host}/pre", "names": ["1.0.0", "v1.0"]},
        {"src": app, "dest": f"{dest.host}/flat", "naming": "flat", "names": ["2.0.0"]},
        {"src": f"{src.host}/other/x", "dest": dest.host,
         "rewrite": {"pattern": "other/(.*)", "replacement": "renamed/\\1"}},
        {"src": f"{src.host}/lib/tool", "dest": dest.host},  # prefix onto a bare registry keeps the path
    ])
    select_task = task("select", src=f"{src.host}/lib/tool", dest=f"{dest.host}/one/tool",
                       select={"semver": "1.1"})
    run = run_playbook(tasks=[selectors_task, naming_task, select_task,
                              {**select_task, "name": "select again"}])

    result = run.task("selectors")
    assert not result.failed and result.changed, run.explain()
    expected = {
        "include": ["1.1.0", "1.1.1"],
        "semver": ["1.0.1", "1.1.0", "1.1.1"],
        "prerelease": ["1.0.0", "1.0.1", "1.1.0", "1.1.1", "1.2.0-rc.1"],
        "names": ["latest"],
        "patch": ["0.9.0", "1.0.1", "1.1.1", "2.0.0"],
        "major": ["0.9.0", "1.1.1", "2.0.0"],
        "newest": ["1.1.1", "2.0.0"],
        "age": ["dev"],
        "min_age": ["2.0.0", "latest"],
    }
    for path, tags in expected.items():
        assert tags_of(dest, f"sel/{path}") == tags, path
    repositories = {r["dest"].rsplit("/", 1)[1]: r for r in result["repositories"]}
    assert {path: sorted(r["copied"]) for path, r in repositories.items()} == expected
    # Each tag has one decision saying which selector decided it and why.
    decisions = {d["tag"]: d for d in repositories["min_age"]["selection"]["decisions"]}
    assert decisions["dev"]["selector"] == "min_age" and not decisions["dev"]["selected"], decisions["dev"]
    assert repositories["names"]["selection"]["missing"] == ["nope"]
    assert any("names not in the source: nope" in w for w in run.task("selectors").result.get("warnings", [])) \
        or "names not in the source: nope" in run.output
    line = repositories["include"]["line"]
    assert line.startswith(f"{app} -> {dest.host}/sel/include: 2 copied, 0 already present, 0 failed"), line
    assert result["summary"]["copied"] == sum(len(t) for t in expected.values())
    assert result["summary"]["repositories"] == len(expected) and result["stopped"] is None
    # Progress: one JSON line per finished tag.
    lines = [json.loads(text) for text in progress.read_text().splitlines()]
    done = [entry for entry in lines if "tag" in entry]
    assert len(done) == result["summary"]["copied"] and max(e["done"] for e in done) == len(done)
    assert result["progress_file"] == str(progress)

    naming = run.task("naming")
    assert not naming.failed, run.explain()
    assert tags_of(dest, "pre/lib/app") == ["1.0.0"] and tags_of(dest, "pre/lib/tool") == ["v1.0"]
    assert tags_of(dest, "flat/app") == ["2.0.0"]
    assert tags_of(dest, "renamed/x") == ["a", "b"]
    assert tags_of(dest, "lib/tool") == ["v1.0", "v1.1"]
    assert [r["dest"] for r in naming["repositories"]] == [
        f"{dest.host}/pre/lib/app", f"{dest.host}/pre/lib/tool", f"{dest.host}/flat/app", f"{dest.host}/renamed/x",
        f"{dest.host}/lib/tool"]

    chosen = run.task("select")
    assert not chosen.failed and chosen.changed and tags_of(dest, "one/tool") == ["v1.1"], run.explain()
    again = run.task("select again")
    assert not again.failed and not again.changed
    assert again["repositories"][0]["already_present"] == ["v1.1"]


def test_exact_mirror_guardrails_and_no_clobber_drift(src, registry_factory, run_playbook):
    dest = registry_factory()
    tool = f"{src.host}/lib/tool"
    # The destination has two tags upstream no longer has, and one that drifted (another image).
    seed(dest, "exact/tool", ["v1.0", "gone1", "gone2"])
    seed(dest, "drift/tool", ["v1.0"])
    drifted = digest_of(dest, "drift/tool", "v1.0")
    gone = {tag: digest_of(dest, "exact/tool", tag) for tag in ("gone1", "gone2")}

    def exact_task(name, check=False, **options):
        return task(name, check=check, src=tool, dest=f"{dest.host}/exact/tool", select={}, prune_missing=True,
                    **options)

    run = run_playbook(tasks=[
        exact_task("check", check=True),
        exact_task("over the limit", max_deletions=1),
        exact_task("exact", max_deletions=2),
        task("no clobber", src=tool, dest=f"{dest.host}/drift/tool", select={}, no_clobber=True),
    ], diff=True)

    check = run.task("check")
    assert not check.failed and check.changed, run.explain()
    assert check["prune"]["planned"] == {f"{dest.host}/exact/tool": ["gone1", "gone2"]}
    assert check["prune"]["removed"] == {}
    # Check mode counts what it would remove, as it counts what it would copy; the diff names the digests.
    assert check["summary"]["pruned"] == 2 and check["repositories"][0]["pruned"] == ["gone1", "gone2"]
    assert ", 2 would be removed," in check["repositories"][0]["line"]
    assert {tag: check.diff["before"][f"{dest.host}/exact/tool:{tag}"] for tag in gone} == gone

    refused = run.task("over the limit")
    assert refused.failed
    assert "would remove 2 tags, more than max_deletions 1: nothing was removed" in refused["msg"]
    assert refused["prune"]["removed"] == {}
    # Check mode removed nothing: the next run still found both tags to remove.
    assert refused["prune"]["planned"] == check["prune"]["planned"]
    # The copies of the same run did happen (the limit guards removals only).
    assert refused["repositories"][0]["copied"] == ["v1.0", "v1.1"]

    done = run.task("exact")
    assert not done.failed and done.changed, run.explain()
    assert done["prune"]["removed"] == {f"{dest.host}/exact/tool": ["gone1", "gone2"]}
    assert tags_of(dest, "exact/tool") == ["v1.0", "v1.1"]
    assert done.diff["after"][f"{dest.host}/exact/tool:gone1"] == "absent"
    assert done.diff["before"][f"{dest.host}/exact/tool:gone1"] == gone["gone1"]
    assert done["summary"]["pruned"] == 2
    assert ", 2 removed," in done["repositories"][0]["line"]

    clobber = run.task("no clobber")
    assert clobber.failed
    repository = clobber["repositories"][0]
    assert repository["drift"] == ["v1.0"] and repository["copied"] == ["v1.1"]
    assert repository["tags"]["v1.0"]["dest_digest"] == drifted
    assert "1 drifted (no_clobber)" in clobber["msg"]
    # The drifted tag is named in its cause, not masked as <tag>.
    assert f"v1.0: {dest.host}/drift/tool:v1.0 points at {drifted}" in clobber["msg"], clobber["msg"]
    assert digest_of(dest, "drift/tool", "v1.0") == drifted  # left where it was


def test_an_exact_mirror_counts_a_removal_already_gone_as_removed(src, registry_factory, run_playbook):
    """A removal whose DELETE finds the manifest already gone (404) counts as removed, not failed.

    A fake in front of the real destination: it forwards the placeholder's DELETE (Distribution
    removes it and the tag), then answers 503 in its place, so the client sends the DELETE again
    and Distribution answers what it answers on Debian 13's 2.8.3 there: 404 MANIFEST_UNKNOWN.
    """
    dest = registry_factory()
    seed(dest, "exact/tool", ["v1.0", "gone1", "gone2"])
    with FaultProxy.for_registry(dest) as proxy:
        rule = proxy.add("rewrite", method="DELETE", path=r"/manifests/sha256:", times=1,
                         handler=lambda request, reply: Reply(503, [("Content-Type", "application/json")], b"{}", 2))
        run = run_playbook(tasks=[task("exact", src=f"{src.host}/lib/tool", dest=f"{proxy.host}/exact/tool",
                                       select={}, prune_missing=True, max_deletions=2, concurrency=1)])
        assert rule.fired == 1
    done = run.task("exact")
    assert not done.failed, run.explain()
    assert done["prune"]["removed"] == {f"{proxy.host}/exact/tool": ["gone1", "gone2"]}
    assert tags_of(dest, "exact/tool") == ["v1.0", "v1.1"]
    assert ", 0 failed, " in done["repositories"][0]["line"] and ", 2 removed," in done["repositories"][0]["line"]


def kinds(requests, repository):
    """The requests sent for ``repository``, counted by what they were: ``GET tags``, ``HEAD manifest``,
    ``DELETE manifest 400`` (a status is named where it is not the success), ``PUT blob upload``..."""
    counted = {}
    for request in requests:
        path = request.path.split("?", 1)[0]
        if not path.startswith(f"/v2/{repository}/"):
            continue
        what = path[len(f"/v2/{repository}/"):].split("/", 2)
        blob = "blob upload" if what[1:2] == ["uploads"] else "blob"
        kind = {"tags": "tags", "manifests": "manifest"}.get(what[0], blob)
        status = "" if request.status in (200, 201, 202) else f" {request.status}"
        name = f"{request.method} {kind}{status}"
        counted[name] = counted.get(name, 0) + 1
    return counted


def test_prune_missing_reads_a_removed_tags_digest_only_for_a_diff(src, registry_factory, run_playbook):
    """The destination's requests for two removals, with and without --diff, in check mode and for real.

    A removed tag's digest is read for the diff alone: without --diff, check mode sends nothing for its
    removals, and a registry with DELETE by tag sends that DELETE alone. Distribution 2.8 has no DELETE
    by tag: there the placeholder untag needs the digest anyway (it is read once either way), the refused
    DELETE by tag is sent once per registry, and the placeholder's empty blob looked for once per
    repository, however many removals run at once.
    """
    dest = registry_factory()
    tool = f"{src.host}/lib/tool"
    runs = {(check, diff): f"{'check' if check else 'real'}-{'diff' if diff else 'plain'}/tool"
            for check in (True, False) for diff in (True, False)}
    setup = run_playbook(tasks=[task(f"mirror {name}", src=tool, dest=f"{dest.host}/{name}", select={})
                                for name in runs.values()])
    assert not any(setup.task(f"mirror {name}").failed for name in runs.values()), setup.explain()
    for name in runs.values():
        seed(dest, name, ["gone1", "gone2"])
    mark = dest.mark()

    def prune(check, diff):
        entry = task(f"prune {runs[check, diff]}", check=check, src=tool, dest=f"{dest.host}/{runs[check, diff]}",
                     select={}, prune_missing=True)
        return {**entry, "diff": diff}

    run = run_playbook(tasks=[prune(check, diff) for check, diff in runs])
    logged = dest.requests_since(mark)
    for (check, diff), name in runs.items():
        result = run.task(f"prune {name}")
        assert not result.failed and result.changed, run.explain()
        assert sorted(result["repositories"][0]["pruned"]) == ["gone1", "gone2"]
        assert bool(result.diff) is diff
    # The listing and one HEAD per source tag are the mirror's own (its floor with nothing to copy).
    listed = {"GET tags": 1, "HEAD manifest": 2}
    assert kinds(logged, runs[True, False]) == listed
    assert kinds(logged, runs[True, True]) == {"GET tags": 1, "HEAD manifest": 2 + 2}
    # Each removal: the digest (HEAD), the placeholder (PUT) and its removal (DELETE); once per registry the
    # refused DELETE by tag, once per repository the empty blob's HEAD and upload.
    untag = {"GET tags": 1, "HEAD manifest": 2 + 2, "DELETE manifest 400": 1, "HEAD blob 404": 1,
             "POST blob upload": 1, "PUT blob upload": 1, "PUT manifest": 2, "DELETE manifest": 2}
    assert kinds(logged, runs[False, False]) == untag
    assert kinds(logged, runs[False, True]) == untag
    for name in runs.values():
        if name.startswith("real"):
            assert tags_of(dest, name) == ["v1.0", "v1.1"], name
    before = run.task(f"prune {runs[True, True]}").diff["before"]
    assert [before[f"{dest.host}/{runs[True, True]}:{tag}"] for tag in ("gone1", "gone2")] == \
        [digest_of(dest, runs[True, True], tag) for tag in ("gone1", "gone2")]


def test_an_exact_mirror_does_not_look_up_the_tags_its_listing_lacks(src, registry_factory, run_playbook):
    """prune_missing lists the destination's tags: a tag not in that list is known to be absent, and is
    copied without a HEAD of it first (each manifest by digest is still looked for: another tag may hold it)."""
    dest = registry_factory()
    seed(dest, "exact/tool", ["gone"])
    mark = dest.mark()
    run = run_playbook(tasks=[task("exact", src=f"{src.host}/lib/tool", dest=f"{dest.host}/exact/tool", select={},
                                   prune_missing=True)])
    result = run.task("exact")
    assert not result.failed and result["repositories"][0]["copied"] == ["v1.0", "v1.1"], run.explain()
    logged = dest.requests_since(mark)
    by_tag = [r for r in logged if r.method == "HEAD" and "/manifests/" in r.path and "sha256:" not in r.path]
    # The removal's own placeholder untag reads the removed tag's digest (Distribution 2.8 has no DELETE by tag).
    assert [r.path for r in by_tag] == ["/v2/exact/tool/manifests/gone"], logged
    assert tags_of(dest, "exact/tool") == ["v1.0", "v1.1"]


def test_prune_missing_without_diff_sends_only_the_delete_by_tag(src, registry_factory, run_playbook):
    """A fake DELETE by tag, because Distribution 2.8 has none (it refuses it): a proxy in front of the real
    destination answers it 202 (the tag stays upstream; only the requests sent are checked here).
    Without --diff each removal is that one DELETE; with it, a HEAD reads the digest first."""
    dest = registry_factory()
    tool = f"{src.host}/lib/tool"
    with FaultProxy.for_registry(dest) as proxy:
        proxy.add("respond", method="DELETE", path=r"/manifests/gone", times=None,
                  handler=lambda request: Reply(202, [("Content-Length", "0")], b""))
        for name in ("plain/tool", "diff/tool"):
            seed(dest, name, ["gone1", "gone2"])
        setup = run_playbook(tasks=[task(f"mirror {name}", src=tool, dest=f"{proxy.host}/{name}", select={})
                                    for name in ("plain/tool", "diff/tool")])
        assert not setup.task("mirror plain/tool").failed, setup.explain()
        start = len(proxy.requests)
        run = run_playbook(tasks=[
            {**task("plain", src=tool, dest=f"{proxy.host}/plain/tool", select={}, prune_missing=True), "diff": False},
            {**task("diff", src=tool, dest=f"{proxy.host}/diff/tool", select={}, prune_missing=True), "diff": True},
        ])
        logged = proxy.requests[start:]
    for name in ("plain", "diff"):
        result = run.task(name)
        assert not result.failed and sorted(result["prune"]["removed"][f"{proxy.host}/{name}/tool"]) == \
            ["gone1", "gone2"], run.explain()
    listed = {"GET tags": 1, "HEAD manifest": 2}
    assert kinds(logged, "plain/tool") == {**listed, "DELETE manifest": 2}
    assert kinds(logged, "diff/tool") == {**listed, "HEAD manifest": 2 + 2, "DELETE manifest": 2}


def test_a_mirror_that_fails_before_copying_still_warns(src, registry_factory, run_playbook):
    """A source repository that does not exist fails a mirror at its first request; what the registry warned
    of up to there (a ``Warning: 299`` header, which Distribution does not send: a proxy adds it) is still
    told, in every spelling."""
    dest = registry_factory()
    with FaultProxy.for_registry(src) as proxy:
        proxy.add("rewrite", times=None,
                  handler=lambda request, reply: reply.with_header("Warning", '299 - "this mirror is read-only"'))
        run = run_playbook(tasks=[
            task("tags", src=f"{proxy.host}/lib/nothing", dest=f"{dest.host}/tags", tags=[".*"]),
            task("select", src=f"{proxy.host}/lib/nothing", dest=f"{dest.host}/select", select={}),
        ])
    for name in ("tags", "select"):
        result = run.task(name)
        assert result.failed and "lib/nothing" in result["msg"], run.explain()
        assert "this mirror is read-only" in result.result.get("warnings", []), (name, result.result)


def test_a_no_op_mirror_is_at_its_floor_in_both_spellings(src, registry_factory, run_playbook):
    """A mirror with nothing to copy: the source's tag list, then per tag one HEAD at each side (the two
    digests compared). Nothing else, whether spelled ``tags: ['.*']`` or ``select: {}``, and with
    ``no_clobber``, whose drift check compares the same two digests the copy does."""
    dest = registry_factory()
    app = f"{src.host}/lib/app"
    first = run_playbook(tasks=[task("fill", src=app, dest=f"{dest.host}/lib/app", select={})])
    assert not first.task("fill").failed, first.explain()
    counts = {}
    for spelling, choice in (("tags", {"tags": [".*"]}), ("select", {"select": {}}),
                             ("no_clobber", {"select": {}, "no_clobber": True})):
        marks = src.mark(), dest.mark()
        run = run_playbook(tasks=[task(spelling, src=app, dest=f"{dest.host}/lib/app", **choice)])
        result = run.task(spelling)
        assert not result.failed and not result.changed, run.explain()
        counts[spelling] = (kinds(src.requests_since(marks[0]), "lib/app"),
                            kinds(dest.requests_since(marks[1]), "lib/app"))
        # Every request is one of the repository's: no ping, no token, nothing of another repository.
        assert sum(counts[spelling][0].values()) == len(src.requests_since(marks[0])), spelling
        assert sum(counts[spelling][1].values()) == len(dest.requests_since(marks[1])), spelling
    tags = len(APP_TAGS)
    floor = ({"GET tags": 1, "HEAD manifest": tags}, {"HEAD manifest": tags})
    assert counts == {"tags": floor, "select": floor, "no_clobber": floor}

    # Chosen by age: each tag's manifest and config are read for its age, and that GET already says what
    # the tag points at: a chosen tag is not resolved at the source again, only at the destination.
    marks = src.mark(), dest.mark()
    run = run_playbook(tasks=[task("by age", src=app, dest=f"{dest.host}/lib/app",
                                   select={"newest": 2, "newest_by": "age"})])
    assert not run.task("by age").failed and not run.task("by age").changed, run.explain()
    assert kinds(src.requests_since(marks[0]), "lib/app") == {"GET tags": 1, "GET manifest": tags, "GET blob": tags}
    assert kinds(dest.requests_since(marks[1]), "lib/app") == {"HEAD manifest": 2}


def test_rate_limit_stop(src, registry_factory, run_playbook):
    # A fake: Distribution 2.8 sends no RateLimit-* headers (only Docker Hub does), so a proxy in
    # front of the real source adds them, counting down one per request as Docker Hub does per pull.
    dest = registry_factory()
    with FaultProxy.for_registry(src) as proxy:
        proxy.add("rewrite", times=None, handler=docker_hub_rate_limit(14))
        run = run_playbook(tasks=[task("limited", src=f"{proxy.host}/lib/app", dest=f"{dest.host}/app",
                                       select={}, concurrency=1, min_remaining=5)])
    result = run.task("limited")
    assert result.failed
    assert result["stopped"].startswith(f"stopped: {proxy.host} reports ") and "min_remaining 5" in result["msg"]
    assert result["rate_limits"][proxy.host]["limit"] == 100
    assert result["rate_limits"][proxy.host]["remaining"] <= 5
    summary = result["summary"]
    assert summary["copied"] >= 1 and summary["not_attempted"] >= 1 and summary["failed"] == 0, summary
    # Stopped cleanly: every tag reported copied is there, whole.
    assert tags_of(dest, "app") == sorted(result["repositories"][0]["copied"])


def test_bad_input_is_one_clear_line_per_problem(src, run_playbook, tmp_path):
    secret = "Sync-Secret-4711"  # distinctive, so a substring search finds it wherever it leaked
    mark = src.mark()
    run = run_playbook(tasks=[
        task("select into a layout", src=f"{src.host}/lib/tool", dest=f"oci:{tmp_path / 'layout'}", select={}),
        task("spec and tags", mirror_spec=[{"src": f"{src.host}/lib/tool", "dest": src.host}], tags=[".*"]),
        task("sync option alone", src=f"{src.host}/lib/tool:v1.0", dest=f"{src.host}/x/tool", no_clobber=True),
        task("bad spec", mirror_spec=[{"src": f"{src.host}/lib/tool:v1.0", "dest": "nohost", "semver": "banana"}]),
        task("two destinations, one login", username="u", password=secret, mirror_spec=[
            {"src": f"{src.host}/lib/tool", "dest": "127.0.0.1:1"},
            {"src": f"{src.host}/other/x", "dest": f"{src.host}/copy"}]),
    ])
    # One line per problem: three tasks with one problem each, and a spec entry with three.
    lines = {}
    for name in ("select into a layout", "spec and tags", "sync option alone", "bad spec",
                 "two destinations, one login"):
        result = run.task(name)
        assert result.failed, result.result
        assert isinstance(result["msg"], str) and "Traceback" not in result["msg"], result.result
        assert "module_stderr" not in result.result, result.result
        lines[name] = result["msg"].strip().split("\n")
    assert {name: len(found) for name, found in lines.items()} == {
        "select into a layout": 1, "spec and tags": 1, "sync option alone": 1, "bad spec": 3,
        "two destinations, one login": 1}, lines
    # select is one dict, and a layout is no registry: the line says so and points to tags.
    assert lines["select into a layout"][0].startswith(
        f"select: dest 'oci:{tmp_path / 'layout'}' is a local layout or archive, but select mirrors between "
        "registries only"), lines
    assert "use src, dest and tags" in lines["select into a layout"][0]
    assert not (tmp_path / "layout").exists()
    assert "mutually exclusive" in lines["spec and tags"][0]
    assert "no_clobber applies only with mirror_spec or select" in lines["sync option alone"][0]
    src_line, dest_line, semver_line = lines["bad spec"]
    assert src_line.startswith("mirror_spec[0]: src ") and dest_line.startswith("mirror_spec[0]: dest 'nohost'")
    assert semver_line.startswith("mirror_spec[0]: semver: 'banana'")
    refused = run.task("two destinations, one login")["msg"]
    assert "the mirror destinations are on 2 registries" in refused and "registry_auth" in refused
    # The password is never echoed: not in the message, not anywhere in the run's output.
    assert secret not in json.dumps(run.task("two destinations, one login").result)
    assert secret not in run.output
    assert src.requests_since(mark) == []  # every one of them is refused before a request


def test_check_mode_writes_no_progress(src, registry_factory, run_playbook, tmp_path):
    dest = registry_factory()
    progress = tmp_path / "logs" / "progress.jsonl"
    progress.parent.mkdir()
    spec = [{"src": f"{src.host}/lib/tool", "dest": f"{dest.host}/hub"}]
    run = run_playbook(tasks=[
        task("spec", check=True, mirror_spec=spec, progress_file=str(progress)),
        task("select", check=True, src=f"{src.host}/lib/tool", dest=f"{dest.host}/one/tool", select={},
             progress_file=str(progress)),
        task("unwritable", check=True, mirror_spec=spec, progress_file=str(tmp_path / "no" / "such" / "p.jsonl")),
    ])
    for name in ("spec", "select"):
        result = run.task(name)
        assert not result.failed and result.changed, run.explain()
        assert result["summary"]["copied"] == 2  # would copy: nothing claims a copy on disk
        assert result["progress_file"] is None
    assert list(progress.parent.iterdir()) == []  # no line, not even an empty file
    # A path that could never be written still fails in check mode, before any request.
    assert "progress_file" in run.task("unwritable")["msg"] and not (tmp_path / "no").exists()
    assert tags_of(dest, "hub/lib/tool") == []


def test_a_failing_mirror_names_its_causes(src, basic_registry, run_playbook):
    # The destination needs credentials and none are given: every tag fails with the same 401.
    app = f"{src.host}/lib/app"
    names = ["0.9.0", "1.0.0", "1.0.1", "1.1.0", "1.1.1"]
    run = run_playbook(tasks=[
        task("spec", mirror_spec=[{"src": app, "dest": f"{basic_registry.host}/hub", "names": names}]),
        task("select", src=app, dest=f"{basic_registry.host}/one/app", select={"names": names}),
        task("tags", src=app, dest=f"{basic_registry.host}/tags/app", tags=[re.escape(n) for n in names],
             keep_going=True),
        task("two repositories", mirror_spec=[{"src": [app, f"{src.host}/lib/tool"],
                                               "dest": f"{basic_registry.host}/many"}]),
    ])
    # Across repositories the same cause is still told once, the repository masked like the tag.
    many = run.task("two repositories")["msg"]
    # The cause is told as a single copy tells it: it names the registry and the options, no repository.
    cause = many.rsplit(" and 8 more: ", 1)[1]
    assert many.count("credentials") == 1 and "many/lib" not in cause and "dest_auth" in cause, many
    assert f"{basic_registry.host}/many/lib/app:0.9.0" in many and "and 8 more" in many, many
    for name in ("spec", "select", "tags"):
        result = run.task(name)
        assert result.failed, run.explain()
        message = result["msg"]
        # The cause, said once for the tags it hit (the first few named, then how many more).
        assert "credentials" in message and message.count("credentials") == 1, message
        assert "0.9.0, 1.0.0, 1.0.1 and 2 more" in message, message
        assert len(message) < 600, message
        # The advice names the options that fix it, as a single copy's failure does.
        assert "dest_auth" in message and "registry_auth" in message, message


def test_every_spelling_copies_cosign_tags_alike(registry_factory, run_playbook):
    # Without referrers a cosign .sig tag is a tag like any other (skopeo sync copies it); with them it
    # travels with its subject. select: and tags: choose alike, as the one engine's two spellings.
    src, dest = registry_factory(), registry_factory()
    pushed = RawPusher.for_registry(src).push_image("lib/signed", make_image("signed"), tag="1.0")
    signature = cosign_tag(pushed)
    RawPusher.for_registry(src).push_cosign_signature("lib/signed", pushed)
    source = f"{src.host}/lib/signed"
    run = run_playbook(tasks=[
        task("tags", src=source, dest=f"{dest.host}/tags/signed", tags=[".*"]),
        task("select", src=source, dest=f"{dest.host}/select/signed", select={}),
        task("tags referrers", src=source, dest=f"{dest.host}/tags-r/signed", tags=[".*"], referrers=True),
        task("select referrers", src=source, dest=f"{dest.host}/select-r/signed", select={}, referrers=True),
    ])
    for name in ("tags", "select", "tags referrers", "select referrers"):
        assert not run.task(name).failed, run.explain()
        assert sorted(tags_of(dest, f"{name.split()[0]}{'-r' if 'referrers' in name else ''}/signed")) == \
            sorted(["1.0", signature]), name
