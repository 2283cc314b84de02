"""The ocireg.registry.registry lookup through real ansible-playbook runs against real registries.

Images are seeded with the rig's raw HTTP pusher (tests/rig/images.py), not
with our client; expected digests come from the bytes the rig built.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.rig.images import (
    RawPusher,
    cosign_tag,
    make_artifact,
    make_image,
    make_multiarch,
    referrers_tag,
)

LOOKUP = "ocireg.registry.registry"
SBOM_TYPE = "application/vnd.ocireg.test.sbom.v1+json"
VERSION_TAGS = ["1.10.0", "1.9.0", "v1.2", "1.10.0-rc.1", "latest", "main", "2.0.0"]


@dataclass
class Seeded:
    """The shared registry's content."""

    host: str
    image: Any
    index: Any
    artifact: Any


@pytest.fixture(scope="module")
def seeded(plain_registry_module) -> Seeded:
    """team/app (one image under many version-like tags, with an SBOM referrer through the tag
    fallback), team/multi (an OCI index), team/worker-api and other/thing for the catalog."""
    reg = plain_registry_module
    pusher = RawPusher.for_registry(reg)
    image = make_image("lookup-app", layers=2, labels={"org.opencontainers.image.revision": "abc123"},
                       created="2025-01-02T03:04:05Z")
    pusher.push("team/app", image, tag=VERSION_TAGS[0])
    for tag in VERSION_TAGS[1:]:
        pusher.push_manifest("team/app", tag, image.data, image.media_type)
    artifact = make_artifact(image, artifact_type=SBOM_TYPE, annotations={"kind": "sbom"})
    pusher.push_referrers("team/app", image, [artifact])
    index = make_multiarch("lookup-multi", ("linux/amd64", "linux/arm64/v8"), labels={"arch": "any"})
    pusher.push("team/multi", index, tag="v1")
    pusher.push("team/worker-api", make_image("w"), tag="v1")
    pusher.push("other/thing", make_image("o"), tag="v1")
    return Seeded(reg.host, image, index, artifact)


def debug(name: str, expression: str) -> dict[str, Any]:
    """A debug task whose msg is a Jinja expression (the lookup runs inside the template engine)."""
    return {"name": name, "ansible.builtin.debug": {"msg": "{{ " + expression + " }}"}}


def msg(run, name: str) -> Any:
    task = run.task(name)
    assert task.status == "ok", f"{name}: {task.result}\n{run.explain()}"
    return task["msg"]


def test_digest_in_set_fact_and_in_a_template(seeded, run_playbook, tmp_path: Path):
    ref = f"{seeded.host}/team/app:1.9.0"
    template = tmp_path / "image.env.j2"
    template.write_text("IMAGE={{ image_name }}@{{ lookup('" + LOOKUP + "', image_name ~ ':1.9.0') }}\n")
    dest = tmp_path / "image.env"
    run = run_playbook(tasks=[
        {"name": "pin", "ansible.builtin.set_fact": {"pinned": "{{ lookup('" + LOOKUP + "', '" + ref + "') }}"}},
        debug("show pin", "pinned"),
        {"name": "render", "ansible.builtin.template": {"src": str(template), "dest": str(dest)},
         "vars": {"image_name": f"{seeded.host}/team/app"}},
    ])
    assert run.rc == 0, run.explain()
    assert run.task("pin")["ansible_facts"]["pinned"] == seeded.image.digest
    assert msg(run, "show pin") == seeded.image.digest
    assert dest.read_text() == f"IMAGE={seeded.host}/team/app@{seeded.image.digest}\n"


@pytest.mark.oldest_core
def test_digest_of_several_terms_and_of_a_platform(seeded, run_playbook):
    h = seeded.host
    arm = next(c for c in seeded.index.children if c.platform == "linux/arm64/v8")
    run = run_playbook(tasks=[
        debug("two", f"query('{LOOKUP}', '{h}/team/app:main', '{h}/team/multi:v1')"),
        debug("arm", f"lookup('{LOOKUP}', '{h}/team/multi:v1', platform='linux/arm64')"),
        debug("explicit", f"lookup('{LOOKUP}', '{h}/team/app:main', query='digest')"),
    ])
    assert run.rc == 0, run.explain()
    assert msg(run, "two") == [seeded.image.digest, seeded.index.digest]
    assert msg(run, "arm") == arm.digest
    assert msg(run, "explicit") == seeded.image.digest


