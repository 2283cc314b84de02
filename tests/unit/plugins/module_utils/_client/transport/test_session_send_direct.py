"""RegistrySession.send_direct: the registry's requests on the adapter's pool, the same on the wire as requests' path.

Why pytest-httpserver and not Distribution: the point is what arrives at the server (headers, query,
body, cookies) and which path sent it, compared with a plain ``requests.Session`` on the same server;
Distribution sets no cookies and does not echo requests.
"""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.core import (
    Transport,
    TransportOptions,
)
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.session import (
    RegistrySession,
    _query,
)
from pytest_httpserver import HTTPServer
from requests.models import PreparedRequest
from tests.rig.registry_server import free_port
# The autouse fixture that clears the proxy environment for every test here.
from tests.unit.plugins.module_utils._client.transport.test_session import (  # noqa: F401  # pylint: disable=unused-import
    clean_environment,
)
from werkzeug import Request, Response

# Headers that differ between two senders by nature (connection bookkeeping), not by what was asked.
_IGNORED = {"Host"}


def received(server: HTTPServer, send) -> tuple[str, str, dict[str, str], bytes]:
    """Method, full path with query, headers and body of what ``send`` made the server see."""
    seen: list[Request] = []

    def handler(request: Request) -> Response:
        seen.append(request)
        return Response("{}", content_type="application/json")

    server.expect_request("/v2/a/tags/list").respond_with_handler(handler)
    server.expect_request("/v2/a/manifests/t").respond_with_handler(handler)
    send()
    request = seen[-1]
    server.clear()
    return (request.method, request.full_path, {k: v for k, v in request.headers.items() if k not in _IGNORED},
            request.get_data())


@pytest.mark.parametrize("method, path, params, data", [
    ("GET", "/v2/a/tags/list", {"n": 100, "last": "v1.2", "skip": None}, None),
    ("HEAD", "/v2/a/manifests/t", None, None),
    ("PUT", "/v2/a/manifests/t", None, b'{"schemaVersion": 2}'),
    ("DELETE", "/v2/a/manifests/t", None, None),
])
def test_the_same_request_as_a_plain_requests_session(httpserver: HTTPServer, method: str, path: str,
                                                      params: dict[str, object] | None, data: bytes | None) -> None:
    url = httpserver.url_for(path)
    # Lower-case names override the session's, a None drops the session's header: requests' merge rules.
    headers = {"accept": "application/vnd.oci.image.manifest.v1+json", "user-agent": "mine", "Accept-Encoding": None}
    ours, theirs = RegistrySession(), requests.Session()
    theirs.trust_env = False
    for session in (ours, theirs):
        session.headers["User-Agent"] = "ua"

    def direct() -> None:
        response = ours.send_direct(method, url, headers, params, data, (5.0, 5.0), True, None)
        assert response is not None  # nothing here needs requests' full path
        assert response.status_code == 200
        assert response.request.method == method

    expected = received(httpserver, lambda: theirs.request(method, url, headers=headers, params=params, data=data,
                                                           stream=True, allow_redirects=False, timeout=5))
    assert received(httpserver, direct) == expected


def test_a_cookie_the_registry_sets_is_kept_and_sent_back(httpserver: HTTPServer) -> None:
    # requests keeps Set-Cookie in the session (sticky load balancers rely on it); so does the direct path.
    httpserver.expect_ordered_request("/v2/").respond_with_response(
        Response("{}", headers={"Set-Cookie": "lb=node-2; Path=/"}))
    httpserver.expect_ordered_request("/v2/", headers={"Cookie": "lb=node-2"}).respond_with_data("{}")
    transport = Transport(f"{httpserver.host}:{httpserver.port}", TransportOptions(plain_http=True, retries=0))
    transport.request("GET", "/v2/")
    transport.request("GET", "/v2/")
    httpserver.check_assertions()


