"""Transport TLS and scheme selection against real Distribution 2.8 registries.

TLS registries use a private CA (trustme); the mTLS one also requires a
client certificate. Loopback registries start on https and drop to plain http
only when the port does not speak TLS (as Docker does); a certificate that
does not verify is reported, never downgraded. The client names the kind of fix;
which option makes it is worded by the glue (``advised``), as a task reports it.
"""
from __future__ import annotations

import pytest

from ansible_collections.ocireg.registry.plugins.module_utils._glue.advice import advised
from ansible_collections.ocireg.registry.plugins.module_utils._model.errors import TransportError
from ansible_collections.ocireg.registry.plugins.module_utils._client.registry import Registry
from ansible_collections.ocireg.registry.plugins.module_utils._client.transport.core import Transport, TransportOptions
from tests.rig.flavours import RigRegistry


def options(**kwargs: object) -> TransportOptions:
    return TransportOptions(sleep=lambda _s: None, **kwargs)


def test_private_ca_via_ca_path(tls_registry: RigRegistry) -> None:
    registry = Registry(tls_registry.host, options(ca_path=tls_registry.ca_path))
    assert registry.ping() is True
    assert registry.transport.base_url == f"https://{tls_registry.host}"


def test_unknown_ca_says_what_to_set(tls_registry: RigRegistry) -> None:
    registry = Registry(tls_registry.host, options())
    mark = tls_registry.mark()
    with pytest.raises(TransportError) as caught:
        registry.ping()
    assert str(caught.value).startswith(f"TLS certificate verify failed for {tls_registry.host}")
    assert "set ca_path to your CA bundle or validate_certs: false" in advised(caught.value)  # as a task says it
    assert registry.transport.base_url.startswith("https://")  # a TLS server is never downgraded
    assert tls_registry.requests_since(mark) == []


def test_validate_certs_false(tls_registry: RigRegistry) -> None:
    assert Registry(tls_registry.host, options(validate_certs=False)).ping() is True


def test_client_certificate(tls_registry_mtls: RigRegistry) -> None:
    reg = tls_registry_mtls
    with_cert = Registry(reg.host, options(ca_path=reg.ca_path, client_cert=reg.client_cert,
                                           client_key=reg.client_key))
    assert with_cert.ping() is True
    without = Registry(reg.host, options(ca_path=reg.ca_path))
    with pytest.raises(TransportError) as caught:
        without.ping()
    message = advised(caught.value)  # as a task says it
    assert reg.host in message and "client_cert" in message


def test_loopback_plain_http_registry_is_found_without_options(plain_registry: RigRegistry) -> None:
    transport = Transport(plain_registry.host, options())
    assert transport.request("GET", "/v2/").status_code == 200
    assert transport.base_url == f"http://{plain_registry.host}"


def test_https_forced_on_a_plain_registry_explains(plain_registry: RigRegistry) -> None:
    with pytest.raises(TransportError) as caught:
        Registry(plain_registry.host, options(plain_http=False)).ping()
    assert "TLS handshake with" in str(caught.value) and "plain_http: true" in advised(caught.value)


def test_plain_http_forced(plain_registry: RigRegistry) -> None:
    registry = Registry(plain_registry.host, options(plain_http=True))
    assert registry.ping() is True
    assert registry.transport.base_url == f"http://{plain_registry.host}"


def test_localhost_name_works_like_127_0_0_1(tls_registry: RigRegistry) -> None:
    """The rig's certificate names both; localhost is loopback too."""
    host = f"localhost:{tls_registry.port}"
    registry = Registry(host, options(ca_path=tls_registry.ca_path))
    assert registry.ping() is True
    assert registry.transport.base_url == f"https://{host}"


@pytest.mark.parametrize("plain_http", [None, True])
def test_a_stopped_plain_loopback_registry_is_not_called_https(registry_factory, plain_http: bool | None) -> None:
    # The port of a plain-HTTP loopback registry that has stopped: nothing listens, on any scheme.
    # The message says what happened; it does not show the https attempt's connection object.
    registry = registry_factory()
    host = registry.host
    registry.stop()
    with pytest.raises(TransportError) as caught:
        Registry(host, options(retries=0, plain_http=plain_http)).ping()
    message = str(caught.value)
    assert f"cannot reach {host}" in message and "Connection refused" in message, message
    assert "HTTPSConnection" not in message and "HTTPConnection" not in message and " object at " not in message
