"""RegistrySession.send_direct: the registry's requests on the adapter's pool, the same on the wire as requests' path.

Why pytest-httpserver and not Distribution: the point is what arrives at the server (headers, query,
body, cookies) and which path sent it, compared with a plain ``requests.Session`` on the same server;
Distribution sets no cookies and does not echo requests.
"""
from __future__ import annotations

import pytest
import requests
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.core import (
    Transport,
    TransportOptions,
)
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.session import (
    RegistrySession,
)
from pytest_httpserver import HTTPServer
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
