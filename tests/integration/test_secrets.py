"""Secrets never leak: not in results, warnings, exceptions, ``-vvv`` output or the servers' logs.

Real Distribution registries with htpasswd basic auth and with token auth (the
rig's JWT token service) get a user whose password is unique to this run, and
the playbook uses every way in: ``password``, ``registry_token`` (a token the
token service minted), an auth file with an ``auth`` string, an auth file with
an ``identitytoken`` (an OAuth2 refresh token), ``src_auth`` / ``dest_auth``,
and wrong passwords. It runs at ``-vvv``. Then the *full* output (stdout,
stderr and every task event) and the registries' and token service's logs are
searched for each secret and its base64 forms. The expected number of hits is
zero.

A :class:`~tests.rig.fault_proxy.FaultProxy` also plays a hostile registry that
echoes the credentials it receives back in ``Warning`` headers and error
messages (no real registry does that; it shows the module scrubs them anyway).

The tokens the token service issues during the run are collected by wrapping
its ``issue`` method, and any JWT-shaped string in the output counts as a leak.
"""
from __future__ import annotations

import base64
import json
import re
import secrets
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._glue.module import scrub
from ansible_collections.ocireg.registry.plugins.module_utils._glue.clients import ClientFactory
from ansible_collections.ocireg.registry.plugins.module_utils._client.credentials import Credentials
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import AuthenticationError, RegistryError
from ansible_collections.ocireg.registry.plugins.module_utils._model.reference import Reference
from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import Registry
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.core import TransportOptions
from tests.rig import images
from tests.rig.fault_proxy import FaultProxy, ProxyRequest, Reply
from tests.rig.flavours import RigRegistry
from tests.rig.images import RawPusher
from tests.rig.playbook import PlaybookResult, PlaybookRunner
from tests.rig.token_server import TokenServer, grant

USER = "leak-bot"
IMAGE = images.make_image("secrets", layers=1)
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")


def forms(secret: str, username: str | None = USER) -> set[str]:
    """A secret as it could leak: raw, base64 (standard and URL-safe), and inside a Basic header value."""
    found = {secret}
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        found.add(encode(secret.encode()).decode().rstrip("="))
        if username is not None:
            found.add(encode(f"{username}:{secret}".encode()).decode().rstrip("="))
    return found


@dataclass
class Setup:
    """The registries, the secrets in play, and what the run produced."""

    basic: RigRegistry
    token: RigRegistry
    token_server: TokenServer
    echo: FaultProxy
    passwords: dict[str, str]
    issued: list[str] = field(default_factory=list)  # every token the token service handed out
    extra: dict[str, str] = field(default_factory=dict)  # registry_token, refresh token, wrong password
    run: PlaybookResult | None = None

    def secrets(self) -> dict[str, set[str]]:
        """Name -> every form that must not appear."""
        named = {**self.passwords, **self.extra}
        found = {name: forms(value) for name, value in named.items()}
        found.update({f"issued token {n}": {token} for n, token in enumerate(self.issued)})
        return found


def hits(text: str, setup: Setup) -> list[str]:
    """Which secrets (by name) appear in ``text``."""
    return sorted(name for name, variants in setup.secrets().items() if any(v in text for v in variants))


def echo_credentials(request: ProxyRequest, reply: Reply) -> Reply:
    """A hostile registry: echo the Authorization it got, decoded too, in a warning and in error messages."""
    sent = request.headers.get("Authorization", "")
    decoded = ""
    if sent.lower().startswith("basic "):
        decoded = base64.b64decode(sent.split(" ", 1)[1]).decode()
    echoed = f"you sent {sent!r} ({decoded})"
    reply = reply.with_header("Warning", f'299 - "{echoed}"')
    if request.route.endswith("/tags/list") and reply.status == 200:
        body = json.dumps({"errors": [{"code": "DENIED", "message": echoed}]}).encode()
        reply = Reply(403, [*reply.headers, ("Content-Type", "application/json")], body, len(body))
    return reply


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> Iterator[Setup]:
    """Registries with run-unique passwords: basic auth, and token auth with its token service."""
    passwords = {"basic password": f"Bp-{secrets.token_hex(12)}", "token password": f"Tp-{secrets.token_hex(12)}"}
    with TokenServer(users={USER: passwords["token password"]}, acl=[grant(USER, "*", "pull", "push", "delete"),
                     grant(USER, "catalog", "*", resource_type="registry")]) as token_server, \
            RigRegistry(users={USER: passwords["basic password"]}) as basic, \
            RigRegistry(token_server=token_server) as token:
        issued: list[str] = []
        original_issue = token_server.issue

        def recording_issue(*args: Any, **kwargs: Any) -> tuple[str, list[dict[str, Any]]]:
            token, access = original_issue(*args, **kwargs)
            issued.append(token)
            return token, access

        token_server.issue = recording_issue  # type: ignore[method-assign]
        for registry in (basic, token):
            RawPusher.for_registry(registry).push("src/app", IMAGE, tag="v1")
        with FaultProxy.for_registry(basic) as echo:
            echo.add("rewrite", times=None, handler=echo_credentials)
            yield Setup(basic, token, token_server, echo, passwords, issued)


