"""roles/mirror through a real ``ansible-playbook`` run with three inventory hosts on this machine
(``ansible_connection=local``), against real Distribution 2.8 registries: the shares are disjoint,
together complete, and each repository is mirrored by the host the filter names."""
from __future__ import annotations

from collections import Counter
from typing import Any

from ansible_collections.ocireg.registry.plugins.module_utils._ops.sync.spec import (
    owner,
)

from tests.rig.images import RawPuller, RawPusher, make_image

RUNNERS = ["runner1", "runner2", "runner3"]
REPOS = [f"team/r{i}" for i in range(9)]


def inventory(tmp_path) -> str:
    path = tmp_path / "mirror-inventory.ini"
    path.write_text("[mirrors]\n" + "".join(f"{host} ansible_connection=local\n" for host in RUNNERS))
    return str(path)


def play(spec: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": "mirror", "hosts": "mirrors", "gather_facts": False,
            "roles": [{"role": "ocireg.registry.mirror",
                       "vars": {"mirror_spec": spec, "mirror_defaults": {"plain_http": True}}}]}


def role_tasks(run, name: str) -> list:
    """The results of the role's task ``name`` (ansible-core 2.21 names them ``role : name``)."""
    return [t for t in run.tasks if t.name in (name, f"ocireg.registry.mirror : {name}")]


def test_three_runners_cover_the_spec_exactly_once(plain_registry, registry_factory, run_playbook, tmp_path):
    src, dest = plain_registry, registry_factory()
    pusher = RawPusher.for_registry(src)
    for repo in REPOS:
        for tag in ("1.0", "1.1", "dev"):
            pusher.push_image(repo, make_image(f"{repo}:{tag}"), tag=tag)
    spec = [{"src": [f"{src.host}/{repo}" for repo in REPOS], "dest": f"{dest.host}/mirror", "naming": "flat",
             "include": ["1\\..*"], "exclude": ["1\\.0"]}]
    mark = dest.mark()
    run = run_playbook(play(spec), args=["-i", inventory(tmp_path)])
    assert run.rc == 0, run.explain()

    # Who mirrored what: each host's one copy task, its repositories.
    copies = [task for task in run.tasks if task.action.endswith("registry_copy")]
    by_host: dict[str, list[str]] = {}
    for task in copies:
        by_host.setdefault(task.host, []).extend(r["src"] for r in task.result["repositories"])
    assert len(copies) == len(by_host), "one registry_copy call per runner"
    mirrored = [source for sources in by_host.values() for source in sources]
    assert sorted(mirrored) == sorted(f"{src.host}/{repo}" for repo in REPOS)  # complete, and each once
    for host, sources in by_host.items():
        for source in sources:
            assert owner(source, RUNNERS) == host, (source, host)  # by the host the filter names
    assert len(by_host) >= 2, by_host  # 9 repositories do spread over the runners

    # The destination saw each selected tag written once, and only those.
    puller = RawPuller.for_registry(dest)
    for repo in REPOS:
        assert puller.tags(f"mirror/{repo.split('/')[1]}") == ["1.1"]
    tag_puts = Counter(r.path for r in dest.writes_since(mark)
                       if r.method == "PUT" and "/manifests/" in r.path and "sha256:" not in r.path)
    assert len(tag_puts) == len(REPOS) and set(tag_puts.values()) == {1}, tag_puts

    # One summary across hosts, one line per repository, printed once.
    summaries = role_tasks(run, "Mirror summary, across runners")
    assert len(summaries) == 1, [t.name for t in run.tasks]
    lines = summaries[0].result["msg"]
    assert lines[0] == "Mirror summary: 9 repositories, 3 runners (runner1, runner2, runner3)", lines
    assert len(lines) == 2 + len(REPOS) and lines[-1] == "Every repository mirrored", lines
    for line in lines[1:-1]:
        source = line.split(": ", 1)[1].split(" -> ", 1)[0]
        assert line.startswith(f"{owner(source, RUNNERS)}: ") and ": 1 copied, 0 already present, 0 failed" in line
    assert "DEPRECATION" not in run.stdout + run.stderr, run.explain()

    # Again: every tag already present, nothing written.
    mark = dest.mark()
    again = run_playbook(play(spec), args=["-i", inventory(tmp_path)])
    assert again.rc == 0, again.explain()
    assert dest.writes_since(mark) == []


