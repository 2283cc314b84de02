"""The registry session: proxy and CA-bundle environment read once, with requests' own answers.

The proxy here is pytest-httpserver standing in for a forward proxy: a plain
HTTP request through a proxy is an ordinary request with an absolute URL, so
a server that answers it proves the request went through the proxy. No
Distribution is involved because the point is where requests are sent.
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
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    TransportError,
)
from pytest_httpserver import HTTPServer

PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
              "NO_PROXY", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


URLS = [
    "http://registry.example:5000/v2/",
    "https://registry.example/v2/a/manifests/1",
    "https://sub.internal.example/v2/",
    "http://10.1.2.3:5000/v2/",
    "http://127.0.0.1:5000/v2/",
    "https://storage.example/blob?sig=1",
]
ENVIRONMENTS = [
    {},
    {"HTTPS_PROXY": "http://proxy.example:3128"},
    {"http_proxy": "http://p1:8080", "https_proxy": "http://p2:8080", "no_proxy": "internal.example,10.0.0.0/8"},
    {"ALL_PROXY": "socks5://p:1080", "NO_PROXY": "registry.example:5000, .example"},
    {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "*"},
    {"REQUESTS_CA_BUNDLE": "/etc/ssl/private-ca.pem"},
    {"CURL_CA_BUNDLE": "/etc/ssl/curl-ca.pem", "HTTP_PROXY": "http://p:2"},
]


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_same_proxies_and_verify_as_a_plain_requests_session(monkeypatch: pytest.MonkeyPatch,
                                                             environment: dict[str, str]) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    ours, theirs = RegistrySession(), requests.Session()
    for url in URLS:
        for verify in (True, False, "/ca.pem", None):
            expected = theirs.merge_environment_settings(url, {}, None, verify, None)
            assert ours.merge_environment_settings(url, {}, None, verify, None) == expected, (url, verify)


def test_the_environment_is_read_once_at_creation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    session = RegistrySession()
    monkeypatch.setenv("HTTPS_PROXY", "http://other.example:1")
    monkeypatch.setenv("NO_PROXY", "registry.example")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/late.pem")
    settings = session.merge_environment_settings("https://registry.example/v2/", {}, None, True, None)
    assert settings["proxies"]["https"] == "http://proxy.example:3128"
    assert settings["verify"] is True
    assert session.trust_env is False  # requests itself never looks again


def test_prepared_requests_match_a_plain_session() -> None:
    ours, theirs = RegistrySession(), requests.Session()
    for session in (ours, theirs):
        session.headers["User-Agent"] = "ua"
        session.params = {"keep": "1", "drop": "x"}
    request = requests.Request("GET", "http://r.example/v2/", headers={"Accept": "a", "User-Agent": None},
                               params={"drop": None, "n": "5"})
    mine, reference = ours.prepare_request(request), theirs.prepare_request(request)
    assert mine.url == reference.url
    assert dict(mine.headers) == dict(reference.headers)
    assert mine.hooks == reference.hooks


def test_http_proxy_from_the_environment_carries_registry_requests(httpserver: HTTPServer,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    httpserver.expect_request("/v2/").respond_with_data("{}")
    monkeypatch.setenv("HTTP_PROXY", f"http://{httpserver.host}:{httpserver.port}")
    # registry.invalid does not resolve: only the proxy can answer for it.
    transport = Transport("registry.invalid:5000", TransportOptions(plain_http=True, retries=0))
    assert transport.request("GET", "/v2/").content == b"{}"
    assert len(httpserver.log) == 1


def test_no_proxy_sends_registry_requests_direct(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    httpserver.expect_request("/v2/").respond_with_data("{}")
    monkeypatch.setenv("HTTP_PROXY", f"http://{httpserver.host}:{httpserver.port}")
    monkeypatch.setenv("NO_PROXY", "registry.invalid")
    transport = Transport("registry.invalid:5000", TransportOptions(plain_http=True, retries=0))
    with pytest.raises(TransportError, match="cannot reach registry.invalid:5000"):
        transport.request("GET", "/v2/")
    assert len(httpserver.log) == 0
