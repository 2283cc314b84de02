"""Credentials stay with their host (invariant 10), through real playbooks.

"Ours" is a real Distribution with htpasswd auth; the user's credentials for it come from
``module_defaults`` for the action group, as the README shows. The "foreign" registry is
another real Distribution with htpasswd auth (a different user), behind a recording
:class:`~tests.rig.fault_proxy.FaultProxy` (no faults: it only records each request and the
``Authorization`` it carried). Distribution itself answers 401 with a Basic challenge, which
is exactly what used to draw our password out.

Every test ends by asserting that no request the foreign registry saw carried our password.
"""
from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.rig import images
from tests.rig.fault_proxy import FaultProxy
from tests.rig.flavours import RigRegistry
from tests.rig.images import RawPusher
from tests.rig.playbook import PlaybookResult, PlaybookRunner

GROUP = "group/ocireg.registry.registry"
COPY, TAG, INFO = ("ocireg.registry.registry_copy", "ocireg.registry.registry_tag",
                   "ocireg.registry.registry_manifest_info")
LOOKUP = "ocireg.registry.registry"
OUR_IMAGE = images.make_image("ours", layers=1)
THEIR_IMAGE = images.make_image("theirs", layers=1)


@dataclass
class Rig:
    ours: RigRegistry
    foreign: FaultProxy  # in front of their registry; .host is what tasks name
    their_user: str
    their_password: str

    def decoded_authorizations(self) -> list[str]:
        """Every Authorization the foreign host received, Basic ones decoded to ``user:password``."""
        seen = []
        for request in self.foreign.requests:
            value = request.authorization or ""
            if value.lower().startswith("basic "):
                value = base64.b64decode(value.split(" ", 1)[1]).decode("utf-8", "replace")
            if value:
                seen.append(value)
        return seen

    def assert_foreign_never_saw_ours(self) -> None:
        assert self.foreign.requests, "the foreign registry was never asked: the test proves nothing"
        leaked = [value for value in self.decoded_authorizations() if self.ours.password in value]
        assert leaked == []


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    our_password = f"ours-{secrets.token_hex(8)}"
    their_password = f"theirs-{secrets.token_hex(8)}"
    with RigRegistry(users={"alice": our_password}) as ours, RigRegistry(users={"carol": their_password}) as theirs:
        RawPusher.for_registry(ours).push("team/app", OUR_IMAGE, tag="v1")
        RawPusher.for_registry(theirs).push("third/app", THEIR_IMAGE, tag="v1")
        with FaultProxy.for_registry(theirs) as recorder:
            yield Rig(ours, recorder, "carol", their_password)


