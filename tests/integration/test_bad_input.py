"""Bad input gives a one-line, actionable error from every module and the lookup, never a traceback.

One real ``ansible-playbook`` run (module scope) holds every case as a task
with ``ignore_errors``, against real Distribution registries (plain, htpasswd
basic auth, token auth); the tests below read each task's result from it. A
case lists words its message must contain: what is wrong *and* what to do
(the reference form, the host to check, the credentials to check, the option
to change).

The reference and ``WWW-Authenticate`` parsers are fuzzed with thousands of
hypothesis cases in tests/unit/plugins/module_utils/_model/test_reference.py and
_client/auth/test_token.py (``test_parse_only_raises_registry_errors``,
``test_fuzz_any_text_parses_or_raises_invalid_input_only`` and friends); they
are not repeated here.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.rig import images
from tests.rig.images import RawPusher
from tests.rig.playbook import PlaybookResult, PlaybookRunner

UNKNOWN = "nonexistent.invalid/team/app"
MALFORMED = "Registry.Example/UPPER/Case::v1"
WRONG = {"username": "alice", "password": "not-the-password"}
FAST = {"retries": 0, "timeout": 5}  # an unknown host is not retried into a slow test
IMAGE = images.make_image("bad-input")
WORKERS = 4
INDEX = images.make_multiarch("bad-input-multi", ("linux/amd64", "linux/arm64"))


@dataclass
class Case:
    """One task and what its failure message must say (any of ``says``, case-insensitive)."""

    module: str
    args: dict[str, Any]
    says: tuple[str, ...]
    fails: bool = True
    result: dict[str, Any] = field(default_factory=dict)  # keys the result must have (for non-failures)


def lookup(term: str, **options: Any) -> str:
    """A debug msg that runs the registry lookup (options as keyword arguments)."""
    extra = "".join(f", {key}={value!r}" for key, value in options.items())
    return f"{{{{ lookup('ocireg.registry.registry', {term!r}{extra}) }}}}"


def cases(plain: str, basic: str, token: str) -> dict[str, Case]:
    """Every case, by task name. ``plain`` holds ``src/app:v1`` (an image) and ``src/multi:v1`` (an index)."""
    copy, info, tag, prune = ("ocireg.registry.registry_copy", "ocireg.registry.registry_manifest_info",
                              "ocireg.registry.registry_tag", "ocireg.registry.registry_prune")
    debug = "ansible.builtin.debug"
    return {
        # malformed references
        "copy malformed": Case(copy, {"src": MALFORMED, "dest": f"{plain}/dst/app:v1"}, ("expected",)),
        "info malformed": Case(info, {"reference": MALFORMED}, ("expected",)),
        "tag malformed": Case(tag, {"repository": "bad repo!", "tags": ["v1"], "source": ":v1"}, ("expected",)),
        "lookup malformed": Case(debug, {"msg": lookup(MALFORMED)}, ("expected",)),
        "prune malformed": Case(prune, {"repository": "bad repo!", "keep_latest": 1}, ("expected",)),
        # unknown hosts
        "copy unknown host": Case(copy, {"src": f"{UNKNOWN}:v1", "dest": f"{plain}/dst/app:v1", **FAST},
                                  ("check the host name",)),
        "info unknown host": Case(info, {"reference": f"{UNKNOWN}:v1", **FAST}, ("check the host name",)),
        "tag unknown host": Case(tag, {"repository": UNKNOWN, "tags": ["v2"], "source": ":v1", **FAST},
                                 ("check the host name",)),
        "lookup unknown host": Case(debug, {"msg": lookup(f"{UNKNOWN}:v1", **FAST)}, ("check the host name",)),
        "prune unknown host": Case(prune, {"repository": UNKNOWN, "keep_latest": 1, **FAST},
                                   ("check the host name",)),
        # wrong credentials
        "copy wrong password": Case(copy, {"src": f"{basic}/src/app:v1", "dest": f"{plain}/dst/app:v1",
                                           "src_auth": WRONG}, ("check username/password", "credentials")),
        "info wrong password": Case(info, {"reference": f"{basic}/src/app:v1", **WRONG},
                                    ("check username/password", "credentials")),
        "tag wrong password": Case(tag, {"repository": f"{token}/src/app", "tags": ["v2"], "source": ":v1", **WRONG},
                                   ("password", "credentials")),
        "lookup wrong password": Case(debug, {"msg": lookup(f"{token}/src/app:v1", **WRONG)},
                                      ("password", "credentials")),
        "prune wrong password": Case(prune, {"repository": f"{basic}/src/app", "keep_latest": 1, **WRONG},
                                     ("check username/password", "credentials")),
        # missing repositories
        "copy missing repository": Case(copy, {"src": f"{plain}/no/such:v1", "dest": f"{plain}/dst/app:v1"},
                                        ("does not exist",)),
        "info missing repository": Case(info, {"reference": f"{plain}/no/such:v1"}, (), fails=False,
                                        result={"exists": False}),
        "tag missing repository": Case(tag, {"repository": f"{plain}/no/such", "tags": ["v2"], "source": ":v1"},
                                       ("does not exist", "not found")),
        "lookup missing repository": Case(debug, {"msg": lookup(f"{plain}/no/such:v1")},
                                          ("does not exist", "not found")),
        # Nothing silent: a repository that does not exist fails naming it (it used to be a silent empty plan).
        "prune missing repository": Case(prune, {"repository": f"{plain}/no/such", "keep_latest": 1},
                                         ("no/such does not exist", "missing_repository: warn")),
        # connection options the HTTP library would refuse in its own words
        "info negative timeout": Case(info, {"reference": f"{plain}/src/app:v1", "timeout": -5},
                                      ("timeout must be more than 0 seconds",)),
        "copy missing ca_path": Case(copy, {"src": f"{plain}/src/app:v1", "dest": f"{plain}/dst/app:v1",
                                            "ca_path": "/nonexistent/ca.pem"}, ("ca_path /nonexistent/ca.pem",)),
        "lookup missing client_cert": Case(debug, {"msg": lookup(f"{plain}/src/app:v1",
                                                                 client_cert="/nonexistent/c.pem")},
                                           ("client_cert /nonexistent/c.pem is not a file",)),
        # invalid option combinations and values
        "copy dest digest": Case(copy, {"src": f"{plain}/src/app:v1", "dest": f"{plain}/dst/app@{IMAGE.digest}"},
                                 ("digest",)),
        "copy mirror with tag": Case(copy, {"src": f"{plain}/src/app:v1", "dest": f"{plain}/dst/app",
                                            "tags": [".*"]}, ("without tag",)),
        "copy concurrency": Case(copy, {"src": f"{plain}/src/app:v1", "dest": f"{plain}/dst/app:v1",
                                        "concurrency": 0}, ("concurrency",)),
        "copy platform subset": Case(copy, {"src": f"{plain}/src/multi:v1", "dest": f"{plain}/dst/multi:v1",
                                            "platforms": ["linux/arm64"]}, ("allow_index_rewrite",)),
        "info bad platform": Case(info, {"reference": f"{plain}/src/multi:v1", "platform": "linux"}, ("os/arch",)),
        "info concurrency": Case(info, {"references": [f"{plain}/src/app:v1"], "max_concurrency": 0},
                                 ("max_concurrency",)),
        "tag bad tag": Case(tag, {"repository": f"{plain}/src/app", "tags": ["bad tag!"], "source": ":v1"},
                            ("tag",)),
        "tag bad guard": Case(tag, {"repository": f"{plain}/src/app", "tags": ["v2"], "source": ":v1",
                                    "expected_digest": "sha256:abc"}, ("digest",)),
        "tag guard mismatch": Case(tag, {"repository": f"{plain}/src/app", "tags": ["v2"], "source": ":v1",
                                         "expected_digest": INDEX.digest}, ("expected",)),
        "lookup bad query": Case(debug, {"msg": lookup(f"{plain}/src/app:v1", query="everything")},
                                 ("query is one of",)),
        "lookup bad pattern": Case(debug, {"msg": lookup(f"{plain}/src/app", query="tags", pattern="(")},
                                   ("pattern",)),
        "lookup bad platform": Case(debug, {"msg": lookup(f"{plain}/src/multi:v1", query="platforms",
                                                          platform="linux")}, ("os/arch",)),
        "prune repository and registry": Case(prune, {"repository": f"{plain}/src/app", "registry": plain,
                                                      "keep_latest": 1}, ("mutually exclusive",)),
        "prune bad duration": Case(prune, {"repository": f"{plain}/src/app", "older_than": "banana"},
                                   ("older_than",)),
        "prune bad ratio": Case(prune, {"repository": f"{plain}/src/app", "keep_latest": 1,
                                        "max_delete_ratio": 2.0}, ("max_delete_ratio",)),
        "prune bad rule": Case(prune, {"repository": f"{plain}/src/app",
                                       "rules": [{"action": "delete", "regex": ["("]}]}, ("regex", "regular")),
        # 1.0 ANDed a rule's selector kinds; every tag selector is a union now, so a mix is refused, not widened.
        "prune rule mixing selector kinds": Case(prune, {"repository": f"{plain}/src/app", "rules": [
            {"name": "amd64-prs", "action": "delete", "prefix": ["pr-"], "glob": ["*-amd64"]}]},
            ("rule 'amd64-prs' (rules[0]): prefix and glob in one rule", "regex: ['pr-.*-amd64']")),
        "prune rules and shorthands": Case(prune, {"repository": f"{plain}/src/app", "keep_latest": 3,
                                                   "rules": [{"action": "delete", "prefix": ["dev-"]}]},
                                           ("cannot be mixed",)),
    }


@pytest.fixture(scope="module")
def outcome(plain_registry_module, basic_registry_module, token_registry_module, rig_collection,
            tmp_path_factory) -> Iterator[tuple[dict[str, Case], PlaybookResult]]:
    """Seed the registries with the rig's raw pusher, then run every case in one playbook."""
    for registry in (plain_registry_module, basic_registry_module, token_registry_module):
        pusher = RawPusher.for_registry(registry)
        pusher.push("src/app", IMAGE, tag="v1")
        pusher.push("src/multi", INDEX, tag="v1")
    table = cases(plain_registry_module.host, basic_registry_module.host, token_registry_module.host)
    # The cases are independent: spread them over WORKERS local "hosts" that run in parallel.
    tasks = [{"name": name, "ignore_errors": True, case.module: case.args,
              "when": f"inventory_hostname == '{worker_of(name)}'"} for name, case in table.items()]
    hosts = [f"worker{n}" for n in range(WORKERS)]
    play = {"name": "bad input", "hosts": ",".join(hosts), "gather_facts": False, "strategy": "free",
            "tasks": tasks}
    runner = PlaybookRunner(rig_collection, tmp_path_factory.mktemp("bad-input"))
    yield table, runner.run(play, args=["-i", ",".join(hosts) + ",", "--forks", str(WORKERS)])


def case_names() -> list[str]:
    return list(cases("plain", "basic", "token"))


def worker_of(name: str) -> str:
    """The host that runs case ``name`` (the others skip it)."""
    return f"worker{case_names().index(name) % WORKERS}"


@pytest.mark.parametrize("name", case_names())
def test_one_line_actionable_error(outcome, name):
    table, run = outcome
    case = table[name]
    task = next(t for t in run.tasks_named(name) if t.host == worker_of(name))
    if not case.fails:
        assert not task.failed, task.result
        for key, value in case.result.items():
            assert task[key] == value
        return
    assert task.failed, f"{name} did not fail: {task.result}"
    message = str(task.get("msg", "")).strip()
    assert message and "\n" not in message, repr(message)
    # Ansible 2.19 fills "exception" with "(traceback unavailable)" when a module gives none.
    assert "Traceback" not in message and "Traceback" not in str(task.get("exception", "")), task.result
    assert any(word.lower() in message.lower() for word in case.says), f"{name}: {message}"


def test_no_traceback_anywhere_in_the_run(outcome):
    _table, run = outcome
    assert "Traceback" not in run.output
    assert run.rc == 0, run.explain()  # every failure was a clean, ignorable task failure