def test_exists(seeded, run_playbook):
    h = seeded.host
    run = run_playbook(tasks=[
        debug("yes", f"lookup('{LOOKUP}', '{h}/team/app:main', query='exists')"),
        debug("no tag", f"lookup('{LOOKUP}', '{h}/team/app:nope', query='exists')"),
        debug("no repo", f"lookup('{LOOKUP}', '{h}/no/such:v1', query='exists')"),
        debug("by digest", f"lookup('{LOOKUP}', '{h}/team/app@{seeded.artifact.digest}', query='exists')"),
        debug("platform no", f"lookup('{LOOKUP}', '{h}/team/multi:v1', query='exists', platform='linux/s390x')"),
        debug("platform yes", f"lookup('{LOOKUP}', '{h}/team/multi:v1', query='exists', platform='linux/amd64')"),
        debug("per term", f"query('{LOOKUP}', '{h}/team/app:main', '{h}/team/app:gone', query='exists')"),
    ])
    assert run.rc == 0, run.explain()
    assert msg(run, "yes") is True and msg(run, "no tag") is False and msg(run, "no repo") is False
    assert msg(run, "by digest") is True
    assert msg(run, "platform no") is False and msg(run, "platform yes") is True
    assert msg(run, "per term") == [True, False]


def test_tags_pattern_sort_and_list_semantics(seeded, run_playbook):
    repo = f"{seeded.host}/team/app"
    ref_tag = referrers_tag(seeded.image)
    run = run_playbook(tasks=[
        debug("lexical", f"query('{LOOKUP}', '{repo}', query='tags')"),
        debug("semver", f"query('{LOOKUP}', '{repo}:ignored', query='tags', sort='semver', pattern='v?[0-9].*')"),
        debug("semver all", f"query('{LOOKUP}', '{repo}', query='tags', sort='semver')"),
        debug("newest", f"query('{LOOKUP}', '{repo}', query='tags', sort='semver', pattern='[0-9.]+') | last"),
        debug("joined", f"lookup('{LOOKUP}', '{repo}', query='tags', pattern='1\\.9.*|main')"),
        debug("wantlist", f"lookup('{LOOKUP}', '{repo}', query='tags', pattern='main', wantlist=True)"),
        debug("none", f"query('{LOOKUP}', '{repo}', query='tags', sort='none') | sort"),
        debug("missing repo", f"query('{LOOKUP}', '{seeded.host}/no/such', query='tags')"),
        debug("flat", f"query('{LOOKUP}', '{repo}', '{seeded.host}/team/multi', query='tags', pattern='main|v1')"),
    ])
    assert run.rc == 0, run.explain()
    assert msg(run, "lexical") == sorted([*VERSION_TAGS, ref_tag])
    assert msg(run, "semver") == ["v1.2", "1.9.0", "1.10.0-rc.1", "1.10.0", "2.0.0"]
    assert msg(run, "semver all") == sorted(["latest", "main", ref_tag]) + [
        "v1.2", "1.9.0", "1.10.0-rc.1", "1.10.0", "2.0.0"]
    assert msg(run, "newest") == "2.0.0"
    assert msg(run, "joined") == "1.9.0,main"  # lookup() joins a list of strings, as every lookup does
    assert msg(run, "wantlist") == ["main"]
    assert msg(run, "none") == sorted([*VERSION_TAGS, ref_tag])
    assert msg(run, "missing repo") == []
    assert msg(run, "flat") == ["main", "v1"]  # list answers of several terms are concatenated


