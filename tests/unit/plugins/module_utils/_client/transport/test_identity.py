"""A miss from a host that did not say it is a registry: ``GET /v2/`` once, then "not a registry" or the miss.

The fake host (pytest-httpserver) sends no ``Docker-Distribution-API-Version`` header here
(``BARE_ANSWERS``), unlike the other unit tests' fake registries: that is the case under test. Real
servers (``http.server``, Distribution with and without the header) are in
tests/integration/test_not_a_registry.py.
"""
from __future__ import annotations

import json

import pytest
from pytest_httpserver import HTTPServer

from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.core import (
    Transport,
    TransportOptions,
)
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import (
    NotARegistryError,
    NotFoundError,
)

BARE_ANSWERS = True
OCI_404 = json.dumps({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]})


def transport_to(server: HTTPServer) -> Transport:
    return Transport(f"{server.host}:{server.port}", TransportOptions(plain_http=True, sleep=lambda _s: None))


def miss(server: HTTPServer, *names: str) -> None:
    """Bare 404s (no header, no body) for manifests ``names`` of repository ``a``."""
    for name in names:
        server.expect_request(f"/v2/a/manifests/{name}").respond_with_data("", 404)


def pings(server: HTTPServer) -> int:
    return sum(1 for request, _response in server.log if request.path == "/v2/")


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


@pytest.mark.parametrize("status", [200, 401])
def test_a_miss_stands_when_v2_answers_as_a_registry(httpserver: HTTPServer, status: int) -> None:
    httpserver.expect_request("/v2/").respond_with_data("{}", status)
    miss(httpserver, "t", "u")
    transport = transport_to(httpserver)
    assert transport.request("HEAD", "/v2/a/manifests/t", ok=(200, 404)).status_code == 404
    with pytest.raises(NotFoundError):
        transport.request("HEAD", "/v2/a/manifests/u")
    assert pings(httpserver) == 1


def test_a_get_miss_with_an_oci_error_body_needs_no_ping(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v2/a/manifests/t").respond_with_data(OCI_404, 404, content_type="application/json")
    transport = transport_to(httpserver)
    with pytest.raises(NotFoundError):
        transport.request("GET", "/v2/a/manifests/t")
    assert transport.request("GET", "/v2/a/manifests/t", ok=(200, 404)).status_code == 404
    assert pings(httpserver) == 0


def test_a_miss_with_the_api_version_header_needs_no_ping(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v2/a/manifests/t").respond_with_data(
        "", 404, headers={"Docker-Distribution-API-Version": "registry/2.0"})
    transport = transport_to(httpserver)
    assert transport.request("HEAD", "/v2/a/manifests/t", ok=(200, 404)).status_code == 404
    assert pings(httpserver) == 0


def test_a_write_refused_with_501_by_a_non_registry_is_not_a_registry_failure(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v2/").respond_with_data("no", 404)
    httpserver.expect_request("/v2/a/blobs/uploads/", method="POST").respond_with_data("Unsupported method", 501)
    with pytest.raises(NotARegistryError) as caught:
        transport_to(httpserver).request("POST", "/v2/a/blobs/uploads/", ok=(202,))
    assert caught.value.status == 501 and "the registry failed" not in str(caught.value)


def test_the_answer_to_v2_itself_is_its_own_evidence(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v2/").respond_with_data("no", 404)
    with pytest.raises(NotARegistryError, match="answered 404 for /v2/"):
        transport_to(httpserver).request("GET", "/v2/", operation="ping")
    assert pings(httpserver) == 1  # not asked a second time
