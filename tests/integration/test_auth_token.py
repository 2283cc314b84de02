"""The auth layer against real registries: Distribution 2.8 with ``auth.token``
trusting the rig's JWT token server, and Distribution with htpasswd.

Each test takes a real 401 challenge from the registry, lets
:class:`Authenticator` get the header, and then proves the header works by a
raw ``requests`` call to the registry (``/v2/<repo>/tags/list`` mostly): the
registry verifies the JWT's signature, audience, expiry and ``access`` claim,
so a token that passes here is a real one. Registry calls use raw requests so
these tests do not depend on the transport (_client/transport/).
"""
from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest
import requests

from ansible_collections.ocireg.registry.plugins.module_utils._client.auth.challenge import (
    REGISTRY_CATALOG_SCOPE,
    Challenge,
    parse_www_authenticate,
    scope_for,
)
from ansible_collections.ocireg.registry.plugins.module_utils._client.auth.token import EXPIRY_MARGIN, Authenticator
from ansible_collections.ocireg.registry.plugins.module_utils._client.credentials import (
    Credentials,
    resolve_credentials,
    secrets_of,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import AuthenticationError
from tests.rig.images import RawPusher

PULL_APP = scope_for("team/app", ["pull"])
PUSH_APP = scope_for("team/app", ["pull", "push"])


@pytest.fixture
def session():
    with requests.Session() as s:
        yield s


def alice(registry) -> Credentials:
    return Credentials(username=registry.username, password=registry.password, source="explicit")


def challenges_for(registry, method: str, path: str) -> list[Challenge]:
    """Send an unauthenticated request and parse the registry's challenge."""
    response = requests.request(method, f"{registry.url}{path}", timeout=10)
    assert response.status_code == 401, response.text
    return parse_www_authenticate(response.headers["WWW-Authenticate"])


def tags(registry, repository: str, header: str | None) -> requests.Response:
    headers = {"Authorization": header} if header else {}
    return requests.get(f"{registry.url}/v2/{repository}/tags/list", headers=headers, timeout=10)


def start_upload(registry, repository: str, header: str | None, query: str = "") -> requests.Response:
    headers = {"Authorization": header} if header else {}
    return requests.post(f"{registry.url}/v2/{repository}/blobs/uploads/{query}", headers=headers, timeout=10)


def push(registry, repository: str, tag: str = "v1"):
    return RawPusher.for_registry(registry).push_image(repository, tag=tag, seed=repository)


# -- token flavour -------------------------------------------------------------------------


def test_password_grant_token_reads_tags(token_registry, session) -> None:
    push(token_registry, "team/app")
    server = token_registry.token_server
    mark = server.mark()
    auth = Authenticator(alice(token_registry), session)
    header = auth.authorize(token_registry.host, challenges_for(token_registry, "GET", "/v2/team/app/tags/list"),
                            [PULL_APP])
    response = tags(token_registry, "team/app", header)
    assert response.status_code == 200, response.text
    assert response.json()["tags"] == ["v1"]
    (asked,) = server.requests_since(mark)
    assert (asked.method, asked.grant_type, asked.username, asked.scopes) == ("POST", "password", "alice", [PULL_APP])
    assert asked.params["client_id"] == ["ocireg.registry"] and asked.params["service"] == [server.service]
    assert asked.authorization is None  # the password travels in the form, not twice


@pytest.mark.parametrize("status", [404, 405])
def test_get_with_basic_when_the_token_service_refuses_post(token_registry, session, status) -> None:
    push(token_registry, "team/app")
    server = token_registry.token_server
    server.reject_post = status
    mark = server.mark()
    auth = Authenticator(alice(token_registry), session)
    header = auth.authorize(token_registry.host, challenges_for(token_registry, "GET", "/v2/team/app/tags/list"),
                            [PULL_APP])
    assert tags(token_registry, "team/app", header).json()["tags"] == ["v1"]
    post, get = server.requests_since(mark)
    assert (post.method, post.status) == ("POST", status)
    assert (get.method, get.status, get.username) == ("GET", 200, "alice")
    assert get.params["account"] == ["alice"] and get.scopes == [PULL_APP]
    assert get.authorization.startswith("Basic ")


def test_anonymous_pull_of_a_public_repository(token_registry, session) -> None:
    push(token_registry, "public/tool")
    server = token_registry.token_server
    mark = server.mark()
    auth = Authenticator(None, session)
    scope = scope_for("public/tool", ["pull"])
    header = auth.authorize(token_registry.host,
                            challenges_for(token_registry, "GET", "/v2/public/tool/tags/list"), [scope])
    assert tags(token_registry, "public/tool", header).json()["tags"] == ["v1"]
    (asked,) = server.requests_since(mark)
    assert (asked.method, asked.username, asked.authorization) == ("GET", None, None)
    assert asked.granted == [{"type": "repository", "name": "public/tool", "actions": ["pull"]}]


def test_anonymous_token_for_a_private_repository_is_refused_by_the_registry(token_registry, session) -> None:
    push(token_registry, "team/app")
    auth = Authenticator(None, session)
    header = auth.authorize(token_registry.host,
                            challenges_for(token_registry, "GET", "/v2/team/app/tags/list"), [PULL_APP])
    response = tags(token_registry, "team/app", header)
    assert response.status_code == 401
    (challenge,) = parse_www_authenticate(response.headers["WWW-Authenticate"])
    assert challenge.error == "insufficient_scope"


def test_refresh_token_grant_with_an_identity_token(token_registry, session) -> None:
    push(token_registry, "team/app")
    server = token_registry.token_server
    # What `docker login` does to get the identity token it stores in config.json.
    login = requests.post(server.realm, data={"grant_type": "password", "username": "alice", "password": "secret",
                                              "service": server.service, "client_id": "test",
                                              "access_type": "offline"}, timeout=10)
    identity_token = login.json()["refresh_token"]
    mark = server.mark()
    auth = Authenticator(Credentials(identity_token=identity_token, source="auth_file:x"), session)
    header = auth.authorize(token_registry.host,
                            challenges_for(token_registry, "GET", "/v2/team/app/tags/list"), [PULL_APP])
    assert tags(token_registry, "team/app", header).json()["tags"] == ["v1"]
    (asked,) = server.requests_since(mark)
    assert (asked.method, asked.grant_type, asked.username) == ("POST", "refresh_token", "alice")
    assert asked.params["refresh_token"] == [identity_token]


def test_wrong_password_is_a_clear_authentication_error(token_registry, session) -> None:
    creds = Credentials(username="alice", password="not-the-password", source="auth_file:/tmp/config.json")
    auth = Authenticator(creds, session)
    with pytest.raises(AuthenticationError) as info:
        auth.authorize(token_registry.host, challenges_for(token_registry, "GET", "/v2/team/app/tags/list"),
                       [PULL_APP])
    message = str(info.value)
    assert message == (f"the registry rejected the username/password for {token_registry.host}: check "
                       "username/password or the auth file entry (source: auth_file:/tmp/config.json)")
    assert not any(secret in message for secret in secrets_of(creds))


def test_insufficient_scope_then_one_retry_with_the_challenged_scope(token_registry, session) -> None:
    """A pull token used for a push draws insufficient_scope; answering that challenge gets push."""
    push(token_registry, "team/app")
    auth = Authenticator(alice(token_registry), session)
    host = token_registry.host
    pull_header = auth.authorize(host, challenges_for(token_registry, "GET", "/v2/team/app/tags/list"), [PULL_APP])
    denied = start_upload(token_registry, "team/app", pull_header)
    assert denied.status_code == 401
    challenges = parse_www_authenticate(denied.headers["WWW-Authenticate"])
    assert challenges[0].error == "insufficient_scope"
    push_header = auth.authorize(host, challenges, [PULL_APP])  # the challenge names pull,push
    assert push_header != pull_header
    assert start_upload(token_registry, "team/app", push_header).status_code == 202
    assert auth.header_for(host, [PUSH_APP]) == push_header


def test_insufficient_scope_stays_insufficient_for_a_user_without_the_right(token_registry, session) -> None:
    """bob may only pull team/*: the token service grants less than asked (no error) and the registry says no."""
    push(token_registry, "team/app")
    server = token_registry.token_server
    bob = Credentials(username="bob", password=server.users["bob"], source="explicit")
    auth = Authenticator(bob, session)
    host = token_registry.host
    mark = server.mark()
    header = auth.authorize(host, challenges_for(token_registry, "POST", "/v2/team/app/blobs/uploads/"), [PUSH_APP])
    assert server.requests_since(mark)[0].granted == [{"type": "repository", "name": "team/app", "actions": ["pull"]}]
    assert start_upload(token_registry, "team/app", header).status_code == 401
    assert tags(token_registry, "team/app", auth.header_for(host, [PULL_APP])).status_code == 200
    auth.invalidate(host, [PUSH_APP])
    assert auth.header_for(host, [PULL_APP]) is None


def test_expired_token_is_refetched(token_registry, session) -> None:
    push(token_registry, "team/app")
    server = token_registry.token_server
    server.expires_in = 60
    now = [time.time()]  # the Authenticator's clock, moved by hand so expiry needs no sleeping
    auth = Authenticator(alice(token_registry), session, clock=lambda: now[0])
    host = token_registry.host
    first = auth.authorize(host, challenges_for(token_registry, "GET", "/v2/team/app/tags/list"), [PULL_APP])
    now[0] += 60 - EXPIRY_MARGIN - 1
    assert auth.header_for(host, [PULL_APP]) == first
    now[0] += 1
    assert auth.header_for(host, [PULL_APP]) is None  # refreshed early: the transport will draw a new challenge
    mark = server.mark()
    second = auth.authorize(host, challenges_for(token_registry, "GET", "/v2/team/app/tags/list"), [PULL_APP])
    assert len(server.requests_since(mark)) == 1
    assert second != first
    assert tags(token_registry, "team/app", second).status_code == 200


def test_a_token_the_registry_finds_expired_is_replaced(token_registry, session) -> None:
    """The JWT is already past exp (beyond Distribution's 60 s leeway) although expires_in claims otherwise."""
    push(token_registry, "team/app")
    server = token_registry.token_server
    server.expires_in = -120
    auth = Authenticator(alice(token_registry), session)
    host = token_registry.host
    stale = auth.authorize(host, challenges_for(token_registry, "GET", "/v2/team/app/tags/list"), [PULL_APP])
    rejected = tags(token_registry, "team/app", stale)
    assert rejected.status_code == 401
    server.expires_in = 300
    fresh = auth.authorize(host, parse_www_authenticate(rejected.headers["WWW-Authenticate"]), [PULL_APP])
    assert fresh != stale and auth.header_for(host, [PULL_APP]) == fresh
    assert tags(token_registry, "team/app", fresh).status_code == 200


def test_cached_token_serves_later_requests_without_the_token_service(token_registry, session) -> None:
    push(token_registry, "team/app")
    server = token_registry.token_server
    auth = Authenticator(alice(token_registry), session)
    host = token_registry.host
    auth.authorize(host, challenges_for(token_registry, "POST", "/v2/team/app/blobs/uploads/"), [PUSH_APP])
    mark = server.mark()
    assert tags(token_registry, "team/app", auth.header_for(host, [PULL_APP])).status_code == 200
    assert start_upload(token_registry, "team/app", auth.header_for(host, [PUSH_APP])).status_code == 202
    assert server.requests_since(mark) == []


def test_one_token_for_a_cross_repository_mount(token_registry, session) -> None:
    """Mount needs pull on the source and push on the destination in one token."""
    pushed = push(token_registry, "team/src")
    auth = Authenticator(alice(token_registry), session)
    scopes = [scope_for("team/src", ["pull"]), scope_for("team/dst", ["pull", "push"])]
    query = f"?mount={pushed.layer_digests[0]}&from=team/src"
    header = auth.authorize(token_registry.host,
                            challenges_for(token_registry, "POST", f"/v2/team/dst/blobs/uploads/{query}"), scopes)
    response = start_upload(token_registry, "team/dst", header, query)
    assert response.status_code == 201, response.text
    assert response.headers["Docker-Content-Digest"] == pushed.layer_digests[0]


def test_catalog_scope(token_registry, session) -> None:
    push(token_registry, "team/app")
    auth = Authenticator(alice(token_registry), session)
    response = requests.get(f"{token_registry.url}/v2/_catalog", timeout=10)
    header = auth.authorize(token_registry.host, parse_www_authenticate(response.headers["WWW-Authenticate"]),
                            [REGISTRY_CATALOG_SCOPE])
    catalog = requests.get(f"{token_registry.url}/v2/_catalog", headers={"Authorization": header}, timeout=10)
    assert catalog.status_code == 200 and "team/app" in catalog.json()["repositories"]


def test_registry_token_is_sent_as_is(token_registry, session) -> None:
    push(token_registry, "team/app")
    server = token_registry.token_server
    minted = requests.get(server.realm, params={"service": server.service, "scope": PULL_APP},
                          auth=("alice", "secret"), timeout=10).json()["token"]
    mark = server.mark()
    auth = Authenticator(Credentials(registry_token=minted), session)
    header = auth.authorize(token_registry.host,
                            challenges_for(token_registry, "GET", "/v2/team/app/tags/list"), [PULL_APP])
    assert header == f"Bearer {minted}"
    assert tags(token_registry, "team/app", header).status_code == 200
    assert server.requests_since(mark) == []


def test_credentials_from_an_auth_file_get_a_token(token_registry, session, tmp_path: Path) -> None:
    push(token_registry, "team/app")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"auths": {f"http://{token_registry.host}": {
        "auth": base64.b64encode(b"alice:secret").decode()}}}))
    creds = resolve_credentials(token_registry.host, auth_file=config, environ={"HOME": str(tmp_path)})
    assert creds is not None and creds.source == f"auth_file:{config}"
    auth = Authenticator(creds, session)
    header = auth.authorize(token_registry.host,
                            challenges_for(token_registry, "GET", "/v2/team/app/tags/list"), [PULL_APP])
    assert tags(token_registry, "team/app", header).json()["tags"] == ["v1"]


# -- basic flavour -------------------------------------------------------------------------


def test_basic_registry_gets_basic_credentials(basic_registry, session) -> None:
    push(basic_registry, "team/app")
    auth = Authenticator(alice(basic_registry), session)
    challenges = challenges_for(basic_registry, "GET", "/v2/team/app/tags/list")
    assert [c.scheme for c in challenges] == ["basic"]
    header = auth.authorize(basic_registry.host, challenges, [PULL_APP])
    assert header.startswith("Basic ")
    assert tags(basic_registry, "team/app", header).json()["tags"] == ["v1"]
    assert auth.header_for(basic_registry.host, [PUSH_APP]) == header


def test_basic_registry_rejects_a_wrong_password(basic_registry, session) -> None:
    auth = Authenticator(Credentials(username="alice", password="wrong"), session)
    header = auth.authorize(basic_registry.host, challenges_for(basic_registry, "GET", "/v2/"), [])
    assert tags(basic_registry, "team/app", header).status_code == 401


def test_basic_registry_without_credentials_gets_nothing(basic_registry, session) -> None:
    auth = Authenticator(None, session)
    assert auth.authorize(basic_registry.host, challenges_for(basic_registry, "GET", "/v2/"), []) is None