def test_tags_that_belong_to_another_manifest_can_be_left_out(plain_registry, run_playbook):
    # cosign's sha256-<hex>.sig and the referrers fallback sha256-<hex> are tags of the repository, so
    # the default lists them (as the registry does); attached_tags=false leaves out every such tag.
    pusher = RawPusher.for_registry(plain_registry)
    image = make_image("lookup-signed")
    pusher.push("team/signed", image, tag="1.0")
    pusher.push_manifest("team/signed", "latest", image.data, image.media_type)
    pusher.push_cosign_signature("team/signed", image)
    pusher.push_referrers("team/signed", image, [make_artifact(image, artifact_type=SBOM_TYPE)])
    repo = f"{plain_registry.host}/team/signed"
    run = run_playbook(tasks=[
        debug("all", f"query('{LOOKUP}', '{repo}', query='tags')"),
        debug("own", f"query('{LOOKUP}', '{repo}', query='tags', attached_tags=false)"),
        debug("own semver", f"query('{LOOKUP}', '{repo}', query='tags', attached_tags=false, sort='semver')"),
    ])
    assert run.rc == 0, run.explain()
    assert msg(run, "all") == sorted(["1.0", "latest", cosign_tag(image), referrers_tag(image)])
    assert msg(run, "own") == ["1.0", "latest"]
    assert msg(run, "own semver") == ["latest", "1.0"]


def test_platforms_config_labels_manifest_referrers(seeded, run_playbook):
    h = seeded.host
    app, multi = f"{h}/team/app:main", f"{h}/team/multi:v1"
    run = run_playbook(tasks=[
        debug("index platforms", f"query('{LOOKUP}', '{multi}', query='platforms')"),
        debug("image platforms", f"query('{LOOKUP}', '{app}', query='platforms')"),
        debug("config", f"lookup('{LOOKUP}', '{app}', query='config')"),
        debug("config arm", f"lookup('{LOOKUP}', '{multi}', query='config', platform='linux/arm64/v8')"),
        debug("labels", f"lookup('{LOOKUP}', '{app}', query='labels')"),
        debug("one label", f"lookup('{LOOKUP}', '{app}', query='labels')['org.opencontainers.image.revision']"),
        debug("manifest", f"lookup('{LOOKUP}', '{app}', query='manifest')"),
        debug("manifest arm", f"lookup('{LOOKUP}', '{multi}', query='manifest', platform='linux/arm64')"),
        debug("referrers", f"query('{LOOKUP}', '{app}', query='referrers')"),
        debug("no referrers", f"query('{LOOKUP}', '{multi}', query='referrers')"),
    ])
    assert run.rc == 0, run.explain()
    assert msg(run, "index platforms") == ["linux/amd64", "linux/arm64/v8"]
    assert msg(run, "image platforms") == ["linux/amd64"]
    config = msg(run, "config")
    assert config["digest"] == seeded.image.config.digest
    assert config["created"] == "2025-01-02T03:04:05Z" and config["os"] == "linux"
    assert config["architecture"] == "amd64" and config["history_length"] == 2
    assert msg(run, "config arm")["architecture"] == "arm64"
    assert msg(run, "config arm")["labels"] == {"arch": "any"}
    assert msg(run, "labels") == {"org.opencontainers.image.revision": "abc123"}
    assert msg(run, "one label") == "abc123"
    assert msg(run, "manifest") == json.loads(seeded.image.data)
    arm = next(c for c in seeded.index.children if c.platform == "linux/arm64/v8")
    assert msg(run, "manifest arm") == json.loads(arm.data)
    assert msg(run, "referrers") == [{"digest": seeded.artifact.digest, "media_type": seeded.artifact.media_type,
                                      "size": seeded.artifact.size, "artifact_type": SBOM_TYPE,
                                      "annotations": {"kind": "sbom"}}]
    assert msg(run, "no referrers") == []