def test_a_bad_spec_fails_every_runner_with_the_lines_of_its_mistakes(plain_registry, run_playbook, tmp_path):
    spec = [{"src": f"{plain_registry.host}/a:1.0", "dest": "nohost"},
            {"src": f"{plain_registry.host}/b", "dest": f"{plain_registry.host}/m", "semver": ">=1"}]
    run = run_playbook(play(spec), args=["-i", inventory(tmp_path)])
    assert run.rc != 0
    failed = [t for t in run.tasks if t.failed]
    assert {t.host for t in failed} == set(RUNNERS)
    message = failed[0].result["msg"]
    assert "mirror_spec[0]: src" in message and "names a tag or digest" in message
    assert "mirror_spec[0]: dest 'nohost' must start with a registry host" in message


def test_a_failing_runner_names_the_cause(plain_registry, basic_registry, run_playbook, tmp_path):
    # The destination needs credentials and the play gives none: the runner that owns the repository
    # fails saying so, not only with its counts.
    RawPusher.for_registry(plain_registry).push_tags("team/app", ["1.0", "1.1", "1.2", "1.3"])
    spec = [{"src": f"{plain_registry.host}/team/app", "dest": f"{basic_registry.host}/mirror"}]
    run = run_playbook(play(spec), args=["-i", inventory(tmp_path)])
    assert run.rc != 0, run.explain()
    failed = [t for t in run.tasks if t.failed and t.name.endswith("Fail naming the repositories that were not mirrored")]
    assert [t.host for t in failed] == [owner(f"{plain_registry.host}/team/app", RUNNERS)], run.explain()
    message = failed[0].result["msg"]
    assert "4 failed" in message and "1.0, 1.1, 1.2 and 1 more" in message, message
    assert "credentials" in message, message


def test_a_semver_selector_through_the_role(plain_registry, registry_factory, run_playbook, tmp_path):
    """semver, newest_patch_per and newest need the tag listing: the role's one mirror_spec call applies them."""
    dest = registry_factory()
    pusher = RawPusher.for_registry(plain_registry)
    for tag in ("0.9.0", "1.0.0", "1.0.1", "1.1.0", "1.1.2", "1.2.0-rc.1", "2.0.0", "latest"):
        pusher.push_image("solo", make_image(f"solo:{tag}"), tag=tag)
    spec = [{"src": f"{plain_registry.host}/solo", "dest": f"{dest.host}/m", "naming": "flat",
             "semver": ">=1 <2", "newest_patch_per": "minor", "newest": 1}]
    run = run_playbook(play(spec), args=["-i", inventory(tmp_path)])
    assert run.rc == 0, run.explain()
    # 1.0.x and 1.1.x keep their highest patch (the pre-release and 2.0.0 are out of range), newest: 1 keeps 1.1.2.
    assert RawPuller.for_registry(dest).tags("m/solo") == ["1.1.2"]
    copies = [task for task in run.tasks if task.action.endswith("registry_copy")]
    assert len(copies) == 1, [t.host for t in copies]  # one source repository: one runner owns it
    repository = copies[0].result["repositories"][0]
    assert repository["copied"] == ["1.1.2"] and repository["selection"]["selected"] == ["1.1.2"]
    decisions = {d["tag"]: d for d in repository["selection"]["decisions"]}
    assert not decisions["2.0.0"]["selected"] and not decisions["1.0.1"]["selected"], decisions


# -- a fleet that loses a runner ---------------------------------------------------------------------

FLEET_REPOS = [f"fleet/app{i}" for i in range(9)]


