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
    summaries = [t for t in run.tasks if t.name.endswith("Every repository mirrored, across runners")]
    assert len(summaries) == 1, [t.name for t in run.tasks]
    lines = summaries[0].result["msg"]
    assert lines[0] == "Mirror summary (3 runners)" and len(lines) == 1 + len(REPOS)
    assert all(": 1 copied, 0 already present, 0 failed" in line for line in lines[1:]), lines

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
    failed = [t for t in run.tasks if t.failed and t.name.endswith("Fail this runner when one of its repositories failed")]
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