def test_what_needs_requests_full_path_is_left_to_it(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    url = httpserver.url_for("/v2/")
    session = RegistrySession()
    assert session.send_direct("PUT", url, {}, None, iter([b"x"]), (5.0, 5.0), True, None) is None  # a stream
    session.hooks["response"].append(lambda response, **_kwargs: response)
    assert session.send_direct("GET", url, {}, None, None, (5.0, 5.0), True, None) is None  # hooks
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    assert RegistrySession().send_direct("GET", url, {}, None, None, (5.0, 5.0), True, None) is None  # a proxy


def test_a_refused_connection_is_requests_connection_error() -> None:
    session = RegistrySession()
    with pytest.raises(requests.exceptions.ConnectionError):
        session.send_direct("GET", f"http://127.0.0.1:{free_port()}/v2/", {}, None, None, (5.0, 5.0), True, None)


def test_a_missing_ca_bundle_stays_requests_oserror() -> None:
    # requests raises a plain OSError for it before sending (not a ConnectionError to retry): so does the direct path.
    session = RegistrySession()
    with pytest.raises(OSError, match="CA certificate bundle") as raised:
        session.send_direct("GET", f"https://127.0.0.1:{free_port()}/v2/", {}, None, None, (5.0, 5.0),
                            "/nonexistent/ca.pem", None)
    assert raised.type is OSError


# Each origin, and whether the fast way takes its plain paths (requests leaves the origin as it is).
_ORIGINS = [("http://127.0.0.1:5000", True), ("https://registry.example.com", True), ("http://[::1]:5000", True),
            ("http://h:80", True), ("https://Registry.Example.com", False), ("https://bücher.de", False),
            ("http://u:p@h", False), ("HTTP://h", False), ("http://h:0500", False)]
_PATHS = ["/v2/", "/v2/a/b/manifests/t0", "/v2/a/../b", "/v2/a/./b", "/v2//a", "//v2", "/v2/a%2Fb", "/v2/a b", "/v2/ä",
          "/v2/a/manifests/sha256:abc", "/v2/a~b!$&'()*+,;=:@", "/v2/a?x=1", "/v2/a#f", "/v2/.a", "/v2/a.", "/v2/A/B", "/"]
_PARAMS = [None, {"n": 100, "last": "v1.2", "skip": None}, {"last": "a b/ä~%&="}, {}, {"n": [1, 2]}, {b"k": b"v"}]


@pytest.mark.parametrize("origin, taken", _ORIGINS)
def test_the_url_without_parsing_is_the_url_requests_prepares(origin: str, taken: bool) -> None:
    # The direct path skips prepare_url for plain URLs: every URL it answers must be exactly requests' own.
    session = RegistrySession()
    answered = 0
    for path in _PATHS:
        for params in _PARAMS:
            query = _query(params) if isinstance(params, dict) else params
            fast = session._fast_url(origin + path, query)  # pylint: disable=protected-access
            if fast is None:
                continue
            answered += 1
            prepared = PreparedRequest()
            prepared.prepare_url(origin + path, query)
            full_url, scheme, netloc, path_url = fast
            assert (full_url, path_url) == (prepared.url, prepared.path_url)
            assert (scheme, netloc) == (urlsplit(full_url).scheme, urlsplit(full_url).netloc)
    # The registry's own URLs (a lower-case host, plain paths) take the fast way; the odd ones are left to requests.
    assert bool(answered) is taken


def test_a_header_requests_refuses_is_refused_on_every_send(httpserver: HTTPServer) -> None:
    # The validity check is remembered only for pairs that passed it: a bad value fails each time, as in requests.
    httpserver.expect_request("/v2/").respond_with_data("{}")
    session = RegistrySession()
    url = httpserver.url_for("/v2/")
    for _attempt in range(2):
        with pytest.raises(requests.exceptions.InvalidHeader):
            session.send_direct("GET", url, {"Authorization": "Bearer x\r\nX-Injected: 1"}, None, None, (5.0, 5.0),
                                True, None)
    response = session.send_direct("GET", url, {"Authorization": "Bearer x"}, None, None, (5.0, 5.0), True, None)
    assert response is not None and response.status_code == 200
    assert response.request.headers["Authorization"] == "Bearer x"
