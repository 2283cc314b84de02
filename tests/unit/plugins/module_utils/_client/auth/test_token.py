"""Unit tests of plugins/module_utils/_client/auth/token.py (challenge parsing is in test_challenge.py).

Token-response reading is pure and tested directly. The Authenticator's token requests are tested against a
pytest-httpserver fake token service: a fake because these tests script what
a real token service will not do on demand (404/405 to POST, 401/403/500,
oversized or broken JSON answers, redirects to another host) and inspect the
exact form/query/headers of each request. The same flows against the rig's
real registry + token server are in tests/integration/test_auth_token.py.
"""
from __future__ import annotations

import base64
import json
import re
import time

import pytest
import requests
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from ansible_collections.ocireg.registry.plugins.module_utils._client.auth.challenge import (
    Challenge,
)
from ansible_collections.ocireg.registry.plugins.module_utils._client.auth.token import (
    CLIENT_ID,
    EXPIRY_MARGIN,
    Authenticator,
    parse_issued_at,
    token_from_response,
    token_grants,
)
from ansible_collections.ocireg.registry.plugins.module_utils._client.credentials import Credentials
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    AuthenticationError,
    AuthorizationError,
    InvalidInputError,
    RegistryError,
    TooLargeError,
    TransportError,
)

PASSWORD = "s3cr:et-pässword"
IDENTITY = "refresh-token-abc123"
REGISTRY_TOKEN = "static-registry-token-xyz"
HOST = "registry.example.com"
SCOPE_APP = "repository:team/app:pull"


# -- token responses (pure) ----------------------------------------------------------------


NOW = 1_700_000_000.0


def test_token_field_or_access_token() -> None:
    assert token_from_response(b'{"token": "t1"}', "r", NOW).value == "t1"
    assert token_from_response(b'{"access_token": "t2"}', "r", NOW).value == "t2"


def test_expires_in_defaults_to_and_never_goes_below_60_seconds() -> None:
    assert token_from_response(b'{"token": "t"}', "r", NOW).expires_at == NOW + 60
    assert token_from_response(b'{"token": "t", "expires_in": 5}', "r", NOW).expires_at == NOW + 60
    assert token_from_response(b'{"token": "t", "expires_in": "3600"}', "r", NOW).expires_at == NOW + 60
    assert token_from_response(b'{"token": "t", "expires_in": 3600}', "r", NOW).expires_at == NOW + 3600


def test_issued_at_sets_the_start_of_the_lifetime() -> None:
    body = json.dumps({"token": "t", "expires_in": 300, "issued_at": "2023-11-14T22:11:40Z"}).encode()
    issued = parse_issued_at("2023-11-14T22:11:40Z")
    assert issued == NOW - 100
    assert token_from_response(body, "r", NOW).expires_at == NOW + 200


def test_issued_at_with_nanoseconds_and_offsets() -> None:
    assert parse_issued_at("2023-11-14T22:13:20.123456789Z") == pytest.approx(NOW + 0.123456)
    assert parse_issued_at("2023-11-14T23:13:20+01:00") == NOW
    assert parse_issued_at("yesterday") is None
    assert parse_issued_at("2023-11-14T22:13:20") is None  # no offset: not RFC 3339


def test_untrusted_issued_at_falls_back_to_now() -> None:
    future = json.dumps({"token": "t", "expires_in": 300, "issued_at": "2030-01-01T00:00:00Z"}).encode()
    long_ago = json.dumps({"token": "t", "expires_in": 300, "issued_at": "2001-01-01T00:00:00Z"}).encode()
    assert token_from_response(future, "r", NOW).expires_at == NOW + 300
    assert token_from_response(long_ago, "r", NOW).expires_at == NOW + 300


