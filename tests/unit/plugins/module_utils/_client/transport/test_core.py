"""Transport: retries, Retry-After, auth challenges, redirects, size caps, warnings, error mapping.

Why fakes (pytest-httpserver) and not the real registry: CNCF Distribution 2.8
cannot be made to answer 429 / 5xx / Retry-After on demand, send ``Warning``
or Docker Hub ``RateLimit`` headers, redirect a blob to a second host,
revoke a token mid-run (403), or send oversized bodies. Everything the real
registry can do is covered in tests/integration against Distribution 2.8
(answering Basic challenges: tests/integration/test_transport_basic.py).
"""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from email.utils import formatdate

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from ansible_collections.ocireg.registry.plugins.module_utils._client.auth.token import Authenticator
from ansible_collections.ocireg.registry.plugins.module_utils._client.credentials import Credentials, basic_token
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    AuthenticationError,
    AuthorizationError,
    DigestMismatchError,
    NotARegistryError,
    NotFoundError,
    RateLimitedError,
    RegistryError,
    TooLargeError,
    TransportError,
    UnsupportedError,
)
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.core import (
    RateLimit,
    ReplayRequired,
    Transport,
    TransportOptions,
    backoff_delay,
    parse_oci_errors,
    parse_rate_limit,
    parse_warnings,
)
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.retry import parse_retry_after
from tests.rig.registry_server import free_port

MiB = 1024 * 1024


class Sleeps(list):
    """Records every backoff the transport asked for instead of sleeping."""


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def host_of(server: HTTPServer) -> str:
    return f"{server.host}:{server.port}"


def make_transport(server: HTTPServer | str, sleeps: list[float], *, credentials: Credentials | None = None,
                   authenticated: bool = False, **options: object) -> Transport:
    """A transport to ``server`` whose sleeps are recorded and whose jitter is the upper bound."""
    host = server if isinstance(server, str) else host_of(server)
    opts = TransportOptions(plain_http=True, sleep=sleeps.append, jitter=lambda high: high, **options)
    transport = Transport(host, opts)
    if credentials is not None or authenticated:
        transport.authenticator = Authenticator(credentials, transport.session, timeout=opts.timeout)
    return transport


def oci_error(code: str, message: str = "", status: int = 400, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps({"errors": [{"code": code, "message": message, "detail": None}]})
    return Response(body, status=status, headers=headers or {}, content_type="application/json")


def sequence(*responses: Response):
    """A handler answering each call with the next response (the last one repeats)."""
    calls: list[Request] = []

    def handler(request: Request) -> Response:
        calls.append(request)
        return responses[min(len(calls), len(responses)) - 1]

    handler.calls = calls  # type: ignore[attr-defined]
    return handler


@pytest.fixture
def second_server() -> Iterator[HTTPServer]:
    """Another origin (own port) that records what it receives: stands in for blob storage."""
    server = HTTPServer(host="127.0.0.1", port=free_port())
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


# -- options and pure helpers ------------------------------------------------------------


def test_options_defaults_and_single_number_timeout() -> None:
    assert TransportOptions().timeout == (10.0, 60.0)
    assert TransportOptions(timeout=5).timeout == (5.0, 5.0)
    assert TransportOptions().retries == 3
    assert TransportOptions().max_manifest_bytes == 4 * MiB
    assert TransportOptions().max_error_bytes == 64 * 1024
    assert TransportOptions(validate_certs=False, ca_path="/ca.pem").verify is False
    assert TransportOptions(ca_path="/ca.pem").verify == "/ca.pem"
    assert TransportOptions(client_cert="c.pem", client_key="k.pem").cert == ("c.pem", "k.pem")
    with pytest.raises(ValueError):
        TransportOptions(retries=-1)


def test_https_by_default_and_plain_http_only_when_asked() -> None:
    assert Transport("registry.example.com").base_url == "https://registry.example.com"
    assert Transport("registry.example.com:5000", TransportOptions(plain_http=True)).base_url == \
        "http://registry.example.com:5000"
    # Loopback starts on https too; it only drops to http when the port does not speak TLS.
    assert Transport("127.0.0.1:5000").base_url == "https://127.0.0.1:5000"


def test_url_for_joins_paths_and_keeps_absolute_urls() -> None:
    transport = Transport("r.example:5000", TransportOptions(plain_http=True))
    assert transport.url_for("/v2/a/tags/list") == "http://r.example:5000/v2/a/tags/list"
    assert transport.url_for("https://storage.example/x?sig=1") == "https://storage.example/x?sig=1"
    assert transport.is_registry_origin("http://r.example:5000/v2/")
    assert not transport.is_registry_origin("https://r.example:5000/v2/")
    assert not transport.is_registry_origin("http://r.example:5001/v2/")
    assert not transport.is_registry_origin("http://other.example:5000/v2/")


def test_backoff_is_exponential_full_jitter_and_capped() -> None:
    opts = TransportOptions(backoff=0.5, backoff_max=3.0, jitter=lambda high: high)
    assert [backoff_delay(n, opts) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    seen = []
    jittered = TransportOptions(backoff=1.0, jitter=lambda high: seen.append(high) or 0.25)
    assert backoff_delay(2, jittered) == 0.25
    assert seen == [4.0]  # the jitter draws from [0, bound]
    assert backoff_delay(0, opts, retry_after=120) == 60.0  # retry_after_cap
    assert backoff_delay(0, opts, retry_after=7) == 7


def test_parse_retry_after_seconds_date_and_garbage() -> None:
    now = 1_800_000_000.0
    assert parse_retry_after("12", now) == 12.0
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now) == 30.0
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_parse_warnings_takes_299_texts_only() -> None:
    values = ['299 - "Your token expires soon", 299 - "quoted \\"word\\""', '199 - "not for us"',
              '299 registry.example "agent named"']
    assert parse_warnings(values) == ["Your token expires soon", 'quoted "word"', "agent named"]


def test_parse_rate_limit_docker_hub_form() -> None:
    headers = {"RateLimit-Limit": "100;w=21600", "RateLimit-Remaining": "76;w=21600",
               "Docker-RateLimit-Source": "1.2.3.4"}
    assert parse_rate_limit(headers) == RateLimit(100, 76, 21600, "1.2.3.4")
    assert parse_rate_limit({"RateLimit-Remaining": "0"}) == RateLimit(None, 0, None, None)
    assert parse_rate_limit({}) is None
    assert "0 of 100 requests left per 21600 s" == RateLimit(100, 0, 21600).describe()


def test_parse_oci_errors_tolerates_non_oci_bodies() -> None:
    body = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}'
    (entry,) = parse_oci_errors(body)
    assert (entry.code, entry.message, entry.detail) == ("MANIFEST_UNKNOWN", "manifest unknown", {"Tag": "x"})
    assert parse_oci_errors(b"404 page not found") == []
    assert parse_oci_errors(b'{"errors": "nope"}') == []
    assert parse_oci_errors(b"\xff\xfe") == []


