"""The roles check before they act: policies and promotions are validated before anything runs, and the
promote role previews a chain of promotions under ``--check`` exactly as the real run then applies it.

Real ``ansible-playbook`` runs against a real Distribution 2.8 registry; requests are counted in the
registry's access log, images seeded and read with the rig's raw HTTP clients.
"""
from __future__ import annotations

import re
from typing import Any

from tests.rig.flavours import RigRegistry
from tests.rig.images import RawPuller, RawPusher, make_image

REPO = "team/app"


def retention_play(policies: list[dict[str, Any]], **role_vars: Any) -> dict[str, Any]:
    return {"name": "retention", "hosts": "localhost", "gather_facts": False,
            "roles": [{"role": "ocireg.registry.retention", "vars": {"retention_policies": policies, **role_vars}}]}


def promote_play(promotions: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": "promote", "hosts": "localhost", "gather_facts": False,
            "roles": [{"role": "ocireg.registry.promote", "vars": {"registry_promotions": promotions}}]}


def head(registry: RigRegistry, tag: str) -> str | None:
    return RawPuller.for_registry(registry).digest_of(REPO, tag)


def test_a_misspelt_retention_policy_key_is_refused_before_any_request(plain_registry: RigRegistry,
                                                                       run_playbook) -> None:
    pusher = RawPusher.for_registry(plain_registry)
    pusher.push_image(REPO, make_image("prod"), tag="prod")
    pusher.push_image(REPO, make_image("old"), tag="old")
    policy = {"name": "app", "repository": f"{plain_registry.host}/{REPO}", "older_than": "1d", "protext": ["prod"]}
    mark = plain_registry.mark()
    run = run_playbook(retention_play([policy]))
    assert run.rc != 0
    assert plain_registry.requests_since(mark) == []  # not even a read
    message = run.output
    assert "retention policy 1 (app) has unknown key(s) protext" in message
    assert re.search(r"A policy takes: allow_empty_repository, .*protect, .*untag_kept_images", message)
    assert head(plain_registry, "prod") and head(plain_registry, "old")


def test_a_misspelt_retention_default_key_is_refused_too(plain_registry: RigRegistry, run_playbook) -> None:
    policy = {"repository": f"{plain_registry.host}/{REPO}", "older_than": "1d"}
    mark = plain_registry.mark()
    run = run_playbook(retention_play([policy], retention_defaults={"max_deletion": 5}))
    assert run.rc != 0
    assert "has unknown key(s) max_deletion" in run.output
    assert plain_registry.requests_since(mark) == []


def test_a_misspelt_promotion_key_is_refused_before_any_request(plain_registry: RigRegistry,
                                                                run_playbook) -> None:
    digest = RawPusher.for_registry(plain_registry).push_image(REPO, make_image("a"), tag="staging").digest
    promotion = {"repository": f"{plain_registry.host}/{REPO}", "source": ":staging", "tags": ["prod"],
                 "expeted_digest": "absent"}
    mark = plain_registry.mark()
    run = run_playbook(promote_play([promotion]))
    assert run.rc != 0
    assert plain_registry.requests_since(mark) == []
    assert "expeted_digest" in run.output and "expected_digest" in run.output
    assert head(plain_registry, "prod") is None and head(plain_registry, "staging") == digest


def test_a_bare_word_source_is_refused_with_the_colon_hint(plain_registry: RigRegistry, run_playbook) -> None:
    RawPusher.for_registry(plain_registry).push_image(REPO, make_image("a"), tag="staging")
    mark = plain_registry.mark()
    run = run_playbook(tasks=[{"name": "tag", "ignore_errors": True, "ocireg.registry.registry_tag": {
        "repository": f"{plain_registry.host}/{REPO}", "source": "staging", "tags": ["prod"]}}])
    assert run.rc == 0, run.explain()
    msg = run.task("tag")["msg"]
    assert msg.startswith("source 'staging' is a bare name") and "write source: ':staging'" in msg
    assert plain_registry.writes_since(mark) == []


def test_a_promote_chain_previews_under_check_then_applies_identically(plain_registry: RigRegistry,
                                                                       run_playbook) -> None:
    pusher = RawPusher.for_registry(plain_registry)
    rc = pusher.push_image(REPO, make_image("rc"), tag="rc-7").digest
    old = pusher.push_image(REPO, make_image("old"), tag="prod").digest
    repository = f"{plain_registry.host}/{REPO}"
    # The documented flow: create the release tag, then move prod to it.
    play = promote_play([
        {"repository": repository, "source": ":rc-7", "tags": ["2.3.0"], "expected_digest": "absent"},
        {"repository": repository, "source": ":2.3.0", "tags": ["prod"], "expected_digest": old},
    ])

    mark = plain_registry.mark()
    checked = run_playbook(play, check=True, diff=True)
    assert checked.rc == 0, checked.explain()
    assert plain_registry.writes_since(mark) == []
    assert head(plain_registry, "2.3.0") is None

    run = run_playbook(play, diff=True)
    assert run.rc == 0, run.explain()
    assert head(plain_registry, "2.3.0") == rc and head(plain_registry, "prod") == rc

    def lines(result) -> list[str]:
        (summary,) = [t for t in result.tasks if t.name.endswith("Summary of every tag")]
        return summary["msg"]

    preview = [line.replace("would be created", "created").replace("would move", "moved") for line in lines(checked)]
    assert preview == lines(run)
    assert lines(run)[2] == f"{repository}:prod  {old[:19]} -> {rc[:19]}  (moved)"
    promoted = [t for t in checked.tasks if t.action.endswith("registry_tag")]
    applied = [t for t in run.tasks if t.action.endswith("registry_tag")]
    assert [t.diff for t in promoted] == [t.diff for t in applied]
    assert [t["after"] for t in promoted] == [t["after"] for t in applied]


def test_a_password_in_a_retention_policy_is_never_printed(basic_registry: RigRegistry, run_playbook) -> None:
    """A policy may carry its own credentials; the role loops over positions, so no result prints them."""
    pusher = RawPusher.for_registry(basic_registry)
    pusher.push_image(REPO, make_image("prod"), tag="prod")
    pusher.push_image(REPO, make_image("old"), tag="old")
    secret = basic_registry.users["bob"]  # "bobpass": a word no other output contains
    good = {"name": "app", "repository": f"{basic_registry.host}/{REPO}", "older_than": "1d", "protect": ["prod"],
            "username": "bob", "password": secret}
    applied = run_playbook(retention_play([good]), check=True, verbosity=3)
    assert applied.rc == 0, applied.explain()
    assert "app: 1 repository" in applied.output
    # A misspelt key fails the policy check: the failed item is printed at default verbosity.
    refused = run_playbook(retention_play([{**good, "protext": ["prod"]}]), verbosity=3)
    assert refused.rc != 0 and "has unknown key(s) protext" in refused.output
    for run in (applied, refused):
        assert secret and secret not in run.output
