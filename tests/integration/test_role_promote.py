"""roles/promote through real ``ansible-playbook`` runs against real Distribution 2.8 registries.

Seeding and checks use the rig's raw HTTP clients, never our own client.
"""
from __future__ import annotations

from typing import Any

import pytest

from tests.rig.flavours import RigRegistry
from tests.rig.images import RawPuller, RawPusher, make_image, make_multiarch


def role_play(promotions: list[dict[str, Any]], **role_vars: Any) -> dict[str, Any]:
    return {"name": "promote", "hosts": "localhost", "gather_facts": False,
            "roles": [{"role": "ocireg.registry.promote",
                       "vars": {"registry_promotions": promotions, **role_vars}}]}


def task_ending(run, suffix: str):
    """The one result of the role task whose name ends with ``suffix`` (role tasks get a prefix)."""
    found = [t for t in run.tasks if t.name.endswith(suffix)]
    assert len(found) == 1, [t.name for t in run.tasks]
    return found[0]


def digest_of(registry: RigRegistry, repository: str, tag: str) -> str | None:
    return RawPuller.for_registry(registry).digest_of(repository, tag)


@pytest.fixture
def seeded(plain_registry: RigRegistry) -> dict[str, str]:
    """team/app staging -> A, prod -> B; build/worker 2.0 -> an index W; team/worker stable -> C."""
    pusher = RawPusher.for_registry(plain_registry)
    return {
        "a": pusher.push_image("team/app", make_image("a"), tag="staging").digest,
        "b": pusher.push_image("team/app", make_image("b"), tag="prod").digest,
        "w": pusher.push("build/worker", make_multiarch("w"), tag="2.0").digest,
        "c": pusher.push_image("team/worker", make_image("c"), tag="stable").digest,
    }


def promotions(registry: RigRegistry, seeded: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {"repository": f"{registry.host}/team/app", "source": ":staging", "tags": ["prod"],
         "expected_digest": seeded["b"]},
        {"repository": f"{registry.host}/team/worker", "source": f"{registry.host}/build/worker:2.0",
         "tags": ["stable", "2.0"]},
    ]


def short(digest: str | None) -> str:
    return "absent" if digest is None else digest[:19]


@pytest.mark.oldest_core
def test_two_promotions_check_apply_and_rerun(plain_registry: RigRegistry, seeded: dict[str, str],
                                              run_playbook) -> None:
    play = role_play(promotions(plain_registry, seeded))
    host = plain_registry.host

    mark = plain_registry.mark()
    checked = run_playbook(play, check=True)
    assert checked.rc == 0, checked.explain()
    assert plain_registry.writes_since(mark) == []
    assert f"{host}/team/app:prod  {short(seeded['b'])} -> {short(seeded['a'])}  (would move)" in \
        task_ending(checked, "Summary of every tag")["msg"]

    run = run_playbook(play)
    assert run.rc == 0, run.explain()
    summary = task_ending(run, "Summary of every tag")["msg"]
    assert summary == [
        "Registry promotions, before -> after",
        f"{host}/team/app:prod  {short(seeded['b'])} -> {short(seeded['a'])}  (moved)",
        f"{host}/team/worker:stable  {short(seeded['c'])} -> {short(seeded['w'])}  (moved)",
        f"{host}/team/worker:2.0  absent -> {short(seeded['w'])}  (created)",
    ]
    assert summary[1] in run.stdout  # readable in the normal output, not only in the event log
    assert digest_of(plain_registry, "team/app", "prod") == seeded["a"]
    assert digest_of(plain_registry, "team/worker", "stable") == seeded["w"]
    assert digest_of(plain_registry, "team/worker", "2.0") == seeded["w"]

    mark = plain_registry.mark()
    again = run_playbook(play)
    assert again.rc == 0, again.explain()
    assert again.stats["localhost"]["changed"] == 0
    assert plain_registry.writes_since(mark) == []
    assert all(line.endswith("(unchanged)") for line in task_ending(again, "Summary of every tag")["msg"][1:])


def test_guard_failure_stops_the_remaining_promotions(plain_registry: RigRegistry, seeded: dict[str, str],
                                                      run_playbook) -> None:
    first, second = promotions(plain_registry, seeded)
    stale = {"repository": f"{plain_registry.host}/team/app", "source": ":staging", "tags": ["stable"],
             "expected_digest": seeded["c"]}  # stable does not exist: the guard must block
    play = role_play([first, stale, second])

    run = run_playbook(play)
    assert run.rc != 0
    message = task_ending(run, "Stop, naming the promotion that failed")["msg"]
    assert "promotion 2 of 3 failed" in message and "the 1 after it were not applied" in message
    assert seeded["c"] in message and "absent" in message
    applied = task_ending(run, "Summary of the promotions applied before the failure")["msg"]
    assert applied[1:] == [f"{plain_registry.host}/team/app:prod  {short(seeded['b'])} -> {short(seeded['a'])}  (moved)"]
    assert digest_of(plain_registry, "team/app", "prod") == seeded["a"]  # the first ran
    assert digest_of(plain_registry, "team/app", "stable") is None  # the blocked one wrote nothing
    assert digest_of(plain_registry, "team/worker", "stable") == seeded["c"]  # the third never ran
    assert not [t for t in run.tasks if t.name.endswith("Summary of every tag")]


def test_shared_connection_options_with_registry_promote_defaults(basic_registry: RigRegistry,
                                                                  run_playbook) -> None:
    pusher = RawPusher.for_registry(basic_registry)
    staging = pusher.push_image("team/app", make_image("auth"), tag="staging").digest
    promotion = {"repository": f"{basic_registry.host}/team/app", "source": ":staging", "tags": ["prod"]}

    refused = run_playbook(role_play([promotion]))
    assert refused.rc != 0  # no credentials: the registry says 401

    run = run_playbook(role_play([promotion], registry_promote_defaults={
        "username": basic_registry.username, "password": basic_registry.password}))
    assert run.rc == 0, run.explain()
    assert RawPuller.for_registry(basic_registry).head_manifest("team/app", "prod").headers[
        "Docker-Content-Digest"] == staging
    assert basic_registry.password not in run.output

    # The documented alternative: play-level module_defaults for the action group reach the role's task.
    other = pusher.push_image("team/app", make_image("group"), tag="next").digest
    play = role_play([{**promotion, "source": ":next"}])
    play["module_defaults"] = {"group/ocireg.registry.registry": {
        "username": basic_registry.username, "password": basic_registry.password}}
    grouped = run_playbook(play)
    assert grouped.rc == 0, grouped.explain()
    assert RawPuller.for_registry(basic_registry).head_manifest("team/app", "prod").headers[
        "Docker-Content-Digest"] == other


def test_argument_spec_rejects_a_promotion_without_tags(plain_registry: RigRegistry, run_playbook) -> None:
    mark = plain_registry.mark()
    run = run_playbook(role_play([{"repository": f"{plain_registry.host}/team/app", "source": ":staging"}]))
    assert run.rc != 0
    assert "tags" in run.stdout and "required" in run.stdout
    assert plain_registry.requests_since(mark) == []