def run(runner: PlaybookRunner, tmp_path: Path, plays: list[dict[str, Any]], rig: Rig) -> PlaybookResult:
    """Run with a HOME of its own, so no developer login in an auth file answers for either host."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return runner.run(plays, extra_vars={"our_password": rig.ours.password, "their_password": rig.their_password},
                      env={"HOME": str(home), "DOCKER_CONFIG": str(home / ".docker")})


def play(tasks: list[dict[str, Any]], *, defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """A play whose action-group defaults are our credentials (the README's pattern), unless given."""
    if defaults is None:
        defaults = {"username": "alice", "password": "{{ our_password }}"}
    return {"name": "bound", "hosts": "localhost", "gather_facts": False,
            "module_defaults": {GROUP: defaults}, "tasks": tasks}


def debug(name: str, expression: str) -> dict[str, Any]:
    return {"name": name, "ignore_errors": True, "ansible.builtin.debug": {"msg": f"{{{{ {expression} }}}}"}}


def test_a_copy_from_a_foreign_registry_is_not_sent_our_password(rig, run_playbook, tmp_path):
    foreign, ours = rig.foreign.host, rig.ours.host
    result = run(run_playbook, tmp_path, [play([
        {"name": "copy in", "ignore_errors": True,
         COPY: {"src": f"{foreign}/third/app:v1", "dest": f"{ours}/team/mirror:v1"}},
        {"name": "tag from foreign", "ignore_errors": True,
         TAG: {"repository": f"{ours}/team/app", "tags": ["imported"], "source": f"{foreign}/third/app:v1"}},
        {"name": "copy within ours", COPY: {"src": f"{ours}/team/app:v1", "dest": f"{ours}/team/app2:v1"}},
    ])], rig)

    copy = result.task("copy in")
    assert copy.failed, result.explain()
    assert copy["msg"] == (f"src {foreign} answered 401 and no credentials were given for it: set src_auth or "
                           f"registry_auth (an entry with registry: {foreign}); the top-level credentials are "
                           f"only sent to {ours}")
    tag = result.task("tag from foreign")
    assert tag.failed and tag["msg"].startswith(f"src {foreign} answered 401 and no credentials were given")
    assert "set src_auth or registry_auth" in tag["msg"]
    assert not result.task("copy within ours").failed  # our credentials still work where they belong
    assert {r.status for r in rig.foreign.requests} == {401}  # it was asked, and it challenged
    rig.assert_foreign_never_saw_ours()


def test_manifest_info_and_the_lookup_over_two_registries(rig, run_playbook, tmp_path):
    foreign, ours = rig.foreign.host, rig.ours.host
    refs = [f"{ours}/team/app:v1", f"{foreign}/third/app:v1"]
    ours_only = [{"registry": ours, "username": "alice", "password": "{{ our_password }}"}]
    result = run(run_playbook, tmp_path, [
        play([
            # Top-level credentials cannot say which of two registries they are for: refused.
            {"name": "info two hosts", "ignore_errors": True, INFO: {"references": refs}},
        ]),
        play([
            {"name": "info bound", "ignore_errors": True, INFO: {"references": refs}},
        ], defaults={"registry_auth": ours_only}),
        play([
            debug("lookup two hosts", f"query('{LOOKUP}', *{refs!r}, username='alice', password=our_password)"),
            debug("lookup bound", f"query('{LOOKUP}', *{refs!r}, registry_auth=ours_only)"),
        ], defaults={}) | {"vars": {"ours_only": ours_only}},
    ], rig)

    refused = result.task("info two hosts")
    assert refused.failed and refused["msg"].startswith(f"references are on 2 registries ({ours}, {foreign})")
    assert "registry_auth" in refused["msg"]
    bound = result.task("info bound")
    assert bound.failed
    assert bound["msg"] == (f"registry {foreign} answered 401 and no credentials were given for it: set "
                            f"registry_auth (an entry with registry: {foreign})")
    lookup_refused = result.task("lookup two hosts")
    assert lookup_refused.failed and f"terms are on 2 registries ({ours}, {foreign})" in lookup_refused["msg"]
    lookup_bound = result.task("lookup bound")
    assert lookup_bound.failed and f"registry {foreign} answered 401 and no credentials" in lookup_bound["msg"]
    assert rig.foreign.requests and {r.status for r in rig.foreign.requests} == {401}
    rig.assert_foreign_never_saw_ours()


def test_registry_auth_for_two_registries_works(rig, run_playbook, tmp_path):
    """The positive case: each registry gets its own entry, from module_defaults, and nothing else."""
    foreign, ours = rig.foreign.host, rig.ours.host
    theirs = {"registry": foreign, "username": rig.their_user, "password": "{{ their_password }}"}
    both = [{"registry": ours, "username": "alice", "password": "{{ our_password }}"}, theirs]
    refs = [f"{ours}/team/app:v1", f"{foreign}/third/app:v1"]
    result = run(run_playbook, tmp_path, [
        play([
            {"name": "copy in", COPY: {"src": f"{foreign}/third/app:v1", "dest": f"{ours}/team/mirror:v1"}},
        ], defaults={"username": "alice", "password": "{{ our_password }}", "registry_auth": [theirs]}),
        play([
            {"name": "info both", INFO: {"references": refs}},
            {"name": "lookup", "ansible.builtin.set_fact": {
                "digests": f"{{{{ query('{LOOKUP}', *{refs!r}, registry_auth=both) }}}}"}},
        ], defaults={"registry_auth": both}) | {"vars": {"both": both}},
    ], rig)
    assert not [t.name for t in result.tasks if t.failed], result.explain()
    copied = result.task("copy in")
    assert copied.changed and copied["digest"] == THEIR_IMAGE.digest
    info = result.task("info both")["results"]
    assert [r["digest"] for r in info] == [OUR_IMAGE.digest, THEIR_IMAGE.digest]
    assert result.task("lookup")["ansible_facts"]["digests"] == [OUR_IMAGE.digest, THEIR_IMAGE.digest]
    # The foreign registry got its own user's credentials, and ours never.
    seen = rig.decoded_authorizations()
    assert f"{rig.their_user}:{rig.their_password}" in seen
    rig.assert_foreign_never_saw_ours()
