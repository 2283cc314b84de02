"""Safe when nobody is watching: registry_prune's defaults through real ``ansible-playbook``
runs against a real Distribution 2.8 registry.

Each test is one case a scheduled job must not get silently wrong: a misspelt repository, a pattern
that selects nothing, a plan that empties a repository, the sibling tags of a kept image. Images are
seeded and checked with the rig's raw HTTP clients; writes are counted in the registry's access log.
"""
from __future__ import annotations

from typing import Any

from tests.rig.flavours import RigRegistry
from tests.rig.images import RawPuller, RawPusher, make_image

REPO = "team/app"


def prune_task(server: RigRegistry, name: str = "prune", **options: Any) -> dict[str, Any]:
    if "repositories" not in options and "repository" not in options:
        options = {"repository": f"{server.host}/{REPO}", **options}
    return {"name": name, "ocireg.registry.registry_prune": options, "register": "out", "ignore_errors": True}


def tags(registry: RigRegistry, repository: str = REPO) -> list[str]:
    return sorted(RawPuller.for_registry(registry).tags(repository))


def warnings_of(run, name: str = "prune") -> list[str]:
    return list(run.task(name).get("warnings") or [])


def test_a_missing_repository_fails_naming_it_or_warns_on_request(plain_registry: RigRegistry,
                                                                  run_playbook) -> None:
    RawPusher.for_registry(plain_registry).push_image(REPO, make_image("a"), tag="dev-1")
    misspelt = f"{plain_registry.host}/team/ap"
    mark = plain_registry.mark()
    run = run_playbook(tasks=[
        prune_task(plain_registry, name="default", repository=misspelt, older_than="1d"),
        prune_task(plain_registry, name="warn", repository=misspelt, older_than="1d", missing_repository="warn"),
    ])
    assert run.rc == 0, run.explain()
    failed = run.task("default")
    assert failed.failed
    assert failed["msg"].startswith(f"repository {misspelt} does not exist on {plain_registry.host}")
    assert "missing_repository: warn" in failed["msg"]
    warned = run.task("warn")
    assert not warned.failed and not warned.changed
    expected = f"repository {misspelt} does not exist on {plain_registry.host}; nothing was pruned there"
    assert expected in warnings_of(run, "warn")
    assert plain_registry.writes_since(mark) == []
    assert tags(plain_registry) == ["dev-1"]


def test_a_pattern_that_selects_nothing_is_a_warning_with_a_hint(plain_registry: RigRegistry,
                                                                 run_playbook) -> None:
    pusher = RawPusher.for_registry(plain_registry)
    pusher.push_image(REPO, make_image("b"), tag="build-1")
    pusher.push_image(REPO, make_image("p"), tag="prod")
    mark = plain_registry.mark()
    run = run_playbook(tasks=[prune_task(plain_registry, match=["^build-"], older_than="1d")])
    assert run.rc == 0, run.explain()
    out = run.task("prune")
    assert not out.failed and not out.changed and out["summary"]["delete"] == 0
    (warning,) = warnings_of(run)
    assert warning.startswith(f"match pattern '^build-' selects none of the 2 tag(s) in {plain_registry.host}/{REPO}")
    assert "write 'build-' for exactly that tag or 'build-.*' for tags starting with it" in warning
    assert plain_registry.writes_since(mark) == []


def test_a_plan_deleting_everything_is_refused_before_any_write(plain_registry: RigRegistry,
                                                                run_playbook) -> None:
    pusher = RawPusher.for_registry(plain_registry)
    for tag in ("prod", "1.1", "1.0"):
        pusher.push_image(REPO, make_image(tag), tag=tag)  # every image is old (2024)
    mark = plain_registry.mark()
    run = run_playbook(tasks=[prune_task(plain_registry, older_than="1d")])
    assert run.rc == 0, run.explain()
    refused = run.task("prune")
    assert refused.failed and refused["error"]["type"] == "ConflictError"
    assert (f"{plain_registry.host}/{REPO}: the plan deletes 3 of 3 digests and leaves 0 of 3 tagged digests "
            "(0 of 3 tags), emptying the repository; nothing is deleted") in refused["msg"]
    assert "allow_empty_repository: true" in refused["msg"]
    assert refused["summary"]["delete"] == 3  # the plan's counts come back
    assert plain_registry.writes_since(mark) == []
    assert tags(plain_registry) == ["1.0", "1.1", "prod"]

    # The explicit opt-in empties it.
    run = run_playbook(tasks=[prune_task(plain_registry, older_than="1d", allow_empty_repository=True)])
    assert run.rc == 0, run.explain()
    assert run.task("prune").changed and not run.task("prune").failed
    assert tags(plain_registry) == []


def test_sibling_tags_of_a_kept_image_survive_by_default(plain_registry: RigRegistry, run_playbook) -> None:
    pusher = RawPusher.for_registry(plain_registry)
    current = make_image("current")
    pusher.push_image(REPO, current, tag="prod")
    pusher.push_image(REPO, current, tag="1.2")  # the version prod runs: its rollback name
    pusher.push_image(REPO, make_image("older"), tag="1.1")
    task = prune_task(plain_registry, protect=["prod"], older_than="1d")

    checked = run_playbook(tasks=[task], check=True)
    assert checked.rc == 0, checked.explain()
    run = run_playbook(tasks=[task])
    assert run.rc == 0, run.explain()
    out = run.task("prune")
    assert out.changed and out["summary"]["untag"] == 0 and out["summary"]["delete"] == 1
    assert checked.task("prune")["plan"] == out["plan"]
    assert tags(plain_registry) == ["1.2", "prod"]
    (skip,) = [s for s in out["skipped_items"] if s["reason"] == "kept_image"]
    assert skip["tags"] == ["1.2"] and "untag_kept_images: true" in skip["message"]
    assert RawPuller.for_registry(plain_registry).pull(REPO, "1.2").digest == current.digest

    # The opt-in removes the name, keeping the image.
    run = run_playbook(tasks=[prune_task(plain_registry, protect=["prod"], older_than="1d", untag_kept_images=True)])
    assert run.rc == 0, run.explain()
    assert tags(plain_registry) == ["prod"]


def test_a_mirror_that_selects_no_tag_says_so_as_a_warning(plain_registry: RigRegistry, run_playbook) -> None:
    RawPusher.for_registry(plain_registry).push_image("src/app", make_image("v1"), tag="v1.0")
    mark = plain_registry.mark()
    run = run_playbook(tasks=[{"name": "mirror", "register": "out", "ocireg.registry.registry_copy": {
        "src": f"{plain_registry.host}/src/app", "dest": f"{plain_registry.host}/dst/app", "tags": ["^v1"]}}])
    assert run.rc == 0, run.explain()
    assert not run.task("mirror").changed
    warnings = warnings_of(run, "mirror")
    # One warning, the one that names the pattern (no second "the mirror selects no tag" saying it again).
    (warning,) = warnings
    assert warning.startswith("tags pattern '^v1' selects none of the 1 tag(s)") and "'v1.*'" in warning
    assert plain_registry.writes_since(mark) == []