def test_repositories_under_a_prefix(seeded, run_playbook):
    h = seeded.host
    run = run_playbook(tasks=[
        debug("all", f"query('{LOOKUP}', '{h}', query='repositories')"),
        debug("team", f"query('{LOOKUP}', '{h}/team', query='repositories')"),
        debug("api", f"query('{LOOKUP}', '{h}/team', query='repositories', pattern='.*-api')"),
        debug("boundary", f"query('{LOOKUP}', '{h}/tea', query='repositories')"),
    ])
    assert run.rc == 0, run.explain()
    assert msg(run, "all") == ["other/thing", "team/app", "team/multi", "team/worker-api"]
    assert msg(run, "team") == ["team/app", "team/multi", "team/worker-api"]
    assert msg(run, "api") == ["team/worker-api"]
    assert msg(run, "boundary") == []


def test_errors_say_what_to_fix(seeded, run_playbook):
    h = seeded.host
    run = run_playbook(tasks=[
        {**debug("missing", f"lookup('{LOOKUP}', '{h}/team/app:nope')"), "ignore_errors": True},
        {**debug("index config", f"lookup('{LOOKUP}', '{h}/team/multi:v1', query='config')"), "ignore_errors": True},
        {**debug("bad platform", f"lookup('{LOOKUP}', '{h}/team/multi:v1', platform='linux/s390x')"),
         "ignore_errors": True},
        {**debug("bad query", f"lookup('{LOOKUP}', '{h}/team/app:main', query='size')"), "ignore_errors": True},
        {**debug("bad pattern", f"query('{LOOKUP}', '{h}/team/app', query='tags', pattern='(')"),
         "ignore_errors": True},
        {**debug("bad ref", f"lookup('{LOOKUP}', 'Not A Ref')"), "ignore_errors": True},
        {**debug("typo", f"lookup('{LOOKUP}', '{h}/team/app:main', pasword='x')"), "ignore_errors": True},
        {**debug("artifact config", f"lookup('{LOOKUP}', '{h}/team/app@{seeded.artifact.digest}', query='labels')"),
         "ignore_errors": True},
        debug("ignored", f"lookup('{LOOKUP}', '{h}/team/app:nope', errors='ignore')"),
    ])
    failures = {name: run.task(name) for name in
                ("missing", "index config", "bad platform", "bad query", "bad pattern", "bad ref", "artifact config",
                 "typo")}
    for name, task in failures.items():
        assert task.failed, f"{name} should fail: {task.result}"
    assert "does not exist" in failures["missing"]["msg"] and "query=exists" in failures["missing"]["msg"]
    assert "platform=" in failures["index config"]["msg"] and "linux/arm64/v8" in failures["index config"]["msg"]
    assert "linux/amd64, linux/arm64/v8" in failures["bad platform"]["msg"]
    assert "query" in failures["bad query"]["msg"] and "digest" in failures["bad query"]["msg"]
    assert "regular expression" in failures["bad pattern"]["msg"]
    assert "not a valid image reference" in failures["bad ref"]["msg"]
    assert "query=manifest" in failures["artifact config"]["msg"]
    assert "unknown option(s) pasword" in failures["typo"]["msg"] and "password" in failures["typo"]["msg"]
    ignored = run.task("ignored")
    assert ignored.status == "ok", ignored.result
    # errors='ignore' gives None: ansible-core 2.19 records debug's msg as None, 2.20+ leaves a None msg out.
    assert ignored.get("msg") is None


def test_basic_auth(basic_registry, run_playbook):
    image = make_image("lookup-basic")
    RawPusher.for_registry(basic_registry).push("team/app", image, tag="v1")
    ref = f"{basic_registry.host}/team/app:v1"
    run = run_playbook(tasks=[
        debug("good", f"lookup('{LOOKUP}', '{ref}', username='alice', password='secret')"),
        # The password comes from a variable, as in real playbooks: Ansible prints the failing
        # template's source in its error, and a literal there would be Ansible's leak, not ours.
        {**debug("wrong", f"lookup('{LOOKUP}', '{ref}', username='alice', password=wrong_password)"),
         "ignore_errors": True},
        {**debug("exists needs auth too", f"lookup('{LOOKUP}', '{ref}', query='exists')"), "ignore_errors": True},
    ], extra_vars={"wrong_password": "not-it-4711"})
    assert msg(run, "good") == image.digest
    wrong = run.task("wrong")
    assert wrong.failed and "ocireg.registry.registry lookup" in wrong["msg"]
    assert "check username/password" in wrong["msg"]
    # Auth failures fail even for exists: a bad password must never read as "not there".
    assert run.task("exists needs auth too").failed
    assert "not-it-4711" not in run.output