def _fleet_source(src) -> None:
    pusher = RawPusher.for_registry(src)
    for repo in FLEET_REPOS:
        pusher.push_image(repo, make_image(f"{repo}:1.0"), tag="1.0")


def _fleet_spec(src, dest) -> list[dict[str, Any]]:
    return [{"src": [f"{src.host}/{repo}" for repo in FLEET_REPOS], "dest": f"{dest.host}/mirror", "naming": "flat"}]


def _fleet_inventory(tmp_path, broken: str | None = None) -> str:
    """Three local runners; ``broken`` cannot run a module (its shell does not exist), so it is reachable
    for the role's controller-side tasks and becomes unreachable at its first module: the copy."""
    path = tmp_path / ("fleet-broken.ini" if broken else "fleet.ini")
    path.write_text("[mirrors]\n" + "".join(
        f"{host} ansible_connection=local"
        + (" ansible_shell_executable=/nonexistent/sh" if host == broken else "") + "\n" for host in RUNNERS))
    return str(path)


def _fleet_play(spec: list[dict[str, Any]], dead: str | None = None, **role_vars: Any) -> dict[str, Any]:
    played = play(spec)
    played["roles"][0]["vars"].update(role_vars)
    if dead:  # a runner that fails before the role
        played["pre_tasks"] = [{"name": "A runner dies before the role", "ansible.builtin.fail": {"msg": "dead"},
                                "when": f"inventory_hostname == {dead!r}"}]
    return played


def _manifest_puts(dest, mark: int) -> Counter:
    """Manifest PUTs per destination repository since ``mark`` (one per tag written)."""
    found = Counter()
    for request in dest.writes_since(mark):
        if request.method == "PUT" and "/manifests/" in request.path:
            found[request.path.split("/v2/", 1)[1].split("/manifests/", 1)[0]] += 1
    return found


def _summary(run) -> list[str]:
    (summary,) = role_tasks(run, "Mirror summary, across runners")
    return summary.result["msg"]


def _a_runner_with_work(sources: list[str], last: bool = False) -> str:
    """The first (or last) of the three runners that owns a repository: a death that costs something.

    The first is the runner Ansible would pick for run_once, so the summary must come from another."""
    owning = [host for host in RUNNERS if any(owner(source, RUNNERS) == host for source in sources)]
    return owning[-1] if last else owning[0]


def test_a_runner_dead_before_the_role_loses_no_work(plain_registry, registry_factory, run_playbook, tmp_path):
    src, dest = plain_registry, registry_factory()
    _fleet_source(src)
    sources = [f"{src.host}/{repo}" for repo in FLEET_REPOS]
    dead = _a_runner_with_work(sources, last=True)
    live = [host for host in RUNNERS if host != dead]
    mark = dest.mark()
    run = run_playbook(_fleet_play(_fleet_spec(src, dest), dead=dead), args=["-i", _fleet_inventory(tmp_path)])
    assert run.rc != 0  # the dead runner failed the run; nothing else did
    assert [t.host for t in run.tasks if t.failed] == [dead], run.explain()

    # Each repository mirrored exactly once: one manifest PUT (its one tag) per destination repository.
    puts = _manifest_puts(dest, mark)
    assert puts == Counter({f"mirror/{repo.split('/')[1]}": 1 for repo in FLEET_REPOS}), puts
    # By the live runners, as rendezvous hashing over them says; only the dead runner's share moved.
    by_host = {t.host: [r["src"] for r in t.result["repositories"]]
               for t in run.tasks if t.action.endswith("registry_copy")}
    assert set(by_host) <= set(live)
    for host, mirrored in by_host.items():
        assert all(owner(source, live) == host for source in mirrored), (host, mirrored)
    moved = [source for source in sources if owner(source, RUNNERS) != owner(source, live)]
    assert moved and all(owner(source, RUNNERS) == dead for source in moved)

    lines = _summary(run)
    assert lines[0].startswith(f"Mirror summary: 9 repositories, 2 runners ({', '.join(live)})"), lines
    assert f"down before the role, their share went to the live runners: {dead}" in lines[0]
    assert len(lines) == 2 + len(FLEET_REPOS) and lines[-1] == "Every repository mirrored", lines
    for source in sources:
        (line,) = [line for line in lines[1:-1] if f" {source} -> " in line]
        assert line.startswith(f"{owner(source, live)}: ") and ": 1 copied, 0 already present, 0 failed" in line
    assert "DEPRECATION" not in run.stdout + run.stderr, run.explain()