# -- retries -------------------------------------------------------------------------------


def test_retries_5xx_with_backoff_then_succeeds(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    handler = sequence(Response("", 503), Response("", 502), Response("ok", 200))
    httpserver.expect_request("/v2/").respond_with_handler(handler)
    response = make_transport(httpserver, sleeps).request("GET", "/v2/")
    assert response.content == b"ok"
    assert len(handler.calls) == 3
    assert sleeps == [0.5, 1.0]


def test_before_request_hook_runs_once_per_attempt(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    handler = sequence(Response("", 503), Response("ok", 200))
    httpserver.expect_request("/v2/").respond_with_handler(handler)
    transport = make_transport(httpserver, sleeps)
    seen: list[int] = []
    transport.before_request = lambda: seen.append(len(handler.calls))  # the hook runs before each send
    transport.request("GET", "/v2/")
    assert seen == [0, 1] and len(handler.calls) == 2


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_every_retryable_status_is_retried(httpserver: HTTPServer, sleeps: Sleeps, status: int) -> None:
    handler = sequence(Response("", status), Response("ok", 200))
    httpserver.expect_request("/v2/").respond_with_handler(handler)
    make_transport(httpserver, sleeps).request("GET", "/v2/")
    assert len(handler.calls) == 2


def test_non_retryable_status_is_not_retried(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    handler = sequence(oci_error("NAME_INVALID", "invalid repository name", 400))
    httpserver.expect_request("/v2/x/tags/list").respond_with_handler(handler)
    with pytest.raises(RegistryError):
        make_transport(httpserver, sleeps).request("GET", "/v2/x/tags/list")
    assert len(handler.calls) == 1
    assert sleeps == []


def test_retry_false_sends_once(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    handler = sequence(Response("", 503))
    httpserver.expect_request("/v2/").respond_with_handler(handler)
    with pytest.raises(TransportError):
        make_transport(httpserver, sleeps).request("GET", "/v2/", retry=False)
    assert len(handler.calls) == 1


def test_retry_after_seconds_is_honoured(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    handler = sequence(oci_error("TOOMANYREQUESTS", "slow down", 429, {"Retry-After": "7"}), Response("ok"))
    httpserver.expect_request("/v2/").respond_with_handler(handler)
    make_transport(httpserver, sleeps).request("GET", "/v2/")
    assert sleeps == [7.0]


def test_retry_after_http_date_is_honoured(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    now = 1_800_000_000.0
    handler = sequence(Response("", 503, {"Retry-After": formatdate(now + 20, usegmt=True)}), Response("ok"))
    httpserver.expect_request("/v2/").respond_with_handler(handler)
    make_transport(httpserver, sleeps, clock=lambda: now).request("GET", "/v2/")
    assert sleeps == [20.0]


def test_retry_after_is_capped(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    handler = sequence(Response("", 429, {"Retry-After": "86400"}), Response("ok"))
    httpserver.expect_request("/v2/").respond_with_handler(handler)
    make_transport(httpserver, sleeps, retry_after_cap=5).request("GET", "/v2/")
    assert sleeps == [5.0]


def test_429_after_every_retry_is_rate_limited_with_hub_counters(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    headers = {"RateLimit-Limit": "100;w=21600", "RateLimit-Remaining": "0;w=21600", "Retry-After": "1"}
    handler = sequence(oci_error("TOOMANYREQUESTS", "pull rate limit", 429, headers))
    httpserver.expect_request("/v2/library/a/manifests/1").respond_with_handler(handler)
    transport = make_transport(httpserver, sleeps, retries=2)
    with pytest.raises(RateLimitedError) as caught:
        transport.request("GET", "/v2/library/a/manifests/1")
    assert len(handler.calls) == 3
    assert sleeps == [1.0, 1.0]
    assert transport.rate_limit == RateLimit(100, 0, 21600)
    message = str(caught.value)
    assert host_of(httpserver) in message and "HTTP 429" in message and "TOOMANYREQUESTS" in message
    assert "0 of 100 requests left" in message
    assert "after 2 retries" in message
    assert caught.value.status == 429 and caught.value.code == "TOOMANYREQUESTS"


def test_5xx_after_every_retry_is_a_transport_error(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    httpserver.expect_request("/v2/").respond_with_handler(sequence(Response("boom", 500)))
    with pytest.raises(TransportError) as caught:
        make_transport(httpserver, sleeps, retries=1).request("GET", "/v2/", operation="ping")
    assert type(caught.value) is TransportError  # pylint: disable=unidiomatic-typecheck
    assert "ping on " in str(caught.value) and "HTTP 500" in str(caught.value)
    assert caught.value.status == 500


def test_connection_refused_is_retried_then_reported(sleeps: Sleeps) -> None:
    host = f"127.0.0.1:{free_port()}"
    transport = make_transport(host, sleeps, retries=2)
    with pytest.raises(TransportError) as caught:
        transport.request("GET", "/v2/")
    assert len(sleeps) == 2
    message = str(caught.value)
    assert f"cannot reach {host}" in message and "check the host name and port" in message


def test_read_timeout_says_what_to_change(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    released = threading.Event()

    def slow(_request: Request) -> Response:
        released.wait(30)  # hold the answer until the client has given up on it
        return Response("late")

    httpserver.expect_request("/v2/").respond_with_handler(slow)
    try:
        with pytest.raises(TransportError) as caught:
            make_transport(httpserver, sleeps, retries=0, timeout=(2, 0.2)).request("GET", "/v2/")
    finally:
        released.set()
    assert "timed out" in str(caught.value) and "raise timeout" in str(caught.value)


def test_bytes_body_is_replayed(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    handler = sequence(Response("", 503), Response("", 201))
    httpserver.expect_request("/v2/a/manifests/t", method="PUT").respond_with_handler(handler)
    make_transport(httpserver, sleeps).request("PUT", "/v2/a/manifests/t", data=b"{}", ok=(201,))
    assert [c.get_data() for c in handler.calls] == [b"{}", b"{}"]


def test_one_shot_stream_is_never_replayed(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    handler = sequence(Response("", 503), Response("", 201))
    httpserver.expect_request("/upload", method="PUT").respond_with_handler(handler)
    body = iter([b"abc", b"def"])
    with pytest.raises(ReplayRequired) as caught:
        make_transport(httpserver, sleeps).request("PUT", "/upload", data=body, ok=(201,))
    assert isinstance(caught.value, TransportError)
    assert len(handler.calls) == 1
    assert sleeps == []


# -- auth ------------------------------------------------------------------------------------


def basic_protected(username: str, password: str, body: str = "{}"):
    expected = f"Basic {basic_token(username, password)}"
    calls: list[Request] = []

    def handler(request: Request) -> Response:
        calls.append(request)
        if request.headers.get("Authorization") != expected:
            return oci_error("UNAUTHORIZED", "authentication required", 401,
                             {"WWW-Authenticate": 'Basic realm="fake"'})
        return Response(body, content_type="application/json")

    handler.calls = calls  # type: ignore[attr-defined]
    return handler


def token_service(server: HTTPServer) -> list[Request]:
    """A fake token endpoint on ``server`` handing out tok-1, tok-2, ..."""
    issued: list[Request] = []

    def handler(request: Request) -> Response:
        issued.append(request)
        return Response(json.dumps({"token": f"tok-{len(issued)}", "expires_in": 300}),
                        content_type="application/json")

    server.expect_request("/token").respond_with_handler(handler)
    return issued


def bearer_challenge(server: HTTPServer, scope: str) -> dict[str, str]:
    realm = f"http://{host_of(server)}/token"
    return {"WWW-Authenticate": f'Bearer realm="{realm}",service="fake",scope="{scope}"'}


def test_403_with_a_token_gets_a_fresh_token_once(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    """The first token is refused (as if revoked); the transport drops it and fetches another."""
    issued = token_service(httpserver)
    challenge = bearer_challenge(httpserver, "repository:a:pull")
    seen: list[str | None] = []

    def registry(request: Request) -> Response:
        auth = request.headers.get("Authorization")
        seen.append(auth)
        if auth is None:
            return oci_error("UNAUTHORIZED", "authentication required", 401, challenge)
        if auth == "Bearer tok-1":
            return oci_error("DENIED", "requested access to the resource is denied", 403)
        return Response("{}", content_type="application/json")

    httpserver.expect_request("/v2/a/tags/list").respond_with_handler(registry)
    transport = make_transport(httpserver, sleeps, authenticated=True)
    transport.request("GET", "/v2/a/tags/list", scopes=("repository:a:pull",))
    assert seen == [None, "Bearer tok-1", None, "Bearer tok-2"]
    assert len(issued) == 2


def test_403_twice_is_authorization_error(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    token_service(httpserver)
    challenge = bearer_challenge(httpserver, "repository:a:push,pull")
    calls: list[str | None] = []

    def registry(request: Request) -> Response:
        calls.append(request.headers.get("Authorization"))
        if request.headers.get("Authorization") is None:
            return oci_error("UNAUTHORIZED", "authentication required", 401, challenge)
        return oci_error("DENIED", "requested access to the resource is denied", 403)

    httpserver.expect_request("/v2/a/blobs/uploads/", method="POST").respond_with_handler(registry)
    with pytest.raises(AuthorizationError) as caught:
        make_transport(httpserver, sleeps, authenticated=True).request(
            "POST", "/v2/a/blobs/uploads/", scopes=("repository:a:pull,push",), ok=(202,))
    assert len(calls) == 4  # 401, 403, 401, 403: one refresh, no loop
    assert "tok-" not in str(caught.value)
    assert caught.value.code == "DENIED"


def test_insufficient_scope_after_a_fresh_token_is_authorization_error(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    token_service(httpserver)
    challenge = bearer_challenge(httpserver, "repository:a:delete")
    challenge["WWW-Authenticate"] += ',error="insufficient_scope"'
    httpserver.expect_request("/v2/a/manifests/sha256:x", method="DELETE").respond_with_handler(
        sequence(oci_error("UNAUTHORIZED", "authentication required", 401, challenge)))
    with pytest.raises(AuthorizationError) as caught:
        make_transport(httpserver, sleeps, authenticated=True).request(
            "DELETE", "/v2/a/manifests/sha256:x", scopes=("repository:a:delete",), ok=(202,))
    assert "did not grant" in str(caught.value)


def test_registry_token_never_appears_in_errors(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    token = "registry-token-value-that-must-not-leak"
    httpserver.expect_request("/v2/").respond_with_handler(
        sequence(Response("", 401, {"WWW-Authenticate": 'Bearer realm="https://auth.example/token"'}),
                 Response("echo: " + token, 500)))
    transport = make_transport(httpserver, sleeps, credentials=Credentials(registry_token=token), retries=0)
    with pytest.raises(TransportError) as caught:
        transport.request("GET", "/v2/")
    assert token not in str(caught.value) and token not in repr(caught.value.to_dict())


def test_one_shot_stream_after_a_challenge_asks_for_replay(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    # A fake, though Distribution answers Basic challenges too: the point is what the transport does
    # with a body it cannot send twice (it asks its caller to replay), which the handler's own call
    # list shows and an access log cannot (it logs the 401 and the 200, not what each carried).
    handler = basic_protected("alice", "pw")
    httpserver.expect_request("/upload", method="PUT").respond_with_handler(handler)
    transport = make_transport(httpserver, sleeps, credentials=Credentials("alice", "pw"))
    with pytest.raises(ReplayRequired):
        transport.request("PUT", "/upload", data=iter([b"x"]), ok=(200,))
    # The credentials are now known; the caller's second attempt goes through first time.
    transport.request("PUT", "/upload", data=iter([b"x"]), ok=(200,))
    assert len(handler.calls) == 2


def test_netrc_credentials_are_never_applied(httpserver: HTTPServer, sleeps: Sleeps, tmp_path, monkeypatch) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine {httpserver.host} login netrc-user password netrc-pass\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    handler = sequence(Response("{}"))
    httpserver.expect_request("/v2/").respond_with_handler(handler)
    make_transport(httpserver, sleeps).request("GET", "/v2/")
    assert "Authorization" not in handler.calls[0].headers


# -- redirects -------------------------------------------------------------------------------


def test_redirect_to_another_host_drops_authorization(httpserver: HTTPServer, second_server: HTTPServer,
                                                      sleeps: Sleeps) -> None:
    """A blob GET redirected to storage: Basic credentials must stay with the registry."""
    blob_url = f"http://{host_of(second_server)}/storage/blob?signature=abc"
    expected = f"Basic {basic_token('alice', 'pw')}"

    def registry(request: Request) -> Response:
        if request.headers.get("Authorization") != expected:
            return Response("", 401, {"WWW-Authenticate": 'Basic realm="fake"'})
        return Response("", 307, {"Location": blob_url})

    httpserver.expect_request("/v2/a/blobs/sha256:abc").respond_with_handler(registry)
    storage = sequence(Response(b"blob-bytes"))
    second_server.expect_request("/storage/blob").respond_with_handler(storage)
    transport = make_transport(httpserver, sleeps, credentials=Credentials("alice", "pw"))
    response = transport.request("GET", "/v2/a/blobs/sha256:abc")
    assert response.content == b"blob-bytes"
    assert len(storage.calls) == 1
    assert "Authorization" not in storage.calls[0].headers
    assert storage.calls[0].args["signature"] == "abc"


def test_redirect_to_same_port_other_host_name_drops_authorization(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    """localhost and 127.0.0.1 are different origins even on one port."""
    assert httpserver.host == "localhost"
    expected = f"Basic {basic_token('alice', 'pw')}"
    seen: list[str | None] = []

    def registry(request: Request) -> Response:
        seen.append(request.headers.get("Authorization"))
        if request.path == "/final":
            return Response("done")
        if request.headers.get("Authorization") != expected:
            return Response("", 401, {"WWW-Authenticate": 'Basic realm="fake"'})
        return Response("", 302, {"Location": f"http://127.0.0.1:{httpserver.port}/final"})

    httpserver.expect_request("/v2/a/blobs/sha256:abc").respond_with_handler(registry)
    httpserver.expect_request("/final").respond_with_handler(registry)
    transport = make_transport(httpserver, sleeps, credentials=Credentials("alice", "pw"))
    assert transport.request("GET", "/v2/a/blobs/sha256:abc").content == b"done"
    assert seen == [None, expected, None]


def test_same_origin_redirect_keeps_authorization(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    expected = f"Basic {basic_token('alice', 'pw')}"
    seen: list[str | None] = []

    def registry(request: Request) -> Response:
        seen.append(request.headers.get("Authorization"))
        if request.headers.get("Authorization") != expected:
            return Response("", 401, {"WWW-Authenticate": 'Basic realm="fake"'})
        if request.path.endswith("/old"):
            return Response("", 301, {"Location": "/v2/a/manifests/new"})
        return Response("{}")

    httpserver.expect_request("/v2/a/manifests/old").respond_with_handler(registry)
    httpserver.expect_request("/v2/a/manifests/new").respond_with_handler(registry)
    transport = make_transport(httpserver, sleeps, credentials=Credentials("alice", "pw"))
    transport.request("GET", "/v2/a/manifests/old")
    assert seen == [None, expected, expected]


def test_challenge_from_a_redirect_target_is_not_answered(httpserver: HTTPServer, second_server: HTTPServer,
                                                          sleeps: Sleeps) -> None:
    """Storage asking for credentials must not get (or change) the registry's."""
    httpserver.expect_request("/v2/a/blobs/sha256:abc").respond_with_data(
        "", 307, {"Location": f"http://{host_of(second_server)}/blob"})
    storage = sequence(Response("", 401, {"WWW-Authenticate": 'Basic realm="storage"'}))
    second_server.expect_request("/blob").respond_with_handler(storage)
    transport = make_transport(httpserver, sleeps, credentials=Credentials("alice", "pw"))
    with pytest.raises(AuthenticationError):
        transport.request("GET", "/v2/a/blobs/sha256:abc")
    assert len(storage.calls) == 1
    assert "Authorization" not in storage.calls[0].headers
    assert transport.authenticator.header_for(transport.host, ()) is None  # nothing learnt from storage


def test_redirect_of_a_streamed_put_is_not_followed(httpserver: HTTPServer, second_server: HTTPServer,
                                                    sleeps: Sleeps) -> None:
    httpserver.expect_request("/upload", method="PUT").respond_with_data(
        "", 307, {"Location": f"http://{host_of(second_server)}/elsewhere"})
    with pytest.raises(TransportError) as caught:
        make_transport(httpserver, sleeps).request("PUT", "/upload", data=iter([b"x"]), ok=(201,))
    assert "redirect" in str(caught.value)
    assert second_server.log == []


def test_redirect_loop_is_cut(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    httpserver.expect_request("/loop").respond_with_data("", 302, {"Location": "/loop"})
    with pytest.raises(TransportError) as caught:
        make_transport(httpserver, sleeps).request("GET", "/loop")
    assert "redirected more than" in str(caught.value)


# -- size caps -------------------------------------------------------------------------------


def test_document_over_the_cap_is_refused_by_content_length(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    httpserver.expect_request("/v2/a/manifests/big").respond_with_data(b"x" * (4 * MiB + 1))
    with pytest.raises(TooLargeError) as caught:
        make_transport(httpserver, sleeps).request("GET", "/v2/a/manifests/big")
    assert "4194304 byte limit" in str(caught.value)


def test_document_over_the_cap_is_refused_without_content_length(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    def stream(_request: Request) -> Response:
        return Response((b"y" * 65536 for _unused in range(80)), direct_passthrough=True)

    httpserver.expect_request("/v2/a/manifests/chunked").respond_with_handler(stream)
    with pytest.raises(TooLargeError):
        make_transport(httpserver, sleeps).request("GET", "/v2/a/manifests/chunked", max_body=1 * MiB)


def test_document_at_the_cap_is_read(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    httpserver.expect_request("/v2/a/manifests/ok").respond_with_data(b"z" * (4 * MiB))
    response = make_transport(httpserver, sleeps).request("GET", "/v2/a/manifests/ok")
    assert len(response.content) == 4 * MiB


def test_error_body_read_is_capped() -> None:
    class EndlessBody:
        status_code = 500
        pulled = 0

        def iter_content(self, size: int) -> Iterator[bytes]:
            while True:
                self.pulled += size
                yield b"e" * size

        def close(self) -> None:
            pass

    transport = Transport("r.example", TransportOptions(max_error_bytes=64 * 1024))
    body = EndlessBody()
    assert len(transport.read_error_body(body)) == 64 * 1024
    assert body.pulled <= 64 * 1024 + 8 * 1024


def test_huge_error_body_still_maps_by_status(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    padding = "x" * (2 * MiB)
    httpserver.expect_request("/v2/a/manifests/t").respond_with_data(
        json.dumps({"errors": [{"code": "MANIFEST_UNKNOWN", "message": padding}]}), 404)
    with pytest.raises(NotFoundError) as caught:
        make_transport(httpserver, sleeps).request("GET", "/v2/a/manifests/t")
    assert caught.value.code is None  # truncated JSON is not parsed
    assert len(str(caught.value)) < 1000


# -- error mapping ---------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "code", "expected"), [
    (401, "UNAUTHORIZED", AuthenticationError),
    (403, "DENIED", AuthorizationError),
    (404, "MANIFEST_UNKNOWN", NotFoundError),
    (404, "NAME_UNKNOWN", NotFoundError),
    (400, "BLOB_UNKNOWN", NotFoundError),
    (400, "MANIFEST_BLOB_UNKNOWN", NotFoundError),
    (405, "UNSUPPORTED", UnsupportedError),
    (400, "UNSUPPORTED", UnsupportedError),
    (413, "SIZE_INVALID", TooLargeError),
    (400, "DIGEST_INVALID", DigestMismatchError),
    (503, "UNAVAILABLE", TransportError),
    (400, "MANIFEST_INVALID", RegistryError),
])
def test_statuses_and_oci_codes_map_to_typed_errors(httpserver: HTTPServer, sleeps: Sleeps, status: int,
                                                    code: str, expected: type) -> None:
    httpserver.expect_request("/v2/team/app/manifests/v1").respond_with_response(
        oci_error(code, "what the registry said", status))
    with pytest.raises(RegistryError) as caught:
        make_transport(httpserver, sleeps, retries=0).request(
            "GET", "/v2/team/app/manifests/v1", operation="fetch manifest team/app:v1")
    assert type(caught.value) is expected  # pylint: disable=unidiomatic-typecheck
    assert caught.value.status == status and caught.value.code == code
    message = str(caught.value)
    assert message.startswith(f"fetch manifest team/app:v1 on {host_of(httpserver)} failed: HTTP {status}")
    assert f"{code}: what the registry said" in message


def test_head_errors_map_without_a_body(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    httpserver.expect_request("/v2/a/blobs/sha256:x", method="HEAD").respond_with_data("", 404)
    with pytest.raises(NotFoundError):
        make_transport(httpserver, sleeps).request("HEAD", "/v2/a/blobs/sha256:x")


def test_query_strings_stay_out_of_messages(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    httpserver.expect_request("/upload/1").respond_with_data("", 400)
    with pytest.raises(RegistryError) as caught:
        make_transport(httpserver, sleeps).request("GET", "/upload/1?_state=secretstate&sig=abc")
    assert "secretstate" not in str(caught.value) and "/upload/1" in str(caught.value)


# -- warnings and rate limits ----------------------------------------------------------------


def test_warning_headers_are_collected_deduplicated(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    first = Response("{}")
    first.headers.add("Warning", '299 - "This image is deprecated and will be removed soon."')
    first.headers.add("Warning", '299 - "Your auth token will expire in 30 seconds."')
    first.headers.add("Warning", '199 - "not a registry warning"')
    second = Response("{}")
    second.headers.add("Warning", '299 - "This image is deprecated and will be removed soon."')
    httpserver.expect_request("/v2/").respond_with_handler(sequence(first, second))
    transport = make_transport(httpserver, sleeps)
    transport.request("GET", "/v2/")
    transport.request("GET", "/v2/")
    assert transport.warnings == [
        "This image is deprecated and will be removed soon.",
        "Your auth token will expire in 30 seconds.",
    ]


def test_warnings_on_error_responses_are_kept(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    response = oci_error("MANIFEST_UNKNOWN", "", 404)
    response.headers.add("Warning", '299 - "repository moved to team/new"')
    httpserver.expect_request("/v2/a/manifests/x").respond_with_response(response)
    transport = make_transport(httpserver, sleeps)
    with pytest.raises(NotFoundError):
        transport.request("GET", "/v2/a/manifests/x")
    assert transport.warnings == ["repository moved to team/new"]


def test_rate_limit_headers_are_exposed(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    httpserver.expect_request("/v2/library/alpine/manifests/3").respond_with_data(
        "{}", headers={"RateLimit-Limit": "100;w=21600", "RateLimit-Remaining": "99;w=21600"})
    transport = make_transport(httpserver, sleeps)
    assert transport.rate_limit is None
    transport.request("GET", "/v2/library/alpine/manifests/3")
    assert transport.rate_limit == RateLimit(100, 99, 21600)


# -- session -----------------------------------------------------------------------------------


def test_one_pooled_session_with_user_agent(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    handler = sequence(Response("{}"))
    httpserver.expect_request("/v2/").respond_with_handler(handler)
    transport = make_transport(httpserver, sleeps, pool_size=16)
    transport.request("GET", "/v2/")
    transport.request("GET", "/v2/")
    assert handler.calls[0].headers["User-Agent"].startswith("ocireg.registry/")
    adapter = transport.session.get_adapter("http://x")
    assert adapter._pool_maxsize == 16  # noqa: SLF001 - the pool size is the point of the test
    assert transport.session.get_adapter("https://x") is adapter


def test_loopback_host_without_tls_falls_back_to_plain_http(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    httpserver.expect_request("/v2/").respond_with_data("{}")
    transport = Transport(host_of(httpserver), TransportOptions(sleep=sleeps.append))
    assert transport.base_url.startswith("https://")
    assert transport.request("GET", "/v2/").content == b"{}"
    assert transport.base_url == f"http://{host_of(httpserver)}"


def test_an_unexpected_answer_is_an_error_with_its_fields(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    httpserver.expect_request("/v2/team/app/manifests/x").respond_with_handler(
        sequence(oci_error("MANIFEST_UNKNOWN", "manifest unknown", 404)))
    with pytest.raises(NotFoundError) as caught:
        make_transport(httpserver, sleeps).request("GET", "/v2/team/app/manifests/x", operation="fetch manifest x")
    err = caught.value
    expected = (host_of(httpserver), "fetch manifest x", 404, "MANIFEST_UNKNOWN")
    assert (err.host, err.operation, err.status, err.code) == expected
    assert [(e.code, e.message) for e in err.errors] == [("MANIFEST_UNKNOWN", "manifest unknown")]
    assert err.partial is None and err.detail is None  # the registry's errors are fields of their own
    assert str(err) == (f"fetch manifest x on {host_of(httpserver)} failed: HTTP 404 (MANIFEST_UNKNOWN: manifest "
                        "unknown): not found; check the repository name and the tag or digest")


def test_a_401_without_credentials_names_the_kind_of_fix_not_an_option(httpserver: HTTPServer, sleeps: Sleeps) -> None:
    httpserver.expect_request("/v2/").respond_with_data("", status=401, headers={"WWW-Authenticate": 'Basic realm="r"'})
    with pytest.raises(AuthenticationError) as caught:
        make_transport(httpserver, sleeps).request("GET", "/v2/")
    assert caught.value.hint == "login_needed" and caught.value.host == host_of(httpserver)
    assert "registry_token" not in str(caught.value) and "auth_file" not in str(caught.value)


# -- a miss from a host that did not say it is a registry: GET /v2/ once, then "not a registry" or the miss --
# The fake host sends no Docker-Distribution-API-Version header here (the bare_answers fixture), unlike the
# other tests' fake registries: that is the case under test. Real servers (http.server, Distribution with and
# without the header) are in tests/integration/test_not_a_registry.py.
OCI_404 = json.dumps({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]})


def transport_to(server: HTTPServer) -> Transport:
    return Transport(f"{server.host}:{server.port}", TransportOptions(plain_http=True, sleep=lambda _s: None))


def miss(server: HTTPServer, *names: str) -> None:
    """Bare 404s (no header, no body) for manifests ``names`` of repository ``a``."""
    for name in names:
        server.expect_request(f"/v2/a/manifests/{name}").respond_with_data("", 404)


def pings(server: HTTPServer) -> int:
    return sum(1 for request, _response in server.log if request.path == "/v2/")


@pytest.mark.usefixtures("bare_answers")
def test_a_miss_from_a_host_whose_v2_is_not_a_registry_raises_not_a_registry(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v2/").respond_with_data("no", 404)
    miss(httpserver, "t")
    transport = transport_to(httpserver)
    for method in ("HEAD", "GET"):
        with pytest.raises(NotARegistryError) as caught:
            transport.request(method, "/v2/a/manifests/t", ok=(200,), operation=f"{method} t")
        assert caught.value.host == transport.host and caught.value.status == 404
        assert str(caught.value) == (f"{method} t on {transport.host} failed: HTTP 404: {transport.host} answered 404 "
                                     "for /v2/: it is not a container registry (or not at this address); check the "
                                     "host name and port")
    # An expected miss (404 in ok) is checked the same way.
    with pytest.raises(NotARegistryError):
        transport.request("HEAD", "/v2/a/manifests/t", ok=(200, 404))
    assert pings(httpserver) == 1  # once per transport, the answer kept


@pytest.mark.usefixtures("bare_answers")
@pytest.mark.parametrize("status", [200, 401])
def test_a_miss_stands_when_v2_answers_as_a_registry(httpserver: HTTPServer, status: int) -> None:
    httpserver.expect_request("/v2/").respond_with_data("{}", status)
    miss(httpserver, "t", "u")
    transport = transport_to(httpserver)
    assert transport.request("HEAD", "/v2/a/manifests/t", ok=(200, 404)).status_code == 404
    with pytest.raises(NotFoundError):
        transport.request("HEAD", "/v2/a/manifests/u")
    assert pings(httpserver) == 1


@pytest.mark.usefixtures("bare_answers")
def test_a_get_miss_with_an_oci_error_body_needs_no_ping(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v2/a/manifests/t").respond_with_data(OCI_404, 404, content_type="application/json")
    transport = transport_to(httpserver)
    with pytest.raises(NotFoundError):
        transport.request("GET", "/v2/a/manifests/t")
    assert transport.request("GET", "/v2/a/manifests/t", ok=(200, 404)).status_code == 404
    assert pings(httpserver) == 0


@pytest.mark.usefixtures("bare_answers")
def test_a_miss_with_the_api_version_header_needs_no_ping(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v2/a/manifests/t").respond_with_data(
        "", 404, headers={"Docker-Distribution-API-Version": "registry/2.0"})
    transport = transport_to(httpserver)
    assert transport.request("HEAD", "/v2/a/manifests/t", ok=(200, 404)).status_code == 404
    assert pings(httpserver) == 0


@pytest.mark.usefixtures("bare_answers")
def test_a_write_refused_with_501_by_a_non_registry_is_not_a_registry_failure(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v2/").respond_with_data("no", 404)
    httpserver.expect_request("/v2/a/blobs/uploads/", method="POST").respond_with_data("Unsupported method", 501)
    with pytest.raises(NotARegistryError) as caught:
        transport_to(httpserver).request("POST", "/v2/a/blobs/uploads/", ok=(202,))
    assert caught.value.status == 501 and "the registry failed" not in str(caught.value)


@pytest.mark.usefixtures("bare_answers")
def test_the_answer_to_v2_itself_is_its_own_evidence(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v2/").respond_with_data("no", 404)
    with pytest.raises(NotARegistryError, match="answered 404 for /v2/"):
        transport_to(httpserver).request("GET", "/v2/", operation="ping")
    assert pings(httpserver) == 1  # not asked a second time