def test_token_auth_and_tags(token_registry, run_playbook):
    image = make_image("lookup-token")
    pusher = RawPusher.for_registry(token_registry)
    pusher.push("team/app", image, tag="v1")
    pusher.push_manifest("team/app", "v2", image.data, image.media_type)
    repo = f"{token_registry.host}/team/app"
    run = run_playbook(tasks=[
        {"name": "facts", "ansible.builtin.set_fact": {
            "tags": f"{{{{ query('{LOOKUP}', '{repo}', query='tags', username='alice', password='secret') }}}}",
            "digest": f"{{{{ lookup('{LOOKUP}', '{repo}:v2', username='bob', password='bobpass') }}}}"}},
    ])
    assert run.rc == 0, run.explain()
    facts = run.task("facts")["ansible_facts"]
    assert facts["tags"] == ["v1", "v2"] and facts["digest"] == image.digest
    assert "bobpass" not in run.output


def test_missing_requests_on_the_controller_is_explained(seeded, run_playbook, tmp_path: Path):
    """A ``requests`` package that fails to import stands in for a controller without it."""
    blocker = tmp_path / "block" / "requests"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('requests is blocked for this test')\n")
    run = run_playbook(tasks=[{**debug("no requests", f"lookup('{LOOKUP}', '{seeded.host}/team/app:main')"),
                               "ignore_errors": True}],
                       env={"PYTHONPATH": str(blocker.parent)})
    task = run.task("no requests")
    assert task.failed
    assert "requests" in task["msg"] and "controller" in task["msg"] and "pip install" in task["msg"]


def test_tls_options_reach_the_lookup(tls_registry, run_playbook):
    image = make_image("lookup-tls")
    RawPusher.for_registry(tls_registry).push("secure/app", image, tag="v1")
    ref = f"{tls_registry.host}/secure/app:v1"
    run = run_playbook(tasks=[
        debug("ca", f"lookup('{LOOKUP}', '{ref}', ca_path='{tls_registry.ca_path}')"),
        debug("no verify", f"lookup('{LOOKUP}', '{ref}', query='exists', validate_certs=false)"),
        {**debug("no ca", f"lookup('{LOOKUP}', '{ref}')"), "ignore_errors": True},
    ])
    assert msg(run, "ca") == image.digest
    assert msg(run, "no verify") is True
    assert run.task("no ca").failed and "ca_path" in run.task("no ca")["msg"]


def test_validate_certs_false_prints_no_insecure_request_warning(tls_registry, run_playbook):
    """The user asked for unverified TLS: like skopeo --tls-verify=false, say nothing about it on stderr,
    neither from the lookup (controller) nor from a module."""
    image = make_image("lookup-tls-quiet")
    RawPusher.for_registry(tls_registry).push("secure/quiet", image, tag="v1")
    ref = f"{tls_registry.host}/secure/quiet:v1"
    run = run_playbook(tasks=[
        debug("lookup", f"lookup('{LOOKUP}', '{ref}', validate_certs=false)"),
        debug("lookup many", f"query('{LOOKUP}', '{ref}', '{ref}', query='tags', validate_certs=false)"),
        {"name": "module", "ocireg.registry.registry_manifest_info": {"reference": ref, "validate_certs": False}},
        {"name": "module missing tag",
         "ocireg.registry.registry_manifest_info": {"reference": f"{ref}-missing", "validate_certs": False}},
    ])
    assert msg(run, "lookup") == image.digest
    assert msg(run, "lookup many") == ["v1", "v1"]
    assert run.task("module").status == "ok", run.explain()
    assert run.task("module missing tag").status == "ok", run.explain()
    printed = run.output
    assert "InsecureRequestWarning" not in printed and "Unverified HTTPS" not in printed, run.explain()