@pytest.mark.parametrize("body, message", [
    (b"<html>", "not JSON"), (b"[1]", "not an object"), (b"{}", "without a token"),
    (b'{"token": ""}', "without a token"), (b'{"token": 5}', "without a token"), (b"\xff\xfe", "not JSON"),
])
def test_unusable_token_answers_raise_authentication_error(body: bytes, message: str) -> None:
    with pytest.raises(AuthenticationError, match=message):
        token_from_response(body, "https://auth/token", NOW)


# -- the Authenticator against a fake token service ---------------------------------------


class FakeClock:
    """A clock tests move by hand, so expiry needs no sleeping."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def session() -> requests.Session:
    with requests.Session() as s:
        yield s


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def bearer(httpserver: HTTPServer, path: str = "/token", service: str = "svc", scope: str | None = None) -> Challenge:
    params = {"realm": httpserver.url_for(path), "service": service}
    if scope:
        params["scope"] = scope
    return Challenge("bearer", params)


def make(session: requests.Session, credentials: Credentials | None = None, **kwargs) -> Authenticator:
    return Authenticator(credentials, session, **kwargs)


def token_json(token: str, **extra) -> dict:
    return {"token": token, **extra}


def answer_in_turn(*tokens: str):
    """A handler answering each token request with the next of ``tokens``."""
    remaining = iter(tokens)
    return lambda _request: Response(json.dumps({"token": next(remaining)}))


def only_request(httpserver: HTTPServer) -> Request:
    assert len(httpserver.log) == 1, [r.url for r, _response in httpserver.log]
    return httpserver.log[0][0]


def assert_no_secret(error: BaseException) -> None:
    text = str(error) + repr(error.args)
    for secret in (PASSWORD, IDENTITY, REGISTRY_TOKEN, base64.b64encode(f"alice:{PASSWORD}".encode()).decode()):
        assert secret not in text


ALICE = Credentials(username="alice", password=PASSWORD, source="auth_file:/home/a/.docker/config.json")


def test_anonymous_token_is_a_get_without_credentials(httpserver: HTTPServer, session) -> None:
    httpserver.expect_request("/token", method="GET").respond_with_json(token_json("anon"))
    auth = make(session)
    header = auth.authorize(HOST, [bearer(httpserver)], ["repository:b:pull", "repository:a:pull"])
    assert header == "Bearer anon"
    request = only_request(httpserver)
    assert request.args.getlist("service") == ["svc"]
    assert request.args.getlist("scope") == ["repository:a:pull", "repository:b:pull"]
    assert "account" not in request.args and "Authorization" not in request.headers


def test_password_grant_is_an_oauth2_post(httpserver: HTTPServer, session) -> None:
    httpserver.expect_request("/token", method="POST").respond_with_json({"access_token": "pw-token"})
    header = make(session, ALICE).authorize(HOST, [bearer(httpserver)], ["repository:b:push", "repository:a:pull"])
    assert header == "Bearer pw-token"
    request = only_request(httpserver)
    assert request.form.to_dict() == {
        "grant_type": "password", "username": "alice", "password": PASSWORD, "client_id": CLIENT_ID,
        "service": "svc", "scope": "repository:a:pull repository:b:push",
    }
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert "Authorization" not in request.headers


@pytest.mark.parametrize("status", [404, 405])
def test_password_grant_falls_back_to_get_with_basic_on_404_and_405(httpserver: HTTPServer, session, status) -> None:
    httpserver.expect_request("/token", method="POST").respond_with_data("no", status=status)
    httpserver.expect_request("/token", method="GET").respond_with_json(token_json("basic-token"))
    header = make(session, ALICE).authorize(HOST, [bearer(httpserver)], ["repository:a:pull", "repository:b:push"])
    assert header == "Bearer basic-token"
    assert [r.method for r, _response in httpserver.log] == ["POST", "GET"]
    get = httpserver.log[1][0]
    assert get.args.getlist("scope") == ["repository:a:pull", "repository:b:push"]
    assert get.args["account"] == "alice" and get.args["service"] == "svc"
    assert get.authorization.type == "basic"
    assert (get.authorization.username, get.authorization.password) == ("alice", PASSWORD)


def test_rejected_password_says_what_to_check_and_hides_it(httpserver: HTTPServer, session) -> None:
    httpserver.expect_request("/token", method="POST").respond_with_json({"error": "invalid_grant"}, status=401)
    with pytest.raises(AuthenticationError) as info:
        make(session, ALICE).authorize(HOST, [bearer(httpserver)], [SCOPE_APP])
    assert str(info.value) == (
        f"the registry rejected the username/password for {HOST}: check username/password or the auth file entry "
        "(source: auth_file:/home/a/.docker/config.json)"
    )
    assert info.value.status == 401
    assert [r.method for r, _response in httpserver.log] == ["POST"]  # a 401 is an answer, not a reason to fall back
    assert_no_secret(info.value)


@pytest.mark.parametrize("code", ["invalid_grant", "invalid_client"])
def test_a_401_refusing_the_credentials_is_not_retried_with_get(httpserver: HTTPServer, session, code: str) -> None:
    """RFC 6749 codes that mean the credentials were checked end the exchange (no second failed login)."""
    httpserver.expect_request("/token", method="POST").respond_with_json({"error": code}, status=401)
    with pytest.raises(AuthenticationError, match="rejected the username/password"):
        make(session, ALICE).authorize(HOST, [bearer(httpserver)], [SCOPE_APP])
    assert [r.method for r, _response in httpserver.log] == ["POST"]


def _jwt(claims: dict) -> str:
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    return f"{part({'alg': 'none'})}.{part(claims)}.c2ln"


@pytest.mark.parametrize("token, scopes, expected", [
    (_jwt({"access": [{"type": "repository", "name": "team/app", "actions": ["pull"]}]}), [SCOPE_APP], True),
    (_jwt({"access": [{"type": "repository", "name": "team/app", "actions": ["pull", "push"]}]}),
     ["repository:team/app:pull,push"], True),
    (_jwt({"access": [{"type": "repository", "name": "team/app", "actions": ["*"]}]}), [SCOPE_APP], True),
    (_jwt({"access": [{"type": "repository", "name": "team/app", "actions": []}]}), [SCOPE_APP], False),
    (_jwt({"access": []}), [SCOPE_APP], False),
    (_jwt({"access": [{"type": "repository", "name": "team/other", "actions": ["pull"]}]}), [SCOPE_APP], False),
    (_jwt({"sub": "alice"}), [SCOPE_APP], None),  # no access claim: cannot tell
    ("opaque-token", [SCOPE_APP], None),
    ("a.!!!.c", [SCOPE_APP], None),
])
def test_token_grants_reads_the_access_claim(token: str, scopes: list, expected: bool | None) -> None:
    assert token_grants(token, scopes) is expected


def test_grants_answers_for_the_token_header_for_hands_out(httpserver: HTTPServer, session) -> None:
    granted = _jwt({"access": [{"type": "repository", "name": "team/app", "actions": ["pull"]}]})
    httpserver.expect_request("/token").respond_with_json(token_json(granted))
    auth = make(session)
    assert auth.grants(HOST, [SCOPE_APP]) is None  # no challenge seen yet
    auth.authorize(HOST, [bearer(httpserver)], [SCOPE_APP])
    assert auth.grants(HOST, [SCOPE_APP]) is True


def test_rejected_password_on_the_get_fallback(httpserver: HTTPServer, session) -> None:
    httpserver.expect_request("/token", method="POST").respond_with_data("", status=404)
    httpserver.expect_request("/token", method="GET").respond_with_data("", status=401)
    with pytest.raises(AuthenticationError, match="rejected the username/password") as info:
        make(session, ALICE).authorize(HOST, [bearer(httpserver)], [SCOPE_APP])
    assert_no_secret(info.value)


def test_identity_token_uses_the_refresh_token_grant(httpserver: HTTPServer, session) -> None:
    httpserver.expect_request("/token", method="POST").respond_with_json({"access_token": "from-refresh"})
    creds = Credentials(identity_token=IDENTITY, source="credential_helper:fake")
    assert make(session, creds).authorize(HOST, [bearer(httpserver)], [SCOPE_APP]) == "Bearer from-refresh"
    assert only_request(httpserver).form.to_dict() == {
        "grant_type": "refresh_token", "refresh_token": IDENTITY, "client_id": CLIENT_ID,
        "service": "svc", "scope": SCOPE_APP,
    }


def test_identity_token_is_not_replayed_as_basic_when_post_is_unsupported(httpserver: HTTPServer, session) -> None:
    httpserver.expect_request("/token", method="POST").respond_with_data("", status=404)
    creds = Credentials(username="alice", identity_token=IDENTITY, source="credential_helper:fake")
    with pytest.raises(AuthenticationError, match="does not support OAuth2") as info:
        make(session, creds).authorize(HOST, [bearer(httpserver)], [SCOPE_APP])
    assert len(httpserver.log) == 1
    assert_no_secret(info.value)


def test_rejected_identity_token(httpserver: HTTPServer, session) -> None:
    httpserver.expect_request("/token", method="POST").respond_with_data("", status=401)
    creds = Credentials(identity_token=IDENTITY, source="credential_helper:fake")
    with pytest.raises(AuthenticationError, match="rejected the identity token.*log in again") as info:
        make(session, creds).authorize(HOST, [bearer(httpserver)], [SCOPE_APP])
    assert_no_secret(info.value)


def test_registry_token_is_the_bearer_token_and_needs_no_token_service(httpserver: HTTPServer, session) -> None:
    auth = make(session, Credentials(registry_token=REGISTRY_TOKEN))
    assert auth.header_for(HOST, [SCOPE_APP]) is None  # nothing is sent before the registry asks
    assert auth.authorize(HOST, [bearer(httpserver)], [SCOPE_APP]) == f"Bearer {REGISTRY_TOKEN}"
    assert auth.header_for(HOST, ["repository:other:push"]) == f"Bearer {REGISTRY_TOKEN}"
    assert httpserver.log == []


def test_anonymous_401_asks_for_credentials(httpserver: HTTPServer, session) -> None:
    httpserver.expect_request("/token").respond_with_data("", status=401)
    with pytest.raises(AuthenticationError, match=f"the registry {HOST} requires credentials"):
        make(session).authorize(HOST, [bearer(httpserver)], [SCOPE_APP])


def test_403_from_the_token_service_is_an_authorization_error(httpserver: HTTPServer, session) -> None:
    httpserver.expect_request("/token").respond_with_data("", status=403)
    with pytest.raises(AuthorizationError, match="refused access .* user 'alice'") as info:
        make(session, ALICE).authorize(HOST, [bearer(httpserver)], [SCOPE_APP])
    assert_no_secret(info.value)


@pytest.mark.parametrize("status, error", [(500, TransportError), (503, TransportError), (429, TransportError),
                                           (400, AuthenticationError)])
def test_other_failures_are_typed(httpserver: HTTPServer, session, status, error) -> None:
    httpserver.expect_request("/token").respond_with_data("", status=status)
    with pytest.raises(error) as info:
        make(session, ALICE).authorize(HOST, [bearer(httpserver)], [SCOPE_APP])
    assert info.value.status == status
    assert_no_secret(info.value)


def test_unreachable_token_service_is_a_transport_error(session) -> None:
    challenge = Challenge("bearer", {"realm": "http://127.0.0.1:9/token", "service": "svc"})  # discard port
    with pytest.raises(TransportError, match="could not reach the token service") as info:
        make(session, ALICE, timeout=(2, 2)).authorize(HOST, [challenge], [SCOPE_APP])
    assert_no_secret(info.value)


def test_oversized_token_answer_is_refused(httpserver: HTTPServer, session) -> None:
    httpserver.expect_request("/token").respond_with_json(token_json("x" * 5000))
    with pytest.raises(TooLargeError, match="1000-byte limit"):
        make(session, max_token_bytes=1000).authorize(HOST, [bearer(httpserver)], [SCOPE_APP])


def test_oversized_token_answer_without_content_length_is_cut_off(httpserver: HTTPServer, session) -> None:
    def streamed(_request: Request) -> Response:
        return Response((b"x" * 1000 for _chunk in range(100)), content_type="application/json")  # chunked

    httpserver.expect_request("/token").respond_with_handler(streamed)
    with pytest.raises(TooLargeError):
        make(session, max_token_bytes=10_000).authorize(HOST, [bearer(httpserver)], [SCOPE_APP])


def test_answer_without_a_token_is_a_clear_error(httpserver: HTTPServer, session) -> None:
    httpserver.expect_request("/token").respond_with_json({"details": "nope"})
    with pytest.raises(AuthenticationError, match="answered without a token"):
        make(session).authorize(HOST, [bearer(httpserver)], [SCOPE_APP])


def test_redirect_on_the_same_host_is_followed_with_credentials(httpserver: HTTPServer, session) -> None:
    httpserver.expect_request("/token", method="POST").respond_with_response(
        Response(status=307, headers={"Location": "/v2/token"}))
    httpserver.expect_request("/v2/token", method="POST").respond_with_json({"access_token": "moved"})
    assert make(session, ALICE).authorize(HOST, [bearer(httpserver)], [SCOPE_APP]) == "Bearer moved"
    assert httpserver.log[1][0].form["password"] == PASSWORD


@pytest.fixture
def other_server() -> HTTPServer:
    server = HTTPServer(host="127.0.0.1")
    server.start()
    yield server
    server.clear()
    server.stop()


def test_redirect_to_another_host_is_refused_with_credentials(httpserver: HTTPServer, other_server, session) -> None:
    other_server.expect_request("/token").respond_with_json({"access_token": "stolen"})
    httpserver.expect_request("/token").respond_with_response(
        Response(status=302, headers={"Location": other_server.url_for("/token")}))
    with pytest.raises(AuthenticationError, match="refusing to send credentials to another host") as info:
        make(session, ALICE).authorize(HOST, [bearer(httpserver)], [SCOPE_APP])
    assert other_server.log == []
    assert_no_secret(info.value)


def test_redirect_to_another_host_is_followed_when_anonymous(httpserver: HTTPServer, other_server, session) -> None:
    other_server.expect_request("/token").respond_with_json({"token": "cdn"})
    httpserver.expect_request("/token").respond_with_response(
        Response(status=302, headers={"Location": other_server.url_for("/token") + "?service=svc&scope=x"}))
    assert make(session).authorize(HOST, [bearer(httpserver)], [SCOPE_APP]) == "Bearer cdn"
    assert other_server.log[0][0].args.getlist("scope") == ["x"]


def test_redirect_loops_end(httpserver: HTTPServer, session) -> None:
    httpserver.expect_request("/token").respond_with_response(Response(status=302, headers={"Location": "/token"}))
    with pytest.raises(TransportError, match="redirected more than"):
        make(session).authorize(HOST, [bearer(httpserver)], [SCOPE_APP])


def test_plain_http_foreign_realm_is_refused_before_any_request(session) -> None:
    challenge = Challenge("bearer", {"realm": "http://auth.invalid/token", "service": "svc"})
    with pytest.raises(AuthenticationError, match="refusing to send credentials"):
        make(session, ALICE, plain_http_hosts=frozenset({HOST})).authorize(HOST, [challenge], [SCOPE_APP])


def test_bearer_challenge_without_realm(session) -> None:
    with pytest.raises(AuthenticationError, match="named no realm"):
        make(session).authorize(HOST, [Challenge("bearer", {"service": "svc"})], [SCOPE_APP])


# -- the cache -----------------------------------------------------------------------------


def test_header_for_knows_nothing_before_a_challenge(session) -> None:
    assert make(session, ALICE).header_for(HOST, [SCOPE_APP]) is None


def test_cached_token_is_reused_for_the_same_and_narrower_scopes(httpserver: HTTPServer, session, clock) -> None:
    httpserver.expect_request("/token").respond_with_json(token_json("wide", expires_in=300))
    auth = make(session, clock=clock)
    auth.authorize(HOST, [bearer(httpserver)], ["repository:team/app:pull,push"])
    assert auth.header_for(HOST, ["repository:team/app:pull,push"]) == "Bearer wide"
    assert auth.header_for(HOST.upper(), ["repository:team/app:push"]) == "Bearer wide"
    assert auth.header_for(HOST, ["repository:team/app:delete"]) is None
    assert auth.header_for(HOST, ["repository:other:pull"]) is None
    assert auth.header_for("other.example.com", ["repository:team/app:pull"]) is None
    assert len(httpserver.log) == 1


def test_tokens_expire_ten_seconds_early(httpserver: HTTPServer, session, clock) -> None:
    httpserver.expect_request("/token").respond_with_json(token_json("short", expires_in=120))
    auth = make(session, clock=clock)
    auth.authorize(HOST, [bearer(httpserver)], [SCOPE_APP])
    clock.now += 120 - EXPIRY_MARGIN - 1
    assert auth.header_for(HOST, [SCOPE_APP]) == "Bearer short"
    clock.now += 1
    assert auth.header_for(HOST, [SCOPE_APP]) is None


def test_expiry_counts_from_issued_at(httpserver: HTTPServer, session, clock) -> None:
    issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(clock.now - 100))
    httpserver.expect_request("/token").respond_with_json(token_json("old", expires_in=300, issued_at=issued))
    auth = make(session, clock=clock)
    auth.authorize(HOST, [bearer(httpserver)], [SCOPE_APP])
    clock.now += 185
    assert auth.header_for(HOST, [SCOPE_APP]) == "Bearer old"
    clock.now += 10
    assert auth.header_for(HOST, [SCOPE_APP]) is None


def test_authorize_always_fetches_a_fresh_token(httpserver: HTTPServer, session) -> None:
    """A 401 means the token sent (if any) did not work: authorize never hands the cached one back."""
    httpserver.expect_request("/token").respond_with_handler(answer_in_turn("first", "second"))
    auth = make(session)
    assert auth.authorize(HOST, [bearer(httpserver)], [SCOPE_APP]) == "Bearer first"
    assert auth.authorize(HOST, [bearer(httpserver)], [SCOPE_APP]) == "Bearer second"
    assert auth.header_for(HOST, [SCOPE_APP]) == "Bearer second"


def test_a_new_token_replaces_the_one_that_drew_the_401(httpserver: HTTPServer, session) -> None:
    """insufficient_scope names a wider scope: the new, wider token must win over the stale exact match."""
    httpserver.expect_request("/token").respond_with_handler(answer_in_turn("narrow", "wide"))
    auth = make(session)
    auth.authorize(HOST, [bearer(httpserver)], [SCOPE_APP])
    assert auth.header_for(HOST, [SCOPE_APP]) == "Bearer narrow"
    challenge = bearer(httpserver, scope="repository:team/app:pull repository:base:pull")
    assert auth.authorize(HOST, [challenge], [SCOPE_APP]) == "Bearer wide"
    assert auth.header_for(HOST, [SCOPE_APP]) == "Bearer wide"


def test_invalidate_forgets_tokens_covering_the_scopes(httpserver: HTTPServer, session) -> None:
    httpserver.expect_request("/token").respond_with_handler(answer_in_turn("a-token", "b-token"))
    auth = make(session)
    auth.authorize(HOST, [bearer(httpserver)], ["repository:a:pull,push"])
    auth.authorize(HOST, [bearer(httpserver)], ["repository:b:pull"])
    auth.invalidate(HOST, ["repository:a:pull"])
    assert auth.header_for(HOST, ["repository:a:pull"]) is None
    assert auth.header_for(HOST, ["repository:b:pull"]) == "Bearer b-token"
    auth.invalidate("never-seen.example.com", ["repository:b:pull"])  # harmless
    assert auth.header_for(HOST, ["repository:b:pull"]) == "Bearer b-token"


def test_each_request_asks_for_its_own_scopes_not_a_growing_union(httpserver: HTTPServer, session) -> None:
    httpserver.expect_request("/token").respond_with_json(token_json("t"))
    auth = make(session)
    auth.authorize(HOST, [bearer(httpserver)], ["repository:src:pull", "repository:dst:pull,push"])
    auth.authorize(HOST, [bearer(httpserver)], ["repository:next:pull"])
    assert [r.args.getlist("scope") for r, _response in httpserver.log] == [
        ["repository:dst:pull,push", "repository:src:pull"], ["repository:next:pull"],
    ]


def test_the_challenge_scope_is_added_to_the_request(httpserver: HTTPServer, session) -> None:
    httpserver.expect_request("/token").respond_with_json(token_json("t"))
    auth = make(session)
    auth.authorize(HOST, [bearer(httpserver, scope="repository:team/app:push registry:catalog:*")], [SCOPE_APP])
    assert only_request(httpserver).args.getlist("scope") == ["registry:catalog:*", "repository:team/app:pull,push"]
    assert auth.header_for(HOST, [SCOPE_APP]) == "Bearer t"


def test_no_scopes_at_all_asks_for_none(httpserver: HTTPServer, session) -> None:
    httpserver.expect_request("/token").respond_with_json(token_json("ping"))
    auth = make(session)
    assert auth.authorize(HOST, [bearer(httpserver)], []) == "Bearer ping"
    assert "scope" not in only_request(httpserver).args
    assert auth.header_for(HOST, []) == "Bearer ping"


# -- Basic and odd challenges --------------------------------------------------------------


def test_basic_challenge_gets_the_username_and_password(session) -> None:
    auth = make(session, ALICE)
    expected = "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    assert auth.header_for(HOST, []) is None
    assert auth.authorize(HOST, [Challenge("basic", {"realm": "x"})], [SCOPE_APP]) == expected
    assert auth.header_for(HOST, ["repository:anything:push"]) == expected
    assert auth.header_for("elsewhere.example.com", []) is None


@pytest.mark.parametrize("creds", [None, Credentials(registry_token=REGISTRY_TOKEN),
                                   Credentials(identity_token=IDENTITY), Credentials(username="alice")])
def test_basic_challenge_without_a_password_gives_none(session, creds) -> None:
    auth = make(session, creds)
    assert auth.authorize(HOST, [Challenge("basic", {"realm": "x"})], []) is None
    assert auth.header_for(HOST, []) is None


def test_bearer_is_preferred_over_basic(httpserver: HTTPServer, session) -> None:
    httpserver.expect_request("/token", method="POST").respond_with_json({"access_token": "b"})
    challenges = [Challenge("basic", {"realm": "x"}), bearer(httpserver)]
    assert make(session, ALICE).authorize(HOST, challenges, [SCOPE_APP]) == "Bearer b"


def test_unsupported_schemes_and_missing_challenges_say_so(session) -> None:
    with pytest.raises(AuthenticationError, match="negotiate, ntlm authentication.*not support"):
        make(session, ALICE).authorize(HOST, [Challenge("ntlm", {}), Challenge("negotiate", {}, "x")], [])
    with pytest.raises(AuthenticationError, match="without a WWW-Authenticate challenge"):
        make(session, ALICE).authorize(HOST, [], [])


def test_every_auth_error_is_a_registry_error() -> None:
    for error in (AuthenticationError, AuthorizationError, TransportError, TooLargeError, InvalidInputError):
        assert issubclass(error, RegistryError)


def test_error_messages_never_hold_secrets_even_if_the_url_did(httpserver: HTTPServer, session) -> None:
    """A token service echoing the request into a Location must not get secrets into our errors."""
    httpserver.expect_request("/token").respond_with_response(
        Response(status=302, headers={"Location": f"http://127.0.0.2:1/{PASSWORD}"}))
    with pytest.raises(RegistryError) as info:
        make(session, ALICE).authorize(HOST, [bearer(httpserver)], [SCOPE_APP])
    assert_no_secret(info.value)
    assert re.search("another host", str(info.value))


def test_token_requests_use_the_sessions_tls_settings_over_ca_bundle_variables(
        httpserver: HTTPServer, session, monkeypatch) -> None:
    """requests lets REQUESTS_CA_BUNDLE override a session's verify unless verify is passed per request;
    validate_certs / ca_path must win, so the token request passes them explicitly."""
    httpserver.expect_request("/token", method="GET").respond_with_json(token_json("anon"))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/bundle.pem")
    monkeypatch.setenv("CURL_CA_BUNDLE", "/nonexistent/bundle.pem")
    session.verify = "/path/to/private-ca.pem"
    session.cert = ("/path/client.crt", "/path/client.key")
    seen: list[tuple[object, object]] = []
    adapter = session.get_adapter("http://")
    original_send = adapter.send

    def recording_send(request, **kwargs):
        seen.append((kwargs.get("verify"), kwargs.get("cert")))
        # The fake token service is plain HTTP; the paths above need not exist.
        return original_send(request, **{**kwargs, "verify": True, "cert": None})

    monkeypatch.setattr(adapter, "send", recording_send)
    make(session).authorize(HOST, [bearer(httpserver)], [SCOPE_APP])
    assert seen == [("/path/to/private-ca.pem", ("/path/client.crt", "/path/client.key"))]


@pytest.mark.parametrize("status, body", [
    (400, ""), (401, ""), (401, "<html>unauthorized</html>"),
    # Artifactory (personality oauth_post_401): a 401 whose OAuth2 error is not a credential refusal.
    (401, '{"error": "unsupported", "error_description": "POST is not supported here"}'),
    (401, '{"error": "unsupported_grant_type"}'),
])
def test_password_post_refused_without_an_oauth_error_falls_back_to_get(
        httpserver: HTTPServer, session, status: int, body: str) -> None:
    """Some token services answer a password POST they do not take with 400, or 401 without an OAuth2
    error body; containerd then asks again with GET and Basic credentials, and so do we."""
    httpserver.expect_request("/token", method="POST").respond_with_data(body, status=status)
    httpserver.expect_request("/token", method="GET").respond_with_json(token_json("via-get"))
    header = make(session, ALICE).authorize(HOST, [bearer(httpserver)], [SCOPE_APP])
    assert header == "Bearer via-get"
    assert [r.method for r, _response in httpserver.log] == ["POST", "GET"]
    assert httpserver.log[1][0].headers["Authorization"].startswith("Basic ")


def test_an_unreachable_token_service_is_one_line_with_host_and_operation(session) -> None:
    challenge = Challenge("bearer", {"realm": "http://127.0.0.1:9/token?secret=1", "service": "svc"})  # discard port
    with pytest.raises(TransportError) as info:
        make(session, ALICE, timeout=(2, 2)).authorize(HOST, [challenge], [SCOPE_APP])
    message = str(info.value)
    assert message.startswith(f"POST token for {HOST}: could not reach the token service at http://127.0.0.1:9/token (")
    assert "ConnectionPool" not in message and "Max retries" not in message and "secret=1" not in message
    assert "\n" not in message
    assert (info.value.host, info.value.operation, info.value.hint) == (
        "127.0.0.1:9", "POST token", "token_service_unreachable")