def playbook(setup: Setup, workdir: Path) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Every way a secret enters a run, each in a task; and the variables that carry the secrets.

    Secrets reach the tasks as variables, the way a vault would provide them:
    ansible-core 2.19 prints the source lines of a failed task, so a password
    written into the playbook itself would be shown by Ansible, not by us.
    """
    basic, token = setup.basic, setup.token
    registry_token, _access = setup.token_server.issue(USER, ["repository:src/app:pull"])
    refresh = setup.token_server.new_refresh_token(USER)
    wrong = f"Wp-{secrets.token_hex(12)}"
    setup.extra.update({"registry_token": registry_token, "refresh token": refresh, "wrong password": wrong})
    variables = {"basic_password": setup.passwords["basic password"], "token_password": setup.passwords["token password"],
                 "wrong_password": wrong, "minted_token": registry_token}
    basic_auth = {"username": USER, "password": "{{ basic_password }}"}
    token_auth = {"username": USER, "password": "{{ token_password }}"}
    wrong_auth = {"username": USER, "password": "{{ wrong_password }}"}
    auth_string = workdir / "auth-string.json"
    auth_string.write_text(json.dumps({"auths": {basic.host: {
        "auth": base64.b64encode(f"{USER}:{setup.passwords['basic password']}".encode()).decode()}}}))
    identity = workdir / "identity.json"
    identity.write_text(json.dumps({"auths": {token.host: {"username": USER, "identitytoken": refresh}}}))
    info, copy, tag = ("ocireg.registry.registry_manifest_info", "ocireg.registry.registry_copy",
                       "ocireg.registry.registry_tag")

    def lookup(term: str, password_var: str, **options: str) -> dict[str, Any]:
        extra = "".join(f", {key}={value!r}" for key, value in options.items())
        return {"ansible.builtin.debug": {"msg": f"{{{{ lookup('ocireg.registry.registry', {term!r}, "
                                                 f"username={USER!r}, password={password_var}{extra}) }}}}"}}

    tasks = [
        {"name": "basic password", info: {"reference": f"{basic.host}/src/app:v1", **basic_auth}},
        {"name": "token password", info: {"reference": f"{token.host}/src/app:v1", **token_auth}},
        {"name": "registry token", info: {"reference": f"{token.host}/src/app:v1",
                                          "registry_token": "{{ minted_token }}"}},
        {"name": "auth string", info: {"reference": f"{basic.host}/src/app:v1", "auth_file": str(auth_string)}},
        {"name": "identity token", info: {"reference": f"{token.host}/src/app:v1", "auth_file": str(identity)}},
        {"name": "copy", copy: {"src": f"{basic.host}/src/app:v1", "dest": f"{token.host}/dst/app:v1",
                                "src_auth": basic_auth, "dest_auth": token_auth}},
        {"name": "tag", tag: {"repository": f"{token.host}/src/app", "tags": ["v2"], "source": ":v1", **token_auth}},
        {"name": "lookup basic", **lookup(f"{basic.host}/src/app:v1", "basic_password")},
        {"name": "lookup token", **lookup(f"{token.host}/src/app", "token_password", query="tags")},
        {"name": "prune", "ocireg.registry.registry_prune": {"repository": f"{basic.host}/src/app", "keep_latest": 5,
                                                             **basic_auth}},
        {"name": "wrong basic", "ignore_errors": True, info: {"reference": f"{basic.host}/src/app:v1", **wrong_auth}},
        {"name": "wrong token", "ignore_errors": True, info: {"reference": f"{token.host}/src/app:v1", **wrong_auth}},
        {"name": "wrong lookup", "ignore_errors": True, **lookup(f"{token.host}/src/app:v1", "wrong_password")},
        {"name": "echoed warning", info: {"reference": f"{setup.echo.host}/src/app:v1", **basic_auth}},
        {"name": "echoed error", "ignore_errors": True,
         info: {"reference": f"{setup.echo.host}/src/app:v1", "include": ["tags"], **basic_auth}},
        {"name": "echoed lookup", "ignore_errors": True, **lookup(f"{setup.echo.host}/src/app", "basic_password",
                                                                  query="tags")},
    ]
    return tasks, variables


@pytest.fixture(scope="module")
def ran(setup: Setup, rig_collection, tmp_path_factory) -> Setup:
    workdir = tmp_path_factory.mktemp("secrets")
    tasks, variables = playbook(setup, workdir)
    setup.run = PlaybookRunner(rig_collection, workdir).run(tasks=tasks, extra_vars=variables, verbosity=3,
                                                            diff=True)
    return setup


def test_the_run_did_what_it_should(ran):
    """The secrets were really used: every task that should succeed did, the wrong ones failed."""
    run = ran.run
    failed = {t.name for t in run.tasks if t.failed}
    assert failed == {"wrong basic", "wrong token", "wrong lookup", "echoed error", "echoed lookup"}, run.explain()
    assert ran.issued  # the token service handed out tokens
    assert ran.echo.requests and all(r.authorization for r in ran.echo.requests if r.status != 401)
    warned = run.task("echoed warning").get("warnings") or []
    assert warned and all("you sent" in text for text in warned)  # the hostile warning reached the user
    # The echoes reached the user, with the secrets scrubbed (hits() below proves none got through).
    for name in ("echoed warning", "echoed error", "echoed lookup"):
        assert f"you sent 'Basic ********' ({USER}:********)" in json.dumps(run.task(name).result), name


def test_no_secret_in_the_full_vvv_output(ran):
    output = ran.run.output
    assert "<localhost> EXEC" in output or "ESTABLISH LOCAL CONNECTION" in output  # really -vvv
    assert hits(output, ran) == []
    assert JWT.findall(output) == []
    print(f"FIGURES secrets: {sum(len(v) for v in ran.secrets().values())} secret forms searched in "
          f"{len(output)} characters of -vvv output and events, {len(hits(output, ran))} leaks")


def test_no_secret_in_the_registry_and_token_service_logs(ran):
    assert hits(ran.basic.log_text(), ran) == []
    assert hits(ran.token.log_text(), ran) == []
    # The token service gets credentials where they belong (a Basic header, an OAuth2 form body);
    # never in a URL, which servers and proxies log.
    for entry in ran.token_server.requests:
        in_url = entry.path + ("" if entry.method == "POST" else json.dumps(entry.params))
        assert hits(in_url, ran) == [], entry


@pytest.mark.parametrize("flavour", ["basic", "token"])
def test_client_exceptions_hold_no_secret(ran, flavour):
    """A wrong password raises AuthenticationError; nothing about it (message, repr, dict, traceback) holds it."""
    registry = ran.basic if flavour == "basic" else ran.token
    wrong = ran.extra["wrong password"]
    client = Registry(registry.host, TransportOptions(plain_http=True, retries=0),
                      Credentials(username=USER, password=wrong))
    with pytest.raises(AuthenticationError) as caught:
        client.repository("src/app").tags()
    error = caught.value
    rendered = "\n".join([str(error), repr(error), json.dumps(error.to_dict()), repr(error.detail),
                          "".join(traceback.format_exception(error)), repr(client.credentials)])
    assert any(word in str(error) for word in ("password", "credentials"))
    assert not any(form in rendered for form in forms(wrong))


def test_a_rejected_registry_token_is_not_repeated(ran):
    bogus = f"bogus-{secrets.token_hex(16)}"
    client = Registry(ran.token.host, TransportOptions(plain_http=True, retries=0), Credentials(registry_token=bogus))
    with pytest.raises(RegistryError) as caught:
        client.repository("src/app").tags()
    rendered = "\n".join([str(caught.value), repr(caught.value), json.dumps(caught.value.to_dict()),
                          "".join(traceback.format_exception(caught.value))])
    assert bogus not in rendered


def test_an_echoed_bearer_token_is_scrubbed(ran):
    """What modules do with an error (ansible_glue.scrub with the factory's secrets), against an echoing registry."""
    with FaultProxy.for_registry(ran.token) as echo:
        def echo_bearer(request: ProxyRequest, reply: Reply) -> Reply:
            if reply.status == 401 or not request.route.endswith("/tags/list"):
                return reply
            sent = request.headers.get("Authorization", "")
            body = json.dumps({"errors": [{"code": "DENIED", "message": f"token rejected: {sent}"}]}).encode()
            return Reply(403, [("Content-Type", "application/json")], body, len(body))

        echo.add("rewrite", times=None, handler=echo_bearer)
        factory = ClientFactory({"username": USER, "password": ran.passwords["token password"], "plain_http": True,
                                 "retries": 0})
        with pytest.raises(RegistryError) as caught:
            factory.repository(Reference.parse(f"{echo.host}/src/app")).tags()
    shown = scrub(str(caught.value), factory.secrets())
    assert "token rejected: Bearer" in shown  # the echo happened
    assert JWT.findall(shown) == []