def test_a_runner_dying_during_its_share_is_named_and_a_rerun_finishes(
        plain_registry, registry_factory, run_playbook, tmp_path):
    src, dest = plain_registry, registry_factory()
    _fleet_source(src)
    spec = _fleet_spec(src, dest)
    sources = [f"{src.host}/{repo}" for repo in FLEET_REPOS]
    dying = _a_runner_with_work(sources)
    lost = [source for source in sources if owner(source, RUNNERS) == dying]
    mark = dest.mark()
    run = run_playbook(_fleet_play(spec), args=["-i", _fleet_inventory(tmp_path, broken=dying)])
    assert run.rc != 0
    assert [t.host for t in run.tasks if t.status == "unreachable"] == [dying], run.explain()
    # The others mirrored their shares; the dying runner's repositories were not written.
    puts = _manifest_puts(dest, mark)
    assert puts == Counter({f"mirror/{s.rsplit('/', 1)[1]}": 1 for s in sources if s not in lost}), puts

    # The summary accounts for every repository and names the lost ones as not mirrored.
    lines = _summary(run)
    assert len(lines) == 2 + len(FLEET_REPOS), lines
    for source in sources:
        (line,) = [line for line in lines[1:-1] if f" {source} -> " in line]
        if source in lost:
            assert line.startswith(f"{dying}: ")
            assert f"not mirrored: {dying} became unreachable during its share" in line, line
        else:
            assert ": 1 copied, 0 already present, 0 failed" in line, line
    assert lines[-1].startswith(f"{len(lost)} of 9 repositories not mirrored: {', '.join(lost)}."), lines
    assert not any(line == "Every repository mirrored" for line in lines)
    # The run fails naming exactly those repositories, once (by the runner that wrote the summary).
    (failure,) = [t for t in role_tasks(run, "Fail naming the repositories that were not mirrored") if t.failed]
    assert failure.host != dying
    named = [source for source in sources if f" {source} -> " in failure.result["msg"]]
    assert named == lost, failure.result["msg"]
    assert "Run the same play again" in failure.result["msg"]
    assert "DEPRECATION" not in run.stdout + run.stderr, run.explain()

    # The same play again with the runner still down (left out with --limit): the live runners take over
    # its share and copy only what is missing, each lost repository once.
    mark = dest.mark()
    again = run_playbook(_fleet_play(spec), args=["-i", _fleet_inventory(tmp_path, broken=dying),
                                                  "--limit", f"all:!{dying}"])
    assert again.rc == 0, again.explain()
    assert _manifest_puts(dest, mark) == Counter({f"mirror/{s.rsplit('/', 1)[1]}": 1 for s in lost})
    assert _summary(again)[-1] == "Every repository mirrored"

    # And with the runner back: every repository already present, nothing written.
    mark = dest.mark()
    back = run_playbook(_fleet_play(spec), args=["-i", _fleet_inventory(tmp_path)])
    assert back.rc == 0, back.explain()
    assert dest.writes_since(mark) == []
    assert _summary(back)[-1] == "Every repository mirrored"


def test_a_pinned_runner_down_before_the_role_keeps_its_share_and_fails_naming_it(
        plain_registry, registry_factory, run_playbook, tmp_path):
    src, dest = plain_registry, registry_factory()
    _fleet_source(src)
    sources = [f"{src.host}/{repo}" for repo in FLEET_REPOS]
    down = _a_runner_with_work(sources)
    kept = [source for source in sources if owner(source, RUNNERS) == down]
    mark = dest.mark()
    run = run_playbook(_fleet_play(_fleet_spec(src, dest), dead=down,
                                   mirror_runners="{{ ansible_play_hosts_all }}"),
                       args=["-i", _fleet_inventory(tmp_path)])
    assert run.rc != 0
    # The pinned shares stand: the live runners mirrored theirs, once each, and nothing of the down one's.
    puts = _manifest_puts(dest, mark)
    assert puts == Counter({f"mirror/{s.rsplit('/', 1)[1]}": 1 for s in sources if s not in kept}), puts
    lines = _summary(run)
    assert f"down before the role but pinned in mirror_runners: {down}" in lines[0], lines
    assert lines[-1].startswith(f"{len(kept)} of 9 repositories not mirrored: {', '.join(kept)}."), lines
    (failure,) = [t for t in role_tasks(run, "Fail naming the repositories that were not mirrored") if t.failed]
    assert failure.host != down
    assert [s for s in sources if f" {s} -> " in failure.result["msg"]] == kept, failure.result["msg"]
    assert f"{down} was down when the role started" in failure.result["msg"]


def test_check_mode_accounts_for_every_repository_and_writes_nothing(
        plain_registry, registry_factory, run_playbook, tmp_path):
    src, dest = plain_registry, registry_factory()
    _fleet_source(src)
    mark = dest.mark()
    run = run_playbook(_fleet_play(_fleet_spec(src, dest)), args=["-i", _fleet_inventory(tmp_path)], check=True)
    assert run.rc == 0, run.explain()
    assert dest.writes_since(mark) == []
    lines = _summary(run)
    assert len(lines) == 2 + len(FLEET_REPOS) and lines[-1] == "Every repository checked (check mode: nothing written)"
    assert all(": 1 would copy, 0 already present, 0 failed" in line for line in lines[1:-1]), lines


def test_a_play_in_serial_batches_is_refused_before_any_copy(plain_registry, registry_factory, run_playbook, tmp_path):
    # Each batch would shard the spec over the whole play and copy shares meant for later batches'
    # runners, and the summary would cover one batch: the role stops before its first copy.
    dest = registry_factory()
    RawPusher.for_registry(plain_registry).push_tags("team/app", ["1.0"])
    spec = [{"src": f"{plain_registry.host}/team/app", "dest": f"{dest.host}/mirror"}]
    mark = dest.mark()
    run = run_playbook({**play(spec), "serial": 1}, args=["-i", inventory(tmp_path)])
    assert run.rc != 0, run.explain()
    refused = [t for t in role_tasks(run, "Refuse a play that runs in serial batches") if t.failed]
    assert refused, run.explain()
    assert "remove serial from the play" in refused[0].result["msg"], refused[0].result["msg"]
    assert dest.writes_since(mark) == []


def test_the_mirror_tag_patterns_filter_still_works_and_says_it_is_deprecated(run_playbook):
    # Shipped in 1.0.0, deprecated since registry_copy's select takes the selectors themselves;
    # meta/runtime.yml's routing makes ansible-core print the warning wherever the filter is used.
    tasks = [{"name": "translate", "ansible.builtin.debug": {
        "msg": "{{ {'src': 'ghcr.io/org/app', 'dest': 'm.example', 'include': ['v1\\..*'], 'exclude': ['v1\\.0']}"
               " | ocireg.registry.mirror_tag_patterns }}"}}]
    run = run_playbook(tasks=tasks, allow_deprecations=True)
    assert run.rc == 0, run.explain()
    assert run.task("translate").result["msg"] == ["(?!(?:(?:v1\\.0))\\Z)(?:(?:v1\\..*))"]
    text = " ".join((run.stdout + run.stderr).split())
    assert 'Filter "ocireg.registry.mirror_tag_patterns" has been deprecated.' in text
    assert "registry_copy's select option takes the selectors themselves" in text
    assert "2.0.0" in text
